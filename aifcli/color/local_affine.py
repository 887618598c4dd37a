"""Locally varying affine colour transfer, fitted on low frequencies (WDC-Net's job, classically).

Two cameras differ in white balance, tone curve and vignetting: smooth, low-frequency
effects. On a coarse copy of both images (``fit_width`` px wide, where a defocused main
and a sharp ultra-wide look alike), every pixel gets a 3x3 matrix + offset fitted by
weighted least squares over a large window, like a guided filter with a colour guide:

    A(p)^T = (Cov_w[s,s] + eps I)^-1 (Cov_w[s,r] + eps A_g^T),   b(p) = mean_w[r] - A(p) mean_w[s]

with weights ``w`` (the mask: confidence of the alignment), ridge-regularised towards a
global weighted affine fit ``A_g, b_g``, and blended into the global fit where the window
holds too little weight. The coefficient fields are smooth, so they are upsampled and
applied to the source at its own resolution: detail keeps its structure, colours move.

The coarse copies are area averages of *light* (``linear_light``): each image is decoded
with the sRGB curve, averaged, and encoded again. Defocus spreads light, so it keeps local
means in linear light, not in display values: a defocused texture's display-space mean is
brighter than the sharp texture's (the encoding is concave; Jensen's inequality). Fitted on
display-space means, the sharp ultra-wide was given the defocused main's brighter means
(12 MP synthetic pairs, focused near: the main's background +0.011-0.023 too bright at
scales of 16-32 px, but within 0.0015-0.0022 RMS of the truth when both are blurred in
light; docs/BENCHMARKS.md, "Means of light").
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InputError
from ..image import linear_to_srgb, srgb_to_linear


@dataclass
class ColorMatchResult:
    image: np.ndarray  # source with the reference's colours, float32 HxWx3 [0,1]
    global_matrix: np.ndarray  # 3x4 [A | b] of the global fit
    local: bool  # False when it fell back to the global fit everywhere
    weight_fraction: float  # mean mask weight on the fitting grid
    residual_before: float  # weighted RMS difference (low frequencies) before and after
    residual_after: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"global_matrix": np.round(self.global_matrix, 5).tolist(), "local": self.local,
                "weight_fraction": round(self.weight_fraction, 4), "residual_before": round(self.residual_before, 5),
                "residual_after": round(self.residual_after, 5),
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def _global_fit(s: np.ndarray, r: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """Weighted affine fit r ~ A s + b over all pixels; returns 3x4 [A | b]."""
    X = np.concatenate([s.reshape(-1, 3), np.ones((s.shape[0] * s.shape[1], 1), np.float32)], 1).astype(np.float64)
    Y = r.reshape(-1, 3).astype(np.float64)
    ww = w.reshape(-1).astype(np.float64)
    XtW = X.T * ww
    reg = np.diag([eps, eps, eps, 0.0]) * ww.sum()
    prior = np.vstack([np.eye(3), np.zeros((1, 3))])  # ridge towards identity
    M = np.linalg.solve(XtW @ X + reg, XtW @ Y + reg @ prior)
    return M.T.astype(np.float32)  # 3x4


# sRGB decoding of the 256 8-bit codes (``area_mean_of_light``'s fast path)
_DECODE = srgb_to_linear(np.arange(256, dtype=np.float32) / np.float32(255.0))


def area_mean_of_light(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` (display-encoded [0,1]) shrunk to ``size`` by averaging light: sRGB-decoded
    (through an 8-bit table: 20 ms at 2016x1512 with the area average, against 65 ms for
    the exact curve alone; the rounding averages out over the >= 4x4 pixels of each output
    pixel), area-averaged, and encoded again. A defocused and a sharp image of the same
    scene give the same result, which display-space averaging does not (see the module's
    docstring)."""
    if img.shape[1] < 4 * size[0]:  # few pixels per output pixel: the exact curve, no rounding
        lin = srgb_to_linear(np.clip(img, 0.0, 1.0))
    else:
        lin = cv2.LUT(cv2.convertScaleAbs(img, alpha=255.0), _DECODE)
    return linear_to_srgb(cv2.resize(lin, size, interpolation=cv2.INTER_AREA))


def check_pair(source: np.ndarray, reference: np.ndarray, source_path=None) -> None:
    """Both RGB, same aspect ratio within 2 %: what any colour match of the two needs."""
    if source.ndim != 3 or source.shape[2] != 3 or reference.ndim != 3 or reference.shape[2] != 3:
        raise InputError("colour matching needs two RGB images", source_path)
    sh, sw = source.shape[:2]
    rh, rw = reference.shape[:2]
    if abs(sw / sh - rw / rh) > 0.02 * sw / sh:
        raise InputError(f"source {sw}x{sh} and reference {rw}x{rh} have different aspect ratios", source_path,
                         "align the images first (aif align) so they cover the same view")


