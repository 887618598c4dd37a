"""Registering a prediction to its ground truth before scoring (``aif evaluate --align``).

Only what a fair comparison needs: a field-of-view scale about the image centre plus a
translation, the way DC² aligned focus-stack results to their references. The scale
is searched on a grid around the size ratio of the two images (coarse, then fine), the
translation for each scale by phase correlation on downscaled, band-passed luminance,
and the candidate with the highest normalised cross-correlation over the overlap wins.
The prediction is then warped into the GT frame at full resolution and the overlap
comes back as a mask, so only pixels the prediction really covers are scored.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

WORK_SIDE = 512  # longest side of the search images


@dataclass
class AlignResult:
    scale: float  # prediction pixels -> GT pixels
    dx: float  # GT pixels
    dy: float
    ncc: float  # normalised cross-correlation at the solution (search resolution)
    coverage: float  # fraction of GT pixels the warped prediction covers
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"scale": round(self.scale, 5), "dx": round(self.dx, 2), "dy": round(self.dy, 2),
                "ncc": round(self.ncc, 4), "coverage": round(self.coverage, 4), "seconds": round(self.seconds, 3)}


def _luma(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32)
    if a.ndim == 3:
        a = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return a.astype(np.float32)


def _bandpass(y: np.ndarray) -> np.ndarray:
    # blur differences between a fused result and the truth should not drive the match
    lo = cv2.GaussianBlur(y, (0, 0), 8.0)
    hi = cv2.GaussianBlur(y, (0, 0), 1.0)
    return hi - lo


def _matrix(scale: float, dx: float, dy: float, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Affine map: scale the source about its centre onto the destination centre, then shift."""
    sh, sw = src_hw
    dh, dw = dst_hw
    cx_s, cy_s = (sw - 1) / 2.0, (sh - 1) / 2.0
    cx_d, cy_d = (dw - 1) / 2.0, (dh - 1) / 2.0
    return np.array([[scale, 0.0, cx_d - scale * cx_s + dx], [0.0, scale, cy_d - scale * cy_s + dy]], np.float64)


def _ncc(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    w = m > 0.5
    if w.sum() < 64:
        return -1.0
    x, y = a[w] - a[w].mean(), b[w] - b[w].mean()
    d = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / d) if d > 0 else -1.0


def _try(ps: np.ndarray, gs: np.ndarray, s: float, win: np.ndarray) -> tuple[float, float, float]:
    """Best (ncc, dx, dy) for one scale at search resolution."""
    gh, gw = gs.shape
    M = _matrix(s, 0.0, 0.0, ps.shape, gs.shape)
    warped = cv2.warpAffine(ps, M, (gw, gh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    cover = cv2.warpAffine(np.ones_like(ps), M, (gw, gh), flags=cv2.INTER_NEAREST)
    (sx, sy), _ = cv2.phaseCorrelate((warped * cover).astype(np.float64), (gs * cover).astype(np.float64), win)
    # phaseCorrelate returns the shift of the second relative to the first
    M2 = _matrix(s, sx, sy, ps.shape, gs.shape)
    w2 = cv2.warpAffine(ps, M2, (gw, gh), flags=cv2.INTER_LINEAR)
    c2 = cv2.warpAffine(np.ones_like(ps), M2, (gw, gh), flags=cv2.INTER_NEAREST)
    return _ncc(w2, gs, c2), sx, sy


def align_to_gt(pred: np.ndarray, gt: np.ndarray, scale_range: float = 0.15, steps: int = 13) -> tuple[np.ndarray, np.ndarray, AlignResult]:
    """Warp ``pred`` (HpxWpx3) into the frame of ``gt`` (HxWx3): (warped, valid mask HxW float32, result).

    ``scale_range``: relative search range around the size ratio (0.15: x1/1.15 to x1.15).
    """
    t0 = time.perf_counter()
    gh, gw = gt.shape[:2]
    ph, pw = pred.shape[:2]
    base = 0.5 * (gw / pw + gh / ph)
    f = min(1.0, WORK_SIDE / max(gh, gw))
    gs = _bandpass(cv2.resize(_luma(gt), (max(16, round(gw * f)), max(16, round(gh * f))), interpolation=cv2.INTER_AREA))
    fp = f * base  # prediction resampled so that scale==base maps to 1 at search resolution
    ps = _bandpass(cv2.resize(_luma(pred), (max(16, round(pw * fp)), max(16, round(ph * fp))), interpolation=cv2.INTER_AREA))
    # the resize rounds: the exact factor from prediction pixels to search pixels
    kx, ky = ps.shape[1] / pw, ps.shape[0] / ph
    win = cv2.createHanningWindow((gs.shape[1], gs.shape[0]), cv2.CV_64F)
    best = (-2.0, 1.0, 0.0, 0.0)
    # geometric grid: a range of r means scales from 1/(1+r) to 1+r around the size ratio
    lo, hi = 1.0 / (1.0 + scale_range), 1.0 + scale_range
    steps = max(steps, int(np.ceil(np.log(hi / lo) / np.log(1.025))) + 1)  # <= 2.5 % apart
    grid = np.geomspace(lo, hi, steps)
    for rel in grid:
        ncc, dx, dy = _try(ps, gs, float(rel), win)
        if ncc > best[0]:
            best = (ncc, float(rel), dx, dy)
    step = float(grid[1] - grid[0]) * max(1.0, best[1])
    for _ in range(3):  # refine around the best: +-1 step in 8ths, then 4x finer, twice
        for rel in np.linspace(best[1] - step, best[1] + step, 9):
            ncc, dx, dy = _try(ps, gs, float(rel), win)
            if ncc > best[0]:
                best = (ncc, float(rel), dx, dy)
        step /= 4
    ncc, rel, dx, dy = best
    # back to full resolution: search scale rel maps search-pred pixels to search-GT pixels
    scale = rel * 0.5 * (kx + ky) / f
    M = _matrix(scale, dx / f, dy / f, (ph, pw), (gh, gw))
    warped = cv2.warpAffine(np.asarray(pred, np.float32), M, (gw, gh), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    np.clip(warped, 0.0, 1.0, out=warped)
    valid = cv2.warpAffine(np.ones((ph, pw), np.uint8), M, (gw, gh), flags=cv2.INTER_NEAREST)
    valid = cv2.erode(valid, np.ones((5, 5), np.uint8))  # interpolation reads 2 px over the edge
    coverage = float(valid.mean())
    return warped, valid.astype(np.float32), AlignResult(scale, dx / f, dy / f, ncc, coverage, time.perf_counter() - t0)
