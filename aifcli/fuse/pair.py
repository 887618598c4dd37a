"""Occlusion-aware fusion of a main + ultra-wide pair into an all-in-focus main view.

EasyAIF eq. 2 with classical parts (DESIGN.md §2 "Pairs", steps 4-6):

    I_AIF = I_d * M_d + I_m * M_m + I_wc * M_wc,   M_d + M_m + M_wc = 1

- ``I_m``  the main image; ``M_m`` is high where the main is at least about as sharp as
  the aligned ultra-wide (local energy of the finest band, and of the next one, at the
  ultra-wide's own pixel density). That covers the main's in-focus regions, flat regions,
  the area outside the ultra-wide's field, and objects the ultra-wide itself sees
  defocused (very near); and where the main's band shows detail above its own noise that
  the ultra-wide's band does not share (``main_detail``: an in-focus surface the
  ultra-wide shows noisier or slightly out of place).
- ``I_wc`` the flow-warped, colour-matched ultra-wide; ``M_wc = (1 - M_m) * C`` with ``C``
  the forward-backward confidence of the alignment, times ``content_agreement`` (0 where
  the ultra-wide shows something the main does not: it moved between the exposures).
- ``I_d`` a refined main (its finest band's noise removed, its mid band raised) for the rest:
  ``M_d = (1 - M_m) * (1 - C)``, i.e. occlusions and unreliable flow, where the ultra-wide
  would ghost and the main is defocused; the part of it where the main shows detail well
  above its own noise (``sharp_main``: it is in focus there after all) goes back to ``M_m``.

The blend is multi-scale: Laplacian pyramids of the candidates' differences from the main,
weighted by Gaussian pyramids of the masks, so mask edges leave no seams; the colour
match gives the ultra-wide the main's colours (fitted on means of light, which defocus
keeps), and where the ultra-wide replaces the main it brings its lowest frequencies too:
there the defocused main's are biased (``compose``). The ultra-wide
has at most about half the main's pixel density in the main's frame, so the blend runs at
``fuse_scale`` (its density, >= 1/2) and only the correction is upsampled and added to
the full-resolution main, whose band above the fuse grid is dropped where the main is
not the source and that band is noise (``onto_main``): where ``M_m = 1`` the output
equals the main.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..align.pair import PairAlignment, _resize, align_pair, band_energy, fine_band
from ..color.local_affine import match_colors
from ..errors import UsageError
from ..image import linear_to_srgb, srgb_to_linear


@dataclass
class FuseResult:
    image: np.ndarray  # float32 HxWx3 [0,1], main resolution
    masks: dict[str, np.ndarray]  # "main", "ultrawide", "refined" at fuse scale, summing to one
    confidence: np.ndarray  # alignment confidence at fuse scale (times the content check; without min_confidence)
    alignment: PairAlignment | None
    fuse_scale: float
    color: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)
    engine: str = "classical"
    content_rejected: float = 0.0  # fraction of the frame the content check took from the ultra-wide
    min_confidence: float = 0.0  # the floor of the blend's ultra-wide weight (``fuse_pair``'s min_confidence)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": self.engine, "fuse_scale": round(self.fuse_scale, 4),
                               "mask_means": {k: round(float(v.mean()), 4) for k, v in self.masks.items()},
                               "confident_fraction": round(float(self.confidence.mean()), 4),
                               "content_rejected_fraction": round(self.content_rejected, 4),
                               "min_confidence": self.min_confidence,
                               "color": self.color, "timings": {k: round(v, 4) for k, v in self.timings.items()}}
        if self.alignment is not None:
            a = self.alignment.to_dict()
            out["alignment"] = {k: a[k] for k in ("H", "inliers", "matches", "residual_px", "scale_uw_px_per_main_px",
                                                  "infield_fraction", "confident_fraction", "flow_median_px")}
        return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        return rgb
    y = cv2.transform(rgb, np.float32([[0.2126, 0.7152, 0.0722]]))
    return y if y.ndim == 2 else y[..., 0]


def noise_energy_map(y: np.ndarray, e: np.ndarray, bins: int = 8, pct: float = 5.0,
                     floor: float = 0.002) -> np.ndarray:
    """Per-pixel noise energy of a fine band as a function of local brightness: the
    ``pct``-th percentile of the band's local energy ``e`` in each of ``bins`` brightness
    quantiles of ``y`` (local mean luminance, same grid), interpolated by brightness and at
    least ``floor`` squared. Shot noise grows with the signal, and the band's MAD over the
    whole frame (``band_noise_sigma``) is inflated by texture; within one brightness bin the
    quietest pixels (defocused or flat) show the noise itself. (A noise level function in
    the sense of Liu et al. 2006, reduced to what a percentile per bin gives.)"""
    step = max(1, int(np.sqrt(y.size / 60000)))  # the statistics need ~60k samples, not all
    ys, es = y[::step, ::step].ravel(), e[::step, ::step].ravel()
    edges = np.percentile(ys, np.linspace(0.0, 100.0, bins + 1))
    cen, val = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (ys >= lo) & (ys <= hi)
        if sel.sum() > 50:
            cen.append(float(np.median(ys[sel])))
            val.append(float(np.percentile(es[sel], pct)))
    if not cen:
        return np.full(e.shape, floor * floor, np.float32)
    return np.maximum(np.interp(y, cen, val), floor * floor).astype(np.float32)


def main_detail(hm: np.ndarray, hu: np.ndarray, em: np.ndarray, eu: np.ndarray, ym: np.ndarray, *,
                weak: tuple[float, float] = (1.3, 2.0), strong: tuple[float, float] = (4.0, 8.0),
                share: tuple[float, float] = (0.3, 0.6), rho: tuple[float, float] = (0.1, 0.3),
                win: float = 8.0, floor: float = 0.002, corr_win: float = 3.0) -> np.ndarray:
    """0..1 where the main's finest band ``hm`` shows detail of its own that the aligned
    ultra-wide's band ``hu`` does not share: the main is in focus there and the ultra-wide
    has noise or misplaced texture.

    - Detail: the band's local energy over a Gaussian window of ``win`` px, against its
      brightness-dependent noise energy (``noise_energy_map``), is ``strong`` (ramp, 4..8x),
      or ``weak`` (1.3..2x) and at least ``share`` (ramp 0.3..0.6) of the ultra-wide's over
      the same window. (At 1024 px a defocused textured background keeps a weak band 1-4x
      its noise, while the ultra-wide's is 5-10x stronger: the share test keeps it out.)
    - Not shared: the two bands' local correlation (window ``corr_win``; ``em``/``eu`` are
      their energies over it) below ``rho``: 1 up to 0.1, 0 from 0.3 on. Where both see the
      same detail, ``main_mask``'s energy comparison is meaningful and decides.

    Why: ``main_mask`` compares band energies over 3 px, and the ultra-wide's band carries
    more noise and, where its flow is off, texture out of place, so on a low-contrast
    in-focus surface it can look as detailed as the main and take part of it (12 MP
    synthetic pairs, focused far: a 5-70 % ultra-wide share on an in-focus floor whose
    ultra-wide band correlates 0.15 with the truth, the main's 0.89). The noise test runs on
    a 4x coarser grid (its window is wide) and is upsampled. Six 12 MP pairs: worst
    in-focus pair -0.47 -> -0.16 dB, total +0.02 dB; 18 pairs at 1024 px -0.02 dB
    (docs/BENCHMARKS.md)."""
    h, w = hm.shape[:2]
    q = 4 if min(h, w) >= 64 else 1
    small = (max(1, w // q), max(1, h // q))
    shrink = lambda x: cv2.resize(x, small, interpolation=cv2.INTER_AREA) if q > 1 else x  # noqa: E731
    ramp = lambda x, r: np.clip((x - r[0]) * (1.0 / (r[1] - r[0])), 0.0, 1.0)  # noqa: E731
    e = cv2.GaussianBlur(shrink(hm * hm), (0, 0), win / q)
    e_u = cv2.GaussianBlur(shrink(hu * hu), (0, 0), win / q)
    y = cv2.GaussianBlur(shrink(ym), (0, 0), 3.0 / q)
    snr = e / noise_energy_map(y, e, floor=floor)
    detail = np.maximum(ramp(snr, weak) * ramp(e / (e_u + 1e-12), share), ramp(snr, strong)).astype(np.float32)
    if q > 1:
        detail = cv2.resize(detail, (w, h), interpolation=cv2.INTER_LINEAR)
    r = cv2.divide(cv2.GaussianBlur(cv2.multiply(hm, hu), (0, 0), corr_win), cv2.sqrt(cv2.add(cv2.multiply(em, eu), 1e-12)))
    k = 1.0 / (rho[1] - rho[0])  # 1 - ramp(r, rho) in OpenCV ops (full-size numpy temporaries cost ~10 ms at 12 MP)
    shared = cv2.min(cv2.max(cv2.addWeighted(r, -k, r, 0.0, 1.0 + k * rho[0]), 0.0), 1.0)
    return cv2.multiply(detail, shared)


def mid_band_energies(gm: np.ndarray, gu: np.ndarray, sigma: float = 3.0, win: float = 6.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Local energies (window ``win``) of the band between Gaussians of 1.5 and ``sigma`` px
    of two luminances, given as their Gaussians of 1.5 px (``gm``, ``gu``: what
    ``fine_band`` subtracts). Computed on a grid 2x coarser, where the band still has no
    aliasing, and returned there: (main's, ultra-wide's)."""
    h, w = gm.shape[:2]
    q = 2 if min(h, w) >= 64 else 1
    s = float(np.sqrt(sigma * sigma - 1.5 * 1.5)) / q  # G(sigma) = G(s) after G(1.5)
    out = []
    for g in (gm, gu):
        if q > 1:
            g = cv2.resize(g, (max(1, w // q), max(1, h // q)), interpolation=cv2.INTER_AREA)
        out.append(band_energy(cv2.subtract(g, cv2.GaussianBlur(g, (0, 0), s)), win / q))
    return out[0], out[1]


BICUBIC_UW_SIGMA = 0.45  # main_mask's blur of a bicubically warped ultra-wide (see main_mask)


def main_mask(main: np.ndarray, uw: np.ndarray, infield: np.ndarray, *, bias: float = 0.7, softness: float = 0.3,
              eps: float = 2e-6, grow: int = 2, own_detail: bool = True, mid_band: bool = True,
              uw_sigma: float = 0.0) -> np.ndarray:
    """M_m: 1 where the main is at least ``bias`` times as detailed as the ultra-wide.

    Both inputs must be at the same (the ultra-wide's native) density. "Detailed" is the
    local energy of the finest band (luminance minus its Gaussian of 1.5 px, over 3 px), a
    soft logistic of the energy ratio around ``bias``. With ``mid_band`` the main must
    also not lack the next band (Gaussians of 1.5 and 3 px, over 6 px;
    ``mid_band_energies``): its weight ramps down from 1 where its mid-band energy is
    ``bias`` times the ultra-wide's to 0 at half that. Flat areas (both below ``eps``) and
    pixels outside the ultra-wide's field go to the main, and with ``own_detail`` so do
    pixels where the main shows detail above its noise that the ultra-wide does not share
    (``main_detail``). The main's region is grown by ``grow`` px so its in-focus edges are
    never replaced. The ultra-wide's luminance is blurred by ``uw_sigma`` px first
    (``fuse_pair`` passes ``BICUBIC_UW_SIGMA``, 0.45, where the warp was bicubic).

    Why the mid band: the finest band's energy counts noise as detail and sees only a few
    px around an edge. Between the edges of a sharp object the ultra-wide's finest band is
    only noise, so where the main was moderately defocused (edges soft, its noise intact)
    it won every flat stretch: on a defocused striped object the mask was a checkerboard
    and the stripes came out at reduced contrast (12 MP synthetic pairs, focused far). The
    mid band spans those stretches. A ramp, not the logistic: the logistic gives the main
    only 0.77 where the two mid bands are equal (in focus in both), which let the
    ultra-wide's noise into an exact main's in-focus region (``tests/test_fuse.py``); the
    ramp is 1 there. 18 pairs at 12 MP: 28.52 -> 28.59 dB (focused far +0.14, scene 0
    26.58 -> 26.77); at 1024 px 31.92 -> 31.93 dB (docs/BENCHMARKS.md).

    Why ``uw_sigma``: the bias and the tests were set on a bilinearly warped ultra-wide,
    whose interpolation also averaged away part of its noise. The bicubic warp
    (``PairAlignment.interpolation``, at 12 MP) keeps that noise, and compared as it is,
    its finest band looked as detailed as an exact in-focus main: on the toy pair of
    ``tests/test_fuse.py`` warped bicubically, the ultra-wide's mean share of the main's
    in-focus region rose from 0.04 to 0.10 and the error there from 0.0016 to 0.0036.
    Blurred by 0.45 px it gets the bilinear warp's decisions back there (0.0007-0.0015 on
    three seeds, as bilinear), and the blend still takes the sharper bicubic candidate.
    Eight 12 MP pairs with one alignment: bilinear 29.66 dB, bicubic 29.85 (the toy's
    in-focus error above), bicubic with the 0.45 px blur 29.78 (docs/BENCHMARKS.md).
    """
    ym, yu = _luma(main), _luma(uw)
    if uw_sigma > 0:
        yu = cv2.GaussianBlur(yu, (0, 0), uw_sigma)
    hm, hu = fine_band(ym), fine_band(yu)  # fine_band_energy's, kept for main_detail
    em, eu = band_energy(hm), band_energy(hu)
    # the logistic of log(ratio / bias) / softness, written as 1 / (1 + q) with q = (bias / ratio)^(1 / softness):
    # the same values in OpenCV's float32 ops (numpy's log and exp took 25 ms of a 12 MP pair); where q
    # overflows to inf the mask is exactly 0
    q = cv2.pow(cv2.divide(cv2.add(eu, eps), cv2.add(em, eps), scale=bias), 1.0 / softness)
    m = cv2.divide(1.0, cv2.add(q, 1.0))
    if mid_band:
        e_m, e_u = mid_band_energies(cv2.subtract(ym, hm), cv2.subtract(yu, hu))  # y - fine band = G(y, 1.5)
        # log2(main / ultra-wide) - log2(bias / 2), clipped: 0 at bias / 2, 1 at bias
        r = cv2.log(cv2.divide(cv2.add(e_m, eps), cv2.add(e_u, eps), scale=2.0 / bias))
        m2 = np.clip(r * np.float32(1.0 / np.log(2.0)), 0.0, 1.0)
        if m2.shape != m.shape:
            m2 = cv2.resize(m2, (m.shape[1], m.shape[0]), interpolation=cv2.INTER_LINEAR)
        m = cv2.min(m, m2)
    if own_detail:
        m = cv2.max(m, main_detail(hm, hu, em, eu, ym))
    m = cv2.max(m, cv2.subtract(1.0, np.asarray(infield, np.float32)))
    if grow > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return np.clip(cv2.GaussianBlur(m, (0, 0), 1.5), 0, 1)


def sharp_main(main_t: np.ndarray, lo: float = 4.0, hi: float = 8.0, min_noise: float = 0.004) -> np.ndarray:
    """0..1 where the main's own finest band (luminance minus its Gaussian of sigma 1.5,
    energy over a Gaussian window of 3 px) is ``lo``..``hi`` times its noise energy
    (``band_noise_sigma`` squared, at least ``min_noise`` squared): detail the main has
    itself, so it is in focus there. ``fuse_pair`` moves that share of ``M_d`` back to the
    main.

    ``main_mask`` compares the main with the aligned ultra-wide; where the flow is wrong
    (an in-focus foreground with 40-60 work px of parallax, its ultra-wide pixels from the
    background) the ultra-wide looks sharper, the confidence is low, and the main lost part
    of its own in-focus region to the denoised main. Six 12 MP synthetic pairs, in-focus
    PSNR vs the main per pair -0.22 / -0.05 / -0.29 / -0.15 / -0.01 / -0.47 dB ->
    -0.06 / -0.02 / -0.07 / -0.15 / 0.00 / -0.47 dB, total +0.004 dB; 18 1024 px pairs total
    +0.001 dB, worst in-focus pair -0.03 -> +0.02 dB (docs/BENCHMARKS.md). Applied to
    ``M_wc`` too it made the near pairs exactly 0.00 dB, but on the noise-free toy pair of
    the tests the floor of the noise estimate decides, the test fires on defocused texture
    and the ultra-wide lost most of its share: not done. The focused-far pairs keep their
    loss (their sharp backgrounds fill the frame, the noise estimate is inflated by texture
    and this test does not fire; that loss is the ultra-wide's share, ``M_wc``)."""
    hp = fine_band(_luma(main_t))
    noise = max(band_noise_sigma(hp), min_noise) ** 2
    e = band_energy(hp)
    return np.clip((e / noise - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def content_agreement(uw: np.ndarray, main_t: np.ndarray, global_matrix: np.ndarray | None = None,
                      sigma: float = 6.0, lo: float = 0.12, hi: float = 0.24) -> np.ndarray:
    """1 where the aligned ultra-wide shows the same content as the main at low frequencies,
    falling to 0 where they differ by more than defocus and colour could explain.

    The forward-backward check cannot see an object that moved between the two exposures
    (a bus in the wide frame, a wall in the tele): the flow can be consistent on it. The
    ultra-wide gets the colour match's *global* 3x4 transform ``global_matrix`` (the local
    one can absorb a moving object's colour: it is fitted over windows a quarter of the
    frame wide), both are blurred by ``sigma`` fuse-grid pixels, and the largest channel
    difference is ramped from 1 at ``lo`` to 0 at ``hi``. Correctly aligned content differs
    by at most 0.114 (99.99th percentile of confident, correctly aligned pixels over the 18
    benchmark pairs, main focused near or far; 0.093 on the real iPhone pair) while the bus
    that moved on the real iPhone pair differs by 0.37. Computed on a 4x coarser grid (a
    Gaussian of sigma/4 there) and upsampled."""
    h, w = main_t.shape[:2]
    q = 4 if min(h, w) >= 64 else 1
    small = (max(1, w // q), max(1, h // q))
    a = cv2.resize(uw, small, interpolation=cv2.INTER_AREA)
    b = cv2.resize(main_t, small, interpolation=cv2.INTER_AREA)
    if global_matrix is not None:
        G = np.asarray(global_matrix, np.float32)
        a = np.clip(cv2.transform(a, G), 0.0, 1.0)  # A @ rgb + b per pixel
    sg = sigma / q
    d = cv2.absdiff(cv2.GaussianBlur(a, (0, 0), sg), cv2.GaussianBlur(b, (0, 0), sg))
    if d.ndim == 3:  # largest channel difference (cv2.max: numpy's max over the last axis is 20x slower)
        d = cv2.max(cv2.max(d[..., 0], d[..., 1]), d[..., 2])
    # the blur halves the difference at an object's ends: widen the rejection by ~sigma
    r = max(1, int(round(sigma / q)))
    d = cv2.dilate(d, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    f = np.clip((hi - d) / (hi - lo), 0.0, 1.0).astype(np.float32)
    return cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) if q > 1 else f  # linear: stays in [0, 1]


def _levels_for(shape: tuple[int, int], coarsest: int = 24) -> int:
    return int(max(1, min(7, np.floor(np.log2(min(shape) / coarsest)))))


def pyramid_blend(diffs: list[np.ndarray], masks: list[np.ndarray], levels: int,
                  protect: np.ndarray | None = None, coarsest: bool = False, max_erosion: int = 8) -> np.ndarray:
    """Sum over candidates of Laplacian(diff) * Gaussian(mask), level by level. The coarsest
    level (the lowest frequencies, below about 1/(2^levels) of the grid's sampling rate) is
    dropped, i.e. left to the main, unless ``coarsest``: then it is weighted like the others.

    ``protect``: 1 where the main need not be kept (``1 - M_m``). At level k >= 1 each mask
    is limited to this map eroded by min(2^k, ``max_erosion``) px of that level, so a candidate's coarse
    bands do not bleed into the main's in-focus regions through the blurred Gaussian
    pyramid of its mask. Measured on 12 MP pairs (generic-phone and iphone-13, scene 0):
    in-focus PSNR vs the main -0.44 -> -0.26 dB (focused near) and -0.45 -> -0.10 dB (far),
    total PSNR +0.00 / -0.08 dB; on the 18 1024 px pairs +0.01 / -0.01 dB total, worst
    in-focus pair -0.12 -> -0.03 dB. The coarsest level (``coarsest``) is eroded by 2 px
    only: one of its pixels spans 2^levels, and 8 of them kept it out of most of a 12 MP
    frame (four 12 MP pairs, one alignment each: erosion 8 / 2 / 1 / 0 px 27.745 / 27.788 /
    27.793 / 27.796 dB, worst in-focus change -0.00 / -0.00 / -0.01 / -0.10 dB).

    ``max_erosion`` 8 was set on those pairs. Eroding 8 px of level k is 8·2^k px of the
    grid (128 px at level 4): beside every in-focus region a band that wide kept the
    defocused main's coarse bands, brightness bias included (``compose``), where the
    ultra-wide would replace them. ``compose`` passes 2 on grids of ``MIN_WIDE_PX`` and
    more: 18 pairs at 12 MP (one alignment each) with 8 / 4 / 2 / 1 / 0: 29.304 / 29.315 /
    29.341 / 29.376 / 29.395 dB, worst in-focus change +0.001 / +0.001 / +0.001 / -0.104 /
    -0.315 dB (focused far +0.08 at 2, focused near -0.005); at 1024 px 32.112 / 32.115 /
    32.127 / 32.138, worst in-focus -0.021 / -0.024 / -0.086 / -0.226. At 512 px 2 lost
    (-0.011 dB, worst in-focus pair -0.15 -> -0.20): small grids keep 8."""
    n = levels + 1 if coarsest else levels  # the Gaussian residual is level ``levels``
    limits: list[np.ndarray | None] = [None] * n  # per level, shared by all candidates
    if protect is not None:
        gp = protect
        for k in range(1, n):
            gp = cv2.pyrDown(gp)
            r = min(2 ** k, max_erosion) if k < levels else min(2, max_erosion)
            limits[k] = cv2.erode(gp, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    out_levels: list[np.ndarray] | None = None
    for d, m in zip(diffs, masks):
        g = d
        gm = m
        lv = []
        for k in range(levels):
            gd = cv2.pyrDown(g)
            up = cv2.pyrUp(gd, dstsize=(g.shape[1], g.shape[0]))
            lim = limits[k]
            # in place in pyrUp's buffer: each fresh 36 MB temporary page-faults again (glibc
            # maps and unmaps arrays this large), which cost 0.2 s per 12 MP pair here
            np.subtract(g, up, out=up)
            up *= (gm if lim is None else cv2.min(gm, lim))[..., None]
            lv.append(up)
            g = gd
            gm = cv2.pyrDown(gm)
        if coarsest:
            lim = limits[levels]
            lv.append(g * (gm if lim is None else cv2.min(gm, lim))[..., None])
        if out_levels is None:
            out_levels = lv
        else:
            for k in range(n):
                out_levels[k] += lv[k]
    assert out_levels is not None
    acc = out_levels[-1]
    for k in range(n - 2, -1, -1):
        acc = cv2.pyrUp(acc, dstsize=(out_levels[k].shape[1], out_levels[k].shape[0])) + out_levels[k]
    return acc


def band_noise_sigma(band: np.ndarray) -> float:
    """Robust noise level of a fine band (an image minus its Gaussian blur): median
    absolute value / 0.6745 (Donoho's MAD estimate), on every 8th pixel of every 8th row.
    Texture raises it a little; flat and defocused areas, where the band is noise,
    dominate the median in photos with a shallow depth of field. (Not
    ``stack.focus.noise_sigma``: that one is the pixel noise of a luminance image; the
    threshold here needs the band's own spread, all channels.)"""
    return float(np.median(np.abs(band[::8, ::8]))) / 0.6745


def _raised_band(img: np.ndarray, sigmas: tuple[float, float], q: int, amount: float) -> np.ndarray:
    """``amount`` times the difference of Gaussians of ``sigmas`` (px of the fuse grid) of
    ``img``, a copy of it shrunk ``q`` times."""
    return cv2.addWeighted(cv2.GaussianBlur(img, (0, 0), sigmas[0] / q), float(amount),
                           cv2.GaussianBlur(img, (0, 0), sigmas[1] / q), -float(amount), 0.0)


def refined_main(main_t: np.ndarray, k: float = 4.0, sigma: float = 1.0, noise: float | None = None,
                 boost: float = 0.6, boost_sigmas: tuple[float, float] = (2.0, 6.0),
                 boost2: float = 0.3, boost2_sigmas: tuple[float, float] = (4.0, 12.0),
                 low: np.ndarray | None = None) -> np.ndarray:
    """I_d: the main with the noise of its finest band removed (hard thresholding at ``k``
    noise sigmas, wavelet-shrinkage style), its mid band (a difference of Gaussians of
    ``boost_sigmas``) raised by ``boost`` and a wider band (``boost2_sigmas``) by ``boost2``
    (``k=0, boost=0, boost2=0``: the main itself). ``low``: a smooth correction (HxWx3 on
    any grid, e.g. ``-defocus_bias``) added with the bands, resized with them.

    ``M_d`` selects regions where the main is defocused and the ultra-wide cannot be
    trusted, so the main's finest band (the image minus its Gaussian blur of ``sigma``)
    there is mostly sensor noise: coefficients below ``k * noise`` are dropped, edges above
    it are kept unchanged. Measured on the 18 benchmark pairs against the unsharp mask this
    replaced (amount 0.5, sigma 1.5): +0.26 / +0.16 dB (main focused near / far), SSIM
    +0.033 / +0.013, LPIPS -0.020 / -0.005, occlusion-band RMSE -3 %, every pair better;
    the unsharp mask amplified the noise. Soft thresholding at 3 sigmas and a plain blur
    scored the same; hard thresholding is chosen because it leaves strong edges exact.

    The mid band is what defocus attenuates but does not remove, and it carries little
    noise: raising it by 0.6 gained +0.14 dB (12 of the 1024 px pairs) and +0.08 dB (six
    12 MP pairs), occlusion-band RMSE -2 %, no in-focus pair worse; 1.0 cost in-focus
    PSNR where ``M_d`` touches in-focus edges (docs/BENCHMARKS.md). The band is computed
    on a 2x coarser grid (it holds no frequencies above that grid's Nyquist) and
    upsampled. The main's defocus where ``M_d`` takes it is often far larger (12-66 main
    px of blur circle on the 12 MP pairs focused near), and the band of 4-12 px is
    attenuated too: raising it by 0.3 (on a 4x coarser grid) gained +0.016 dB on the 18
    12 MP pairs (15 better, generic-phone scene 2 far -0.08: a disc blur inverts the
    contrast of some frequencies, and a linear boost raises those as well), LPIPS
    +0.0002 (docs/BENCHMARKS.md, "The refined main's bias and a wider band")."""
    out = main_t
    hp = None
    if k > 0:
        hp = cv2.subtract(main_t, cv2.GaussianBlur(main_t, (0, 0), sigma))
        t = k * (band_noise_sigma(hp) if noise is None else noise)
        hp *= np.abs(hp) < t  # what stays in hp (the noise) is removed from the main
        out = cv2.subtract(main_t, hp)
    if boost > 0 or boost2 > 0 or low is not None:
        h, w = main_t.shape[:2]
        q = 2 if min(h, w) >= 32 else 1
        small = cv2.resize(main_t, (w // q, h // q), interpolation=cv2.INTER_AREA) if q > 1 else main_t
        band = _raised_band(small, boost_sigmas, q, boost)
        if boost2 > 0 or low is not None:  # on a grid 2x coarser still (the wider band holds nothing finer)
            sh, sw = small.shape[:2]
            q2 = 2 if min(sh, sw) >= 32 else 1
            s2 = cv2.resize(small, (sw // q2, sh // q2), interpolation=cv2.INTER_AREA) if q2 > 1 else small
            b2 = _raised_band(s2, boost2_sigmas, q * q2, boost2) if boost2 > 0 else None
            if low is not None:  # here: it is smooth, and resizing it on a finer grid cost 10 ms at 12 MP
                if low.shape[:2] != s2.shape[:2]:
                    low = cv2.resize(low, (s2.shape[1], s2.shape[0]), interpolation=cv2.INTER_LINEAR)
                b2 = low if b2 is None else cv2.add(b2, low)
            if q2 > 1:
                b2 = cv2.resize(b2, (sw, sh), interpolation=cv2.INTER_LINEAR)
            band = cv2.add(band, b2)
        if q > 1:  # into hp's buffer: fresh full-size arrays page-fault again (see pyramid_blend)
            band = cv2.resize(band, (w, h), dst=hp, interpolation=cv2.INTER_LINEAR)
        out = cv2.add(out, band, dst=None if out is main_t else out)
    return out


def defocus_bias(img: np.ndarray, sigma: float = 8.0, out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """What a defocus blur of about ``sigma`` px adds to the display values of ``img``
    (display-encoded, HxWx3): ``enc(G * dec(img)) - G * img``, >= 0 where ``img`` has
    texture. A lens blurs light and the display encoding is concave, so a defocused
    texture is brighter than the sharp one on average (Jensen's inequality; see
    ``compose``). Computed on a 4x coarser grid (a Gaussian of ``sigma`` / 4 there) and
    resized to ``out_shape`` (default ``img``'s): it holds only frequencies below the blur.

    ``fuse_pair`` subtracts it, estimated from the colour-matched ultra-wide (sharp; a few
    px off where its flow is unreliable, which a blur of 8 px hardly sees), from the
    refined main: where ``M_d`` gives the main's pixel to the refined main, that pixel is
    defocused and carries the bias, which the blend's coarsest level cannot remove there
    (it passes only where the ultra-wide replaces the main). Six 12 MP pairs, sigma 8 /
    16 / mean of 4, 8 and 16 fuse px: +0.039 / +0.035 / +0.037 dB, none lower
    (docs/BENCHMARKS.md, "The refined main's bias and a wider band")."""
    h, w = img.shape[:2]
    q = 4 if min(h, w) >= 64 else 1
    small = cv2.resize(img, (max(1, w // q), max(1, h // q)), interpolation=cv2.INTER_AREA) if q > 1 else img
    small = np.clip(small, 0.0, 1.0)
    s = sigma / q
    b = cv2.subtract(linear_to_srgb(cv2.GaussianBlur(srgb_to_linear(small), (0, 0), s)), cv2.GaussianBlur(small, (0, 0), s))
    oh, ow = out_shape or (h, w)
    return b if b.shape[:2] == (oh, ow) else cv2.resize(b, (ow, oh), interpolation=cv2.INTER_LINEAR)


# grids whose longer side is under this get neither debiased_refined_main's bias correction
# and wider band nor compose's narrower protection of the main (each measured: they lost at 512 px)
MIN_WIDE_PX = 768
REGION_PX = 33  # compose: narrower regions of the main are not protected at coarse pyramid levels


def wide_grid(shape: tuple[int, ...]) -> bool:
    """Whether a fuse grid of ``shape`` gets the rules measured on wide grids (``MIN_WIDE_PX``)."""
    return max(shape[:2]) >= MIN_WIDE_PX


def debiased_refined_main(main_t: np.ndarray, iwc: np.ndarray | None, k: float = 4.0,
                          agree: np.ndarray | None = None) -> np.ndarray:
    """``refined_main`` of ``main_t`` with ``defocus_bias`` of the colour-matched
    ultra-wide ``iwc`` subtracted (``iwc=None``: no correction), times the content check's
    ``agree`` where given (not from content the main does not show: it moved). The bias is
    smooth, so it is made on a 4x coarser grid, where ``refined_main`` adds it: no
    full-size passes. Shared by ``fuse_pair`` and the benchmark's oracle, so that the
    oracle's refined main is the same candidate.

    On grids whose longer side is under ``MIN_WIDE_PX`` (the main fused at its own size,
    below about 0.4 MP) neither the correction nor the wider band is applied: both are
    sized in grid px (a Gaussian of 8 px, a band of 4-12 px) and were measured at 12 MP
    and checked at 1024 px; at 512 px they cover twice the scene they cover at 1024, and on
    the synthetic scene 2 focused near the correction, taken from the ultra-wide's other
    content beside an occluding edge, darkened a 7 px strip of the in-focus card: in-focus
    PSNR -1.40 / -1.29 dB against the main (generic-phone / iphone-13; -0.08 / -0.04 without
    the correction, +0.26 / +0.34 without either), total 32.76 / 31.66 dB against 32.85 /
    31.72 without either (docs/BENCHMARKS.md, "Small images")."""
    if not wide_grid(main_t.shape[:2]):
        return refined_main(main_t, k, boost2=0.0)
    low = None
    if iwc is not None:
        h, w = main_t.shape[:2]
        small = (max(1, h // 4), max(1, w // 4))
        low = defocus_bias(iwc, out_shape=small)
        if agree is not None:
            low *= cv2.resize(agree, (small[1], small[0]), interpolation=cv2.INTER_AREA)[..., None]
        low *= -1.0
    return refined_main(main_t, k, low=low)


def top_band_signal(main: np.ndarray, main_t: np.ndarray, k: float = 1.5) -> np.ndarray:
    """0..1 on the fuse grid of ``main_t``: how much of the main's band above that grid
    (``main - up(main_t)``, luminance) is signal rather than noise, as a Wiener gain
    ``1 - k·N/E``: ``E`` its local energy (Gaussian of about 6 main px), ``N`` its noise
    energy by brightness (``noise_energy_map``: the 5th percentile of ``E`` per brightness
    bin). ``k = 1.5`` turns that percentile into the mean: ``E`` averages about 50 squared
    samples, whose 5th percentile is about 0.7 of their mean (chi-square), so pure noise
    gets a gain near 0.

    The band is sampled at every other pixel of every other row (the main's pixel by
    nearest-neighbour resize, ``up(main_t)`` there by a warp with the resize's own
    sampling positions: the same values, measured to 1e-7): an energy average needs no
    more, and the full-resolution version cost 110 ms of a 12 MP pair, this one about 40.

    Why a measure of its own: ``M_m`` compares the main with the ultra-wide at the fuse
    grid's density and says nothing about the band above it; on the real iPhone pair it is
    below 1 on in-focus facades that the other camera sees as sharp, and dropping the
    band there visibly softened railings and foliage."""
    H, W = main.shape[:2]
    h, w = main_t.shape[:2]
    H2, W2 = max(1, H // 2), max(1, W // 2)
    yt = _luma(main_t)
    ys = _luma(cv2.resize(main, (W2, H2), interpolation=cv2.INTER_NEAREST))  # pixels (2i, 2j)
    sx, sy = w / W, h / H  # cv2.resize's map: source = (dst + 0.5) * s - 0.5, here at dst = 2i
    M = np.float64([[2 * sx, 0, 0.5 * sx - 0.5], [0, 2 * sy, 0.5 * sy - 0.5]])
    yu = cv2.warpAffine(yt, M, (W2, H2), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_REPLICATE)
    band = cv2.subtract(ys, yu)
    small = (max(1, W2 // 2), max(1, H2 // 2))  # 4 samples per pixel, ~50 under the Gaussian
    e = cv2.GaussianBlur(cv2.resize(cv2.multiply(band, band), small, interpolation=cv2.INTER_AREA), (0, 0), 1.5)
    n = noise_energy_map(cv2.resize(yt, small, interpolation=cv2.INTER_AREA), e, floor=1e-4)
    g = np.clip(1.0 - k * n / (e + 1e-12), 0.0, 1.0).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)


def onto_main(main: np.ndarray, main_t: np.ndarray, corr: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The fused image at the main's resolution from the correction ``corr`` (``I - I_m`` on
    the fuse grid of ``main_t``, float32; on the main's own grid its buffer is reused for the
    output) and ``keep`` (``M_m`` on that grid).

    On the same grid: ``main + corr``. On a coarser one (12 MP pairs), the main's band
    above the fuse grid (``main - up(main_t)``: what the grid cannot hold) is kept with
    weight ``max(M_m, top_band_signal)``, i.e. ``W·main + (1 - W)·up(main_t) + up(corr)``:
    it is dropped only where the main is not the source and that band is at its noise
    level. The candidates that replace the main have nothing at that density (the
    ultra-wide has at most the fuse grid's, the refined main is built on it), and where the
    main is defocused the band is its sensor noise: kept everywhere (as before) it stayed on
    top of the ultra-wide's detail. 18 12 MP pairs: total PSNR 28.23 -> 28.5 dB, SSIM
    0.759 -> 0.80, LPIPS 0.264 -> 0.24, worst in-focus pair -0.32 -> 0.00 dB
    (docs/BENCHMARKS.md). Variants measured there: with ``W = M_m`` alone the same on the
    synthetic pairs but railings and foliage on the real iPhone pair went soft; with the
    gain alone (the band denoised everywhere) LPIPS rose on focused-far pairs (0.062 ->
    0.103 on one); dropping only coefficients below 4 noise sigmas scored as ``M_m`` alone;
    dropping them everywhere cost up to 2.2 dB in focus. Where ``W = 1`` the output is
    the main (to float32 precision)."""
    if corr.shape[:2] == main.shape[:2]:  # corr's buffer becomes the output (no new full-size array)
        cv2.add(main, corr, dst=corr)
        return np.clip(corr, 0.0, 1.0, out=corr)
    size = (main.shape[1], main.shape[0])
    up = lambda x, dst=None: cv2.resize(x, size, dst=dst, interpolation=cv2.INTER_LINEAR)  # noqa: E731
    keep = cv2.max(np.clip(keep, 0.0, 1.0).astype(np.float32), top_band_signal(main, main_t))
    out = up(main_t, np.empty(main.shape, np.float32))
    # W·main + (1 - W)·up(main_t) in one pass. blendLinear divides by the weights' sum plus
    # 1e-5; with both weights scaled by 1e5 that 1e-5 is below float32 precision, so W = 1
    # gives the main itself (unscaled it was off by 1e-5, a 16-bit code at white)
    wk = cv2.multiply(keep, 1e5)
    out = cv2.blendLinear(main, out, up(wk), up(cv2.subtract(1e5, wk)), dst=out)
    cv2.add(out, up(corr), dst=out)
    return np.clip(out, 0.0, 1.0, out=out)


def compose(main: np.ndarray, main_t: np.ndarray, iwc: np.ndarray, idr: np.ndarray, m_wc: np.ndarray,
            m_d: np.ndarray, levels: int | None = None, coarsest: bool = True) -> np.ndarray:
    """Eq. 2 as a multi-scale blend on the fuse grid, the correction added to the full main
    (``onto_main``, with ``M_m = 1 - M_wc - M_d``).

    ``I_wc - I_m`` is blended across a Laplacian pyramid, its coarsest level included
    (``coarsest``); ``I_d - I_m`` holds only the finest and a mid band (``refined_main``),
    so its smooth mask is applied at the finest level only (about the same result as its
    pyramid, at a fraction of the cost).

    Why the coarsest level: a defocused main is brighter than the in-focus scene wherever
    it blurs a texture (defocus averages light, and the display encoding is concave), by
    0.011-0.023 on the backgrounds of the 12 MP synthetic pairs focused near, at every
    scale up to the frame's. The colour match now fits on means of light
    (``match_colors``' ``linear_light``), so the colour-matched ultra-wide keeps the sharp
    scene's means, and where it replaces the main it replaces them too. Left to the main,
    that level kept the bias (docs/BENCHMARKS.md, "Means of light"). For the same reason
    the main's in-focus regions are protected (``pyramid_blend``'s ``protect``) by 2 px of
    each level on grids of ``MIN_WIDE_PX`` and more, not 8: the wider margin kept the bias
    in bands up to 128 px wide beside them. And there only regions of the main at least
    ``REGION_PX`` wide are protected at coarse levels (an opening of ``M_m``; the finest
    level still takes ``M_m`` as it is): specks of ``M_m`` inside a defocused area
    (``main_detail``'s flags on noise, flat patches) each cut a hole up to 2 px of level
    k wide into the ultra-wide's coarse bands. 18 pairs at 12 MP (one alignment each):
    29.340 -> 29.369 dB (focused far +0.06, near -0.005), worst in-focus pair +0.00; 9
    pairs of seed 1 focused far 29.094 -> 29.204; at 1024 px 32.127 -> 32.138, worst
    in-focus -0.09 -> -0.13 dB; at 512 px the opening cost in-focus PSNR (-0.15 -> -0.28 dB
    with 33 px), so small grids keep the plain mask (docs/BENCHMARKS.md, "Specks of the
    main mask").
    """
    levels = levels or _levels_for(main_t.shape[:2])
    protect = cv2.add(m_wc, m_d)
    limit, erosion = protect, 8  # what pyramid_blend protects at its coarse levels, and by how much
    if wide_grid(main_t.shape[:2]):
        erosion = 2
        # only regions of M_m at least REGION_PX wide: M_m = 1 - protect opened, i.e. protect closed (a
        # rectangle: separable, 6 ms at 12 MP, where a disc took 70 ms and measured the same)
        k = cv2.getStructuringElement(cv2.MORPH_RECT, (REGION_PX, REGION_PX))
        limit = cv2.morphologyEx(protect, cv2.MORPH_CLOSE, k)
    corr = pyramid_blend([cv2.subtract(iwc, main_t)], [m_wc], levels, protect=limit, coarsest=coarsest,
                         max_erosion=erosion)
    d = cv2.subtract(idr, main_t)
    d *= m_d[..., None]  # in place: no 36 MB temporary (see pyramid_blend)
    corr += d
    return onto_main(main, main_t, corr, cv2.subtract(1.0, protect))


def choose_fuse_scale(al: PairAlignment, main_shape: tuple[int, int]) -> float:
    """The ultra-wide's pixel density in the main's frame, in [0.5, 1]; small images run at 1."""
    if main_shape[0] * main_shape[1] <= 2_000_000:
        return 1.0
    s = float(np.clip(al.scale, 0.5, 1.0))
    # exactly 1/2 when close: OpenCV's 2x INTER_AREA and even sizes are much faster
    return 0.5 if s < 0.54 and main_shape[0] % 2 == 0 and main_shape[1] % 2 == 0 else s


def fuse_pair(main: np.ndarray, ultrawide: np.ndarray, preset: Any = None, *, ratio: float | None = None,
              alignment: PairAlignment | None = None, fuse_scale: float | None = None, use_confidence: bool = True,
              main_bias: float = 0.7, denoise: float = 4.0, levels: int | None = None, work_width: int = 1024,
              keep_intermediates: bool = False, main_path: Any = None, uw_path: Any = None,
              engine: str = "classical", weights: str | None = None, content_check: bool = True,
              min_confidence: float = 0.25, debias: bool = True) -> FuseResult:
    """All-in-focus main view from ``main`` and ``ultrawide`` (float32 HxWx3 RGB [0,1]).

    ``preset``/``ratio`` give the focal ratio for the initial guess (see ``align_pair``);
    ``use_confidence=False`` trusts the flow everywhere (an ablation: ghosts at occlusions;
    it also turns off the content check and ``main_detail``, which distrust the ultra-wide
    where it does not show the main's content);
    ``content_check``: also distrust the flow where the ultra-wide, under the colour match's
    global transform, shows other content than the main (objects that moved between the
    exposures; ``content_agreement``);
    ``main_bias``: the main keeps a pixel while its detail is at least this fraction of the
    ultra-wide's; ``denoise``: the refined main's noise threshold in noise sigmas
    (``refined_main``; 0 = no denoising).
    ``min_confidence`` (classical engine): the blend's ultra-wide weight never drops below
    this inside the ultra-wide's field, times the content check's agreement (so content the
    check rejects stays rejected): where the forward-backward check failed, this share of
    the defocused main's pixel still comes from the ultra-wide, the rest from the refined
    main. A failed check marks visible content whose flow is off more often
    than the wrong side of an occlusion (12 MP synthetic pairs focused near: 12.5-16.4 % vs
    3.4-4.5 % of the frame), and the refined main alone is as blurred as the main. 18
    pairs at 1024 px: 0 / 0.15 / 0.25 / 0.35 gave total PSNR 31.924 / 31.928 / 31.923 /
    31.910 dB and foreground LPIPS 0.1977 / 0.1942 / 0.1899 / 0.1854 (the ultra-wide alone:
    0.1914), occlusion-band RMSE 0.0438 -> 0.0439 at 0.25 (docs/BENCHMARKS.md).
    ``debias`` (classical engine): subtract ``defocus_bias`` of the colour-matched
    ultra-wide from the refined main.
    ``engine``: "classical" (the masks above) or "net" (the colour transform comes from
    ``aifcli.nets.color_net`` and the masks, re-alignment offset and refined main from
    ``aifcli.nets.fuse_net``, weights ``weights`` or the shipped ``fuse-net``;
    ``main_bias``/``denoise``/``levels`` then do not apply).
    """
    if engine not in ("classical", "net"):
        raise UsageError(f"unknown engine {engine!r}: use classical or net")
    if not 0.0 <= min_confidence <= 1.0:
        raise UsageError(f"min_confidence must be in 0..1, got {min_confidence}")
    model = cmodel = None
    t_load = time.perf_counter()
    if engine == "net":
        from ..nets.color_net import load as load_color
        from ..nets.fuse_net import load

        model = load(weights)  # fails early, before the alignment work, when weights are missing
        cmodel = load_color()[0]
    T: dict[str, float] = {}
    if engine == "net":  # import torch + read and check both weights files
        T["load_models"] = time.perf_counter() - t_load
    t0 = time.perf_counter()
    al = alignment or align_pair(main, ultrawide, ratio=ratio, preset=preset, work_width=work_width,
                                 main_path=main_path, uw_path=uw_path)
    T["align"] = time.perf_counter() - t0
    t = fuse_scale or choose_fuse_scale(al, main.shape[:2])
    t0 = time.perf_counter()
    main_t = _resize(main, t)
    shape_t = main_t.shape[:2]
    uwf = al.warp(ultrawide, shape_t)
    infield = al.infield_at(shape_t)
    conf = al.confidence_at(shape_t) if use_confidence else infield
    T["warp"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if cmodel is not None:
        from ..nets.color_net import match_colors_net

        cm = match_colors_net(uwf, main_t, mask=conf, model=cmodel)
    else:
        cm = match_colors(uwf, main_t, mask=conf)
    iwc = cm.image
    content_rejected = 0.0
    agree = None
    if use_confidence and content_check:
        agree = content_agreement(uwf, main_t, cm.global_matrix)
        checked = conf * agree
        content_rejected = float(conf.mean() - checked.mean())
        conf = checked
    # the blend's weight for the ultra-wide: the confidence, floored at min_confidence inside
    # the field where the content check lets it (classical engine; fuse-net was trained on
    # the plain confidence)
    floor = float(min_confidence) if use_confidence and model is None else 0.0
    wconf = conf
    if floor > 0:
        region = infield if agree is None else cv2.multiply(infield, agree)
        wconf = cv2.max(conf, cv2.multiply(region, floor))
    T["color"] = time.perf_counter() - t0
    if model is not None:
        from ..nets.fuse_net import fuse_with_net

        t0 = time.perf_counter()
        out, nm, idr = fuse_with_net(model, main, main_t, iwc, conf, infield)
        mm, m_wc, m_d = nm[..., 0], nm[..., 1], nm[..., 2]
        T["net"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        # Compare sharpness at the ultra-wide's own density (it is upsampled on the fuse grid).
        ts = float(np.clip(al.scale / t, 0.25, 1.0))
        at_ts = (lambda x: _resize(x, ts)) if ts < 0.95 else (lambda x: x)  # noqa: E731
        sig = BICUBIC_UW_SIGMA if al.interpolation(shape_t) == cv2.INTER_CUBIC else 0.0
        mm = main_mask(at_ts(main_t), at_ts(iwc), at_ts(infield), bias=main_bias, own_detail=use_confidence,
                       uw_sigma=sig)
        if ts < 0.95:
            mm = np.clip(cv2.resize(mm, (shape_t[1], shape_t[0]), interpolation=cv2.INTER_LINEAR), 0, 1)
        m_wc = (1.0 - mm) * wconf
        m_d = (1.0 - mm) * (1.0 - wconf)
        # where the main itself is clearly sharp the denoised main does not replace it (at
        # 12 MP the comparison above can see wrong-side-of-occlusion ultra-wide content there)
        keep = m_d * sharp_main(main_t)
        mm = mm + keep
        m_d = m_d - keep
        T["masks"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        idr = debiased_refined_main(main_t, iwc if debias else None, denoise, agree)
        out = compose(main, main_t, iwc, idr, m_wc, m_d, levels)
        T["blend"] = time.perf_counter() - t0
    inter: dict[str, np.ndarray] = {}
    if keep_intermediates:
        inter = {"homography_warped": al.warp(ultrawide, shape_t, use_flow=False), "flow_warped": uwf,
                 "color_matched": iwc, "refined_main": np.clip(idr, 0, 1), "confidence": conf,
                 "mask_main": mm, "mask_ultrawide": m_wc, "mask_refined": m_d}
    res = FuseResult(out, {"main": mm, "ultrawide": m_wc, "refined": m_d}, conf, al, t, cm.to_dict(), T, inter)
    res.engine = engine
    res.content_rejected = content_rejected
    res.min_confidence = floor
    return res
