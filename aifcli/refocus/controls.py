"""User controls -> a target defocus (CoC) map: focus point or distance, aperture or blur
strength, deblur, tilted focal plane, subject mask, focus-pull sweep (DC² §5, Fig. 8).

All maps are CoC *diameters* in pixels, c = k * |d - d_f(x, y)|, with d the disparity
(larger = nearer), d_f the focus disparity (constant, or a tilted plane in the image)
and k the blur strength per unit of disparity (from ``--blur`` or DC² eq. 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from .coc import CocModel, k_from_optics


def parse_point(text: str, shape: tuple[int, int]) -> tuple[float, float]:
    """'X,Y' in pixels (or fractions of width/height when both are in [0, 1] with a '.')."""
    h, w = shape
    try:
        xs, ys = str(text).split(",")
        x, y = float(xs), float(ys)
    except ValueError:
        raise UsageError(f"--focus-at {text!r} is not X,Y", hint="pixels like 1200,800 or fractions like 0.5,0.4") from None
    if "." in text and 0 <= x <= 1 and 0 <= y <= 1:
        x, y = x * (w - 1), y * (h - 1)
    if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
        raise UsageError(f"--focus-at {x:g},{y:g} is outside the {w}x{h} image")
    return x, y


def parse_tilt(text: str) -> tuple[float, float]:
    """'ANGLE[,AXIS]' in degrees."""
    try:
        parts = [float(p) for p in str(text).split(",")]
    except ValueError:
        raise UsageError(f"--tilt {text!r} is not ANGLE[,AXIS] in degrees", hint="e.g. --tilt 30 or --tilt 30,10") from None
    if len(parts) not in (1, 2):
        raise UsageError(f"--tilt {text!r} is not ANGLE[,AXIS]")
    ang = parts[0]
    if not -89 <= ang <= 89:
        raise UsageError(f"--tilt angle {ang:g} is outside -89..89 degrees")
    return ang, (parts[1] if len(parts) == 2 else 0.0)


def focus_at(disparity: np.ndarray, x: float, y: float, window_frac: float = 0.01) -> float:
    """Tap to focus: the median disparity in a small window around (x, y)."""
    h, w = disparity.shape
    r = max(1, int(round(window_frac * math.hypot(h, w))))
    xi, yi = int(round(x)), int(round(y))
    patch = disparity[max(0, yi - r):yi + r + 1, max(0, xi - r):xi + r + 1]
    return float(np.median(patch))


def focus_from_mask(disparity: np.ndarray, mask: np.ndarray) -> float:
    sel = mask > 0.5
    if not sel.any():
        raise UsageError("the mask selects no pixel (all values < 0.5)")
    return float(np.median(disparity[sel]))


def disparity_range(disparity: np.ndarray) -> float:
    lo, hi = np.percentile(disparity, [0.5, 99.5])
    return float(max(hi - lo, 1e-6))


def blur_model(k_blur: float, disparity: np.ndarray, unit: str) -> CocModel:
    """``--blur K``: CoC diameter K px for a disparity difference of the map's full range."""
    if k_blur < 0:
        raise UsageError(f"--blur {k_blur:g} must be >= 0")
    return CocModel(k_blur / disparity_range(disparity), unit=unit, source="blur")


