"""DC² eq. 1, the thin-lens circle of confusion: the one implementation aif uses.

A lens of focal length f and aperture diameter A = f/N focused at S1 images a point at
depth S2 as a disc of diameter

    c = A |S2 - S1| / S2 * f / (S1 - f)  =  K |1 - S1 / S2|,   K = A f / (S1 - f),

i.e. linear in inverse depth. In pixels both sides are divided by the pixel pitch.
``presets.CameraModule.coc_px``, ``synth.optics.Lens`` and ``refocus.coc`` all call these
two functions (they used to carry three copies of the formula); ``ThinLens`` gives the
first two their shared derived quantities.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UsageError


def coc_scale_px(focal_mm: float, f_number: float, pixel_pitch_um: float, focus_m: float) -> float:
    """K in pixels: the CoC diameter of a point at infinity, c_px = K |1 - focus / depth|."""
    if f_number <= 0:
        raise UsageError(f"f-number must be positive, got {f_number}")
    f = focal_mm / 1000.0
    if focus_m <= f:
        raise UsageError(f"focus distance {focus_m:g} m is inside the focal length ({focal_mm:g} mm)",
                         hint="use a focus distance of at least a few centimetres")
    return (f / f_number) * f / (focus_m - f) / (pixel_pitch_um * 1e-6)


def coc_px(depth_m: Any, focus_m: float, focal_mm: float, f_number: float, pixel_pitch_um: float) -> Any:
    """CoC diameter in pixels of points at ``depth_m`` (metres; scalar or array, float64)."""
    k = coc_scale_px(focal_mm, f_number, pixel_pitch_um, focus_m)
    return k * np.abs(1.0 - focus_m / np.asarray(depth_m, dtype=np.float64))


class ThinLens:
    """Derived quantities of a module with ``focal_mm``, ``f_number`` and ``pixel_pitch_um``
    (a mixin for the preset's native module and the synthetic lens at output pitch)."""

    focal_mm: float
    f_number: float
    pixel_pitch_um: float

    @property
    def aperture_mm(self) -> float:
        """Entrance pupil diameter A = f / N."""
        return self.focal_mm / self.f_number

    @property
    def focal_px(self) -> float:
        """Focal length in pixels of this pixel pitch."""
        return self.focal_mm * 1000.0 / self.pixel_pitch_um
