"""Finding the work in a folder: bursts (focus brackets) and pairs (main + ultra-wide).

Bursts, in order of precedence:
  1. one subfolder per burst (any subfolder holding 2+ images; ``gt/`` is ignored);
  2. a flat folder, split into bursts by file-name prefix, camera and image size, then
     by capture-time gaps (EXIF DateTimeOriginal + SubSec) or, without times, by
     jumps in the file numbering.

Pairs, in order of precedence:
  1. a CSV manifest (columns ``name,main,ultrawide``; paths relative to the CSV);
  2. one subfolder per scene: files whose names say ``ultrawide``/``uw``/``ultra`` are
     the ultra-wide, every other image is a main shot paired with it (a scene with a
     near- and a far-focused main gives two pairs); without names, EXIF focal lengths
     decide the roles;
  3. a flat folder with name patterns (``*_main.*`` / ``*_ultrawide.*`` by default),
     paired by the part of the name the ``*`` matched;
  4. a flat folder of camera files, paired by EXIF capture time within a tolerance and
     by roles (main vs ultra-wide) from the preset.
"""
from __future__ import annotations

import csv
import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.exif import camera_summary, read_exif_tags
from ..io.formats import is_image_file

IGNORED_DIRS = {"gt", "aif-out", "__pycache__", "debug"}
UW_WORDS = re.compile(r"(^|[^a-z])(ultra[-_ ]?wide|ultrawide|uw|ultra|0\.5x)([^a-z]|$)", re.I)


@dataclass
class Burst:
    name: str
    frames: list[Path]
    source: str = ""  # how it was found

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "frames": [str(f) for f in self.frames], "count": len(self.frames),
                "source": self.source}


@dataclass
class Pair:
    name: str
    main: Path
    ultrawide: Path
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "main": str(self.main), "ultrawide": str(self.ultrawide),
                "source": self.source, **self.extra}


def _images(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    except PermissionError:
        raise InputError("permission denied", folder) from None


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in IGNORED_DIRS
                  and not p.name.startswith("."))


def _check_folder(root: Path) -> None:
    if not root.exists():
        raise InputError("no such folder", root, "check the path")
    if not root.is_dir():
        raise InputError("not a folder", root)


_NUM = re.compile(r"^(.*?)(\d+)(\D*)$")


def _prefix_number(path: Path) -> tuple[str, int | None]:
    m = _NUM.match(path.stem)
    if not m:
        return path.stem, None
    return m.group(1).rstrip("-_ ").lower(), int(m.group(2))


def _frame_key(path: Path) -> dict[str, Any]:
    tags = read_exif_tags(path)
    s = camera_summary(tags)
    prefix, num = _prefix_number(path)
    return {"path": path, "prefix": prefix, "num": num, "time": s["time"],
            "camera": f"{s['make']}|{s['model']}", "ext": path.suffix.lower()}


def split_flat_bursts(files: list[Path], gap_s: float = 30.0, number_gap: int = 10) -> list[list[Path]]:
    """Split a flat list of frames into bursts (see the module docstring)."""
    keys = [_frame_key(f) for f in files]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for k in keys:
        groups.setdefault((k["prefix"], k["camera"], k["ext"]), []).append(k)
    bursts: list[list[Path]] = []
    for g in groups.values():
        have_time = all(k["time"] is not None for k in g)
        if have_time:
            g.sort(key=lambda k: (k["time"], k["num"] if k["num"] is not None else -1, k["path"].name))
        else:
            g.sort(key=lambda k: (k["num"] if k["num"] is not None else -1, k["path"].name))
        cur = [g[0]]
        for prev, k in zip(g, g[1:]):
            split = False
            if have_time:
                split = (k["time"] - prev["time"]).total_seconds() > gap_s
            elif k["num"] is not None and prev["num"] is not None:
                split = k["num"] - prev["num"] > number_gap
            if split:
                bursts.append([c["path"] for c in cur])
                cur = []
            cur.append(k)
        bursts.append([c["path"] for c in cur])
    bursts.sort(key=lambda b: b[0].name)
    return bursts


def discover_bursts(root: str | Path, gap_s: float = 30.0, min_frames: int = 2) -> list[Burst]:
    """Bursts under ``root`` (a burst folder, a folder of burst folders, or a flat mix)."""
    root = Path(root)
    _check_folder(root)
    out: list[Burst] = []
    subs = [d for d in _subdirs(root) if len(_images(d)) >= 1]
    top = _images(root)
    if subs:
        for d in subs:
            frames = _images(d)
            out.append(Burst(d.name, frames, "subfolder"))
        if top:
            for i, b in enumerate(split_flat_bursts(top, gap_s)):
                out.append(Burst(_burst_name(root, b, i), b, "flat folder"))
    elif top:
        parts = split_flat_bursts(top, gap_s)
        if len(parts) == 1:
            out.append(Burst(root.name or "burst", parts[0], "folder"))
        else:
            for i, b in enumerate(parts):
                out.append(Burst(_burst_name(root, b, i), b, "flat folder, split"))
    if not out:
        raise InputError("no images found", root,
                         "expected a folder of frames or of burst folders (JPEG, PNG, TIFF, HEIC, RAW)")
    return out


