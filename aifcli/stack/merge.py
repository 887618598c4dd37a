"""Streaming multi-scale fusion: one running fused pyramid, one frame at a time.

For every pyramid level the merger keeps a running, weighted sum of the frames'
Laplacian coefficients, where a frame's weight at a pixel is ``exp(power * score)``
and ``score`` is the log of its focus energy at that level (the focus energy map
reduced with the same Gaussian pyramid, so every level decides from the same measure:
consistent across sub-bands and smoother, hence consistent among neighbours, at coarse
levels). A large ``power`` is a hard "sharpest frame wins"; a moderate one averages
frames that are about equally sharp, which averages their noise away. The sums are kept
in the log domain (running maximum + rescaling, like a streaming log-sum-exp), so memory
is a fixed number of pyramids whatever the number of frames.

Halo suppression: halos appear where a sharp, high-contrast edge stands in front of a
blurred background. The frame focused on the background spreads the blurred edge over
the background; if that frame wins the coarse levels next to the edge, the spread
energy becomes a glow. At coarse levels (``halo_from`` and up) the score is max-filtered
over a neighbourhood, so the frame that is sharp *at the edge* also supplies the coarse
bands in a band around it (its background there is blurred, but the low frequencies of
a blurred background equal those of the sharp one). Fine levels keep the local choice.
Measured on aif synth brackets this did *not* lower the halo-band error (docs/STACK.md),
so callers leave it off by default; it stays available for high-contrast subjects.

``prefer``: a bias added to the score per frame (``prefer near`` gives nearer frames a
larger score, for see-through subjects such as hair, nets and foliage).
"""
from __future__ import annotations

import cv2
import numpy as np

from .pyramid import collapse, gaussian_pyramid, laplacian_pyramid

_NEG = np.float32(-1e4)


class StreamingMerger:
    def __init__(self, shape: tuple[int, int], levels: int, *, power: float = 6.0, base_power: float = 1.0,
                 halo_from: int | None = 3, halo_radius: int = 2, eps: float = 1e-7, cross_scale: float = 0.0):
        self.shape = shape
        self.levels = levels
        self.power = float(power)
        self.base_power = float(base_power)
        self.halo_from = halo_from
        self.halo_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * halo_radius + 1, 2 * halo_radius + 1))
        self.eps = eps
        self.cross_scale = float(cross_scale)
        self.acc: list[np.ndarray] | None = None
        self.wsum: list[np.ndarray] = []
        self.wmax: list[np.ndarray] = []
        self.count = 0

    def level_scores(self, energy: np.ndarray, valid: np.ndarray | None, bias: float = 0.0) -> list[np.ndarray]:
        """Per-level log focus scores (``levels + 1`` arrays; the last one for the base)."""
        gp = gaussian_pyramid(energy, self.levels)
        vp = gaussian_pyramid(valid, self.levels) if valid is not None else None
        return self.scores_from_pyramid(gp, vp, bias)

    def scores_from_pyramid(self, gp: list[np.ndarray], vp: list[np.ndarray] | None,
                            bias: float = 0.0) -> list[np.ndarray]:
        out = []
        for lv, e in enumerate(gp):
            if self.halo_from is not None and lv >= self.halo_from:
                e = cv2.dilate(e, self.halo_kernel)
            s = cv2.log(cv2.add(e, self.eps))
            if bias:
                s = cv2.add(s, bias)
            out.append(s)
        if self.cross_scale:
            # consistency across sub-bands: each level's score also carries the coarser
            # level's (coarse to fine), so a fine band follows the choice made around it
            for lv in range(len(out) - 2, -1, -1):
                up = cv2.pyrUp(out[lv + 1], dstsize=(out[lv].shape[1], out[lv].shape[0]))
                out[lv] = cv2.addWeighted(out[lv], 1.0, up, self.cross_scale, 0.0)
        if vp is not None:
            for lv, s in enumerate(out):
                s[vp[lv] < 0.99] = _NEG
        return out

    def add(self, rgb: np.ndarray, scores: list[np.ndarray]) -> None:
        """Fuse one aligned frame (float32 HxWx3) with its ``level_scores`` (which are used
        as scratch space: their contents are overwritten)."""
        lp = laplacian_pyramid(rgb, self.levels)
        if self.acc is None:
            self.acc = [np.zeros_like(b) for b in lp]
            self.wsum = [np.zeros(b.shape[:2], np.float32) for b in lp]
            self.wmax = [np.full(b.shape[:2], _NEG, np.float32) for b in lp]
        for lv, band in enumerate(lp):
            if band is rgb:  # no band-pass levels: do not scale the caller's frame in place
                band = band.copy()
            p = self.base_power if lv == self.levels else self.power
            # In place, OpenCV where it is threaded, no full-resolution temporaries:
            # acc = acc * exp(m_old - m_new) + band * exp(ws - m_new), m_new = max(m_old, ws)
            ws = cv2.multiply(scores[lv], p, dst=scores[lv]) if p != 1.0 else scores[lv]
            m_old = self.wmax[lv]
            m_new = cv2.max(m_old, ws)
            a = cv2.subtract(m_old, m_new, dst=m_old)
            cv2.exp(a, dst=a)  # rescale of what was summed so far (<= 1)
            b = cv2.subtract(ws, m_new, dst=ws)
            cv2.exp(b, dst=b)  # this frame's weight (<= 1)
            acc = self.acc[lv]
            if acc.ndim == 3:
                np.multiply(acc, a[..., None], out=acc)
                np.multiply(band, b[..., None], out=band)
            else:
                cv2.multiply(acc, a, dst=acc)
                cv2.multiply(band, b, dst=band)
            cv2.add(acc, band, dst=acc)
            cv2.multiply(self.wsum[lv], a, dst=self.wsum[lv])
            cv2.add(self.wsum[lv], b, dst=self.wsum[lv])
            self.wmax[lv] = m_new
        self.count += 1

    def result(self) -> np.ndarray:
        if self.acc is None:
            raise ValueError("no frames were merged")
        pyr = [acc / np.maximum(w, 1e-12)[..., None] for acc, w in zip(self.acc, self.wsum)]
        return collapse(pyr)
