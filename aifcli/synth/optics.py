"""Thin-lens optics: circle of confusion (DC² eq. 1), PSF kernels and fast disc blur.

The circle-of-confusion diameter of a point at depth S2 when a lens of focal length f
and aperture diameter A = f/N is focused at S1 is (DC² eq. 1)

    c = A * |S2 - S1| / S2 * f / (S1 - f)  =  K * |1 - S1 / S2|,   K = A f / (S1 - f),

so in pixels it is *affine in inverse depth*: c_px = K_px * |1 - S1 * (1/Z)|. Every
planar layer has an inverse depth affine in pixel coordinates, hence an affine signed
CoC: ``signed_coc`` gives K_px * (1 - S1/Z) (positive behind the focal plane).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..coc import ThinLens


@dataclass(frozen=True)
class Lens(ThinLens):
    """A thin lens on a sensor: what the CoC needs. Pixel pitch is at the output size."""

    focal_mm: float
    f_number: float
    pixel_pitch_um: float

    def coc_scale_px(self, focus_m: float) -> float:
        """K in pixels: c_px = K * |1 - focus / depth| (DC² eq. 1, ``aifcli.coc``)."""
        from ..coc import coc_scale_px

        return coc_scale_px(self.focal_mm, self.f_number, self.pixel_pitch_um, focus_m)

    def coc_px(self, depth_m: np.ndarray | float, focus_m: float) -> np.ndarray | float:
        """CoC diameter in pixels (DC² eq. 1) of points at ``depth_m`` (scalar or array)."""
        return self.coc_scale_px(focus_m) * np.abs(1.0 - focus_m / np.asarray(depth_m, dtype=np.float64))

    def hyperfocal_m(self, coc_limit_px: float = 1.5) -> float:
        """Focus distance at which infinity has a CoC of ``coc_limit_px``."""
        f = self.focal_mm / 1000.0
        c = coc_limit_px * self.pixel_pitch_um * 1e-6
        return f * f / (self.f_number * c) + f

    def focus_for_coc(self, depth_m: float, coc_px: float, behind: bool) -> float:
        """The focus distance that gives a point at ``depth_m`` a CoC of ``coc_px``."""
        # c = A f / (S1 - f) * |S2 - S1| / S2; solve for S1 numerically (monotone on each side)
        lo, hi = (self.focal_mm / 1000.0 * 1.001, depth_m) if behind else (depth_m, 1e4)
        for _ in range(100):
            mid = np.sqrt(lo * hi)
            c = float(self.coc_px(depth_m, mid))
            if behind:  # focus nearer than the point: CoC falls as focus approaches depth
                lo, hi = (mid, hi) if c > coc_px else (lo, mid)
            else:
                lo, hi = (lo, mid) if c > coc_px else (mid, hi)
        return float(np.sqrt(lo * hi))


def breathing_scale(focal_mm: float, focus_m: float, ref_focus_m: float) -> float:
    """Magnification change of a unit-focus lens refocused from ``ref_focus_m`` to ``focus_m``.

    A thin lens focused at S has image distance v = f S / (S - f); the image of a distant
    scene scales with v (the sensor sees the field through a longer or shorter extension).
    """
    f = focal_mm / 1000.0
    v = f * focus_m / (focus_m - f)
    v0 = f * ref_focus_m / (ref_focus_m - f)
    return float(v / v0)


@lru_cache(maxsize=256)
def disc_kernel(radius: float, blades: int = 0, rotation: float = 0.0, spherical: float = 0.0) -> np.ndarray:
    """A normalised disc (or regular polygon with ``blades`` sides) PSF of ``radius`` px,
    with an antialiased rim (coverage of each pixel by the shape, to 1/8 px).

    ``spherical`` (-1..1) shapes the intensity across the disc as 1 + s (2 rho^2 - 1),
    rho = distance / radius: s > 0 gives a bright rim ("soap bubble"), s < 0 a bright
    centre, as spherical aberration does on either side of the focal plane."""
    r = max(float(radius), 0.5)
    n = int(np.ceil(r + 1))
    ss = 8
    g = (np.arange(-n * ss, (n + 1) * ss) - (ss - 1) / 2.0) / ss
    yy, xx = np.meshgrid(g, g, indexing="ij")
    if blades >= 3:
        th = np.arctan2(yy, xx) - rotation
        seg = 2 * np.pi / blades
        # distance scale of a regular polygon with circumradius r
        local = np.mod(th, seg) - seg / 2
        rr = np.hypot(xx, yy) * np.cos(local) / np.cos(seg / 2)
        inside = rr <= r
    else:
        inside = (xx * xx + yy * yy) <= r * r
    weight = inside.astype(np.float64)
    if spherical:
        rho2 = (xx * xx + yy * yy) / (r * r)
        weight *= np.clip(1.0 + spherical * (2.0 * rho2 - 1.0), 0.0, None)
    k = weight.reshape(2 * n + 1, ss, 2 * n + 1, ss).mean(axis=(1, 3)).astype(np.float32)
    k /= k.sum()
    return k


def blur_disc(img: np.ndarray, radius: float, blades: int = 0, spherical: float = 0.0) -> np.ndarray:
    """Convolve HxW[xC] float32 with a disc PSF of ``radius`` px (edges replicated).

    Radii up to 6 px are convolved at full resolution. Larger ones are convolved at a
    reduced scale d = floor(r/4) (area downsample, disc of radius sqrt(r^2 - d^2)/d,
    bilinear upsample): the resampling itself adds a variance of about d^2/4 per axis,
    which the smaller disc compensates, so the blur's second moment stays r^2/4.
    Measured on a step edge: width within a few % of the full-resolution convolution.
    """
    if radius < 0.5:
        return img
    h, w = img.shape[:2]
    d = int(radius // 4)
    if radius <= 6 or d < 2 or min(h, w) // d < 4:
        k = disc_kernel(round(radius * 4) / 4, blades, 0.0, round(spherical, 3))
        return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REPLICATE)
    sw, sh = max(1, int(np.ceil(w / d))), max(1, int(np.ceil(h / d)))
    # pad to a multiple of d so the area downsample is exact
    pw, ph = sw * d - w, sh * d - h
    src = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_REPLICATE) if (pw or ph) else img
    small = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA)
    r_small = np.sqrt(max(radius * radius - d * d, 0.25)) / d
    k = disc_kernel(round(r_small * 8) / 8, blades, 0.0, round(spherical, 3))
    small = cv2.filter2D(small, -1, k, borderType=cv2.BORDER_REPLICATE)
    # bilinear upsample with pixel centres aligned (cv2.resize uses the same convention)
    big = cv2.resize(small, (sw * d, sh * d), interpolation=cv2.INTER_LINEAR)
    out = big[:h, :w] if (pw or ph) else big  # a view: callers only read it or add it in place
    if img.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out
