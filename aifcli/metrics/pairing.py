"""Pairing predictions with ground truth for ``aif evaluate``.

Ground truth (GT) is indexed by a key:
  * an image file directly in the GT folder: its stem (``img_01.png`` -> ``img_01``);
  * a scene folder as ``aif synth`` writes it: ``GT/scene_0000/gt/aif.png`` -> ``scene_0000``
    (also ``GT/scene_0000/aif.png``); masks live next to the GT file;
  * GT itself a scene folder (``GT/gt/aif.png``): its folder name.

A prediction (an image directly in the PRED folder) pairs with the GT whose key
  1. matches ``--pattern`` (a regular expression on the prediction's stem with a group
     ``(?P<name>...)`` giving the key and optionally ``(?P<group>...)``), if given; else
  2. equals its stem (plain same-name pairing of two folders); else
  3. is the longest key that prefixes its stem before a ``_``, ``-`` or ``.``
     (``scene_0000_main_near.png`` -> ``scene_0000``, ``burst_0000.tif`` -> ``burst_0000``).

Groups (EasyAIF Table I: focused near / focused far / total): from ``(?P<group>...)`` of
``--pattern``, else from ``--group`` (a regex whose first group names it), else ``near``
or ``far`` when the rest of the name says so, else ``all``. Side outputs of other aif
commands (``*_depth``, ``*_confidence``, ...) are not predictions. A GT key without a
prediction for a group that other scenes have is reported as a missing prediction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..io.formats import is_image_file

GT_NAMES = ("aif",)  # the all-in-focus GT file name in a synth scene
AUX_SUFFIX = re.compile(r"[_-](depth|confidence|conf|coverage|mask|valid|occlusion|error|flow|disparity)$", re.I)
NEAR = {"near", "fg", "foreground"}
FAR = {"far", "bg", "background"}


@dataclass
class GtEntry:
    key: str
    path: Path
    folder: Path  # where masks for this GT are looked up


@dataclass
class EvalPair:
    name: str
    pred: Path | None
    gt: Path | None
    key: str
    group: str = "all"
    mask: Path | None = None
    problem: str | None = None  # why this row cannot be scored (missing prediction, ...)
    gt_folder: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pred": str(self.pred) if self.pred else None,
                "gt": str(self.gt) if self.gt else None, "key": self.key, "group": self.group,
                "mask": str(self.mask) if self.mask else None, "problem": self.problem}


@dataclass
class Pairing:
    pairs: list[EvalPair]
    ignored: list[tuple[Path, str]] = field(default_factory=list)  # predictions not scored, and why
    mode: str = ""


def _images(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    except PermissionError:
        raise InputError("permission denied", folder) from None


def _scene_gt(d: Path) -> Path | None:
    for sub in (d / "gt", d):
        if sub.is_dir():
            for f in _images(sub):
                if f.stem.lower() in GT_NAMES:
                    return f
    return None


def index_gt(gt: Path) -> dict[str, GtEntry]:
    """GT key -> entry for a GT folder (see the module docstring)."""
    if not gt.is_dir():
        raise InputError("no such folder", gt, "check the path")
    out: dict[str, GtEntry] = {}
    own = _scene_gt(gt)
    if own is not None and (gt / "gt").is_dir():
        out[gt.name] = GtEntry(gt.name, own, own.parent)
        return out
    for f in _images(gt):
        out[f.stem] = GtEntry(f.stem, f, gt)
    for d in sorted(p for p in gt.iterdir() if p.is_dir() and not p.name.startswith(".")):
        f = _scene_gt(d)
        if f is not None:
            out[d.name] = GtEntry(d.name, f, f.parent)
    return out


def group_from_rest(rest: str) -> str:
    tokens = {t.lower() for t in re.split(r"[_\-. ]+", rest) if t}
    if tokens & NEAR:
        return "near"
    if tokens & FAR:
        return "far"
    return "all"


def _compile(rx: str | None, what: str) -> re.Pattern[str] | None:
    if not rx:
        return None
    try:
        return re.compile(rx)
    except re.error as e:
        raise UsageError(f"{what} is not a valid regular expression: {e}", hint="e.g. '(?P<name>scene_\\d+)_(?P<group>near|far)'") from None


def pair_folders(pred: Path, gt: Path, pattern: str | None = None, group: str | None = None) -> Pairing:
    """Pair every prediction image in ``pred`` with GT in ``gt`` (see the module docstring)."""
    if not pred.is_dir():
        raise InputError("no such folder", pred, "check the path")
    rx = _compile(pattern, "--pattern")
    if rx is not None and "name" not in rx.groupindex:
        raise UsageError("--pattern needs a group (?P<name>...) that gives the ground-truth name",
                         hint="e.g. '(?P<name>scene_\\d+)_main_(?P<group>near|far)'")
    grx = _compile(group, "--group")
    if grx is not None and grx.groups < 1:
        raise UsageError("--group needs one capture group, e.g. '_(near|far)$'")
    index = index_gt(gt)
    if not index:
        raise InputError("no ground-truth images found", gt,
                         "expected images, or scene folders with gt/aif.png as `aif synth` writes them")
    keys_by_len = sorted(index, key=len, reverse=True)
    lower = {k.lower(): k for k in index}
    pairs: list[EvalPair] = []
    ignored: list[tuple[Path, str]] = []
    modes: set[str] = set()
    for f in _images(pred):
        if gt.resolve() == pred.resolve() or any(f.resolve() == e.path.resolve() for e in index.values()):
            ignored.append((f, "is a ground-truth file"))
            continue
        stem = f.stem
        key, grp = None, None
        if rx is not None:
            m = rx.fullmatch(stem) or rx.search(stem)
            if not m:
                ignored.append((f, "does not match --pattern"))
                continue
            key = m.group("name")
            grp = m.groupdict().get("group")
            if key not in index and key.lower() in lower:
                key = lower[key.lower()]
            modes.add("pattern")
        elif stem in index or stem.lower() in lower:
            key = stem if stem in index else lower[stem.lower()]
            modes.add("same name")
        else:
            if AUX_SUFFIX.search(stem):
                ignored.append((f, "side output (depth/confidence/...), not a prediction"))
                continue
            for k in keys_by_len:
                if stem.lower().startswith(k.lower()) and len(stem) > len(k) and stem[len(k)] in "_-. ":
                    key = k
                    grp = group_from_rest(stem[len(k) + 1:])
                    modes.add("name prefix")
                    break
        if key is None or key not in index:
            ignored.append((f, "no ground truth with a matching name"))
            continue
        if grx is not None:
            gm = grx.search(stem)
            grp = gm.group(1) if gm and gm.group(1) else "all"
        e = index[key]
        pairs.append(EvalPair(stem, f, e.path, key, grp or "all", gt_folder=e.folder))
    # missing predictions: a GT key lacks a group that others have, or has none at all
    groups = sorted({p.group for p in pairs}) or ["all"]
    have: dict[str, set[str]] = {}
    for p in pairs:
        have.setdefault(p.key, set()).add(p.group)
    for k, e in index.items():
        for g in groups:
            if g not in have.get(k, set()):
                name = k if g == "all" else f"{k} ({g})"
                pairs.append(EvalPair(name, None, e.path, k, g, problem="missing prediction", gt_folder=e.folder))
    pairs.sort(key=lambda p: (p.key, p.group, p.name))
    return Pairing(pairs, ignored, ", ".join(sorted(modes)) or "none")


def pair_inputs(pred: Path, gt: Path, pattern: str | None = None, group: str | None = None) -> Pairing:
    """Two files, a file and a GT folder, or two folders."""
    if not pred.exists():
        raise InputError("no such file or folder", pred, "check the path")
    if not gt.exists():
        raise InputError("no such file or folder", gt, "check the path")
    if pred.is_file():
        if not is_image_file(pred):
            raise InputError("not a supported image file", pred, "aif reads JPEG, PNG, TIFF, HEIC and camera RAW")
        if gt.is_file():
            grp = "all"
            if group:
                grx = _compile(group, "--group")
                m = grx.search(pred.stem) if grx else None
                grp = m.group(1) if m and m.groups and m.group(1) else "all"
            return Pairing([EvalPair(pred.stem, pred, gt, gt.stem, grp, gt_folder=gt.parent)], [], "two files")
        # one prediction against a GT folder: pair it like a folder of one, without missing rows
        p = pair_folders_single(pred, gt, pattern, group)
        return p
    if gt.is_file():
        raise UsageError("PRED is a folder but GT is a file", hint="give two files or two folders")
    return pair_folders(pred, gt, pattern, group)


def pair_folders_single(pred: Path, gt: Path, pattern: str | None, group: str | None) -> Pairing:
    import shutil
    import tempfile

    # reuse the folder logic on a one-file view of PRED (a symlink in a temporary folder)
    with tempfile.TemporaryDirectory(prefix="aif-eval-") as td:
        link = Path(td) / pred.name
        try:
            link.symlink_to(pred.resolve())
        except OSError:
            shutil.copy2(pred, link)
        res = pair_folders(Path(td), gt, pattern, group)
    pairs = [p for p in res.pairs if p.pred is not None]
    for p in pairs:
        p.pred = pred
    if not pairs:
        raise InputError("no ground truth matches this prediction's name", pred,
                         f"name it after a file or scene in {gt}, or pass --pattern")
    return Pairing(pairs, [], res.mode)


def resolve_mask(pair: EvalPair, mask: str | None) -> Path | None:
    """The mask file for a pair: ``auto`` (``valid.*`` next to the GT if present), ``none``,
    a path, or a file name looked up next to each GT (``{group}`` and ``{name}`` are filled in)."""
    if mask is None or mask.lower() == "none":
        return None
    folder = pair.gt_folder or (pair.gt.parent if pair.gt else None)
    if mask.lower() == "auto":
        if folder is None or pair.gt is None or pair.gt.stem.lower() not in GT_NAMES:
            return None  # only synth scene folders carry a valid-region mask by convention
        for ext in (".png", ".tif", ".tiff", ".npy"):
            c = folder / f"valid{ext}"
            if c.is_file():
                return c
        return None
    text = mask.replace("{group}", pair.group).replace("{name}", pair.key)
    p = Path(text)
    if p.is_absolute() or p.exists():
        return p
    if folder is not None:
        return folder / text
    return p
