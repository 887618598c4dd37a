"""Layered defocus rendering: back to front, each layer blurred with its own alpha.

For every layer (farthest first) we blur its premultiplied colour and its coverage with
the layer's own PSF, then composite ``out = out * (1 - blur(alpha)) + blur(alpha * colour)``.
A sharp foreground therefore keeps a sharp edge over a blurred background, and a blurred
foreground spreads over whatever is behind it (the partial-occlusion look of real lenses),
which a single depth-varying blur of a flat image gets wrong.

A slanted plane has a CoC that varies across it. Its signed CoC is affine in the pixel
coordinates (see ``optics``), so we split it into bins of nearly equal CoC with tent
(linear) weights that sum to one, blur each bin with its own disc, and *add* the bins
(one surface never occludes itself) before compositing the layer as a whole. Bins are
spaced 0.5 px in radius for small blur and 8 % of the radius for large blur; a layer
whose CoC varies less than one bin spacing gets a single blur at its mean radius.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .optics import Lens, blur_disc
from .scene import LayerImage, grid_inv_depth


@dataclass
class Focus:
    lens: Lens
    focus_m: float
    blades: int = 0  # 0 = disc PSF, >= 3 = polygonal aperture
    spherical: float = 0.0  # spherical aberration (under-corrected > 0): bright-rimmed blur in
    # front of the focal plane, soft (bright-centred) blur behind it

    def sa(self, behind: bool) -> float:
        """The PSF's rim-vs-centre weight on one side of the focal plane."""
        return -self.spherical if behind else self.spherical


def _bins(rmin: float, rmax: float) -> list[float]:
    """Bin centres in PSF radius (px) covering [rmin, rmax]."""
    out = [rmin]
    while out[-1] < rmax:
        r = out[-1]
        out.append(r + max(0.5, 0.08 * r))
    return out


def _pad_bbox(bbox: tuple[int, int, int, int], pad: int, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = bbox
    return max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)


def coc_radius_map(li: LayerImage, focus: Focus, bbox: tuple[int, int, int, int], w: int, h: int,
                   signed: bool = False) -> np.ndarray:
    """PSF radius (CoC / 2, px) of the layer over ``bbox``; ``signed``: positive behind
    the focal plane, negative in front."""
    inv = grid_inv_depth(li.inv_depth, w, h, bbox)
    K = focus.lens.coc_scale_px(focus.focus_m)
    sc = (np.float32(0.5 * K) * (1.0 - np.float32(focus.focus_m) * inv)).astype(np.float32)
    return sc if signed else np.abs(sc)


