"""Camera presets: what the pipeline needs to know about a device, and EXIF matching.

One TOML file per device in ``presets/`` (see ``presets/iphone-13.toml``). A preset
holds, per camera module (``main``, ``ultrawide``, ``tele``), the focal length in mm
and 35 mm equivalent, f-number, pixel pitch and resolution, plus the main-to-ultra-wide
baseline and default processing parameters. Files are matched by EXIF Make/Model;
the module (role) that took a file is the one whose 35 mm focal length is nearest.
Unknown devices get a generic preset adjusted from their own EXIF, with a warning.
"""
from __future__ import annotations

import fnmatch
import math
import os
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .coc import ThinLens
from .errors import InputError, UsageError
from .io.exif import camera_summary

ROLES = ("main", "ultrawide", "tele")
ROLE_LABELS = {"main": "wide (main)", "ultrawide": "ultra-wide", "tele": "tele"}
FULL_FRAME_DIAGONAL_MM = 43.27
CAMERA_MAKERS = ("nikon*", "canon*", "sony*", "fujifilm*", "panasonic*", "olympus*", "om digital*",
                 "pentax*", "ricoh*", "leica*", "hasselblad*", "sigma*", "phase one*")


@dataclass(frozen=True)
class CameraModule(ThinLens):
    focal_mm: float
    focal_35mm: float
    f_number: float
    pixel_pitch_um: float
    width: int
    height: int

    def coc_px(self, depth_m: Any, focus_m: float) -> Any:
        """Circle-of-confusion diameter in pixels (DC² eq. 1, thin lens).

        c = A * |S2 - S1| / S2 * f / (S1 - f), with A = f/N the aperture, S1 the focus
        distance and S2 the object depth (both metres), divided by the pixel pitch.
        Accepts scalars or numpy arrays for ``depth_m``.
        """
        from .coc import coc_px

        return coc_px(depth_m, float(focus_m), self.focal_mm, self.f_number, self.pixel_pitch_um)


@dataclass(frozen=True)
class Preset:
    name: str
    display: str
    kind: str  # "phone" or "camera"
    cameras: dict[str, CameraModule]
    baseline_mm: float | None = None
    make: tuple[str, ...] = ()
    model: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    generic: bool = False

    def camera(self, role: str) -> CameraModule:
        if role not in self.cameras:
            raise UsageError(f"preset '{self.name}' has no '{role}' camera", self.source,
                             f"it has: {', '.join(self.cameras)}")
        return self.cameras[role]

    def role_for_focal(self, focal_mm: float | None, focal_35mm: float | None) -> str | None:
        """The module whose focal length is nearest (in log ratio) to the given one."""
        if not self.cameras:
            return None
        if focal_35mm:
            key, val = "focal_35mm", focal_35mm
        elif focal_mm:
            key, val = "focal_mm", focal_mm
        else:
            return None
        best = min(self.cameras.items(), key=lambda kv: abs(math.log(getattr(kv[1], key) / val)))
        return best[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "display": self.display, "kind": self.kind, "baseline_mm": self.baseline_mm,
            "match": {"make": list(self.make), "model": list(self.model)},
            "cameras": {r: vars(c) | {"aperture_mm": round(c.aperture_mm, 4)} for r, c in self.cameras.items()},
            "defaults": dict(self.defaults), "source": str(self.source) if self.source else None,
            "generic": self.generic,
        }


def preset_dirs() -> list[Path]:
    """Where presets are looked up, first wins: $AIF_PRESETS, the source tree, the install."""
    dirs: list[Path] = []
    env = os.environ.get("AIF_PRESETS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "presets")
    dirs.append(Path(sys.prefix) / "share" / "aif" / "presets")
    return [d for d in dirs if d.is_dir()]


def _parse(path: Path) -> Preset:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"cannot parse preset: {e}", path, "fix the TOML syntax") from None
    try:
        cams = {}
        for role, c in data.get("cameras", {}).items():
            if role not in ROLES:
                raise ValueError(f"unknown camera role '{role}' (use {', '.join(ROLES)})")
            cams[role] = CameraModule(float(c["focal_mm"]), float(c["focal_35mm"]), float(c["f_number"]),
                                      float(c["pixel_pitch_um"]), int(c["width"]), int(c["height"]))
            for k in ("focal_mm", "focal_35mm", "f_number", "pixel_pitch_um", "width", "height"):
                if float(c[k]) <= 0:
                    raise ValueError(f"cameras.{role}.{k} must be positive")
        if "main" not in cams:
            raise ValueError("a preset needs a [cameras.main] table")
        m = data.get("match", {})
        return Preset(name=str(data.get("name", path.stem)), display=str(data.get("display", path.stem)),
                      kind=str(data.get("kind", "phone")), cameras=cams,
                      baseline_mm=float(data["baseline_mm"]) if "baseline_mm" in data else None,
                      make=tuple(m.get("make", [])), model=tuple(m.get("model", [])),
                      defaults=dict(data.get("defaults", {})), source=path)
    except (KeyError, ValueError, TypeError) as e:
        raise InputError(f"invalid preset: {e}", path, "compare with presets/generic-phone.toml") from None