def match_colors(source: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None, *,
                 fit_width: int = 192, radius: float = 0.12, eps: float = 2e-3, min_weight: float = 0.15,
                 prefit_sigma: float = 1.0, linear_light: bool = True, source_path=None) -> ColorMatchResult:
    """Give ``source`` the colours of ``reference`` (both HxWx3 float32 [0,1], roughly aligned).

    ``mask``: HxW weights in [0,1] (any size; e.g. alignment confidence); 0 ignores a pixel.
    ``radius``: fitting window half-size as a fraction of the fitting grid's width.
    ``reference`` may have a different size than ``source`` (it is only used coarsely).
    ``linear_light``: fit on area means of light (``area_mean_of_light``), so a defocused
    reference and a sharp source are compared as equals; False fits on display-space means.
    """
    t0 = time.perf_counter()
    check_pair(source, reference, source_path)
    sh, sw = source.shape[:2]
    fw = min(fit_width, sw)
    fh = max(2, round(fw * sh / sw))
    if linear_light:
        s, r = (area_mean_of_light(x, (fw, fh)) for x in (source, reference))
    else:
        s = cv2.resize(source, (fw, fh), interpolation=cv2.INTER_AREA)
        r = cv2.resize(reference, (fw, fh), interpolation=cv2.INTER_AREA)
    if prefit_sigma > 0:  # equal low-pass on both: compare the same frequencies (of light, like the means)
        blur = lambda x: cv2.GaussianBlur(x, (0, 0), prefit_sigma)  # noqa: E731
        if linear_light:
            blur = lambda x: linear_to_srgb(cv2.GaussianBlur(srgb_to_linear(x), (0, 0), prefit_sigma))  # noqa: E731
        s, r = blur(s), blur(r)
    if mask is None:
        w = np.ones((fh, fw), np.float32)
    else:
        m = np.asarray(mask, np.float32)
        if m.ndim == 3:
            m = m[..., 0]
        w = np.clip(cv2.resize(m, (fw, fh), interpolation=cv2.INTER_AREA), 0, 1)
    # saturated pixels carry no colour information
    w = (w * (s.max(axis=2) < 0.985) * (r.max(axis=2) < 0.985)).astype(np.float32)
    wf = float(w.mean())
    if w.sum() < 16:
        w = np.ones_like(w) * 1e-3  # nothing reliable: fit everywhere, weakly
    G = _global_fit(s, r, w, eps)
    rad = max(2, int(round(radius * fw)))
    W = _box(w, rad) + 1e-6
    mean = lambda x: _box(x * w, rad) / W  # noqa: E731
    ms = np.stack([mean(s[..., i]) for i in range(3)], -1)
    mr = np.stack([mean(r[..., i]) for i in range(3)], -1)
    css = np.empty((fh, fw, 3, 3), np.float32)
    csr = np.empty((fh, fw, 3, 3), np.float32)
    for i in range(3):
        for j in range(3):
            if j >= i:
                css[..., i, j] = mean(s[..., i] * s[..., j]) - ms[..., i] * ms[..., j]
                css[..., j, i] = css[..., i, j]
            csr[..., i, j] = mean(s[..., i] * r[..., j]) - ms[..., i] * mr[..., j]
    Ag_T = G[:, :3].T
    lhs = css + eps * np.eye(3, dtype=np.float32)
    rhs = csr + eps * Ag_T
    AT = np.linalg.solve(lhs.reshape(-1, 3, 3), rhs.reshape(-1, 3, 3)).reshape(fh, fw, 3, 3)
    A = np.swapaxes(AT, -1, -2)  # A[..., out, in]
    b = mr - np.einsum("hwij,hwj->hwi", A, ms)
    # where the window holds little reliable weight, use the global fit
    alpha = np.clip(W / min_weight, 0, 1)[..., None]
    A = A * alpha[..., None] + G[:, :3] * (1 - alpha[..., None])
    b = b * alpha + G[:, 3] * (1 - alpha)
    coef = np.concatenate([A.reshape(fh, fw, 9), b], -1).astype(np.float32)  # 12 channels
    coef = cv2.GaussianBlur(coef.reshape(fh, fw, 12), (0, 0), max(1.0, rad / 3))  # no block edges
    t_fit = time.perf_counter() - t0
    # residual on the fitting grid (weighted RMS), before and after
    pred = np.einsum("hwij,hwj->hwi", coef[..., :9].reshape(fh, fw, 3, 3), s) + coef[..., 9:]
    ww = w[..., None] + 1e-9
    res_b = float(np.sqrt(((s - r) ** 2 * ww).sum() / (ww.sum() * 3)))
    res_a = float(np.sqrt(((pred - r) ** 2 * ww).sum() / (ww.sum() * 3)))
    t1 = time.perf_counter()
    out = apply_coefficients(source, coef)
    timings = {"fit": t_fit, "apply": time.perf_counter() - t1}
    return ColorMatchResult(out, G, bool(alpha.mean() > 0.01 and wf > 0), wf, res_b, res_a, timings)


def apply_coefficients(source: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """out_c = sum_k A[c,k] * src_k + b_c with the 12-channel field ``coef`` upsampled to ``source``."""
    sh, sw = source.shape[:2]
    out = np.empty_like(source, dtype=np.float32)
    planes = cv2.split(np.ascontiguousarray(source, dtype=np.float32))
    ak = np.empty((sh, sw), np.float32)
    for c in range(3):
        acc = cv2.resize(np.ascontiguousarray(coef[..., 9 + c]), (sw, sh), interpolation=cv2.INTER_LINEAR)
        for k in range(3):
            cv2.resize(np.ascontiguousarray(coef[..., 3 * c + k]), (sw, sh), dst=ak, interpolation=cv2.INTER_LINEAR)
            cv2.accumulateProduct(ak, planes[k], acc)  # acc += a_ck * src_k, in place
        out[..., c] = acc
    return np.clip(out, 0.0, 1.0, out=out)
