"""Structural similarity (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004).

Convention (the one the field's tables use, and DESIGN.md §2 "Metrics"):
11x11 Gaussian window with sigma 1.5 (truncated at 3.5 sigma, as scipy's
``gaussian_filter``), K1 = 0.01, K2 = 0.03, C1 = (K1 L)^2, C2 = (K2 L)^2 with L the data
range, population (biased) variances and covariance, the SSIM map averaged over the
positions whose window lies fully inside the image, then averaged over channels.
This equals ``skimage.metrics.structural_similarity(x, y, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)``; scikit-image's
defaults (7x7 uniform window, sample covariance) read a few hundredths higher: never mix them.

Arithmetic is float64 (the variance is a difference of nearly equal numbers) and runs in
row strips so a 12 MP image needs a few hundred MB at most.
"""
from __future__ import annotations

import cv2
import numpy as np

from .common import check_pair, mask_weights

SIGMA = 1.5
TRUNCATE = 3.5
K1, K2 = 0.01, 0.03
RADIUS = int(TRUNCATE * SIGMA + 0.5)  # 5: an 11x11 window
STRIP_ROWS = 512


def gaussian_kernel(sigma: float = SIGMA, radius: int = RADIUS) -> np.ndarray:
    """The 1-D Gaussian of scipy.ndimage.gaussian_filter (float64, sums to 1)."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _ssim_map_valid(x: np.ndarray, y: np.ndarray, c1: float, c2: float, k: np.ndarray) -> np.ndarray:
    """SSIM map of one channel at the fully covered positions: shape (H-2r, W-2r)."""
    r = (len(k) - 1) // 2

    def filt(a: np.ndarray) -> np.ndarray:
        # border values are cropped away below, so the border mode does not matter
        return cv2.sepFilter2D(a, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)[r:-r, r:-r]

    ux, uy = filt(x), filt(y)
    uxx, uyy, uxy = filt(x * x), filt(y * y), filt(x * y)
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    num = (2.0 * ux * uy + c1) * (2.0 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def ssim_map(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-position SSIM averaged over channels, HxW, NaN where the window is not fully inside."""
    a, b = check_pair(pred, gt)
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    h, w, ch = a.shape
    r = RADIUS
    _check_size(h, w)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    k = gaussian_kernel()
    out = np.full((h, w), np.nan, np.float64)
    acc = np.zeros((h - 2 * r, w - 2 * r), np.float64)
    for c in range(ch):
        for s0, s1, block in _strips(a[:, :, c], b[:, :, c], c1, c2, k):
            acc[s0:s1] += block
    out[r:h - r, r:w - r] = acc / ch
    return out


def _check_size(h: int, w: int) -> None:
    if h < 2 * RADIUS + 1 or w < 2 * RADIUS + 1:
        raise ValueError(f"SSIM needs at least {2 * RADIUS + 1}x{2 * RADIUS + 1} pixels, got {w}x{h}")


def _strips(x: np.ndarray, y: np.ndarray, c1: float, c2: float, k: np.ndarray):
    """Yield (row0, row1, map) over the valid map in strips of STRIP_ROWS rows."""
    r = (len(k) - 1) // 2
    hv = x.shape[0] - 2 * r
    for s0 in range(0, hv, STRIP_ROWS):
        s1 = min(hv, s0 + STRIP_ROWS)
        xs = np.asarray(x[s0:s1 + 2 * r], dtype=np.float64)
        ys = np.asarray(y[s0:s1 + 2 * r], dtype=np.float64)
        yield s0, s1, _ssim_map_valid(xs, ys, c1, c2, k)


def ssim(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """Mean SSIM of ``pred`` against ``gt`` (HxW or HxWxC, same shape; see the module docstring).

    ``mask``: HxW weights in [0, 1]; the SSIM map is averaged with these weights over the
    fully covered window positions (a position counts by the mask value at its centre).
    """
    a, b = check_pair(pred, gt)
    if data_range <= 0:
        raise ValueError("data_range must be positive")
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    h, w, ch = a.shape
    _check_size(h, w)
    r = RADIUS
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    k = gaussian_kernel()
    wts = None
    if mask is not None:
        wts = mask_weights(mask, (h, w))[r:h - r, r:w - r]
        if not np.any(wts > 0):
            raise ValueError("mask selects no pixels at least 5 pixels away from the border")
    total = 0.0
    for c in range(ch):
        s, n = 0.0, 0.0
        for s0, s1, block in _strips(a[:, :, c], b[:, :, c], c1, c2, k):
            if wts is None:
                s += float(block.sum())
                n += block.size
            else:
                ww = wts[s0:s1]
                s += float((block * ww).sum())
                n += float(ww.sum())
        total += s / n
    return total / ch
