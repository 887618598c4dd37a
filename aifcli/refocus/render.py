"""Layered scatter rendering of lens blur, in linear light, with correct occlusions.

Input: an all-in-focus image, a disparity map (larger = nearer; only its *order* matters
here) and a per-pixel circle-of-confusion diameter in pixels (``coc``; see ``coc.py``).

Method (DESIGN.md §2 "Refocus"):

1. Linear light. Display-encoded input is decoded (sRGB) and highlights are boosted
   before blurring (a smooth, exactly invertible curve above ``highlight_threshold``
   that maps 1.0 to ``highlight_gain``), so clipped light sources spread into bright
   discs instead of grey smudges (BokehMe raises to a power for the same reason).
2. Depth layers. Disparity is cut into bins whose centres are close enough that the
   blur radius changes by at most ~1 px or 20 % between neighbours. A pixel belongs to
   the two nearest bin centres with tent weights, so radii interpolate smoothly.
3. Cumulative alpha with occlusion filling from the background side. Layer b's alpha is
   the tent on its far side and 1 on its near side: everything nearer than the bin
   centre is treated as occluding layer b, and in that hidden region (within a band as
   wide as the largest blur in front of it) layer b's colour is extrapolated from its own
   visible pixels by pull-push interpolation. A blurred foreground therefore reveals a
   plausible background behind its edge instead of a dark or foreground-coloured rim.
4. Scatter = convolution per layer with a soft disc (or n-blade polygon) kernel of the
   layer's radius, applied to premultiplied colour and alpha. Layers with a radius above
   ``MAX_COARSE_RADIUS`` are premultiplied at full resolution, then area-downscaled by a
   power of two, filled and blurred there (kernel shrunk for the resampling blur, see
   ``coarse_radius``) and upsampled once.
5. Back-to-front "over" compositing: a blurred background can never bleed over a sharp
   foreground (the foreground layer is composited after it with alpha 1), while a blurred
   foreground spreads over whatever lies behind it.
6. Tiles with a margin as wide as the largest blur plus the fill band bound the memory
   (a few tile-sized buffers, independent of the image size).
7. Work stays where a layer is: a per-block bitmask of the layers a 16-px block holds
   crops each layer; split radius levels, resampling groups and the occlusion fill run
   only in the boxes where they occur; kernels stay on OpenCV's direct convolution.

Layers with radius < 0.5 px are not filtered at all, so in-focus pixels come back
unchanged (up to float rounding of the sRGB round trip), and an all-zero CoC returns
the input array exactly.
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np


MAX_COARSE_RADIUS = 6.0
COARSE_VAR = 0.3  # variance (in f^2 units) added by the down- and upsampling
BLOCK = 16  # block size of the per-tile depth/radius statistics used to skip and crop layers


@dataclass(frozen=True)
class Aperture:
    """Aperture shape: ``blades`` = 0 for a disc, else a regular polygon with that many blades."""

    blades: int = 0
    rotation_deg: float = 0.0
    softness: float = 1.0  # width of the kernel's edge ramp, px (at the scale it is applied)

    def describe(self) -> str:
        return "disc" if self.blades < 3 else f"{self.blades}-blade polygon (rotated {self.rotation_deg:g} deg)"


@dataclass
class RenderOptions:
    aperture: Aperture = field(default_factory=Aperture)
    highlight_gain: float = 3.0  # linear value 1.0 becomes this before blurring (1 = off)
    highlight_threshold: float = 0.985  # linear level above which the boost starts (clipped whites)
    tile: int = 2048  # tile size in px (images up to 1.5 tiles on a side run in one piece)
    rel_step: float = 0.2  # max relative radius change between neighbouring layers
    abs_step: float = 1.0  # ... or this many px, whichever is larger
    min_bins: int = 6  # at least this many depth layers over the disparity range (occlusion order)
    max_bins: int = 64
    threads: int = 0  # tile threads (0 = all cores)


@dataclass
class RenderResult:
    image: np.ndarray  # float32 HxWx3 [0,1], same encoding as the input
    bins: int  # depth layers
    layers_rendered: int  # (tile, layer, radius level) convolutions actually run
    max_coc_px: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"bins": self.bins, "layers_rendered": self.layers_rendered, "max_coc_px": round(self.max_coc_px, 2),
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}


# --- kernels ------------------------------------------------------------------------------
@lru_cache(maxsize=512)
def _kernel_cached(r_key: int, blades: int, rot_key: int, soft_key: int) -> np.ndarray:
    radius, rot, soft = r_key / 64.0, rot_key / 64.0, max(soft_key / 64.0, 1e-3)
    R = int(math.ceil(radius + soft / 2 + 0.5))
    y, x = np.mgrid[-R:R + 1, -R:R + 1].astype(np.float32)
    dist = np.hypot(x, y)
    if blades >= 3:
        sector = 2 * math.pi / blades
        theta = np.arctan2(y, x) - math.radians(rot)
        phi = np.mod(theta, sector) - sector / 2
        # regular polygon with the same area as the disc of ``radius``
        circ = radius * math.sqrt(math.pi / (blades * math.sin(sector / 2) * math.cos(sector / 2)))
        rho = circ * math.cos(math.pi / blades) / np.cos(phi)
    else:
        rho = np.float32(radius)
    k = np.clip((rho - dist) / soft + 0.5, 0.0, 1.0).astype(np.float32)
    # drop all-zero outer rings (kept square and centred): a smaller kernel is cheaper
    while R > 0 and not k[0].any() and not k[-1].any() and not k[:, 0].any() and not k[:, -1].any():
        k = k[1:-1, 1:-1]
        R -= 1
    k = np.ascontiguousarray(k)
    s = float(k.sum())
    if s <= 0:
        k[R, R] = 1.0
        s = 1.0
    k /= s
    k.setflags(write=False)
    return k


def aperture_kernel(radius: float, aperture: Aperture = Aperture()) -> np.ndarray:
    """Normalised scatter kernel of a disc (or polygon) of ``radius`` px with a soft edge."""
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    return _kernel_cached(int(round(radius * 64)), int(aperture.blades), int(round(aperture.rotation_deg * 64)),
                          int(round(aperture.softness * 64)))


DFT_AREA = 130  # cv2.filter2D convolves float32 by DFT from this kernel area on (slower for our sizes)


def filter_kernel(P: np.ndarray, k: np.ndarray, border: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """``cv2.filter2D(P, -1, k)`` for a square odd kernel, kept on OpenCV's direct path.

    OpenCV switches to a DFT for kernels of 130 taps or more (13x13 and 15x15 here), which
    is 3-4x slower than direct convolution at these sizes; the kernel is then applied as
    its upper and lower halves (two direct filters, anchors inside each half) and summed.
    Same result to float rounding.
    """
    kh, kw = k.shape
    if kh * kw < DFT_AREA or kh < 3 or (kh // 2 + 1) * kw >= DFT_AREA:
        return cv2.filter2D(P, -1, k, borderType=border)
    R = kh // 2
    top = np.ascontiguousarray(k[:R + 1])
    bot = k[R:].copy()
    bot[0] = 0.0
    out = cv2.filter2D(P, -1, top, anchor=(kw // 2, R), borderType=border)
    out += cv2.filter2D(P, -1, bot, anchor=(kw // 2, 0), borderType=border)
    return out


def coarse_factor(radius: float) -> int:
    """Power-of-two downscale at which a blur of ``radius`` px runs (kernel radius <= MAX_COARSE_RADIUS px there)."""
    f = 1
    while radius / f > MAX_COARSE_RADIUS and f < 32:
        f *= 2
    return f


def coarse_radius(radius: float, f: float) -> float:
    """Kernel radius at 1/f scale for a blur of ``radius`` full-resolution px.

    Area downscaling and bilinear upscaling add blur of their own (variance about
    COARSE_VAR * f^2 per axis); a disc of radius r has variance r^2 / 4 per axis, so the
    kernel is shrunk to keep the total second moment of the full-resolution blur.
    """
    if f <= 1:
        return radius
    r2 = radius * radius - 4.0 * COARSE_VAR * f * f
    return math.sqrt(max(r2, 0.25 * radius * radius)) / f


def blur_premultiplied(P: np.ndarray, radius: float, aperture: Aperture = Aperture(),
                       border: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """Convolve premultiplied colour + alpha (HxWxC) with the aperture kernel of ``radius`` px.

    Radii above ``MAX_COARSE_RADIUS`` run on a copy downscaled by a power of two (area
    average), so the cost stays about constant per pixel for any radius.
    """
    if radius < 0.5:
        return P
    f = 1
    while radius / f > MAX_COARSE_RADIUS and f < 32:
        f *= 2
    h, w = P.shape[:2]
    if f > 1 and min(h, w) // f >= 4:
        hs, ws = max(1, round(h / f)), max(1, round(w / f))
        small = cv2.resize(P, (ws, hs), interpolation=cv2.INTER_AREA)
        fx = w / ws
        small = filter_kernel(small, aperture_kernel(coarse_radius(radius, fx), aperture), border)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        return out.reshape(P.shape)
    return filter_kernel(P, aperture_kernel(radius, aperture), border).reshape(P.shape)


# --- highlights ---------------------------------------------------------------------------
def boost_highlights(lin: np.ndarray, gain: float, t: float) -> np.ndarray:
    """v -> v + (gain-1) * ((v - t)/(1 - t))^2 above t: smooth, monotone, 1 -> gain."""
    if gain <= 1.0:
        return lin
    u = np.clip((lin - t) / (1 - t), 0, None)
    return (lin + (gain - 1) * u * u).astype(np.float32)


def unboost_highlights(y: np.ndarray, gain: float, t: float) -> np.ndarray:
    """Exact inverse of ``boost_highlights`` (values above ``gain`` clip to 1)."""
    if gain <= 1.0:
        return y
    g1 = gain - 1
    yt = np.clip(y - t, 0, None)
    u = (-(1 - t) + np.sqrt((1 - t) ** 2 + 4 * g1 * yt)) / (2 * g1)
    return np.where(y > t, t + (1 - t) * u, y).astype(np.float32)


# Per-pixel curves with in-place NumPy ops and cv2.pow (SIMD): the sRGB curve is applied
# once each way, the highlight curve only to the few pixels above its threshold.
def _srgb_decode(x: np.ndarray) -> np.ndarray:
    a = x * np.float32(1 / 1.055)
    a += np.float32(0.055 / 1.055)
    np.maximum(a, 0, out=a)
    a = cv2.pow(a, 2.4)
    low = x <= 0.04045
    np.copyto(a, x * np.float32(1 / 12.92), where=low)
    return a


def _srgb_encode(v: np.ndarray) -> np.ndarray:
    np.clip(v, 0.0, 1.0, out=v)
    a = cv2.pow(v, 1 / 2.4)
    a *= np.float32(1.055)
    a -= np.float32(0.055)
    low = v <= 0.0031308
    np.copyto(a, v * np.float32(12.92), where=low)
    return a


def _to_render_space(img: np.ndarray, linear: bool, gain: float, t: float) -> np.ndarray:
    lin = np.clip(img, 0.0, 1.0) if linear else _srgb_decode(np.clip(img, 0.0, 1.0))
    if gain > 1.0:
        hot = lin > t
        if hot.any():
            lin[hot] = boost_highlights(lin[hot], gain, t)
    return lin.astype(np.float32, copy=False)


def _from_render_space(y: np.ndarray, linear: bool, gain: float, t: float) -> np.ndarray:
    v = y.astype(np.float32, copy=True)
    if gain > 1.0:
        hot = v > t
        if hot.any():
            v[hot] = unboost_highlights(v[hot], gain, t)
    if linear:
        return np.clip(v, 0.0, 1.0)
    return _srgb_encode(v)


def _rowwise(fn, x: np.ndarray, nthreads: int) -> np.ndarray:
    """``fn(x)`` for a per-pixel ``fn``, computed on row bands in ``nthreads`` threads."""
    h = x.shape[0]
    if nthreads <= 1 or h < 512:
        return fn(x)
    n = min(nthreads, 8)
    cuts = np.linspace(0, h, n + 1).astype(int)
    out = np.empty(x.shape, np.float32)

    def work(i: int) -> None:
        out[cuts[i]:cuts[i + 1]] = fn(x[cuts[i]:cuts[i + 1]])

    with ThreadPoolExecutor(n) as ex:
        list(ex.map(work, range(n)))
    return out


# --- occlusion filling --------------------------------------------------------------------
def pull_push(C: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Fill colour everywhere from premultiplied ``C`` (HxWx3) and weights ``A`` (HxW).

    Pull: area-average colour and weight down a pyramid; push: where a level's weight is
    low, take the upsampled coarser estimate. A classic scattered-data interpolation
    (Gortler et al. 1996) that extends a layer's colours into the area it does not cover.
    """
    levels = []
    c, a = C, A
    while min(a.shape[:2]) > 2:
        levels.append((c, a))
        h, w = a.shape[:2]
        c = cv2.resize(c, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        a = cv2.resize(a, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    tot = float(a.sum())
    mean = (c.reshape(-1, 3).sum(0) / tot) if tot > 1e-8 else np.zeros(3, np.float32)
    col = np.where(a[..., None] > 1e-6, c / np.maximum(a, 1e-6)[..., None], mean).astype(np.float32)
    for c, a in reversed(levels):
        h, w = a.shape[:2]
        up = cv2.resize(col, (w, h), interpolation=cv2.INTER_LINEAR)
        own = c / np.maximum(a, 1e-6)[..., None]
        t = np.clip(a * 4.0, 0, 1)[..., None]
        col = (t * own + (1 - t) * up).astype(np.float32)
    return col


# --- layer planning -----------------------------------------------------------------------
def plan_bins(disparity: np.ndarray, radius: np.ndarray, opts: RenderOptions,
              focus: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres (ascending disparity) and each bin's typical radius.

    Centres are placed so the mean radius changes by at most max(abs_step, rel_step * r)
    between neighbours, with at least ``min_bins`` over the range (occlusion order) and
    a centre at ``focus`` (the kink of |d - d_focus|) when given.
    """
    d = disparity.ravel()
    r = radius.ravel()
    step = max(1, d.size // 400_000)
    d, r = d[::step], r[::step]
    lo, hi = float(d.min()), float(d.max())
    if hi - lo < 1e-9:
        return np.array([lo], np.float32), np.array([float(np.median(r))], np.float32)
    G = 1024
    idx = np.clip(((d - lo) / (hi - lo) * (G - 1)).round().astype(np.int64), 0, G - 1)
    cnt = np.bincount(idx, minlength=G)
    rsum = np.bincount(idx, weights=r, minlength=G)
    filled = cnt > 0
    grid = np.linspace(lo, hi, G)
    rm = np.interp(grid, grid[filled], rsum[filled] / cnt[filled])
    max_dd = (hi - lo) / max(opts.min_bins - 1, 1)
    fixed = [lo, hi] + ([float(focus)] if focus is not None and lo < focus < hi else [])
    centres = [lo]
    i0 = 0
    for i in range(1, G):
        tol = max(opts.abs_step, opts.rel_step * min(rm[i], rm[i0]))
        crossed = any(grid[i0] < f <= grid[i] for f in fixed[2:])
        if crossed or abs(rm[i] - rm[i0]) > tol or grid[i] - grid[i0] > max_dd:
            j = i if crossed or i - 1 == i0 else i - 1
            if crossed:
                centres.append(float(focus))  # type: ignore[arg-type]
            else:
                centres.append(float(grid[j]))
            i0 = j
    centres.append(hi)
    c = np.unique(np.asarray(centres, np.float64))
    if c.size > opts.max_bins:
        keep = np.interp(np.linspace(0, c.size - 1, opts.max_bins), np.arange(c.size), c)
        c = np.unique(np.concatenate([keep, [f for f in fixed[2:]]]))
    # merge centres closer than 0.1 % of the range (the focus may sit on an end point)
    keep = [c[0]]
    for v in c[1:]:
        if v - keep[-1] > 1e-3 * (hi - lo):
            keep.append(v)
        elif focus is not None and abs(v - focus) < abs(keep[-1] - focus):
            keep[-1] = v
    c = np.asarray(keep, np.float64)
    # each centre's radius: mean radius of the samples nearest to it
    rb = np.interp(c, grid, rm)
    return c.astype(np.float32), rb.astype(np.float32)


def radius_levels(rmax: float) -> np.ndarray:
    """Radius levels for splitting a layer whose pixels have different radii (tilt, mask)."""
    lv = [0.0, 0.5]
    while lv[-1] < rmax:
        lv.append(max(lv[-1] + 1.0, lv[-1] * 1.2))
    return np.asarray(lv, np.float32)


# --- the renderer -------------------------------------------------------------------------
def _tent(d: np.ndarray, c: np.ndarray, b: int) -> np.ndarray:
    """Far-side rising tent of bin ``b`` and 1 on its near side (cumulative alpha)."""
    if b == 0:
        return np.ones_like(d)
    lo = c[b - 1]
    return np.clip((d - lo) / max(c[b] - lo, 1e-12), 0.0, 1.0)


def _render_tile(lin: np.ndarray, d: np.ndarray, r: np.ndarray, centres: np.ndarray, rbins: np.ndarray,
                 opts: RenderOptions, levels: np.ndarray, plain: bool = False) -> tuple[np.ndarray, int]:
    h, w = d.shape
    nb = centres.size
    out = np.zeros((h, w, 4), np.float32)
    lin4 = cv2.cvtColor(np.ascontiguousarray(lin), cv2.COLOR_RGB2RGBA)
    # block statistics for skipping and cropping
    bh, bw = -(-h // BLOCK), -(-w // BLOCK)
    pad = ((0, bh * BLOCK - h), (0, bw * BLOCK - w))
    dpad = np.pad(d, pad, mode="edge").reshape(bh, BLOCK, bw, BLOCK)
    rpad = np.pad(r, pad, mode="edge").reshape(bh, BLOCK, bw, BLOCK)
    bdmin, bdmax = dpad.min(axis=(1, 3)), dpad.max(axis=(1, 3))
    brmax = rpad.max(axis=(1, 3))
    # which layers each block's pixels belong to (a bit per layer): a pixel with
    # c[i-1] < d <= c[i] is in layers i-1 and i only, so a block straddling a depth edge
    # does not count for every layer in between (min/max alone would say it does)
    if nb <= 64:
        ii = np.arange(nb + 1)
        one = np.uint64(1)
        table = (one << np.minimum(ii, nb - 1).astype(np.uint64)) | (one << np.maximum(ii - 1, 0).astype(np.uint64))
        bbits = np.empty((bh, bw), np.uint64)
        for i in range(bh):  # one row of blocks at a time: small temporaries
            bits = table[np.searchsorted(centres, dpad[i])]
            bbits[i] = np.bitwise_or.reduce(np.bitwise_or.reduce(bits, axis=2), axis=0)
    else:
        bbits = None
    count = 0
    painted = False  # nothing composited into ``out`` yet (it is all zero)
    for b in range(nb):
        c_lo = centres[b - 1] if b > 0 else -np.inf
        c_hi = centres[b + 1] if b + 1 < nb else np.inf
        own_blocks = (bdmax > c_lo) & (bdmin < c_hi) if b > 0 else (bdmin < c_hi)
        if bbits is not None:
            own_blocks &= ((bbits >> np.uint64(b)) & np.uint64(1)).astype(bool)
        if not own_blocks.any():
            continue
        # largest blur among pixels nearer than this layer: how far it can reveal what is behind
        nearer = bdmax > c_hi
        r_front = float(brmax[nearer].max()) if nearer.any() else 0.0
        r_own = float(brmax[own_blocks].max())
        band = r_front + r_own + 2.0
        ys, xs = np.nonzero(own_blocks)
        m = int(math.ceil(band + r_own)) + 2
        y0, y1 = max(0, ys.min() * BLOCK - m), min(h, (ys.max() + 1) * BLOCK + m)
        x0, x1 = max(0, xs.min() * BLOCK - m), min(w, (xs.max() + 1) * BLOCK + m)
        dd, rr = d[y0:y1, x0:x1], r[y0:y1, x0:x1]
        # alpha: rising tent on the far side, 1 on the near side, 0 beyond the next centre
        alpha = _tent(dd, centres, b)
        has_fill = b + 1 < nb and bool((bdmax[y0 // BLOCK:-(-y1 // BLOCK), x0 // BLOCK:-(-x1 // BLOCK)] >= c_hi).any())
        if has_fill:
            fill_zone = dd >= c_hi
            alpha[fill_zone] = 0.0
        own = alpha > 0  # the layer's own pixels
        if not own.any():
            continue
        # premultiplied RGBA in one contiguous multiply (lin4 carries alpha = 1)
        P = lin4[y0:y1, x0:x1] * alpha[..., None]
        r_b = float(rbins[b])
        f = coarse_factor(r_b)
        hb, wb = dd.shape
        if plain and f > 1 and min(hb, wb) // f >= 8:
            # Blurred layer: everything after the premultiplied downscale runs at 1/f
            # (occlusion fill, blur); only the upsampled result touches full resolution.
            hs, ws = max(1, round(hb / f)), max(1, round(wb / f))
            small = cv2.resize(P, (ws, hs), interpolation=cv2.INTER_AREA)
            if has_fill:
                fz = cv2.resize(fill_zone.view(np.uint8).astype(np.float32), (ws, hs), interpolation=cv2.INTER_AREA)
                fc, near = _fill_small(small, band / (wb / ws))
                fz *= near
                small[..., :3] += fc * fz[..., None]
                small[..., 3] += fz
            k = aperture_kernel(coarse_radius(r_b, wb / ws), opts.aperture)
            small = filter_kernel(small, k)
            acc = cv2.resize(small, (wb, hb), interpolation=cv2.INTER_LINEAR)
            count += 1
            _over(out, acc, y0, y1, x0, x1, painted)
            painted = True
            continue
        if has_fill:
            # occluded part of this layer (nearer pixels within ``band`` of its own pixels):
            # alpha 1, colour extrapolated from the layer's own pixels (pull-push at 1/4)
            if _fill_into(P, fill_zone, band):
                alpha = P[..., 3]
        # One radius for the whole layer when the pixels' radii follow the layer plan
        # (plain refocus); otherwise split them over radius levels (tilt, mask, maps).
        single = plain
        if not single:
            tol = max(opts.abs_step, opts.rel_step * r_b)
            ro, do = rr[own], dd[own]
            # a strided sample settles most layers that need splitting; the rest are checked in full
            sub = ro[::97]
            dev = np.abs(sub - np.interp(do[::97], centres, rbins)) if sub.size else sub
            single = not (dev.size and float(dev.max()) > tol)
            if single:
                dev = np.abs(ro - np.interp(do, centres, rbins))
                single = dev.size == 0 or float(dev.max()) <= tol
        acc = None
        if single:
            acc = blur_premultiplied(P, r_b, opts.aperture)
            count += 1
        else:
            # Per-pixel radii (tilt, mask): split over radius levels. Levels that share a
            # downscale factor are weighted and blurred together at that scale, so full
            # resolution is touched once per factor, not once per level.
            act = alpha > 0
            rad = np.where(own, rr, r_b).astype(np.float32)
            ra = rad[act]
            lv_idx = np.arange(levels.size, dtype=np.float32)
            kmin = int(np.floor(np.interp(float(ra.min()), levels, lv_idx)))
            kmax = int(min(np.floor(np.interp(float(ra.max()), levels, lv_idx)) + 1, levels.size - 1))
            ks = list(range(kmin, kmax + 1))
            groups: dict[int, list[int]] = {}
            for k in ks:
                groups.setdefault(coarse_factor(float(levels[k])), []).append(k)
            # per-row / per-column radius range: each factor's levels are weighted, resampled
            # and blurred only in the box where they occur (plus the blur's reach)
            rrow_lo, rrow_hi = rad.min(axis=1), rad.max(axis=1)
            rcol_lo, rcol_hi = rad.min(axis=0), rad.max(axis=0)
            for f, kk in sorted(groups.items()):
                lv_lo = float(levels[max(kk[0] - 1, 0)])
                lv_hi = float(levels[min(kk[-1] + 1, levels.size - 1)])
                rows = np.nonzero((rrow_hi > lv_lo) & (rrow_lo < lv_hi))[0]
                cols = np.nonzero((rcol_hi > lv_lo) & (rcol_lo < lv_hi))[0]
                if rows.size == 0 or cols.size == 0:
                    continue
                mg = int(math.ceil(float(levels[kk[-1]]))) + 3 + 2 * f
                gy0, gy1 = max(0, (rows[0] - mg) // f * f), min(hb, -(-(rows[-1] + 1 + mg) // f) * f)
                gx0, gx1 = max(0, (cols[0] - mg) // f * f), min(wb, -(-(cols[-1] + 1 + mg) // f) * f)
                Pg, radg = P[gy0:gy1, gx0:gx1], rad[gy0:gy1, gx0:gx1]
                hg, wg = gy1 - gy0, gx1 - gx0
                if f > 1 and min(hg, wg) // f >= 8:
                    hs, ws = max(1, round(hg / f)), max(1, round(wg / f))
                    Pf = cv2.resize(Pg, (ws, hs), interpolation=cv2.INTER_AREA)
                    rf = cv2.resize(radg, (ws, hs), interpolation=cv2.INTER_AREA)
                    sc = wg / ws
                else:
                    Pf, rf, sc, f = Pg, radg, 1.0, 1
                pos = np.interp(rf, levels, np.arange(levels.size, dtype=np.float32)).astype(np.float32)
                # per-row / per-column range of the level position: each level's pixels
                # (|pos - k| < 1) lie in a box found from these, and only that box, plus
                # the kernel's reach, is weighted and convolved (a tilt's levels are bands)
                prow_lo, prow_hi = pos.min(axis=1), pos.max(axis=1)
                pcol_lo, pcol_hi = pos.min(axis=0), pos.max(axis=0)
                accf = np.zeros_like(Pf)
                hf, wf = pos.shape
                used = False
                for k in kk:
                    rows = np.nonzero((prow_lo < k + 1) & (prow_hi > k - 1))[0]
                    cols = np.nonzero((pcol_lo < k + 1) & (pcol_hi > k - 1))[0]
                    if rows.size == 0 or cols.size == 0:
                        continue
                    kern = aperture_kernel(coarse_radius(float(levels[k]), sc), opts.aperture) \
                        if levels[k] >= 0.5 else None
                    m_k = (kern.shape[0] // 2 + 1) if kern is not None else 0
                    ya, yb = max(0, rows[0] - m_k), min(hf, rows[-1] + 1 + m_k)
                    xa, xb = max(0, cols[0] - m_k), min(wf, cols[-1] + 1 + m_k)
                    wk = pos[ya:yb, xa:xb] - np.float32(k)
                    np.abs(wk, out=wk)
                    np.subtract(np.float32(1), wk, out=wk)
                    np.maximum(wk, 0, out=wk)  # tent weight: 1 - |pos - k|, clipped
                    if not wk.any():
                        continue
                    Pk = Pf[ya:yb, xa:xb] * wk[..., None]
                    if kern is not None:
                        Pk = filter_kernel(Pk, kern)
                    accf[ya:yb, xa:xb] += Pk
                    used = True
                    count += 1
                if not used:
                    continue
                if f > 1:
                    accf = cv2.resize(accf, (wg, hg), interpolation=cv2.INTER_LINEAR)
                if acc is None:
                    acc = np.zeros((hb, wb, 4), np.float32)
                acc[gy0:gy1, gx0:gx1] += accf
        if acc is None:
            continue
        _over(out, acc, y0, y1, x0, x1, painted)
        painted = True
    return out, count


def _over(out: np.ndarray, acc: np.ndarray, y0: int, y1: int, x0: int, x1: int, painted: bool) -> None:
    """Composite premultiplied ``acc`` over ``out[y0:y1, x0:x1]`` (a copy while ``out`` is still empty)."""
    o = out[y0:y1, x0:x1]
    if not painted:
        o[...] = acc
        return
    o *= (1.0 - acc[..., 3:4])
    o += acc


def _fill_small(small: np.ndarray, band: float) -> tuple[np.ndarray, np.ndarray]:
    """``_fill`` on an already downscaled premultiplied layer (colour, 0/1 near-band mask)."""
    col = pull_push(small[..., :3], small[..., 3])
    dist = cv2.distanceTransform((small[..., 3] <= 1e-6).astype(np.uint8), cv2.DIST_L2, 3)
    return col, (dist <= band + 1.0).astype(np.float32)


def _fill_into(P: np.ndarray, fill_zone: np.ndarray, band: float, scale: int = 4) -> bool:
    """Write the occlusion fill into ``P`` (in place): where ``fill_zone`` is within ``band``
    px of the layer's own pixels, RGBA = (extrapolated colour, 1). Returns whether any was.

    Same as ``_fill`` + copy, but the pull-push colour and the distance are upsampled only
    inside the box that can hold filled pixels (found at 1/``scale``), with the bilinear
    mapping of ``cv2.resize`` written as an affine warp of that box.
    """
    h, w = P.shape[:2]
    hs, ws = max(1, round(h / scale)), max(1, round(w / scale))
    small = cv2.resize(P, (ws, hs), interpolation=cv2.INTER_AREA).reshape(hs, ws, 4)
    a_s = np.ascontiguousarray(small[..., 3])
    dist = cv2.distanceTransform((a_s <= 1e-6).astype(np.uint8), cv2.DIST_L2, 3)
    sx, sy = ws / w, hs / h  # small px per full px
    # candidate cells: near enough (with a cell of slack for the interpolation) and
    # touching the fill zone (its area fraction, dilated by a cell)
    fzf = cv2.resize(fill_zone.view(np.uint8).astype(np.float32), (ws, hs), interpolation=cv2.INTER_AREA)
    fz = cv2.dilate((fzf > 0).view(np.uint8), np.ones((3, 3), np.uint8)) > 0
    cand = (dist * (w / ws) <= band + scale + 2.0 * (w / ws)) & fz
    if not cand.any():
        return False
    rows = np.nonzero(cand.any(axis=1))[0]
    cols = np.nonzero(cand.any(axis=0))[0]
    Y0, Y1 = max(0, int((rows[0] - 1) / sy)), min(h, int(math.ceil((rows[-1] + 2) / sy)))
    X0, X1 = max(0, int((cols[0] - 1) / sx)), min(w, int(math.ceil((cols[-1] + 2) / sx)))
    col = pull_push(np.ascontiguousarray(small[..., :3]), a_s)
    col4 = cv2.cvtColor(col, cv2.COLOR_RGB2RGBA)
    # cv2.resize (bilinear): src = (dst + 0.5) * s - 0.5, edges replicated
    M = np.array([[sx, 0.0, (X0 + 0.5) * sx - 0.5], [0.0, sy, (Y0 + 0.5) * sy - 0.5]], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    fcb = cv2.warpAffine(col4, M, (X1 - X0, Y1 - Y0), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    db = cv2.warpAffine(dist, M, (X1 - X0, Y1 - Y0), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    fill = fill_zone[Y0:Y1, X0:X1] & (db * (w / ws) <= band + scale)
    if not fill.any():
        return False
    Pb = P[Y0:Y1, X0:X1]
    np.copyto(Pb, fcb.reshape(Pb.shape), where=fill[..., None])
    return True


def _fill(P: np.ndarray, band: float, scale: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Extrapolated colour of a layer (RGBA, alpha 1) and the zone within ``band`` px of it.

    ``P``: premultiplied RGBA with only the layer's own pixels non-zero. Both the
    pull-push extrapolation and the distance transform run at 1/``scale`` resolution;
    the results are upsampled to the tile.
    """
    h, w = P.shape[:2]
    hs, ws = max(1, round(h / scale)), max(1, round(w / scale))
    small = cv2.resize(P, (ws, hs), interpolation=cv2.INTER_AREA).reshape(hs, ws, 4)
    col = pull_push(np.ascontiguousarray(small[..., :3]), np.ascontiguousarray(small[..., 3]))
    col4 = cv2.cvtColor(col, cv2.COLOR_RGB2RGBA)
    fc = cv2.resize(col4, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, 4)
    dist = cv2.distanceTransform((small[..., 3] <= 1e-6).astype(np.uint8), cv2.DIST_L2, 3)
    dist = cv2.resize(dist, (w, h), interpolation=cv2.INTER_LINEAR) * (w / ws)
    return fc, dist <= band + scale


def render_defocus(image: np.ndarray, disparity: np.ndarray, coc: np.ndarray, *, linear: bool = False,
                   focus: float | None = None, options: RenderOptions | None = None) -> RenderResult:
    """Render lens blur: ``coc`` is the CoC diameter in px per pixel (0 = sharp).

    ``image``: float32 HxWx3 in [0, 1], display-encoded (sRGB) unless ``linear``;
    ``disparity``: HxW, larger = nearer (decides occlusion order only); ``focus``: the
    focus disparity, if the CoC is |d - focus| shaped (a layer is centred there). Returns
    the image in the input's encoding.
    """
    opts = options or RenderOptions()
    T: dict[str, float] = {}
    t0 = time.perf_counter()
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    d = np.asarray(disparity, np.float32)
    c = np.asarray(coc, np.float32)
    if d.shape != (h, w) or c.shape != (h, w):
        raise ValueError(f"disparity {d.shape} and coc {c.shape} must match the image {(h, w)}")
    if not np.isfinite(d).all() or not np.isfinite(c).all():
        raise ValueError("disparity and coc must be finite")
    r = np.clip(c, 0, None) * 0.5
    cmax = float(c.max()) if c.size else 0.0
    if cmax < 1.0:  # every radius < 0.5 px: nothing to blur
        return RenderResult(img.copy(), 0, 0, cmax, {"total": time.perf_counter() - t0})
    nthreads = opts.threads or (os.cpu_count() or 1)
    lin = _rowwise(lambda x: _to_render_space(x, linear, opts.highlight_gain, opts.highlight_threshold), img,
                   nthreads)
    T["prepare"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    centres, rbins = plan_bins(d, r, opts, focus)
    plain = focus is not None  # the caller says coc = k |d - focus|: one radius per layer
    levels = radius_levels(float(r.max()))
    T["plan"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    margin = int(math.ceil(2 * float(r.max()) * 1.0 + float(r.max()) + 8))
    margin = -(-margin // 32) * 32
    tile = opts.tile
    if max(h, w) <= 1.5 * tile:
        tiles = [(0, h, 0, w)]
    else:
        tiles = [(y, min(h, y + tile), x, min(w, x + tile)) for y in range(0, h, tile) for x in range(0, w, tile)]
    out = np.empty((h, w, 3), np.float32)
    counts = []

    def job(t: tuple[int, int, int, int]) -> None:
        y0, y1, x0, x1 = t
        Y0, Y1, X0, X1 = max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin)
        acc, n = _render_tile(lin[Y0:Y1, X0:X1], d[Y0:Y1, X0:X1], r[Y0:Y1, X0:X1], centres, rbins, opts,
                              levels, plain)
        acc = acc[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0]
        a = acc[..., 3:4]
        res = np.where(a > 1e-4, acc[..., :3] / np.maximum(a, 1e-4), lin[y0:y1, x0:x1])
        out[y0:y1, x0:x1] = _from_render_space(res, linear, opts.highlight_gain, opts.highlight_threshold)
        counts.append(n)

    if len(tiles) > 1 and nthreads > 1:
        with ThreadPoolExecutor(min(nthreads, len(tiles))) as ex:
            list(ex.map(job, tiles))
    else:
        for t in tiles:
            job(t)
    T["layers"] = time.perf_counter() - t0  # includes the conversion back, done per tile
    T["total"] = sum(T.values())
    return RenderResult(out, int(centres.size), int(sum(counts)), cmax, T)