def defocus_layer(li: LayerImage, focus: Focus | None, w: int, h: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(blurred premultiplied RGBA, bbox) of one layer, over its bbox padded by the blur."""
    x0, y0, x1, y1 = li.bbox
    if li.empty:
        return np.zeros((0, 0, 4), np.float32), li.bbox
    rgba = li.rgba
    if focus is None:
        return rgba, li.bbox
    sr_full = coc_radius_map(li, focus, li.bbox, w, h, signed=True)
    r = np.abs(sr_full)
    rmin, rmax = float(r.min()), float(r.max())
    behind = float(sr_full.mean()) > 0  # the side of the focal plane most of the layer is on
    pad = int(np.ceil(rmax)) + 2
    bb = _pad_bbox(li.bbox, pad, w, h)
    bx0, by0, bx1, by1 = bb
    if (bx0, by0, bx1, by1) == (x0, y0, x1, y1):
        big = rgba  # read only below
    else:
        big = cv2.copyMakeBorder(rgba, y0 - by0, by1 - y1, x0 - bx0, bx1 - x1, cv2.BORDER_CONSTANT, value=0)
    crosses = focus.spherical != 0 and float(sr_full.min()) < 0 < float(sr_full.max())
    if rmax - rmin < max(0.5, 0.08 * rmax) and not crosses:
        # the CoC varies less across the layer than the bin spacing: one blur at the mean
        # radius (error <= half a bin: 0.25 px, or 4 % of the radius)
        return blur_disc(big, 0.5 * (rmin + rmax), focus.blades, focus.sa(behind)), bb
    centres = _bins(rmin, rmax)
    rr = np.full(big.shape[:2], -1.0, np.float32)
    rr[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0] = r
    if crosses:  # which side of the focal plane each pixel is on (for the aberrated PSF)
        side = np.zeros(big.shape[:2], bool)
        side[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0] = sr_full > 0
    # per row / column radius range: each bin only touches the band where it has weight
    H, W = big.shape[:2]
    row_lo = np.full(H, np.inf, np.float32)
    row_hi = np.full(H, -np.inf, np.float32)
    col_lo = np.full(W, np.inf, np.float32)
    col_hi = np.full(W, -np.inf, np.float32)
    row_lo[y0 - by0:y1 - by0], row_hi[y0 - by0:y1 - by0] = r.min(axis=1), r.max(axis=1)
    col_lo[x0 - bx0:x1 - bx0], col_hi[x0 - bx0:x1 - bx0] = r.min(axis=0), r.max(axis=0)
    acc = np.zeros_like(big)
    for i, c in enumerate(centres):
        lo = centres[i - 1] if i > 0 else -1.0
        hi = centres[i + 1] if i + 1 < len(centres) else np.inf
        rows = np.nonzero((row_hi > lo) & (row_lo < hi))[0]
        cols = np.nonzero((col_hi > lo) & (col_lo < hi))[0]
        if len(rows) == 0 or len(cols) == 0:
            continue
        p = int(np.ceil(c)) + 2
        sy0, sy1 = max(0, rows[0] - p), min(H, rows[-1] + 1 + p)
        sx0, sx1 = max(0, cols[0] - p), min(W, cols[-1] + 1 + p)
        sr = rr[sy0:sy1, sx0:sx1]
        # tent weight: 1 at c, 0 at the neighbouring centres (flat beyond the end bins)
        if i > 0:
            wl = np.clip((sr - lo) / (c - lo), 0, 1)
        else:
            wl = np.ones_like(sr)
        if np.isfinite(hi):
            wh = np.clip((hi - sr) / (hi - c), 0, 1)
        else:
            wh = np.ones_like(sr)
        wgt = np.where(sr < c, wl, wh).astype(np.float32)
        wgt[sr < 0] = 0.0
        if not np.any(wgt > 0):
            continue
        if not crosses:
            part = big[sy0:sy1, sx0:sx1] * wgt[..., None]
            acc[sy0:sy1, sx0:sx1] += blur_disc(part, c, focus.blades, focus.sa(behind))
            continue
        # a slanted layer crossing the focal plane with an aberrated PSF: the pixels behind
        # and in front get their own PSF (the split is where the CoC is zero: no seam)
        sd = side[sy0:sy1, sx0:sx1]
        for b_side in (False, True):
            ws = np.where(sd == b_side, wgt, np.float32(0))
            if np.any(ws > 0):
                acc[sy0:sy1, sx0:sx1] += blur_disc(big[sy0:sy1, sx0:sx1] * ws[..., None], c, focus.blades,
                                                   focus.sa(b_side))
    return acc, bb


def composite(layers: list[LayerImage], focus: Focus | None, w: int, h: int,
              background: float = 0.0) -> np.ndarray:
    """Back-to-front composite of the layers (``layers[0]`` is the farthest). ``focus`` None
    renders the all-in-focus image (no blur). Returns HxWx3 float32 linear."""
    out = None
    for li in layers:
        rgba, (x0, y0, x1, y1) = defocus_layer(li, focus, w, h)
        if x1 <= x0 or y1 <= y0:
            continue
        a = rgba[..., 3]
        if li.layer.outline is None and li.layer.z_max is None and (x0, y0, x1, y1) == (0, 0, w, h) \
                and float(a.min()) >= 0.9999:
            out = np.ascontiguousarray(rgba[..., :3])  # an opaque backdrop: nothing behind it shows
            continue
        if out is None:
            out = np.full((h, w, 3), background, np.float32)
        sub = out[y0:y1, x0:x1]
        sub *= (1.0 - np.clip(a, 0.0, 1.0))[..., None]
        sub += rgba[..., :3]
    return out if out is not None else np.full((h, w, 3), background, np.float32)


def front_depth(layers: list[LayerImage], w: int, h: int, threshold: float = 0.5) -> np.ndarray:
    """Depth (m) of the front-most surface covering each pixel by more than ``threshold``."""
    z = np.full((h, w), np.inf, np.float32)
    for li in layers:  # back to front: later layers overwrite
        x0, y0, x1, y1 = li.bbox
        if li.empty:
            continue
        inv = grid_inv_depth(li.inv_depth, w, h, li.bbox)
        m = li.alpha > threshold
        sub = z[y0:y1, x0:x1]
        sub[m] = (1.0 / np.maximum(inv[m], 1e-9)).astype(np.float32)
    return z
