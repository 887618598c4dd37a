"""Depth from focus, streamed: per-pixel index of best focus with sub-frame precision.

The tracker keeps, per pixel of a reduced-resolution grid, the best log focus energy so
far, the frame index where it occurred, and the log energies of the frames just before
and just after it. At the end a parabola through those three log energies (a Gaussian
fit of the focus curve, the usual choice in shape-from-focus since Nayar & Nakagawa 1994)
places the peak between frames. Frames that are the first or last of the bracket have a
one-sided neighbourhood: the peak is left at the frame (no extrapolation), which keeps
regions sharp only in the first or last frame at the ends instead of pulling them inwards.

Confidence combines peak prominence (how much the best frame stands out from the mean
over all frames) and texture (best energy against the noise floor): flat regions carry
no depth information and get confidence near 0. The final map is filled and smoothed by
confidence-weighted normalised convolution, so low-confidence pixels borrow depth from
confident neighbours while confident ones keep their own.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_NEG = np.float32(-1e4)


@dataclass
class DepthState:
    depth: np.ndarray  # fractional frame index (input numbering), at tracker resolution
    raw_depth: np.ndarray  # before smoothing
    confidence: np.ndarray  # [0, 1]
    best_log: np.ndarray  # log energy at the best frame
    sharpness_ratio: np.ndarray  # best frame's energy / fitted peak energy (1 = a frame sat on the peak)
    index: np.ndarray  # integer best frame (input numbering)
    textured: np.ndarray | None = None  # bool: best focus energy well above the noise floor


class DepthTracker:
    def __init__(self, eps: float = 1e-7):
        self.eps = eps
        self.best: np.ndarray | None = None
        self.idx: np.ndarray | None = None
        self.before: np.ndarray | None = None
        self.after: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.prev_index: int | None = None
        self.sum_e: np.ndarray | None = None
        self.n: np.ndarray | None = None
        self.first_index: int | None = None
        self.last_index: int | None = None
        self.floor = 0.0

    def add(self, energy: np.ndarray, index: int, valid: np.ndarray | None = None, floor: float = 0.0) -> None:
        """``energy``: focus energy of frame ``index`` at the tracker's resolution."""
        le = cv2.log(cv2.add(energy, self.eps))
        if valid is not None:
            le[valid < 0.99] = _NEG
        self.floor = max(self.floor, floor)
        if self.best is None:
            shape = energy.shape
            self.best = le.copy()
            self.idx = np.full(shape, index, np.int32)
            self.before = np.full(shape, np.nan, np.float32)
            self.after = np.full(shape, np.nan, np.float32)
            self.sum_e = np.zeros(shape, np.float32)
            self.n = np.zeros(shape, np.float32)
            self.first_index = index
        else:
            # frames just after the current best: record their energy as the "after" value
            just_after = self.idx == self.prev_index
            self.after[just_after] = le[just_after]
            better = le > self.best
            self.best[better] = le[better]
            self.idx[better] = index
            self.before[better] = self.prev[better]
            self.after[better] = np.nan
        e = energy if valid is None else energy * (valid >= 0.99)
        self.sum_e += e
        self.n += 1.0 if valid is None else (valid >= 0.99).astype(np.float32)
        self.prev = le
        self.prev_index = index
        self.last_index = index

    def finish(self, smooth: float = 2.0) -> DepthState:
        if self.best is None:
            raise ValueError("no frames")
        b, a, c = self.before, self.best, self.after
        curv = b - 2 * a + c  # < 0 at a proper peak; NaN at the bracket's ends
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = np.where(curv < -1e-6, 0.5 * (b - c) / curv, 0.0)
        delta = np.nan_to_num(np.clip(delta, -0.5, 0.5), nan=0.0).astype(np.float32)
        # a Gaussian through the three log energies: peak height above the best frame
        with np.errstate(invalid="ignore", divide="ignore"):
            peak_gain = np.where(curv < -1e-6, -0.5 * curv * delta * delta, 0.0)
        ratio = np.exp(-np.nan_to_num(peak_gain, nan=0.0)).astype(np.float32)
        raw = (self.idx.astype(np.float32) + delta).astype(np.float32)
        best_e = np.exp(np.maximum(a, -80)).astype(np.float32)
        mean_e = self.sum_e / np.maximum(self.n, 1.0)
        nmax = np.maximum(self.n, 2.0)
        prom = np.clip((best_e - mean_e) / np.maximum(best_e, 1e-12) / (1.0 - 1.0 / nmax), 0, 1)
        t = max(self.floor * 4.0, float(np.percentile(best_e, 20)) * 0.5, 1e-6)
        tex = best_e / (best_e + t)
        conf = (prom * tex).astype(np.float32)
        depth = _fill_smooth(raw, conf, smooth)
        return DepthState(depth, raw, conf, a, ratio, self.idx.copy(), tex >= 0.5)


def _fill_smooth(d: np.ndarray, w: np.ndarray, sigma: float) -> np.ndarray:
    """Confidence-weighted normalised convolution at a few scales; confident pixels keep
    mostly their own value, unconfident ones take their neighbourhood's."""
    w = w.astype(np.float32) ** 2 + 1e-6
    ests = []
    for s in (sigma, sigma * 4, sigma * 16):
        den = cv2.GaussianBlur(w, (0, 0), s)
        ests.append((cv2.GaussianBlur(d * w, (0, 0), s) / den, den))
    fill = ests[-1][0]
    for est, den in reversed(ests[:-1]):  # finest estimate wherever it has support
        fill = np.where(den > 0.05, est, fill)
    wc = np.clip(np.sqrt(w) * 3.0, 0, 1)  # confidence >= 1/3 keeps its own value
    out = wc * d + (1 - wc) * fill
    return out.astype(np.float32)
