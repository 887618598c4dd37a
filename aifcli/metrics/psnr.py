"""Peak signal-to-noise ratio.

PSNR = 10 * log10(data_range**2 / MSE), with the MSE taken over every pixel and every
channel (the convention of scikit-image's ``peak_signal_noise_ratio`` and of the papers
this project compares with). Images are float arrays in [0, data_range]; aif's
convention is RGB floats in [0, 1], so ``data_range=1.0``. Identical images give +inf.
"""
from __future__ import annotations

import math

import numpy as np

from .common import as_float64, check_pair, mask_weights


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over pixels (and channels), weighted by ``mask`` (HxW, [0,1]) if given."""
    a, b = check_pair(pred, gt)
    d = as_float64(a) - as_float64(b)
    d *= d
    if d.ndim == 3:
        d = d.mean(axis=2)
    if mask is None:
        return float(d.mean())
    w = mask_weights(mask, d.shape)
    return float((d * w).sum() / w.sum())


def psnr(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """PSNR in dB of ``pred`` against ``gt`` (HxW or HxWxC arrays of the same shape).

    ``data_range``: the span of valid values (1.0 for aif's [0, 1] floats; 255 for 8-bit
    integers taken as they are). ``mask``: HxW weights in [0, 1]; only pixels with weight
    count (a soft mask weights them). Returns ``inf`` when the images are equal.
    """
    if data_range <= 0:
        raise ValueError("data_range must be positive")
    m = mse(pred, gt, mask)
    if m == 0.0:
        return math.inf
    return float(10.0 * math.log10(float(data_range) ** 2 / m))
