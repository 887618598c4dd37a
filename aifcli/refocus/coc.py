"""Circle of confusion in pixels from disparity (DC² eq. 1).

DC² eq. 1 gives the CoC diameter of a point at depth S2 for a lens of focal length f and
aperture diameter A = f/N focused at S1:

    c = A * |S2 - S1| / S2 * f / (S1 - f)
      = [A f S1 / (S1 - f)] * |1/S1 - 1/S2|.

So in pixels the CoC is *linear in inverse depth*: c_px = K * |d - d_f| with d = 1/S2
(disparity, 1/m), d_f = 1/S1 and K = A f S1 / ((S1 - f) * pixel pitch), in px per 1/m.
Any disparity proportional to inverse depth works with a suitable K; that is why a
relative disparity map plus one blur strength ("--blur K") is enough.

Conventions in this module (and in ``render``):
- ``disparity``: larger = nearer. Relative maps are normalised to [0, 1] (0 = farthest
  pixel, 1 = nearest); metric maps are in 1/m (``unit="inv-m"``).
- CoC values are *diameters* in pixels; the renderer's disc radius is c / 2.
- ``signed`` CoC: positive in front of the focal plane, negative behind it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError


@dataclass(frozen=True)
class CocModel:
    """c_px = k_px * |d - d_focus| (+ a focus field for tilted planes; see ``controls``).

    ``k_px``: CoC diameter in pixels per unit of disparity; ``unit``: "relative" (disparity
    in [0, 1]) or "inv-m" (1/m). ``source`` says where k came from, for reports.
    """

    k_px: float
    unit: str = "relative"
    source: str = "blur"
    f_number: float | None = None
    focal_mm: float | None = None
    pixel_pitch_um: float | None = None
    focus_m: float | None = None

    def coc(self, disparity: Any, focus_disparity: Any) -> Any:
        """CoC diameter in pixels (array or scalar)."""
        return self.k_px * np.abs(np.asarray(disparity, dtype=np.float32) - focus_disparity)

    def signed_coc(self, disparity: Any, focus_disparity: Any) -> Any:
        """Signed CoC diameter: positive in front of the focal plane (nearer), negative behind."""
        return self.k_px * (np.asarray(disparity, dtype=np.float32) - focus_disparity)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


def k_from_optics(focal_mm: float, f_number: float, pixel_pitch_um: float, focus_m: float) -> float:
    """K in pixels per (1/m) for DC² eq. 1: A f S1 / ((S1 - f) * pitch), A = f / N."""
    from ..coc import coc_scale_px

    return float(coc_scale_px(focal_mm, f_number, pixel_pitch_um, focus_m) * focus_m)


def coc_from_depth(depth_m: Any, focus_m: float, focal_mm: float, f_number: float, pixel_pitch_um: float) -> Any:
    """DC² eq. 1 written on depth, c = A |S2 - S1| / S2 * f / (S1 - f), in pixels (diameter)."""
    from ..coc import coc_px

    return coc_px(depth_m, focus_m, focal_mm, f_number, pixel_pitch_um)


def model_from_optics(focal_mm: float, f_number: float, pixel_pitch_um: float, focus_m: float) -> CocModel:
    """A metric model (disparity in 1/m) for a lens focused at ``focus_m``."""
    return CocModel(k_from_optics(focal_mm, f_number, pixel_pitch_um, focus_m), unit="inv-m", source="optics",
                    f_number=f_number, focal_mm=focal_mm, pixel_pitch_um=pixel_pitch_um, focus_m=focus_m)


def parse_aperture(text: str) -> float:
    """'f/1.4', 'F1.4', '1.4' -> 1.4."""
    t = str(text).strip().lower().replace(" ", "")
    for p in ("f/", "f"):
        if t.startswith(p):
            t = t[len(p):]
            break
    try:
        n = float(t)
    except ValueError:
        raise UsageError(f"--aperture {text!r} is not an f-number", hint="write it like f/1.4 or 2.8") from None
    if not 0.3 <= n <= 128:
        raise UsageError(f"--aperture f/{n:g} is outside f/0.3..f/128")
    return n
