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
    """Mean squared error over pixels (and channels), weighted by ``mask`` (HxW, [0,1]) if given.

    float64 arithmetic in row blocks: exact enough for any bit depth, and a 12 MP image never
    needs more than a few MB of temporaries.
    """
    a, b = check_pair(pred, gt)
    w = mask_weights(mask, a.shape) if mask is not None else None
    ch = a.shape[2] if a.ndim == 3 else 1
    total, weight = 0.0, 0.0
    for r0 in range(0, a.shape[0], _BLOCK):
        d = as_float64(a[r0:r0 + _BLOCK]) - as_float64(b[r0:r0 + _BLOCK])
        if w is None:
            flat = d.ravel()
            total += float(np.dot(flat, flat))
        else:
            sq = d * d
            if sq.ndim == 3:
                sq = sq.sum(axis=2)
            wb = w[r0:r0 + _BLOCK]
            total += float(np.sum(sq * wb))
            weight += float(wb.sum()) * ch
    if w is None:
        return total / a.size
    return total / weight


_BLOCK = 128


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
