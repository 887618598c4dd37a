"""Saving and loading aif's trained networks, with a checksum and an architecture check.

A weights file ``weights/NAME.pt`` is a plain ``torch.save`` dict (loaded with
``weights_only=True``: tensors, numbers, strings, lists and dicts only, never pickled code):

    {"format": 1, "arch": "aif-fusenet-v1", "config": {...}, "state_dict": {...},
     "card": {...}}

Beside it: ``NAME.sha256`` (``<hex>  NAME.pt``, the ``sha256sum`` format) and ``NAME.md``,
the model card (architecture, parameter count, data recipe and seeds, training time and
hardware, validation metrics). Loading refuses a file whose checksum differs from its
``.sha256`` (truncated or corrupt download/copy), whose ``arch`` is not the one asked for,
or whose tensors do not fit the architecture built from its ``config``; every refusal is
one line naming the file and ``aif train`` as the fix.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError

FORMAT = 1
# checked models by (file sha256, arch): a second load of the same bytes (the CLI's early
# check, then the pipeline; every pair of a batch) re-verifies the checksum but does not
# unpickle and rebuild the network again
_LOADED: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


def resolve(name_or_path: str | Path) -> Path:
    """``fuse-net`` / ``fuse-net.pt`` -> the first weights folder holding it; a path -> itself.

    Folders: ``aifcli.metrics.lpips.aif_weights_dirs`` ($AIF_WEIGHTS, the source tree, the
    install). A name found nowhere resolves to the source tree's weights/, for the message.
    """
    from ..metrics.lpips import aif_weights_dirs

    p = Path(name_or_path)
    if p.suffix == ".pt" and (p.is_absolute() or len(p.parts) > 1 or p.exists()):
        return p
    fname = p.name if p.suffix == ".pt" else p.name + ".pt"
    for d in aif_weights_dirs():
        if (d / fname).exists():
            return d / fname
    return Path(__file__).resolve().parents[2] / "weights" / fname


def sha256_file(path: str | Path) -> str:
    from ..metrics.lpips import sha256_of  # one streaming sha256 helper for all weights files

    return sha256_of(path)


def checksum_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def card_path(path: Path) -> Path:
    return path.with_suffix(".md")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_weights(path: str | Path, *, arch: str, config: dict[str, Any], state_dict: dict[str, Any],
                 card: dict[str, Any], card_markdown: str) -> str:
    """Write NAME.pt, NAME.sha256 and NAME.md atomically; returns the sha256."""
    import torch

    path = Path(path)
    buf = io.BytesIO()
    sd = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    torch.save({"format": FORMAT, "arch": arch, "config": config, "state_dict": sd, "card": card}, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    _atomic_write(path, data)
    _atomic_write(checksum_path(path), f"{digest}  {path.name}\n".encode())
    _atomic_write(card_path(path), card_markdown.replace("{sha256}", digest).encode())
    return digest


def _fix(task: str) -> str:
    return f"train it with `aif train {task} -o WEIGHTS.pt` (see `aif train --help`), or use --engine classical"


def load_weights(name_or_path: str | Path, *, arch: str, task: str, build: Callable[[dict[str, Any]], Any],
                 verify: bool = True) -> tuple[Any, dict[str, Any]]:
    """Load and check a weights file; returns ``(model in eval mode, file dict without tensors)``.

    ``build(config)`` makes the architecture; the state dict must fit it exactly.
    """
    import torch

    path = resolve(name_or_path)
    if not path.exists():
        raise InputError("weights file not found", path, _fix(task))
    if verify:
        cpath = checksum_path(path)
        if not cpath.exists():
            raise InputError(f"no checksum file {cpath.name} beside the weights", path,
                             "copy it with the weights, or " + _fix(task))
        want = cpath.read_text().split()[0].strip().lower() if cpath.read_text().strip() else ""
        got = sha256_file(path)
        if got != want:
            raise InputError(f"checksum mismatch (sha256 {got[:12]}..., {cpath.name} says {want[:12]}...): "
                             "the file is corrupt or was replaced", path, _fix(task))
        if (got, arch) in _LOADED:
            model, info = _LOADED[(got, arch)]
            return model, {**info, "path": str(path)}
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a corrupt file
        raise InputError(f"not a readable aif weights file ({type(e).__name__})", path, _fix(task)) from e
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or "state_dict" not in blob:
        raise InputError("not an aif weights file (no format/state_dict)", path, _fix(task))
    if blob.get("arch") != arch:
        raise InputError(f"holds architecture {blob.get('arch')!r}, expected {arch!r}", path, _fix(task))
    try:
        model = build(dict(blob.get("config") or {}))
        model.load_state_dict(blob["state_dict"], strict=True)
    except Exception as e:  # noqa: BLE001 - shape/key mismatch: wrong or damaged file
        msg = str(e).splitlines()[0][:160]
        raise InputError(f"tensors do not fit {arch}: {msg}", path, _fix(task)) from e
    model.eval()
    info = {k: v for k, v in blob.items() if k != "state_dict"}
    info["path"] = str(path)
    if verify:
        _LOADED[(got, arch)] = (model, info)
    return model, info


def card_markdown(title: str, card: dict[str, Any]) -> str:
    """A model card: a short prose header and every card field, with ``{sha256}`` filled in on save."""
    lines = [f"# {title}", "", card.get("summary", ""), "", "| field | value |", "|---|---|"]
    for k, v in card.items():
        if k in ("summary", "validation", "notes"):
            continue
        if isinstance(v, (dict, list)):
            v = json.dumps(v)
        lines.append(f"| {k} | {v} |")
    lines.append("| sha256 | `{sha256}` |")
    if card.get("validation"):
        lines += ["", "## Validation (fixed held-out split of the training data)", "", "| metric | value |", "|---|---|"]
        for k, v in card["validation"].items():
            lines.append(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
    if card.get("notes"):
        lines += ["", "## Notes", "", card["notes"]]
    return "\n".join(lines) + "\n"