def optics_model(camera: Any, f_number: float, image_width: int, focus_disparity: float, unit: str,
                 near_m: float) -> CocModel:
    """``--aperture f/N`` via DC² eq. 1 with the preset's focal length and pixel pitch.

    The pixel pitch is scaled to the image (a 1024-px rendition of a 4032-px sensor has
    ~4x larger pixels). Metric disparity is 1/m; a relative map is taken to span
    infinity (0) to ``near_m`` metres (1), so 1 relative unit = 1/near_m per metre.
    """
    pitch = camera.pixel_pitch_um * camera.width / max(image_width, 1)
    per_unit = 1.0 if unit == "inv-m" else 1.0 / near_m
    df_m = focus_disparity * per_unit  # 1/m
    f = camera.focal_mm / 1000.0
    if df_m > 1e-6:
        focus_m = 1.0 / df_m
        if focus_m <= f * 1.01:
            raise UsageError(f"focus distance {focus_m:.3g} m is too close for a {camera.focal_mm:g} mm lens")
        k = k_from_optics(camera.focal_mm, f_number, pitch, focus_m)
    else:  # focused at infinity: K = A f / pitch
        focus_m = math.inf
        k = (f / f_number) * f / (pitch * 1e-6)
    return CocModel(k * per_unit, unit=unit, source="optics", f_number=f_number, focal_mm=camera.focal_mm,
                    pixel_pitch_um=round(pitch, 4), focus_m=focus_m)


def focus_disparity_for_distance(distance_m: float, unit: str, near_m: float) -> float:
    if distance_m <= 0:
        raise UsageError(f"--focus-distance {distance_m:g} must be positive (metres)")
    return (1.0 / distance_m) if unit == "inv-m" else near_m / distance_m


@dataclass
class DefocusPlan:
    coc: np.ndarray  # float32 HxW diameters, px
    focus_disparity: float
    plane: bool  # c = k |d - d_f| with a constant d_f (no tilt, no mask)
    order: np.ndarray  # layer order for the renderer (disparity; a masked subject is put in front)

    def summary(self) -> dict[str, Any]:
        return {"focus_disparity": round(self.focus_disparity, 5), "max_coc_px": round(float(self.coc.max()), 2),
                "mean_coc_px": round(float(self.coc.mean()), 2), "tilted_or_masked": not self.plane}


def defocus_map(disparity: np.ndarray, model: CocModel, focus_disparity: float, *,
                tilt: tuple[float, float] | None = None, centre: tuple[float, float] | None = None,
                mask: np.ndarray | None = None, deblur: bool = False, max_coc: float | None = None) -> DefocusPlan:
    """Target CoC map. ``tilt`` = (angle, axis) in degrees: the focus disparity varies
    linearly across the image, perpendicular to a band at ``axis`` degrees from horizontal
    through ``centre``; tan(angle) = change of focus disparity, in units of the map's
    range, per half image diagonal. ``mask`` in [0, 1]: 1 = keep sharp."""
    h, w = disparity.shape
    if deblur:
        return DefocusPlan(np.zeros((h, w), np.float32), focus_disparity, True, disparity)
    df: Any = np.float32(focus_disparity)
    plane = True
    if tilt is not None and abs(tilt[0]) > 1e-6:
        ang, axis = tilt
        cx, cy = centre if centre is not None else ((w - 1) / 2, (h - 1) / 2)
        nx, ny = -math.sin(math.radians(axis)), math.cos(math.radians(axis))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        t = ((xs - cx) * nx + (ys - cy) * ny) / (0.5 * math.hypot(h, w))
        df = focus_disparity + math.tan(math.radians(ang)) * disparity_range(disparity) * t
        plane = False
    c = model.k_px * np.abs(disparity - df)
    order = disparity
    if mask is not None:
        mk = np.clip(mask, 0, 1).astype(np.float32)
        c = c * (1.0 - mk)
        # the kept subject is rendered as the front-most layer: blur of anything at its
        # depth or behind it cannot spread over it
        order = (disparity + mk * (2.0 * disparity_range(disparity) + float(disparity.max() - disparity.min()))).astype(np.float32)
        plane = False
    if max_coc is not None:
        c = np.minimum(c, max_coc)
    return DefocusPlan(c.astype(np.float32), float(focus_disparity), plane, order)


def sweep_focus(disparity: np.ndarray, n: int) -> list[float]:
    """N focus disparities from the nearest to the farthest part of the scene."""
    if n < 2:
        raise UsageError(f"--sweep {n} needs at least 2 frames")
    lo, hi = np.percentile(disparity, [2, 98])
    return [float(v) for v in np.linspace(hi, lo, n)]