def _burst_name(root: Path, frames: list[Path], i: int) -> str:
    prefix, _ = _prefix_number(frames[0])
    base = prefix or root.name or "burst"
    return f"{base}-{frames[0].stem}"


def discover_pairs(root: str | Path, main_pattern: str = "*_main.*", uw_pattern: str = "*_ultrawide.*",
                   manifest: str | Path | None = None, time_tol_s: float = 1.0) -> list[Pair]:
    """Main + ultra-wide pairs under ``root`` (see the module docstring)."""
    if manifest is not None:
        return read_manifest(manifest)
    root = Path(root)
    _check_folder(root)
    pairs: list[Pair] = []
    subs = _subdirs(root)
    for d in subs:
        pairs += _pairs_in_scene(d)
    top = _images(root)
    if top:
        by_pattern = _pairs_by_pattern(top, main_pattern, uw_pattern)
        if by_pattern:
            pairs += by_pattern
        elif _names_say(top) or (len(top) == 2 and not subs):
            pairs += _pairs_in_scene(root)  # the folder itself is one scene
        else:
            pairs += _pairs_by_time(top, time_tol_s)
    if not pairs:
        raise InputError("no main + ultra-wide pairs found", root,
                         "use one subfolder per scene, names like X_main.jpg + X_ultrawide.jpg, or --manifest")
    return pairs


def _names_say(files: list[Path]) -> bool:
    return any(UW_WORDS.search(f.stem) for f in files)


def _role_by_exif(path: Path) -> str | None:
    from ..presets import match_tags

    tags = read_exif_tags(path)
    if not tags:
        return None
    return match_tags(tags).role


def _pairs_in_scene(d: Path) -> list[Pair]:
    files = _images(d)
    if len(files) < 2:
        return []
    uws = [f for f in files if UW_WORDS.search(f.stem)]
    if not uws:
        roles = {f: _role_by_exif(f) for f in files}
        uws = [f for f in files if roles[f] == "ultrawide"]
    if len(uws) != 1:
        return []
    uw = uws[0]
    mains = [f for f in files if f != uw]
    out = []
    for m in mains:
        name = d.name if len(mains) == 1 else f"{d.name}/{m.stem}"
        out.append(Pair(name, m, uw, "scene folder"))
    return out


def _pairs_by_pattern(files: list[Path], main_pattern: str, uw_pattern: str) -> list[Pair]:
    def stem_of(f: Path, pat: str) -> str | None:
        if not fnmatch.fnmatch(f.name.lower(), pat.lower()):
            return None
        rx = "^" + re.escape(pat.lower()).replace(r"\*", "(.*)") + "$"
        m = re.match(rx, f.name.lower())
        return m.group(1) if m else None

    mains = {s: f for f in files if (s := stem_of(f, main_pattern)) is not None}
    uws = {s: f for f in files if (s := stem_of(f, uw_pattern)) is not None}
    return [Pair(s, mains[s], uws[s], "name pattern") for s in sorted(mains) if s in uws]


def _pairs_by_time(files: list[Path], tol_s: float) -> list[Pair]:
    from ..presets import match_tags

    recs = []
    for f in files:
        tags = read_exif_tags(f)
        s = camera_summary(tags)
        role = match_tags(tags).role if tags else None
        recs.append((f, s["time"], role))
    mains = [r for r in recs if r[2] == "main" and r[1] is not None]
    uws = [r for r in recs if r[2] == "ultrawide" and r[1] is not None]
    used: set[Path] = set()
    out = []
    for f, t, _ in sorted(mains, key=lambda r: r[1]):
        best = None
        for g, u, _ in uws:
            if g in used:
                continue
            dt = abs((u - t).total_seconds())
            if dt <= tol_s and (best is None or dt < best[1]):
                best = (g, dt)
        if best:
            used.add(best[0])
            out.append(Pair(f.stem, f, best[0], "capture time", {"time_delta_s": round(best[1], 3)}))
    return out


def read_manifest(path: str | Path) -> list[Pair]:
    """Pairs from a CSV with a header ``name,main,ultrawide`` (paths relative to the CSV)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such manifest", path)
    out = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"cannot read manifest: {e}", path) from None
    for i, r in enumerate(rows, start=2):
        try:
            main = (path.parent / r["main"].strip())
            uw = (path.parent / r["ultrawide"].strip())
        except (KeyError, AttributeError):
            raise InputError(f"line {i}: needs columns name,main,ultrawide", path) from None
        name = (r.get("name") or main.stem).strip()
        out.append(Pair(name, main, uw, "manifest"))
    if not out:
        raise InputError("manifest lists no pairs", path)
    return out
