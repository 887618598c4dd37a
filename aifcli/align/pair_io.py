"""Reading a main + ultra-wide pair from files: roles from EXIF, focal ratio, swap detection.

Used by ``aif align`` and ``aif fuse`` (single pairs and batch items). The library stages
(``align_pair``, ``fuse_pair``) take arrays; this is the file side.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..image import Image
from ..io import read_image
from ..io.exif import camera_summary


@dataclass
class PairInput:
    main: Image
    ultrawide: Image
    main_path: Path
    uw_path: Path
    ratio: float  # 35 mm focal of the main / of the ultra-wide
    ratio_source: str  # "--ratio", "--preset", "EXIF", "preset (EXIF match)", "default"
    preset: Any = None
    swapped: bool = False
    notes: list[str] = field(default_factory=list)  # warnings for the user

    def to_dict(self) -> dict[str, Any]:
        return {"main": str(self.main_path), "ultrawide": str(self.uw_path), "focal_ratio": round(self.ratio, 4),
                "ratio_source": self.ratio_source, "preset": getattr(self.preset, "name", None),
                "swapped": self.swapped, "notes": self.notes}


def _summary(tags: dict[str, str]) -> dict[str, Any]:
    return camera_summary(tags) if tags else {}


def plan_roles(main_path: Path, uw_path: Path, tags_main: dict[str, str], tags_uw: dict[str, str],
               preset_name: str | None = None, ratio: float | None = None) -> tuple[bool, float, str, Any, list[str]]:
    """(swap?, ratio, ratio_source, preset, notes) from the two files' EXIF."""
    from ..presets import get_preset, match_tags

    notes: list[str] = []
    sm, su = _summary(tags_main), _summary(tags_uw)
    fm, fu = sm.get("focal_35mm"), su.get("focal_35mm")
    swap = False
    mm = match_tags(tags_main) if tags_main else None
    mu = match_tags(tags_uw) if tags_uw else None
    if fm and fu and fm > 0 and fu > 0:
        if fm < fu / 1.1:
            swap = True
            notes.append(f"roles swapped from EXIF: {uw_path.name} ({fu:g} mm eq.) is the narrower main camera, "
                         f"{main_path.name} ({fm:g} mm eq.) the wider one")
    elif mm is not None and mu is not None and mm.role == "ultrawide" and mu.role in ("main", "tele"):
        swap = True
        notes.append(f"roles swapped from EXIF: {main_path.name} was taken by the ultra-wide camera")
    if swap:
        sm, su, mm, mu, fm, fu = su, sm, mu, mm, fu, fm
    preset = None
    if ratio is not None:
        if ratio <= 0:
            raise UsageError(f"--ratio must be positive, got {ratio}")
        src = "--ratio"
    elif preset_name:
        preset = get_preset(preset_name)
        if "ultrawide" not in preset.cameras:
            raise UsageError(f"preset '{preset.name}' has no ultra-wide camera", preset.source,
                             "pass --ratio MAIN_FOCAL/UW_FOCAL instead")
        ratio = preset.cameras["main"].focal_35mm / preset.cameras["ultrawide"].focal_35mm
        src = "--preset"
    elif fm and fu:
        ratio, src = fm / fu, "EXIF"
        preset = mm.preset if mm else None
    elif mm is not None and "ultrawide" in mm.preset.cameras:
        preset = mm.preset
        ratio = preset.cameras["main"].focal_35mm / preset.cameras["ultrawide"].focal_35mm
        src = "preset (EXIF match)"
        if mm.warning:
            notes.append(mm.warning)
    else:
        ratio, src = 2.0, "default"
    return swap, float(ratio), src, preset, notes


def load_pair(main_path: str | Path, uw_path: str | Path, preset_name: str | None = None,
              ratio: float | None = None, detect_swap: bool = True) -> PairInput:
    """Read both files (EXIF orientation applied), decide roles and the focal ratio."""
    main_path, uw_path = Path(main_path), Path(uw_path)
    if main_path.is_file() and uw_path.is_file() and os.path.samefile(main_path, uw_path):  # links too
        raise InputError("the main and the ultra-wide are the same file", uw_path,
                         "pass the ultra-wide photo taken at the same moment as the second file")
    # Both decodes at once: OpenCV's JPEG decoder releases the GIL, so on 2 cores a 12 MP
    # pair reads in 0.14 s instead of 0.24 s. Errors surface in the same order as before
    # (the main's first).
    with ThreadPoolExecutor(max_workers=2) as ex:
        fa, fb = ex.submit(read_image, main_path), ex.submit(read_image, uw_path)
        a = fa.result()
        b = fb.result()
    swap, r, src, preset, notes = plan_roles(main_path, uw_path, a.meta.exif, b.meta.exif, preset_name, ratio)
    if swap and detect_swap:
        a, b, main_path, uw_path = b, a, uw_path, main_path
    elif swap:
        notes = [n + " (ignored: --no-swap)" for n in notes]
        swap = False
    return PairInput(a, b, main_path, uw_path, r, src, preset, swap, notes)


def swap_roles(p: PairInput, reason: str) -> PairInput:
    """The same pair with main and ultra-wide exchanged (geometry said so)."""
    return PairInput(p.ultrawide, p.main, p.uw_path, p.main_path, p.ratio, p.ratio_source, p.preset, not p.swapped,
                     p.notes + [reason])


def align_files(p: PairInput, detect_swap: bool = True, **kw: Any) -> tuple[PairInput, Any]:
    """``align_pair`` on a loaded pair; when the geometry shows the 'ultra-wide' is the
    narrower view (EXIF missing or wrong), swap the roles once and align again."""
    from .pair import align_pair

    al = align_pair(p.main.pixels, p.ultrawide.pixels, ratio=p.ratio, main_path=p.main_path, uw_path=p.uw_path, **kw)
    if al.swapped_hint and detect_swap:
        p = swap_roles(p, f"roles swapped by geometry: {p.main_path.name} has the wider field "
                          f"({al.scale:.2f} px per main px), so it is used as the ultra-wide")
        al = align_pair(p.main.pixels, p.ultrawide.pixels, ratio=p.ratio, main_path=p.main_path, uw_path=p.uw_path, **kw)
    return p, al
