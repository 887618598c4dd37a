"""Shared helpers of the metrics: shape checks, masks, colour conventions, crops."""
from __future__ import annotations

import numpy as np


def check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(pred), np.asarray(gt)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: prediction {a.shape} vs ground truth {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected HxW or HxWxC arrays, got {a.shape}")
    return a, b


def as_float64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def mask_weights(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """HxW float64 weights in [0, 1] from a mask (bool, [0,1] float, or HxWxC: first channel)."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[:, :, 0]
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {m.shape} does not match image {tuple(shape[:2])}")
    w = np.clip(m.astype(np.float64), 0.0, 1.0)
    if not np.any(w > 0):
        raise ValueError("mask selects no pixels")
    return w


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma Y as in MATLAB's ``rgb2ycbcr`` (the super-resolution convention), in [0, 1].

    Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 1]; Y spans [16/255, 235/255].
    """
    x = np.asarray(rgb, dtype=np.float64)
    return (16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def crop_border(a: np.ndarray | None, n: int) -> np.ndarray | None:
    """``a`` without ``n`` pixels on every side (the super-resolution border crop)."""
    if a is None or n <= 0:
        return a
    if 2 * n >= a.shape[0] or 2 * n >= a.shape[1]:
        raise ValueError(f"crop border {n} leaves nothing of a {a.shape[1]}x{a.shape[0]} image")
    return a[n:-n, n:-n]
