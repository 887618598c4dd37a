"""A small camera pipeline: exposure, vignetting, Poisson-Gaussian noise, white balance, tone.

Input is linear scene light (linear sRGB primaries, [0, ~1]); output is display-encoded RGB
in [0, 1] like a phone JPEG before compression. The order follows a real camera: light
falls off toward the corners (vignetting, partly corrected on phones), the sensor adds
signal-dependent noise in the linear domain (variance ``a*x + b``: photon shot noise plus
read noise), then the ISP applies a white balance (here a per-camera residual colour
cast), a tone curve (sRGB encoding with a per-camera contrast S-curve and gamma tweak).
Two cameras with different ``Look`` values disagree in colour the way a main and an
ultra-wide camera do.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np



@dataclass
class Look:
    exposure: float = 1.0  # linear gain before the sensor
    wb: tuple[float, float, float] = (1.0, 1.0, 1.0)  # residual white-balance gains (R, G, B)
    contrast: float = 0.0  # S-curve strength on the encoded values (-0.3..0.3)
    gamma: float = 1.0  # extra power on the encoded values
    vignetting: float = 0.0  # relative fall-off at the corner (0 = none, 0.3 = 30 %)
    noise_a: float = 0.0  # shot-noise variance per unit signal (linear)
    noise_b: float = 0.0  # read-noise variance (linear)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wb"] = list(self.wb)
        return d


def random_look(rng: np.random.Generator, role: str, noise: float) -> Look:
    """Plausible per-camera settings; the ultra-wide differs more and is noisier."""
    if role == "main":
        wb = (float(rng.uniform(0.97, 1.03)), 1.0, float(rng.uniform(0.97, 1.03)))
        return Look(exposure=float(rng.uniform(0.85, 1.1)), wb=wb, contrast=float(rng.uniform(0.0, 0.15)),
                    gamma=float(rng.uniform(0.95, 1.05)), vignetting=float(rng.uniform(0.0, 0.08)),
                    noise_a=8e-4 * noise, noise_b=2e-6 * noise * noise)
    wb = (float(rng.uniform(0.85, 1.15)), 1.0, float(rng.uniform(0.85, 1.15)))
    return Look(exposure=float(rng.uniform(0.75, 1.2)), wb=wb, contrast=float(rng.uniform(-0.1, 0.25)),
                gamma=float(rng.uniform(0.88, 1.12)), vignetting=float(rng.uniform(0.15, 0.4)),
                noise_a=1.6e-3 * noise, noise_b=5e-6 * noise * noise)


def vignette_map(h: int, w: int, strength: float) -> np.ndarray:
    """Relative illumination 1 at the centre, 1 - strength at the corners (cos^4-like)."""
    # smooth: evaluated on a grid 8x coarser and interpolated
    sh, sw = max(2, h // 8 + 1), max(2, w // 8 + 1)
    y = (np.linspace(0, h - 1, sh, dtype=np.float64) - (h - 1) / 2) / (0.5 * np.hypot(h, w))
    x = (np.linspace(0, w - 1, sw, dtype=np.float64) - (w - 1) / 2) / (0.5 * np.hypot(h, w))
    r2 = y[:, None] ** 2 + x[None, :] ** 2
    small = (1.0 - strength * r2 * (2.0 - r2)).astype(np.float32)
    if (sh, sw) == (h, w):
        return small
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def add_noise(lin: np.ndarray, a: float, b: float, rng: np.random.Generator) -> np.ndarray:
    """Add Poisson-Gaussian noise (Gaussian approximation, variance a*x + b) to linear
    values, in place; returns ``lin``.

    The unit normals come from OpenCV's generator seeded from ``rng`` (3x faster than
    numpy's on 12 MP; deterministic for a given ``rng`` state).
    """
    if a <= 0 and b <= 0:
        return lin
    sd = np.maximum(lin, 0.0)
    sd *= np.float32(a)
    sd += np.float32(b)
    np.sqrt(sd, out=sd)
    n = np.empty(lin.shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    cv2.randn(n.reshape(n.shape[0], -1), 0.0, 1.0)
    sd *= n
    lin += sd
    return lin


def tone(x: np.ndarray, look: Look) -> np.ndarray:
    """Linear (after WB) -> display-encoded [0,1] with this camera's curve, **in place**:
    IEC 61966-2-1 sRGB encoding, an extra gamma, and a contrast S-curve
    ``y + 2c y (1-y)(2y-1)``. In-place numpy and OpenCV's pow: page faults of fresh
    12 MP arrays cost more than the arithmetic here."""
    np.clip(x, 0.0, 1.0, out=x)
    dark = x <= np.float32(0.0031308)
    dark_vals = x[dark] * np.float32(12.92)
    cv2.pow(x, 1 / 2.4, dst=x)
    x *= np.float32(1.055)
    x -= np.float32(0.055)
    x[dark] = dark_vals  # now every value is in [0, 1]
    if look.gamma != 1.0:
        cv2.pow(x, float(look.gamma), dst=x)
    if look.contrast:
        # y + 2c y(1-y)(2y-1) = y (1 - 2c) + 6c y^2 - 4c y^3, by Horner
        c = float(look.contrast)
        t = x * np.float32(-4 * c)
        t += np.float32(6 * c)
        t *= x
        t += np.float32(1 - 2 * c)
        t *= x
        x = t  # the S-curve maps [0, 1] onto itself for |c| <= 0.5
        if abs(c) > 0.5:
            np.clip(x, 0.0, 1.0, out=x)
    return x


def develop(lin: np.ndarray, look: Look, rng: np.random.Generator | None = None, noise: bool = True,
            vignetting: bool = True, inplace: bool = False) -> np.ndarray:
    """Scene light -> this camera's display-encoded image. ``noise`` False gives the clean
    image (ground truth in this camera's colour). ``inplace`` reuses ``lin``'s memory."""
    h, w = lin.shape[:2]
    x = lin if inplace else lin.copy()
    if vignetting and look.vignetting:
        x *= (vignette_map(h, w, look.vignetting) * np.float32(look.exposure))[..., None]
    else:
        x *= np.float32(look.exposure)
    if noise and rng is not None:
        add_noise(x, look.noise_a, look.noise_b, rng)
    x *= np.asarray(look.wb, np.float32)
    return tone(x, look)


def lateral_ca(lin: np.ndarray, corner_px: float) -> np.ndarray:
    """Lateral chromatic aberration, in place: red magnified and blue shrunk about the image
    centre so that each is displaced ``corner_px`` pixels from green at the corners
    (linear in the radius, as a lens's transverse colour error is to first order)."""
    if not corner_px:
        return lin
    h, w = lin.shape[:2]
    rc = 0.5 * float(np.hypot(w - 1, h - 1))
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    for ch, sgn in ((0, 1.0), (2, -1.0)):
        m = 1.0 + sgn * corner_px / rc  # magnification of this channel
        A = np.array([[1 / m, 0, cx - cx / m], [0, 1 / m, cy - cy / m]], np.float32)  # dst -> src
        lin[..., ch] = cv2.warpAffine(np.ascontiguousarray(lin[..., ch]), A, (w, h),
                                      flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return lin
