"""Gaussian and Laplacian pyramids (Burt & Adelson 1983) on float32 arrays, via OpenCV.

``laplacian_pyramid(img, n)`` returns ``n`` band-pass levels (finest first) and the
low-pass base as the last element; ``collapse`` inverts it exactly (up to float
rounding). Sizes follow ``cv2.pyrDown`` ((w + 1) // 2), so any image size works.
"""
from __future__ import annotations

import cv2
import numpy as np


def max_levels(shape: tuple[int, int], smallest: int = 8) -> int:
    """Number of band-pass levels that keep the base at least ``smallest`` px on its short side."""
    n, s = 0, min(shape[:2])
    while s // 2 >= smallest and n < 8:
        s = (s + 1) // 2
        n += 1
    return n


def gaussian_pyramid(img: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels + 1`` arrays: the input, then each ``cv2.pyrDown`` of the previous."""
    out = [img]
    for _ in range(levels):
        out.append(cv2.pyrDown(out[-1]))
    return out


def laplacian_pyramid(img: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` band-pass arrays (finest first) plus the base (last)."""
    out: list[np.ndarray] = []
    cur = img
    for _ in range(levels):
        down = cv2.pyrDown(cur)
        up = cv2.pyrUp(down, dstsize=(cur.shape[1], cur.shape[0]))
        out.append(cv2.subtract(cur, up))
        cur = down
    out.append(cur)
    return out


def collapse(pyr: list[np.ndarray]) -> np.ndarray:
    """Rebuild the image from ``laplacian_pyramid`` output."""
    cur = pyr[-1]
    for band in reversed(pyr[:-1]):
        cur = cv2.add(cv2.pyrUp(cur, dstsize=(band.shape[1], band.shape[0])), band)
    return cur