_CACHE: dict[tuple[str, ...], dict[str, Preset]] = {}


def load_presets() -> dict[str, Preset]:
    dirs = preset_dirs()
    key = tuple(str(d) for d in dirs)
    if key not in _CACHE:
        out: dict[str, Preset] = {}
        for d in dirs:
            for p in sorted(d.glob("*.toml")):
                pr = _parse(p)
                out.setdefault(pr.name, pr)
        _CACHE[key] = out
    return _CACHE[key]


def get_preset(name_or_path: str) -> Preset:
    """A preset by name (``iphone-13``) or by path to a TOML file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return _parse(p)
    presets = load_presets()
    if name_or_path in presets:
        return presets[name_or_path]
    close = [n for n in presets if name_or_path.lower() in n.lower()]
    hint = f"did you mean {', '.join(close)}?" if close else "see `aif presets list`"
    raise UsageError(f"unknown preset '{name_or_path}'", hint=hint)


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    v = value.strip().lower()
    return any(fnmatch.fnmatchcase(v, p.strip().lower()) for p in patterns)


@dataclass
class Match:
    preset: Preset
    role: str | None
    exact: bool
    make: str
    model: str
    focal_mm: float | None
    focal_35mm: float | None
    f_number: float | None
    orientation: int
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset.name, "display": self.preset.display, "role": self.role,
                "role_label": ROLE_LABELS.get(self.role or "", None), "exact": self.exact,
                "make": self.make, "model": self.model, "focal_mm": self.focal_mm,
                "focal_35mm": self.focal_35mm, "f_number": self.f_number,
                "orientation": self.orientation, "warning": self.warning}


def _generic_from_exif(base: Preset, s: dict[str, Any]) -> Preset:
    """A copy of a generic preset with the file's module replaced by its EXIF optics."""
    fmm, f35, fn = s.get("focal_mm"), s.get("focal_35mm"), s.get("f_number")
    if not fmm:
        return base
    role = base.role_for_focal(fmm, f35) or "main"
    old = base.cameras[role]
    crop = (f35 / fmm) if f35 else old.focal_35mm / old.focal_mm
    width = int(s.get("width") or old.width)
    height = int(s.get("height") or old.height)
    sensor_diag_mm = FULL_FRAME_DIAGONAL_MM / crop
    pitch_um = sensor_diag_mm / math.hypot(width, height) * 1000.0
    mod = CameraModule(float(fmm), float(f35 or fmm * crop), float(fn or old.f_number), round(pitch_um, 3),
                       width, height)
    cams = dict(base.cameras)
    cams[role] = mod
    label = f"{s.get('make') or 'unknown'} {s.get('model') or ''}".strip()
    return replace(base, name=f"{base.name}+exif", display=f"{label} (generic, from EXIF)", cameras=cams,
                   generic=True, source=None)


def match_tags(tags: dict[str, str], fallback: str | None = None) -> Match:
    """Which preset and which camera module took a file, from its EXIF tags."""
    s = camera_summary(tags)
    presets = load_presets()
    make, model = s["make"], s["model"]
    found = None
    if make or model:
        for p in presets.values():
            if p.make and p.model and _matches(make, p.make) and _matches(model, p.model):
                found = p
                break
    warning = None
    exact = found is not None
    if found is None:
        crop = (s["focal_35mm"] / s["focal_mm"]) if (s["focal_mm"] and s["focal_35mm"]) else None
        is_camera = (crop is not None and crop < 2.5) or (crop is None and _matches(make, CAMERA_MAKERS))
        base_name = fallback or ("generic-camera" if is_camera else "generic-phone")
        base = get_preset(base_name)
        if not tags:
            warning = f"no EXIF: using preset '{base.name}' (pass --preset to choose one)"
            found = base
        else:
            found = _generic_from_exif(base, s)
            who = f"{make} {model}".strip() or "camera without Make/Model"
            warning = (f"unknown camera '{who}': using '{base.name}' adjusted from EXIF "
                       f"(add a preset in presets/ or pass --preset)")
    role = found.role_for_focal(s["focal_mm"], s["focal_35mm"])
    if role is None and found.kind == "camera":
        role = "main"
    return Match(preset=found, role=role, exact=exact, make=make, model=model, focal_mm=s["focal_mm"],
                 focal_35mm=s["focal_35mm"], f_number=s["f_number"], orientation=s["orientation"],
                 warning=warning)


def match_file(path: str | Path, fallback: str | None = None) -> Match:
    """``match_tags`` on a file's EXIF (read without decoding pixels)."""
    from .io.read import read_metadata

    meta = read_metadata(path)
    return match_tags(meta.exif, fallback=fallback)


def resolve_preset(explicit: str | None, tags: dict[str, str] | None = None, fallback: str = "generic-phone") -> tuple[Preset, str | None]:
    """The preset to use: ``--preset`` if given, else EXIF match; returns (preset, warning)."""
    if explicit:
        return get_preset(explicit), None
    if tags is None:
        return get_preset(fallback), None
    m = match_tags(tags, fallback=fallback)
    return m.preset, m.warning
