"""Aligning a phone's ultra-wide (or any wider) image to its main image.

The ultra-wide sees a wider field from a viewpoint about a centimetre away, so the
main view is roughly a centred, scaled crop of it, plus parallax. Stages
(DESIGN.md §2 "Pairs", EasyAIF §III-C):

1. Initial guess: a centred scaling from the 35 mm focal ratio (presets or EXIF).
2. Homography: SIFT on downscaled, CLAHE-normalised luminance of the main and of the
   ultra-wide pre-warped by the guess, ratio-test matching, ``cv2.findHomography``
   with ``USAC_MAGSAC``.
3. Dense residual flow (parallax) with DIS on blur-matched, downscaled images, in both
   directions.
4. Confidence: forward-backward consistency (EasyAIF eq. 1, with the relative
   threshold |f + b|^2 <= 0.01(|f|^2 + |b|^2) + 0.5 at flow scale) and the
   ultra-wide's field of view (pixels it does not see get zero confidence).
5. Defocus-matched flow: where the main is more blurred than the ultra-wide, DIS again
   against the ultra-wide blurred to the main's local sharpness, on a coarser grid; its
   consistent vectors replace the first flow there (``defocus_matched_flow``).
6. Coarse fallback: inconsistent pixels (typically a heavily defocused background, where
   the main lacks the texture the fine flow follows) take consistent flow from grids 2x
   and 4x coarser when it agrees with the fine consistent flow around them
   (``coarse_fallback``).
7. Epipolar projection: the two cameras sit side by side, so all parallax runs along one
   image direction; consistent vectors get their component across it from a smooth
   fitted field (``epipolar_projection``).
8. Defocused objects: a near object the main shows as a featureless blur gets one
   parallax, matched from its blurred silhouette along that direction
   (``defocused_object_flow``).
9. Tile refinement: the consistent flow is corrected by a smooth field of shifts, each
   matched on a large tile of the main against the flow-warped ultra-wide blurred by the
   disc that makes it look like the main (``refine_flow_tiles``).

Everything is estimated on a small grid (``work_width`` pixels wide, about 1/4 of a
12 MP frame); the result can then warp the ultra-wide onto the main grid at any scale
(``PairAlignment.warp``) without ever running features or flow at full resolution.
All coordinates are pixel centres (x, y) with the OpenCV convention.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..image import linear_to_srgb, luminance, srgb_to_linear

FULL_FRAME_DIAGONAL_MM = 43.27


@dataclass
class PairAlignment:
    """What ``align_pair`` found; maps main pixels to ultra-wide pixels."""

    H: np.ndarray  # 3x3, main full-res px -> ultra-wide full-res px (the plane at infinity-ish)
    H0: np.ndarray  # the initial guess from the focal ratio
    main_shape: tuple[int, int]  # (H, W) of the main image
    uw_shape: tuple[int, int]
    work_scale: float  # main px -> work grid px (a)
    flow: np.ndarray  # (h, w, 2) forward residual flow on the work grid, work px (main -> H-warped uw)
    flow_bw: np.ndarray  # (h, w, 2) backward flow (H-warped uw -> main), work px; not tile-refined (only the forward is)
    confidence: np.ndarray  # (h, w) float32 [0,1] on the work grid (0 = occluded / inconsistent / outside)
    infield: np.ndarray  # (h, w) float32, 1 where the ultra-wide sees the main pixel
    matches: int = 0
    inliers: int = 0
    residual_px: float = float("nan")  # median inlier reprojection error, main full-res px
    ratio: float = 1.0  # focal ratio used for the guess
    swapped_hint: bool = False  # the 'ultra-wide' turned out narrower than the main
    used_prior: bool = False  # too few feature matches: H is the focal-ratio guess, flow did the rest
    plane: str = "dominant plane"  # which homography was kept: dominant / farther plane / focal-ratio guess
    agreement: float = float("nan")  # band-pass correlation of main and warped ultra-wide (0..1)
    epipolar: dict[str, Any] = field(default_factory=dict)  # what epipolar_projection fitted or why it skipped
    refine: dict[str, Any] = field(default_factory=dict)  # refine_flow_tiles: tiles used, shifts, or why it skipped
    timings: dict[str, float] = field(default_factory=dict)
    work_scale_y: float | None = None  # the work grid's y factor where rounding made it differ from x
    ramp_fraction: float = 0.0  # consistent pixels flow_ramps took out of the confidence (fraction of the grid)

    @property
    def work_scales(self) -> tuple[float, float]:
        """(x, y) factors main px -> work grid px (``_axis_scales``)."""
        return self.work_scale, self.work_scale if self.work_scale_y is None else self.work_scale_y

    # --- geometry ---------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """Ultra-wide pixels per main pixel at the image centre (about 1/ratio for equal sensors)."""
        return float(_local_scale(self.H, self.main_shape))

    def uw_map(self, shape: tuple[int, int], use_flow: bool = True) -> np.ndarray:
        """Absolute ultra-wide full-res coordinates (HxWx2 float32) for a main grid of ``shape``.

        ``shape`` is the main image resampled to (h, w); pixel centres follow cv2.resize.
        """
        h0, w0 = self.flow.shape[:2]
        ax, ay = self.work_scales
        ys, xs = np.mgrid[0:h0, 0:w0].astype(np.float32)
        if use_flow:
            xs = xs + self.flow[..., 0]
            ys = ys + self.flow[..., 1]
        # work px -> main full px (pixel-centre convention of cv2.resize)
        xf = (xs + 0.5) / ax - 0.5
        yf = (ys + 0.5) / ay - 0.5
        pts = np.stack([xf, yf], axis=-1).reshape(-1, 1, 2)
        uv = cv2.perspectiveTransform(pts, self.H).reshape(h0, w0, 2)
        if (h0, w0) != tuple(shape):
            uv = cv2.resize(uv, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        return uv.astype(np.float32)

    def warp(self, uw: np.ndarray, shape: tuple[int, int] | None = None, use_flow: bool = True,
             border: float = 0.0) -> np.ndarray:
        """The ultra-wide resampled onto the main grid of ``shape`` (default: full main size).

        With ``use_flow=False`` only the homography is applied (EasyAIF's I_w,r).
        The ultra-wide is pre-shrunk (INTER_AREA) when it is denser than the target grid,
        so the result does not alias.

        The kernel follows the density (``interpolation``): bicubic, clipped to [0, 1],
        where the ultra-wide is resampled at about its own density, bilinear where it is
        upsampled.
        """
        shape = tuple(shape or self.main_shape)
        if not use_flow:
            return self._warp_h(uw, shape, border)
        uv = self.uw_map(shape, use_flow=True)
        src, c = _prefilter(uw, self.density(shape))
        if c != (1.0, 1.0):
            uv = (uv + 0.5) * np.float32(c) - 0.5  # per axis: (x, y) on the last axis
        out = cv2.remap(src, uv[..., 0], uv[..., 1], self.interpolation(shape), borderMode=cv2.BORDER_CONSTANT,
                        borderValue=(border, border, border))
        return _clip_float(out)

    def density(self, shape: tuple[int, int]) -> float:
        """Ultra-wide px per px of a main grid of ``shape`` (> 1.25: ``warp`` pre-shrinks it)."""
        return self.scale * self.main_shape[1] / shape[1]

    def interpolation(self, shape: tuple[int, int]) -> int:
        """The warp's kernel onto a grid of ``shape``: ``cv2.INTER_CUBIC`` where that grid
        holds at most 1.25 of the ultra-wide's px per px (at 12 MP the fuse grid has about
        its density, ``fuse.pair.choose_fuse_scale``), else ``cv2.INTER_LINEAR``.

        Why both: resampling about 1:1 at fractional offsets, bilinear interpolation is a
        low-pass (at half a pixel it passes 0.71 of half the Nyquist frequency and nothing
        at Nyquist) on exactly the detail the ultra-wide is there to give; upsampling it 2x
        (pairs of 2 MP or less, fused at the main's size; the full-size ``aif align``
        output) there is no such loss to undo, and bicubic's weights keep 1.9x the
        variance of its noise that bilinear's do (at a quarter pixel). Measured, both
        kernels everywhere (docs/BENCHMARKS.md): 18 12 MP pairs, fused 28.89 / 0.8139 /
        0.2362 -> 28.97 / 0.8165 / 0.2193 (PSNR / SSIM / LPIPS), the colour-matched
        ultra-wide alone 26.07 -> 26.12 dB; 18 1024 px pairs, fused 31.94 / 0.8664 / 0.1337
        -> 31.97 / 0.8647 / 0.1353, the ultra-wide alone 28.26 -> 28.01 dB (LPIPS 0.1786 ->
        0.1954). About 30 ms more per 12 MP pair."""
        return cv2.INTER_CUBIC if self.density(shape) >= 0.8 else cv2.INTER_LINEAR

    def _warp_h(self, uw: np.ndarray, shape: tuple[int, int], border: float) -> np.ndarray:
        t = shape[1] / self.main_shape[1]
        src, c = _prefilter(uw, self.density(shape))
        M = _scale_mat(c) @ self.H @ np.linalg.inv(_scale_mat(t))
        out = cv2.warpPerspective(src, M, (shape[1], shape[0]), flags=self.interpolation(shape) | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(border, border, border))
        return _clip_float(out)

    def confidence_at(self, shape: tuple[int, int]) -> np.ndarray:
        return _resize1(self.confidence, shape)

    def infield_at(self, shape: tuple[int, int]) -> np.ndarray:
        return _resize1(self.infield, shape)

    def flow_at(self, shape: tuple[int, int]) -> np.ndarray:
        """Residual flow after the homography, in pixels of a main grid of ``shape`` (each
        component by its own axis' factor: rounding the work grid's size makes them differ)."""
        f = cv2.resize(self.flow, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        return f * np.float32([shape[1] / self.flow.shape[1], shape[0] / self.flow.shape[0]])

    def with_uw_map(self, uw_map: np.ndarray, confidence: np.ndarray | None = None) -> "PairAlignment":
        """A copy whose flow reproduces the absolute ultra-wide coordinates ``uw_map`` (HxWx2,
        any main grid, e.g. ``aif synth``'s ground truth), with ``confidence`` (work grid;
        default: unchanged). For ablations: how much of the fused error is the flow's."""
        h0, w0 = self.flow.shape[:2]
        ax, ay = self.work_scales
        g = uw_map if uw_map.shape[:2] == (h0, w0) else cv2.resize(uw_map, (w0, h0), interpolation=cv2.INTER_AREA)
        q = cv2.perspectiveTransform(g.reshape(1, -1, 2).astype(np.float64), np.linalg.inv(self.H)).reshape(h0, w0, 2)
        ys, xs = np.mgrid[0:h0, 0:w0].astype(np.float64)
        flow = np.stack([(q[..., 0] + 0.5) * ax - 0.5 - xs, (q[..., 1] + 0.5) * ay - 0.5 - ys], -1).astype(np.float32)
        return replace(self, flow=flow, confidence=self.confidence if confidence is None else confidence.astype(np.float32))

    def to_dict(self) -> dict[str, Any]:
        return {"H": self.H.tolist(), "H_initial": self.H0.tolist(), "main_size": [self.main_shape[1], self.main_shape[0]],
                "ultrawide_size": [self.uw_shape[1], self.uw_shape[0]], "focal_ratio": round(self.ratio, 4),
                "scale_uw_px_per_main_px": round(self.scale, 5), "matches": self.matches, "inliers": self.inliers,
                "residual_px": round(self.residual_px, 3), "work_scale": round(self.work_scale, 5),
                "work_scale_y": round(self.work_scales[1], 5),
                "confident_fraction": round(float(self.confidence.mean()), 4),
                "infield_fraction": round(float(self.infield.mean()), 4),
                "flow_median_px": round(float(np.median(np.linalg.norm(self.flow, axis=-1)) / self.work_scale), 3),
                "swapped_hint": self.swapped_hint, "used_prior": self.used_prior, "plane": self.plane,
                "agreement": round(float(self.agreement), 4), "epipolar": self.epipolar, "tile_refinement": self.refine,
                "flow_ramp_fraction": round(self.ramp_fraction, 4),
                "timings": {k: round(v, 4) for k, v in self.timings.items()},
                "convention": "H maps main full-res pixel centres (x, y, 1) to ultra-wide full-res pixel centres"}


# --- helpers ------------------------------------------------------------------------------
def _scale_mat(a: float | tuple[float, float]) -> np.ndarray:
    """Full-res px -> px of an image resized by ``a`` (cv2.resize pixel-centre convention);
    ``a`` is one factor or (x, y) factors (``_axis_scales``)."""
    ax, ay = (a, a) if np.isscalar(a) else a
    return np.array([[ax, 0, 0.5 * ax - 0.5], [0, ay, 0.5 * ay - 0.5], [0, 0, 1]], dtype=np.float64)


def _axis_scales(small: np.ndarray, big: np.ndarray) -> tuple[float, float]:
    """The (x, y) factors by which ``small`` is a resized ``big``. Rounding the size makes
    them differ: a 4032x3024 ultra-wide shrunk by 0.4928 is 1987x1490 px, 0.492808 across
    and 0.492725 down, and one factor for both axes put the bottom of the frame 0.5
    ultra-wide px off in y (1.35 px for a 3648x2736 frame shrunk to 1338x1004)."""
    return small.shape[1] / big.shape[1], small.shape[0] / big.shape[0]


def _local_scale(H: np.ndarray, shape: tuple[int, int]) -> float:
    cx, cy = (shape[1] - 1) / 2, (shape[0] - 1) / 2
    p = np.array([[[cx, cy]], [[cx + 1, cy]], [[cx, cy + 1]]], dtype=np.float64)
    q = cv2.perspectiveTransform(p, H).reshape(3, 2)
    J = np.stack([q[1] - q[0], q[2] - q[0]], axis=1)
    return float(np.sqrt(abs(np.linalg.det(J))))


def _clip_float(img: np.ndarray) -> np.ndarray:
    """Bicubic overshoot back into [0, 1], in place (integer images saturate by themselves)."""
    return np.clip(img, 0.0, 1.0, out=img) if img.dtype.kind == "f" else img


def _prefilter(img: np.ndarray, density: float) -> tuple[np.ndarray, tuple[float, float]]:
    """Shrink ``img`` when it has ``density`` > 1.25 source px per target px; returns the
    image and its (x, y) factors (``_axis_scales``)."""
    if density <= 1.25:
        return img, (1.0, 1.0)
    c = 1.0 / density
    h, w = img.shape[:2]
    nw, nh = max(1, round(w * c)), max(1, round(h * c))
    out = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return out, _axis_scales(out, img)


def _work_scale(h: int, w: int, width: int) -> float:
    """About ``width / w``, snapped to 1/n when n divides both sides (OpenCV's INTER_AREA is
    2-3x faster for integer factors: 18 vs 48 ms on a 12 MP frame here)."""
    if w <= width:
        return 1.0
    n = max(1, round(w / width))
    if w % n == 0 and h % n == 0 and 0.75 * width <= w / n <= 1.34 * width:
        return 1.0 / n
    return width / w


def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-6:
        return img
    h, w = img.shape[:2]
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _resize1(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if m.shape[:2] == tuple(shape):
        return m
    return np.clip(cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR), 0, 1)


def _luma709(img: np.ndarray) -> np.ndarray:
    """Rec.709 luma of an RGB image (``aifcli.image.luminance``); a 2-D image is taken as luma already."""
    return luminance(img) if img.ndim == 3 else img


def _gray8(rgb: np.ndarray) -> np.ndarray:
    """Rec.709 luma as uint8."""
    return np.clip(_luma709(rgb) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _clahe(g: np.ndarray) -> np.ndarray:
    tiles = max(2, min(8, g.shape[1] // 64))
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(tiles, tiles)).apply(g)


def initial_homography(main_shape: tuple[int, int], uw_shape: tuple[int, int], ratio: float) -> np.ndarray:
    """Centred scaling from the 35 mm focal ratio (main / ultra-wide): main px -> ultra-wide px.

    35 mm equivalents are defined on the diagonal, so the ultra-wide covers ``ratio`` times
    the main's diagonal field; pixels per diagonal scale with each image's own size.
    """
    dm = np.hypot(*main_shape)
    du = np.hypot(*uw_shape)
    s = du / dm / ratio
    cm = ((main_shape[1] - 1) / 2, (main_shape[0] - 1) / 2)
    cu = ((uw_shape[1] - 1) / 2, (uw_shape[0] - 1) / 2)
    return np.array([[s, 0, cu[0] - s * cm[0]], [0, s, cu[1] - s * cm[1]], [0, 0, 1]], dtype=np.float64)


def _sift(g: np.ndarray, n: int, mask: np.ndarray | None = None) -> tuple[list[Any], np.ndarray | None]:
    sift = cv2.SIFT_create(nfeatures=n, contrastThreshold=0.02)
    return sift.detectAndCompute(g, mask)


def _match(d1: np.ndarray | None, d2: np.ndarray | None, ratio: float = 0.8) -> list[tuple[int, int]]:
    if d1 is None or d2 is None or len(d1) < 2 or len(d2) < 2:
        return []
    if len(d1) * len(d2) > 4_000_000:
        matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 48})
    else:
        matcher = cv2.BFMatcher(cv2.NORM_L2)
    out = []
    for m in matcher.knnMatch(d1, d2, k=2):
        if len(m) == 2 and m[0].distance < ratio * m[1].distance:
            out.append((m[0].queryIdx, m[0].trainIdx))
    return out


# --- the stages ---------------------------------------------------------------------------
def estimate_homography(main_s: np.ndarray, uw: np.ndarray, main_shape: tuple[int, int],
                        a: tuple[float, float], H0: np.ndarray, n_features: int = 3000, min_inliers: int = 20,
                        uw_path: Any = None, sift_width: int = 640
                        ) -> tuple[np.ndarray | None, int, int, float, dict[str, float], np.ndarray, tuple[float, float]]:
    """Homography (main full px -> uw full px) from SIFT on the work grid (None if too few agree).

    ``main_s`` is the main image already resized by the (x, y) factors ``a``. The
    ultra-wide is shrunk to the same pixel density and pre-warped by ``H0`` so that SIFT compares like with like.
    Returns (H, matches, inliers, median residual in main px, timings, shrunk ultra-wide, its (x, y) scales).
    """
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    h, w = main_s.shape[:2]
    s0 = _local_scale(H0, main_shape)
    b = min(1.0, a[0] / max(s0, 1e-6))
    uw_s = _resize(uw, b)
    b = _axis_scales(uw_s, uw)
    uw_s0, b0 = uw_s, b  # handed back: the ultra-wide at about the work grid's density
    G = _scale_mat(b) @ H0 @ np.linalg.inv(_scale_mat(a))  # work main px -> small uw px
    uw_p = cv2.warpPerspective(uw_s, G, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    valid = cv2.warpPerspective(np.full(uw_s.shape[:2], 255, np.uint8), G, (w, h),
                                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    gm = _clahe(_gray8(main_s))
    gu = _clahe(_gray8(uw_p))
    vmask = cv2.erode(valid, np.ones((5, 5), np.uint8))
    k = min(1.0, sift_width / w)  # SIFT on an even smaller copy: its cost grows with the pixel count
    if k < 1.0:
        size = (round(w * k), round(h * k))
        gm, gu = (cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (gm, gu))
        vmask = cv2.resize(vmask, size, interpolation=cv2.INTER_NEAREST)
        k = size[0] / w
    t["prewarp"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    km, dm = _sift(gm, n_features)
    ku, du = _sift(gu, n_features, vmask)
    t["sift"] = time.perf_counter() - t0
    back = lambda pts: (pts + 0.5) / k - 0.5  # noqa: E731  (SIFT px -> work px)
    t0 = time.perf_counter()
    pairs = _match(dm, du)
    t["match"] = time.perf_counter() - t0
    G_used = G
    back_u = back
    if len(pairs) < min_inliers * 2:
        # The focal-ratio guess may be off (unknown camera, cropped file): match against the
        # whole ultra-wide at a density guessed from sizes alone; SIFT is scale-invariant.
        t0 = time.perf_counter()
        b2 = min(1.0, max(w, h) / max(uw.shape[:2]) * 1.5)
        uw_s2 = _resize(uw, b2)
        gu2 = _clahe(_gray8(uw_s2))
        ku2, du2 = _sift(gu2, n_features * 2)
        pairs2 = _match(dm, du2)
        t["sift_fallback"] = time.perf_counter() - t0
        if len(pairs2) > len(pairs):
            pairs, ku = pairs2, ku2
            b = _axis_scales(uw_s2, uw)
            G_used = np.eye(3)  # points are already in small-uw px
            G = None
            back_u = lambda pts: pts  # noqa: E731
    n_match = len(pairs)
    if n_match < min_inliers:
        return None, n_match, 0, float("nan"), t, uw_s0, b0
    t0 = time.perf_counter()
    pm = back(np.float32([km[i].pt for i, _ in pairs]).reshape(-1, 1, 2))
    pu = back_u(np.float32([ku[j].pt for _, j in pairs]).reshape(-1, 1, 2))
    Hr, inl = cv2.findHomography(pm, pu, cv2.USAC_MAGSAC, 1.5 / min(k, 1.0) ** 0.5, maxIters=5000, confidence=0.999)
    t["magsac"] = time.perf_counter() - t0
    n_inl = int(inl.sum()) if inl is not None else 0
    if Hr is None or n_inl < min_inliers:
        return None, n_match, n_inl, float("nan"), t, uw_s0, b0
    if G is not None:
        Hs = G_used @ Hr  # work main px -> small uw px
    else:
        Hs = Hr
    H = np.linalg.inv(_scale_mat(b)) @ Hs @ _scale_mat(a)
    H /= H[2, 2]
    sel = inl.ravel().astype(bool)
    pm_full = cv2.perspectiveTransform(pm[sel].astype(np.float64), np.linalg.inv(_scale_mat(a)))
    pu_full = cv2.perspectiveTransform(pu[sel].astype(np.float64), np.linalg.inv(_scale_mat(b)) @ G_used)
    err_uw = np.linalg.norm(cv2.perspectiveTransform(pm_full, H) - pu_full, axis=-1).ravel()
    res = float(np.median(err_uw)) / max(_local_scale(H, main_shape), 1e-6)  # in main px
    # Other planes: a main focused near has most features on near objects, so the dominant
    # plane can be a near one; fit up to two more on the remaining matches.
    t0 = time.perf_counter()
    planes = []
    rest = ~sel
    for _ in range(2):
        if rest.sum() < max(min_inliers, 12):
            break
        idx = np.flatnonzero(rest)
        H2, inl2 = cv2.findHomography(pm[idx], pu[idx], cv2.USAC_MAGSAC, 1.5 / min(k, 1.0) ** 0.5, maxIters=2000,
                                      confidence=0.99)
        if H2 is None or inl2 is None or int(inl2.sum()) < max(min_inliers // 2, 10):
            break
        Hf = np.linalg.inv(_scale_mat(b)) @ (G_used @ H2 if G is not None else H2) @ _scale_mat(a)
        planes.append((Hf / Hf[2, 2], int(inl2.sum())))
        rest[idx[inl2.ravel().astype(bool)]] = False
    t["planes"] = time.perf_counter() - t0
    t["_planes"] = planes  # type: ignore[assignment]  (popped by align_pair)
    return H, n_match, n_inl, res, t, uw_s0, b0


def _light(img: np.ndarray) -> np.ndarray:
    """Luminance in linear light from a display-encoded image (RGB or its luma): the sRGB
    curve undone on the luma, an approximation of the luminance of the decoded RGB that
    matched defocused tiles as well (docs/BENCHMARKS.md, "Blurring light in the alignment")."""
    return srgb_to_linear(np.clip(_luma709(img), 0.0, 1.0))


def _prep(img: np.ndarray) -> np.ndarray:
    """CLAHE luminance (uint8); a 2-D uint8 input is taken as already prepared."""
    if img.ndim == 2 and img.dtype == np.uint8:
        return img
    return _clahe(_gray8(img))


def dense_flow(main_s: np.ndarray, uwh_s: np.ndarray, blur_sigma: float = 1.5,
               preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> tuple[np.ndarray, np.ndarray]:
    """Forward (main -> uw) and backward DIS flow on blur-matched, CLAHE luminance.

    The main is defocused where the ultra-wide is sharp: both are low-passed by the same
    Gaussian so edges look alike and the flow is not pulled by the blur difference.
    """
    gm = _prep(main_s)
    gu = _prep(uwh_s)
    if blur_sigma > 0:
        gm = cv2.GaussianBlur(gm, (0, 0), blur_sigma)
        gu = cv2.GaussianBlur(gu, (0, 0), blur_sigma)
    dis = cv2.DISOpticalFlow_create(preset)
    fw = dis.calc(gm, gu, None)
    bw = dis.calc(gu, gm, None)
    return fw, bw


def _sample_along(img: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``img`` at p + f(p) for every pixel p of the flow's grid (bilinear, edges replicated)."""
    h, w = f.shape[:2]
    return cv2.remap(img, f[..., 0] + np.arange(w, dtype=np.float32), f[..., 1] + np.arange(h, dtype=np.float32)[:, None],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # broadcast: no coordinate grids


def fb_confidence(fw: np.ndarray, bw: np.ndarray, rel: float = 0.01, abs_: float = 0.5) -> np.ndarray:
    """EasyAIF eq. 1 with a relative term: 1 where |fw(p) + bw(p + fw(p))|^2 is small."""
    bw_w = _sample_along(bw, fw)
    sq = lambda v: np.einsum("ijk,ijk->ij", v, v)  # noqa: E731  (3x faster than np.sum(v ** 2, axis=-1), same values)
    err = sq(fw + bw_w)
    thr = rel * (sq(fw) + sq(bw_w)) + abs_
    return (err <= thr).astype(np.float32)


def defocus_matched_error(gm: np.ndarray, gu: np.ndarray, f: np.ndarray,
                          sigmas: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)) -> np.ndarray:
    """Local mean |main - ultra-wide warped by ``f``| (grey levels of the uint8 CLAHE
    luminances, both on the same grid) for the best of a few extra Gaussian blurs of the
    ultra-wide.

    Low where the warped ultra-wide is the same scene as the main up to the main's defocus;
    high where it shows something else (an object that moved between the two exposures, the
    wrong side of an occlusion), whatever the blur.
    """
    u = _sample_along(gu.astype(np.float32), f)
    m = cv2.GaussianBlur(gm.astype(np.float32), (0, 0), 1.0)
    best = None
    for sig in sigmas:
        ub = cv2.GaussianBlur(u, (0, 0), float(np.hypot(1.0, sig)))
        e = cv2.GaussianBlur(np.abs(m - ub), (0, 0), 2.0)
        best = e if best is None else np.minimum(best, e)
    assert best is not None
    return best


def coarse_fallback(gm: np.ndarray, gu: np.ndarray, fw: np.ndarray, bw: np.ndarray, cons: np.ndarray,
                    factors: tuple[int, ...] = (2, 4), blur_sigma: float = 1.0, fb_abs: float = 0.5,
                    guard_sigma: float = 8.0, guard_px: float = 0.5, guard_spread: float = 2.0,
                    photo_max: float = 12.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill forward-backward-inconsistent pixels from flow on coarser grids.

    Where the main is heavily defocused (a background behind a near focus) the work-grid
    flow follows the ultra-wide's fine texture, which the main does not have, and fails the
    consistency check over large areas although the parallax there is small and smooth.
    On a grid ``s`` times coarser the two images look alike and DIS finds it. A coarse
    vector is taken (``cons`` < 0.5 at work scale, consistent at its own scale with the
    usual threshold in its own pixels) only when it is within ``guard_px`` coarse px of the
    confidence-weighted mean of the fine consistent flow around it (Gaussian,
    ``guard_sigma`` coarse px) and that neighbourhood moves coherently (weighted standard
    deviation below ``guard_spread * guard_px``): coarse flow is smooth across object
    edges and passes its own check in occlusion bands, where it would pull the foreground
    over the hidden background; the guard keeps it to areas whose fine neighbours all
    move the same way, away from flow discontinuities. Finally the ultra-wide warped by the
    coarse vector must look like the main up to defocus (``defocus_matched_error`` below
    ``photo_max`` grey levels; 0 turns the test off): on the real iPhone pair a coarse vector
    that was geometrically right brought in an object the main did not see (a smear on a
    wall); that test removed it, at a cost of 0.02 dB on the synthetic pairs.
    All tests run on the coarse grid (cheap: 2 + 4 DIS passes and the tests cost ~0.1 s at
    12 MP); the decision is upsampled. Returns new (forward, backward, consistency), inputs
    untouched. On 1024-px synthetic pairs focused near this raised the consistent fraction
    from ~0.5 to ~0.75 in the worst scenes and the fused PSNR of that group by 0.26 dB with
    the occlusion-band error unchanged (docs/BENCHMARKS.md).
    """
    h, w = gm.shape[:2]
    f, b, c = fw.copy(), bw.copy(), cons.copy()
    fx, fy = cv2.split(fw)
    fine = cv2.merge([cons, fx * cons, fy * cons, (fx * fx + fy * fy) * cons])  # for the guard
    for s in factors:
        sz = (max(8, w // s), max(8, h // s))
        if sz[0] >= w:
            continue
        area = lambda x: cv2.resize(x, sz, interpolation=cv2.INTER_AREA)  # noqa: E731
        gms, gus = area(gm), area(gu)
        fs, bs = dense_flow(gms, gus, blur_sigma)
        k = np.float32(w / sz[0])
        ok = fb_confidence(fs, bs, abs_=fb_abs) > 0.5
        ok &= area(c) < 0.5 + 0.5 / s  # somewhere in this coarse pixel the fine flow failed
        if not ok.any():
            continue
        st = cv2.GaussianBlur(area(fine), (0, 0), guard_sigma)
        wc = st[..., 0]
        fbar = st[..., 1:3] / np.maximum(wc, 1e-3)[..., None] / k  # in coarse px
        spread = np.sqrt(np.maximum(st[..., 3] / np.maximum(wc, 1e-3) / (k * k) - np.sum(fbar * fbar, axis=-1), 0))
        ok &= (wc > 0.05) & (np.linalg.norm(fs - fbar, axis=-1) < guard_px) & (spread < guard_spread * guard_px)
        if ok.any() and photo_max > 0:
            ok &= defocus_matched_error(gms, gus, fs) < photo_max
        up = lambda x: cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)  # noqa: E731
        take = (c < 0.5) & (up(ok.astype(np.float32)) > 0.5)
        np.copyto(f, up(fs) * k, where=take[..., None])
        np.copyto(b, up(bs) * k, where=take[..., None])
        c[take] = 1.0
    return f, b, c


def fine_band(g: np.ndarray, sigma_hp: float = 1.5, pre_blur: float = 0.0) -> np.ndarray:
    """The finest band of a single-channel image ``g``: ``g`` minus its Gaussian of
    ``sigma_hp``, after an optional Gaussian of ``pre_blur``."""
    x = np.asarray(g, np.float32)
    if pre_blur > 0:
        x = cv2.GaussianBlur(x, (0, 0), pre_blur)
    return x - cv2.GaussianBlur(x, (0, 0), sigma_hp)


def band_energy(band: np.ndarray, win: float = 3.0) -> np.ndarray:
    """Local energy of a band: its square averaged by a Gaussian of ``win``."""
    return cv2.GaussianBlur(band * band, (0, 0), win)


def fine_band_energy(g: np.ndarray, sigma_hp: float = 1.5, win: float = 3.0, pre_blur: float = 0.0) -> np.ndarray:
    """Local energy of the finest band of ``g`` (``band_energy`` of ``fine_band``): a focus
    measure (also ``fuse.pair.main_mask``'s)."""
    return band_energy(fine_band(g, sigma_hp, pre_blur), win)


def defocus_matched_flow(gm: np.ndarray, gu: np.ndarray, fw: np.ndarray, bw: np.ndarray, cons: np.ndarray,
                         levels: tuple[tuple[float, int], ...] = ((2.0, 1), (4.0, 2), (8.0, 4)),
                         blur_sigma: float = 1.0, fb_abs: float = 0.5, win: float = 6.0,
                         eps: float = 1e-2, min_eig: float = 5.0, uw_light: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flow where the main is defocused, from the ultra-wide blurred to the main's sharpness.

    DIS matches patches by their grey levels; where the main is heavily defocused (the
    background of a shot focused near) a blurred main patch is matched to a sharp
    ultra-wide patch, and the flow is either inconsistent or consistently off by 1-2 px,
    which at 12 MP is 4-8 px of misplaced detail. Here the ultra-wide's CLAHE luminance is
    blurred by each sigma of ``levels`` (work px) and each pixel takes the blur whose
    fine-band energy (``fine_band_energy``, window ``win``) is closest to the main's (log
    ratio; 0 = unblurred, the input flow). For each chosen blur, DIS runs between the main
    and that blurred ultra-wide on a grid q times coarser, and its vectors replace the
    input flow where they are forward-backward consistent at that scale and the main has
    texture in two directions there (minimum eigenvalue of the structure tensor of the
    level's main above ``min_eig``; the flow inside a flat or striped region is only
    propagated from its edges, and on the synthetic pairs such vectors put a defocused
    striped object's stripes out of phase: -0.4 dB on that pair without the test).

    Measured against the ground-truth flow (iphone-13 scene 0 focused near, 12 MP, on the
    1008x756 work grid, defocused background): consistent and within 0.5 px 19 % -> 41 %
    of it, within 1 px 45 % -> 77 %. Fused PSNR at 12 MP (6 pairs) 24.59 -> 25.20 dB,
    focused near +1.21 dB, focused far -0.01 dB (docs/BENCHMARKS.md). Returns new
    (forward, backward, consistency, chosen level index per pixel); inputs untouched.

    ``uw_light``: the ultra-wide's luminance in linear light (``_light``, same grid). Each
    level then blurs *it* and prepares the result as the main was prepared (encoded, CLAHE),
    instead of blurring ``gu``: a lens blurs light, and a defocused edge encoded for display
    is not the blur of the encoded edge (its bright side spreads further), so the
    display-space blur matched the main's edges slightly out of place."""
    h, w = gm.shape[:2]
    em = fine_band_energy(gm, 1.5, win, blur_sigma)
    best = np.abs(np.log((fine_band_energy(gu, 1.5, win, blur_sigma) + eps) / (em + eps)))
    choice = np.zeros((h, w), np.uint8)
    blurred = []
    for i, (s, q) in enumerate(levels, start=1):
        if uw_light is None:
            gus = cv2.GaussianBlur(gu, (0, 0), s)
        else:
            gus = _clahe(_gray8(linear_to_srgb(cv2.GaussianBlur(uw_light, (0, 0), s))))
        blurred.append(gus)
        di = np.abs(np.log((fine_band_energy(gus, 1.5, win, blur_sigma) + eps) / (em + eps)))
        better = di < best
        choice[better] = i
        best = np.minimum(best, di)
    f, b, c = fw.copy(), bw.copy(), cons.copy()
    for i, (s, q) in enumerate(levels, start=1):
        sel = choice == i
        if sel.mean() < 0.005:
            continue
        sz = (max(8, w // q), max(8, h // q))
        area = (lambda x: cv2.resize(x, sz, interpolation=cv2.INTER_AREA)) if q > 1 else (lambda x: x)  # noqa: E731
        gms = area(gm)
        fs, bs = dense_flow(gms, area(blurred[i - 1]), blur_sigma)
        ok = fb_confidence(fs, bs, abs_=fb_abs)
        up = (lambda x: cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)) if q > 1 else (lambda x: x)  # noqa: E731
        k = np.float32(w / sz[0])
        take = sel & (up(ok) > 0.5)
        if min_eig > 0:  # the flow is determined there: texture in two directions (no aperture problem)
            g = cv2.GaussianBlur(gms, (0, 0), blur_sigma).astype(np.float32)
            take &= up(cv2.cornerMinEigenVal(g, 7, 3)) > min_eig
        np.copyto(f, up(fs) * k, where=take[..., None])
        np.copyto(b, up(bs) * k, where=take[..., None])
        c[take] = 1.0
    return f, b, c, choice


def texture_coherence(g: np.ndarray, sigma: float = 1.0, win: float = 3.0) -> np.ndarray:
    """Coherence of the structure tensor, ((l1 - l2) / (l1 + l2))^2 in [0, 1]: near 1 on
    one-directional texture (stripes, a single edge), near 0 on texture that varies in two
    directions or on none."""
    x = cv2.GaussianBlur(np.asarray(g, np.float32), (0, 0), sigma)
    gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), win)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), win)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), win)
    gap = cv2.sqrt((jxx - jyy) ** 2 + 4.0 * jxy * jxy)
    return cv2.divide(gap, jxx + jyy + 1e-3) ** 2


def _cross_basis(x: np.ndarray, y: np.ndarray, w: int, h: int, along: np.ndarray | None = None) -> list[np.ndarray]:
    """The basis of the cross-parallax field at work px (x, y) of a w x h grid: 1, u, v,
    u², uv, v² with u, v centred and divided by the width; with ``along`` (the vectors'
    components along the parallax direction) also ``along`` itself."""
    u, v = (x - w / 2) / w, (y - h / 2) / w
    b = [np.ones_like(u), u, v, u * u, u * v, v * v]
    if along is not None:
        b.append(along)
    return b


def epipolar_projection(fw: np.ndarray, cons: np.ndarray, gu: np.ndarray, *, step: int = 4,
                        max_spread: float = 0.1, max_mad: float = 0.5, max_coherence: float = 0.85,
                        iters: int = 3, ransac_tries: int = 200, ransac_tol: float = 0.5,
                        max_bend: float = 0.1) -> tuple[np.ndarray, dict[str, Any]]:
    """Consistent flow vectors with their component across the parallax direction replaced
    by a smooth fitted field (the epipolar constraint of a side-by-side camera pair).

    A phone's two cameras sit side by side: their centres differ by about a centimetre
    across the optical axes and hardly along them, so the epipole is at infinity and,
    after an exact plane homography, every pixel's parallax lies along one image
    direction (the baseline's); the component across it is a smooth field (the
    homography's own error) and, as the fitted homography is not exact, a small share of
    the parallax itself (below). DIS estimates both components independently, and
    where the main is defocused the cross component is mostly error: on six 12 MP
    synthetic pairs, consistent vectors more than 1 work px off the fitted field had an
    end-point error above 1 px in 95-100 % of cases.

    The direction is the principal axis of the consistent vectors (weighted by their
    length). The cross component is fitted by a quadratic in (x, y) plus a term
    proportional to the vector's own component along the direction (``κ·along``), on every
    ``step``-th pixel: RANSAC (``_consensus``: ``ransac_tries`` fits to random subsets, the
    best's samples within ``ransac_tol`` px) picks the samples to start from, then trimmed
    least squares (``iters`` rounds, residuals beyond max(3 MAD, 0.25 px) dropped).

    Why the ``κ·along`` term: the homography is fitted to features, not to an exact
    plane, and its small error E bends the parallax: the residual flow then points at
    E·e, a finite point, instead of along one direction, so an object's cross component
    grows with its parallax. Fitted to the ground-truth flow of 12 MP synthetic pairs,
    the quadratic alone left a MAD of 0.14-0.18 work px (99th percentile 0.5-0.6) where
    near objects or the background have 50-70 px of parallax, the quadratic with ``κ·along``
    0.001-0.015 (a further ``along·(u, v)`` term 0.002, but fitted to the real flow it
    extrapolated badly to objects). Why RANSAC: on the pairs whose floors carry
    consistent but wrong vectors (synthetic scene 2 focused near, 30-45 % of the samples)
    the trimmed fit never found the field (MAD 0.58-0.72 px: skipped); with ``κ`` and no
    RANSAC the wrong vectors set ``κ`` and an object's search lost its peak (-0.7 to
    -1.6 dB on three pairs). 18 pairs at 12 MP: 29.24 -> 29.30 dB, 16 pairs better
    (iphone-13 scene 2 near +0.63), two lower by 0.02 and 0.001; at 1024 px 32.07 -> 32.11
    (29.31 and 32.11 before the ``max_bend`` guard below); the tolerance
    at 0.3 / 1.0 px gave 29.30 / 29.26 (at 1.0 the object of iphone-13 scene 0 near lost
    its peak: its ``κ`` came out +0.047 where the ground truth says -0.016 and the
    tolerance of 0.5 found -0.008; docs/BENCHMARKS.md, "Parallax that bends"). A ``κ``
    above ``max_bend`` (6°; the ground truth of those pairs: 0.0004-0.016) is no bend: where
    the vectors are nearly one-dimensional (no parallax, noise across) the term can explain
    their noise, so the field is fitted again without it (``info["bend_dropped"]``).

    Vectors are projected onto the fitted field where they are
    consistent (``cons`` > 0.5) and the ultra-wide ``gu`` (work grid, the flow's target)
    has texture that is not one-directional at the matched point (``texture_coherence``
    below ``max_coherence``): along stripes DIS's error lies along the stripes, where it
    does no harm, and moving such a vector across them put the stripes out of place
    (-0.2 to -0.6 dB on the focused-far pairs without this test). Six 12 MP pairs, total
    PSNR with the threshold at 0.5 / 0.7 / 0.85 / 0.9 / 0.95: 25.42 / 25.45 / 25.48 / 25.48 /
    25.47 dB (25.30 without the projection).

    Nothing is changed (``info["skipped"]`` says why) with fewer than 200 consistent
    samples, without a dominant direction (eigenvalue ratio above ``max_spread``: little
    parallax, e.g. the real iPhone pair, 0.18), or when the field does not explain the
    cross components (MAD above ``max_mad`` work px: a camera pair that is not side by
    side, uncorrected lens distortion). Returns (flow, info); inputs untouched; ``info``
    holds the direction, the fit's quality (``inliers``: RANSAC's share of the samples,
    ``mad``) and its coefficients (``cross_coef``: six of the quadratic and ``κ``, for
    ``defocused_object_flow``)."""
    h, w = fw.shape[:2]
    sel = cons[::step, ::step] > 0.5
    v = fw[::step, ::step][sel].astype(np.float64)
    if len(v) < 200:
        return fw, {"skipped": "too few consistent vectors"}
    M = (v * np.linalg.norm(v, axis=1, keepdims=True)).T @ v
    ev, evec = np.linalg.eigh(M)
    spread = float(ev[0] / max(ev[1], 1e-12))
    d = evec[:, 1]
    info: dict[str, Any] = {"direction": [round(float(d[0]), 4), round(float(d[1]), 4)], "spread": round(spread, 4)}
    if spread > max_spread:
        return fw, {**info, "skipped": "no dominant parallax direction"}
    n = np.array([-d[1], d[0]])
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    along = v @ d
    A = np.stack(_cross_basis(xs[sel].astype(np.float64), ys[sel].astype(np.float64), w, h, along), 1)
    q = v @ n
    keep = _consensus(A, q, ransac_tries, ransac_tol)
    info["inliers"] = round(float(keep.mean()), 4)
    coef, mad = _trimmed_fit(A, q, keep, iters)
    if abs(coef[6]) > max_bend:  # not a bend: the term explains something else (nearly 1-D vectors): drop it
        keep = _consensus(A[:, :6], q, ransac_tries, ransac_tol)
        coef, mad = _trimmed_fit(A[:, :6], q, keep, iters)
        info.update(inliers=round(float(keep.mean()), 4), bend_dropped=True)
    info["mad"] = round(mad, 4)
    if mad > max_mad:
        return fw, {**info, "skipped": "cross-parallax components not smooth"}
    coef = [float(c) for c in coef]
    fx, fy = cv2.split(fw)
    xg, yg = np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]
    along_all = cv2.addWeighted(fx, float(d[0]), fy, float(d[1]), 0.0) if len(coef) > 6 else None
    field = _cross_field(coef, xg, yg, w, h, along_all)
    off = cv2.subtract(cv2.addWeighted(fx, float(n[0]), fy, float(n[1]), 0.0), field, dtype=cv2.CV_32F)
    take = (cons > 0.5) & (_sample_along(texture_coherence(gu), fw) < max_coherence)
    off[~take] = 0.0
    out = cv2.merge([cv2.scaleAdd(off, -float(n[0]), fx), cv2.scaleAdd(off, -float(n[1]), fy)])
    info["projected"] = round(float(take.mean()), 4)
    info["cross_coef"] = coef
    return out, info


def _trimmed_fit(A: np.ndarray, q: np.ndarray, keep: np.ndarray, iters: int) -> tuple[np.ndarray, float]:
    """Least squares of ``A @ c = q`` from the samples ``keep``, ``iters`` rounds, each
    dropping residuals beyond max(3 MAD, 0.25); returns (c, MAD of the last kept set)."""
    coef, mad = np.zeros(A.shape[1]), 0.0
    for _ in range(iters):
        coef = np.linalg.lstsq(A[keep], q[keep], rcond=None)[0]
        res = q - A @ coef
        mad = float(np.median(np.abs(res[keep]))) / 0.6745
        keep = np.abs(res) < max(3.0 * mad, 0.25)
    return coef, mad


def _consensus(A: np.ndarray, q: np.ndarray, tries: int = 200, tol: float = 0.5) -> np.ndarray:
    """RANSAC for the linear model ``A @ c = q``: the samples within ``tol`` of the best of
    ``tries`` least-squares fits to random subsets of twice the minimal size (seeded: the
    same input gives the same answer). Hand-written because it is a few lines of numpy,
    all fits solved at once, and neither OpenCV nor numpy has a RANSAC for a linear model.
    ``tries=0``: every sample."""
    if tries <= 0:
        return np.ones(len(q), bool)
    rng = np.random.default_rng(0)
    m = 2 * A.shape[1]
    idx = rng.integers(0, len(q), size=(tries, m))
    As, qs = A[idx], q[idx]
    AtA = np.einsum("kmi,kmj->kij", As, As) + 1e-9 * np.eye(A.shape[1])
    Atq = np.einsum("kmi,km->ki", As, qs)
    try:
        C = np.linalg.solve(AtA, Atq[..., None])[..., 0].astype(np.float32)
    except np.linalg.LinAlgError:  # a subset without rank (repeated samples): start from every sample
        return np.ones(len(q), bool)
    A32, q32 = A.astype(np.float32), q.astype(np.float32)
    cnt = np.concatenate([(np.abs(q32[None, :] - C[k:k + 25] @ A32.T) < tol).sum(1)  # 25 fits at a time: <= 5 MB
                          for k in range(0, tries, 25)])
    keep = np.abs(q - A @ C[int(np.argmax(cnt))].astype(np.float64)) < tol
    return keep if keep.sum() >= 2 * m else np.ones(len(q), bool)  # no consensus: start from every sample


def _cross_field(coef: list[float], x: np.ndarray, y: np.ndarray, w: int, h: int,
                 along: np.ndarray | float | None = None) -> np.ndarray:
    """``epipolar_projection``'s fitted cross-parallax field at work px (x, y) (broadcasting)
    for vectors whose component along the parallax direction is ``along`` (used when
    ``coef`` holds the seventh coefficient, ``κ``)."""
    b = _cross_basis(x, y, w, h)
    out = coef[0] * b[0]
    for c, t in zip(coef[1:6], b[1:6]):
        out = out + c * t
    if len(coef) > 6 and along is not None:
        out = out + coef[6] * along
    return out


def _zncc_shift(m: np.ndarray, wt: np.ndarray, U: np.ndarray, bx: np.ndarray, by: np.ndarray,
                dx: float, dy: float) -> float:
    """Weighted zero-mean normalised correlation of ``m`` (already weighted-mean-free) and
    ``U`` sampled at (bx + dx, by + dy), weights ``wt`` (all flat but U)."""
    u = cv2.remap(U, bx + np.float32(dx), by + np.float32(dy), cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REPLICATE).ravel()
    sw = float(wt.sum())
    mu = float(wt @ u) / sw
    vu = float(wt @ (u * u)) / sw - mu * mu
    return float((wt * m) @ u) / sw / np.sqrt(max(vu, 1e-9) * float(wt @ (m * m)) / sw + 1e-12)


def defocused_object_flow(ym: np.ndarray, yu: np.ndarray, fw: np.ndarray, cons: np.ndarray, epi: dict[str, Any], *,
                          ratio_thresh: float | tuple[float, ...] = (1.0, 2.0, 3.0, 4.0),
                          min_area: float = 0.005, max_area: float = 0.25,
                          sigmas: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0), min_zncc: float = 0.8, margin: float = 0.01,
                          tol: float = 1.0, flat: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """One parallax per defocused object, from its blurred silhouette.

    A main focused far shows a near object as a featureless blur while the ultra-wide
    shows it sharp; inside it the flow has nothing to follow, and on a striped object it
    settles on the wrong stripe (12 MP synthetic pairs: median end-point error 3-4 work px
    on objects with 30-60 px of parallax, where 0.25 px keeps the gain: placing the stripes
    1 / 2 / 4 full px off costs 2 / 18 / 84 % of it). The object's outline, though, is
    visible in both images, and the whole object moves as one.

    Objects: connected regions (area ``min_area``..``max_area`` of the grid) where the
    ultra-wide's fine-band energy, sampled along the flow, exceeds the main's by more than
    e^t, for each t of ``ratio_thresh`` (``ym``/``yu``: luma of the main and of the
    homography-warped ultra-wide on the work grid, grey levels): at the lowest threshold a
    main focused far shows its near objects, while in a main focused near a defocused
    object is part of the defocused background until a higher threshold separates the
    more defocused of the two (12 MP iphone-13 focused near: +0.70 dB from t = 4); a region
    mostly inside an object already set is skipped, and no region changes pixels an earlier
    one set. One more candidate set joins to the lowest threshold the pixels where the main's
    fine band is flat (energy below ``flat`` grey levels squared, about its noise): a near
    object whose stripes are finer than the work grid shows no energy in either image, and
    only its flat blur in the main marks it (12 MP focused far: generic-phone +0.15 dB,
    iphone-13 +0.53 dB; 1024 px unchanged). For each, the main (Gaussian 1.5 px) is
    correlated (ZNCC) with the ultra-wide blurred by each of ``sigmas`` and shifted along
    the parallax direction (``epi``: ``epipolar_projection``'s direction and cross field)
    over the object and a ring around it: every 4 px on a 4x coarser grid, then 1 px at 2x,
    then 0.25 px on the work grid with a parabola through the peak. Measured against the
    ground truth on six 12 MP objects: 0.01-0.33 work px off, where the flow's median was
    off by 3-4.

    The object's parallax replaces the flow (and the pixel counts as consistent) inside
    the region eroded by the chosen blur, where the flow is inconsistent or more than
    ``tol`` px from it, only when the silhouette is a clear, unique match: ZNCC at least
    ``min_zncc``, a peak (lower at 2 px along and across the line), and no more than
    ``margin`` below the ZNCC of the flow itself (which can follow any blurred shape pixel
    by pixel), or ``margin`` above it where the flow agrees with itself on another value
    (more than half of the region consistent, spread under 0.5 px). A region made of two
    objects at different depths fails these tests (12 MP: a box partly in front of
    another, 4-9 px off, had no peak or lost to its flow).
    Returns (flow, consistency, one dict per region: its parallax, blur, scores and how
    many pixels it replaced); inputs untouched. Skipped without ``epi``'s fit."""
    h, w = ym.shape[:2]
    info: list[dict[str, Any]] = []
    if "cross_coef" not in epi:
        return fw, cons, info
    e = np.array(epi["direction"], np.float64)
    e /= np.linalg.norm(e)
    n = np.array([-e[1], e[0]])
    coef = epi["cross_coef"]
    em = fine_band_energy(ym, 1.5, 6.0, 1.0)
    eu = _sample_along(fine_band_energy(yu, 1.5, 6.0, 1.0), fw)
    ratio = cv2.divide(eu + 1.0, em + 1.0)
    k5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    regions = []  # (label image, stats row, label) of every candidate, lowest threshold first
    for t in list(np.atleast_1d(ratio_thresh)) + ([None] if flat > 0 else []):
        D = (((em < flat) | (ratio > np.exp(ratio_thresh[0]))) if t is None else ratio > np.exp(t)).astype(np.uint8)
        D = cv2.morphologyEx(cv2.morphologyEx(D, cv2.MORPH_OPEN, k5), cv2.MORPH_CLOSE, k5)
        nlab, lab, stats, _ = cv2.connectedComponentsWithStats(D, connectivity=8)
        regions += [(lab, stats[i], i) for i in range(1, nlab)
                    if min_area * h * w <= stats[i, cv2.CC_STAT_AREA] <= max_area * h * w]
    if not regions:
        return fw, cons, info
    claimed = np.zeros((h, w), bool)
    searched = np.zeros((h, w), np.int32)  # the last region searched at each pixel (1-based)
    seen: list[int] = []  # their areas
    along = cv2.addWeighted(fw[..., 0], float(e[0]), fw[..., 1], float(e[1]), 0.0)
    across = cv2.addWeighted(fw[..., 0], float(n[0]), fw[..., 1], float(n[1]), 0.0)
    vals = along[::2, ::2][cons[::2, ::2] > 0.5]
    # the search range: what the flow saw, and near objects up to 8 % of the width beyond it
    p1, p99 = np.percentile(vals, [1, 99]) if vals.size else (0.0, 0.0)
    lo, hi = min(float(p1), 0.0) - 0.02 * w, max(float(p99), 0.0) + 0.08 * w
    f, c = fw.copy(), cons.copy()
    ring = max(2, int(round(w / 128)))
    small = lambda x, q: cv2.resize(x, (w // q, h // q), interpolation=cv2.INTER_AREA) if q > 1 else x  # noqa: E731
    Ms: dict[int, np.ndarray] = {}
    Us: dict[tuple[int, float], np.ndarray] = {}

    def M(q: int) -> np.ndarray:  # the main at grid q (Gaussian 1.5 work px), made when first asked
        if q not in Ms:
            Ms[q] = cv2.GaussianBlur(small(ym, q), (0, 0), 1.5 / q)
        return Ms[q]

    def U(q: int, s: float) -> np.ndarray:  # the ultra-wide at grid q, blurred by s work px
        if (q, s) not in Us:
            Us[(q, s)] = cv2.GaussianBlur(small(yu, q), (0, 0), float(np.hypot(1.5, s)) / q)
        return Us[(q, s)]

    for lab, st_i, i in regions:
        area = int(st_i[cv2.CC_STAT_AREA])
        x0, y0 = max(0, int(st_i[0]) - 2 * ring), max(0, int(st_i[1]) - 2 * ring)
        x1 = min(w, int(st_i[0] + st_i[2]) + 2 * ring)
        y1 = min(h, int(st_i[1] + st_i[3]) + 2 * ring)
        S = (lab[y0:y1, x0:x1] == i).astype(np.uint8)
        if claimed[y0:y1, x0:x1][S > 0].mean() > 0.5:
            continue  # mostly part of an object already given its parallax (at a lower threshold)
        lab_i = np.where(S > 0, np.int32(len(seen) + 1), np.int32(0))
        prev = searched[y0:y1, x0:x1][S > 0]
        if prev.size and (prev > 0).any():  # the same region as one searched at another threshold: same answer
            j = int(np.bincount(prev[prev > 0]).argmax())
            if (prev == j).sum() / (area + seen[j - 1] - (prev == j).sum()) > 0.9:
                continue
        seen.append(area)
        np.copyto(searched[y0:y1, x0:x1], lab_i, where=S > 0)
        R = cv2.dilate(S, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1,) * 2)).astype(np.float32)
        inner = cv2.erode(S, k5) > 0
        a_in = along[y0:y1, x0:x1][inner]
        if a_in.size and (cons[y0:y1, x0:x1][inner] > 0.5).all() and np.ptp(np.percentile(a_in, [1, 99])) < tol:
            continue  # the flow already gives the whole region one parallax: nothing to do (saves the search)
        cy, cx = np.mean(np.nonzero(S), axis=1) + (y0, x0)
        c_at = float(_cross_field(coef, cx, cy, w, h))  # at the region's centre the cross parallax at along = d
        k_at = coef[6] if len(coef) > 6 else 0.0  # is c_at + k_at * d

        def setup(q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            a0, b0 = x0 // q, y0 // q
            a1, b1 = max(a0 + 1, x1 // q), max(b0 + 1, y1 // q)
            wt = (cv2.resize(R, (a1 - a0, b1 - b0), interpolation=cv2.INTER_AREA) if q > 1 else R).ravel()
            m = M(q)[b0:b1, a0:a1].ravel()
            m = m - float(wt @ m) / max(float(wt.sum()), 1e-6)
            bx, by = np.meshgrid(np.arange(a0, a1, dtype=np.float32), np.arange(b0, b1, dtype=np.float32))
            return m, wt, bx, by

        def zn(q: int, st: tuple[np.ndarray, ...], s: float, d: float, dc: float = 0.0) -> float:
            v = d * e + (c_at + k_at * d + dc) * n
            return _zncc_shift(st[0], st[1], U(q, s), st[2], st[3], v[0] / q, v[1] / q)

        st = setup(4)
        _, d0, s0 = max((zn(4, st, s, d), d, s) for s in sigmas[1::2] for d in np.arange(lo, hi, 4.0))
        for q, step in ((2, 1.0), (1, 0.25)):
            st = setup(q)
            if q == 2:  # the blur, among all of sigmas, where the coarse search found the object
                s0 = max(sigmas, key=lambda s: zn(2, st, s, d0))
            ds = d0 + np.arange(-4, 5) * step
            zs = [zn(q, st, s0, d) for d in ds]
            k = int(np.argmax(zs))
            d0 = float(ds[k])
            den = zs[k - 1] - 2 * zs[k] + zs[k + 1] if 0 < k < len(zs) - 1 else 0.0
            if q == 1 and den < 0:
                d0 += step * 0.5 * (zs[k - 1] - zs[k + 1]) / den
        z_obj = zn(1, st, s0, d0)
        peak = z_obj - max(zn(1, st, s0, d0 + dd, dc) for dd, dc in ((-2, 0), (2, 0), (0, -2), (0, 2)))
        fb = fw[y0:y1, x0:x1]
        z_flow = _zncc_shift(st[0], st[1], U(1, s0), st[2] + fb[..., 0], st[3] + fb[..., 1], 0.0, 0.0)
        rec: dict[str, Any] = {"bbox": [x0, y0, x1, y1], "area": area, "parallax": round(d0, 3), "blur": s0,
                               "zncc": round(z_obj, 4), "zncc_flow": round(z_flow, 4), "peak": round(peak, 4)}
        core = cv2.erode(S, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(round(s0)) + 1,) * 2)) > 0
        ok = cons[y0:y1, x0:x1] > 0.5
        ac = along[y0:y1, x0:x1][core & ok]
        agrees = False
        if ac.size > 0.5 * core.sum():  # the flow is mostly consistent here: does it agree with itself?
            med = float(np.median(ac))
            agrees = float(np.median(np.abs(ac - med))) < 0.5 and abs(med - d0) > 2 * tol
        if z_obj >= min_zncc and peak > 0 and z_obj > z_flow + (margin if agrees else -margin):
            crs = _cross_field(coef, st[2], st[3], w, h, d0)
            off = (np.abs(along[y0:y1, x0:x1] - d0) > tol) | (np.abs(across[y0:y1, x0:x1] - crs) > tol)
            take = core & (off | ~ok) & ~claimed[y0:y1, x0:x1]
            new = np.dstack([d0 * e[0] + crs * n[0], d0 * e[1] + crs * n[1]]).astype(np.float32)
            np.copyto(f[y0:y1, x0:x1], new, where=take[..., None])
            c[y0:y1, x0:x1][take] = 1.0
            claimed[y0:y1, x0:x1] |= S > 0
            rec["replaced"] = int(take.sum())
        info.append(rec)
    return f, c, info


def disc_kernel(radius: float) -> np.ndarray:
    """A disc (pillbox) PSF of ``radius`` px, its edge 4x4 supersampled, summing to one: the
    shape of a lens's defocus blur (a bank of Gaussians instead of discs matched the
    defocused tiles of a 12 MP pair, iphone-13 scene 0 focused near, with a median error of
    1.01 px instead of 0.83 in ``bench_fuse.py --match-precision``'s matcher)."""
    n = int(np.ceil(radius)) + 1
    o = (np.arange(4, dtype=np.float32) + 0.5) / 4 - 0.5
    y, x = np.mgrid[-n:n + 1, -n:n + 1].astype(np.float32)
    k = sum(((x + dx) ** 2 + (y + dy) ** 2 <= radius * radius).astype(np.float32) for dx in o for dy in o)
    return k / k.sum()


def _disc_blur(img: np.ndarray, radius: float) -> np.ndarray:
    """``img`` convolved with ``disc_kernel(radius)``; radii of 4 px and more on a 2x coarser
    grid (what is left after such a blur is far below that grid's Nyquist; OpenCV's
    filter2D switches to a DFT for kernels this large, 9 ms instead of 1 at 1008x756)."""
    if radius < 4.0 or min(img.shape[:2]) < 64:
        return cv2.filter2D(img, -1, disc_kernel(radius), borderType=cv2.BORDER_REFLECT)
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    small = cv2.filter2D(small, -1, disc_kernel(radius / 2), borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _zncc_peak(z: np.ndarray) -> tuple[float, tuple[float, float, float, float] | None]:
    """The maximum of a (2r+1)x(2r+1) ``cv2.matchTemplate`` surface ``z`` and, unless it lies
    on the surface's border, (dx, dy, curvature x, curvature y): its offset from the centre
    refined by a parabola through it along each axis (no refinement along an axis whose
    curvature is not negative) and those curvatures (second differences)."""
    _, v, _, (px, py) = cv2.minMaxLoc(z)
    r = (z.shape[0] - 1) // 2
    if not (0 < px < 2 * r and 0 < py < 2 * r):
        return v, None
    a, b, c = z[py, px - 1], z[py, px], z[py, px + 1]
    cx = float(a - 2 * b + c)
    dx = px - r + (0.5 * float(a - c) / cx if cx < 0 else 0.0)
    a, c = z[py - 1, px], z[py + 1, px]
    cy = float(a - 2 * b + c)
    dy = py - r + (0.5 * float(a - c) / cy if cy < 0 else 0.0)
    return v, (dx, dy, cx, cy)


def refine_flow_tiles(ym: np.ndarray, yu: np.ndarray, fw: np.ndarray, cons: np.ndarray, *, tile: int = 32,
                      step: int = 16, search: int = 2,
                      radii: tuple[float, ...] = (0.35, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 7.0, 10.0),
                      pre_blur: float = 0.5,
                      min_zncc: float = 0.8, min_curvature: float = 0.008, min_cover: float = 0.9,
                      min_std: float = 0.004, smooth: float = 0.7, first_disc: int = 1,
                      light: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """The consistent flow corrected by a smooth field of residual shifts, each measured by
    matching a large tile of the main against the flow-warped ultra-wide blurred like it.

    DIS's patches (8 work px) see too little of a defocused region to place it precisely,
    and its coarse-to-fine pyramid leaves errors that are constant over tens of pixels
    (on a 12 MP synthetic pair focused near, iphone-13 scene 0, the error minus its local
    mean over 8 fuse px was below 0.2 px on 75 % of the confident defocused background,
    the error itself 0.7 px median and 1.3 px at the 75th percentile). A tile of
    ``tile`` work px (``step`` apart) of the main's luminance (Gaussian ``pre_blur``) is
    matched by ZNCC over +-``search`` px against the ultra-wide warped by ``fw`` and
    blurred by a disc (``disc_kernel``) of the radius in ``radii`` whose zero-shift ZNCC
    over the tile is highest (the main's defocus there); a parabola through the peak gives
    the sub-pixel shift. A tile counts where at least ``min_cover`` of it is consistent
    (``cons`` > 0.5), it has texture (standard deviation ``min_std``), the peak is clear
    (ZNCC ``min_zncc``, curvature ``min_curvature`` per px² in both directions, inside the
    search window) and the chosen disc is not the largest (a blur beyond the bank matched
    with a bias: those tiles made the correction worse on the most defocused backgrounds)
    nor below ``first_disc`` (by default the smallest, 0.35 px, is skipped: the main is as
    sharp as the ultra-wide there and ``fuse.pair.main_mask`` keeps it; on 12 MP pairs
    focused far this left 9-29 % of the tiles to match, 0.1 -> 0.04 s, and moved the fused
    PSNR by at most 0.01 dB).
    The shifts are smoothed over neighbouring tiles (Gaussian ``smooth`` tiles, weights
    by how many counted), interpolated to every pixel, and composed with the flow on the
    consistent pixels: ``f(p) <- s(p) + f(p + s(p))``. Inconsistent pixels keep their
    flow; the confidence is not changed. Returns (flow, info); inputs untouched.

    ``light``: ``ym`` and ``yu`` (display-encoded) are decoded to linear light first (``_light``)
    and matched there, so the disc blurs light as the lens did (see ``defocus_matched_flow``'s
    ``uw_light``). Matched in light, a 7 px disc no longer biases the shift, so the bank
    reaches 10 px and only that largest disc marks a blur beyond it: ten 12 MP pairs,
    huawei-mate30pro scene 0 near +0.12 dB (126 -> 1208 tiles), iphone-13 scene 0 near
    and generic-phone scene 2 near +0.07, none lower (docs/BENCHMARKS.md).
    """
    h, w = ym.shape[:2]
    r = search
    ny, nx = (h - tile - 2 * r) // step + 1, (w - tile - 2 * r) // step + 1
    if ny < 1 or nx < 1:
        return fw, {"skipped": "image smaller than a tile"}
    if light:
        ym, yu = _light(ym), _light(yu)
    m = cv2.GaussianBlur(ym, (0, 0), pre_blur)
    u = _sample_along(yu, fw)
    ub = [_disc_blur(u, rd) for rd in radii]

    # Per tile and radius, the zero-shift ZNCC says which blur makes the ultra-wide look like
    # the main. Its statistics (tile means of the images and their products) are taken on a
    # 2x coarser grid, a quarter of the box filters' cost (the stage 82 -> 69 ms at
    # 1008x756): they only rank the radii, the shift itself is matched at full resolution below.
    q = 2 if min(h, w) >= 8 * tile else 1
    half = (lambda x: cv2.resize(x, (w // q, h // q), interpolation=cv2.INTER_AREA)) if q > 1 else (lambda x: x)  # noqa: E731

    def at_tiles(img: np.ndarray) -> np.ndarray:  # mean over each tile (box filter read at the tiles' corners)
        b = cv2.boxFilter(img, -1, (tile // q, tile // q), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
        ys = np.minimum((r + np.arange(ny) * step) // q, b.shape[0] - 1)
        xs = np.minimum((r + np.arange(nx) * step) // q, b.shape[1] - 1)
        return b[np.ix_(ys, xs)]

    mh_ = half(m)
    mm = at_tiles(mh_)
    vm = np.maximum(at_tiles(cv2.multiply(mh_, mh_)) - mm * mm, 1e-12)
    zncc0 = []
    for b in map(half, ub):
        bm = at_tiles(b)
        vb = np.maximum(at_tiles(cv2.multiply(b, b)) - bm * bm, 1e-12)
        zncc0.append((at_tiles(cv2.multiply(mh_, b)) - mm * bm) / np.sqrt(vm * vb))
    choice = np.argmax(np.stack(zncc0), axis=0)
    cover = at_tiles(half((cons > 0.5).astype(np.float32)))
    todo = (cover >= min_cover) & (vm >= min_std * min_std) & (choice >= first_disc) & (choice < len(radii) - 1)
    G = np.zeros((ny, nx, 2), np.float32)
    W = np.zeros((ny, nx), np.float32)
    # A loop over tiles: OpenCV's matchTemplate does one template at a time, and the
    # per-tile surfaces are 5x5, so a vectorised NumPy version was no faster.
    for i, j in zip(*np.nonzero(todo)):
        y, x = r + i * step, r + j * step
        z = cv2.matchTemplate(ub[choice[i, j]][y - r:y + tile + r, x - r:x + tile + r], m[y:y + tile, x:x + tile],
                              cv2.TM_CCOEFF_NORMED)
        v, peak = _zncc_peak(z)
        if v < min_zncc or peak is None or -peak[2] < min_curvature or -peak[3] < min_curvature:
            continue
        G[i, j] = peak[:2]
        W[i, j] = 1.0
    info: dict[str, Any] = {"tiles": int(W.sum()), "of": int(ny * nx), "tried": int(todo.sum())}
    if not W.any():
        return fw, info
    ws = cv2.GaussianBlur(W, (0, 0), smooth)
    fs = cv2.GaussianBlur(G * W[..., None], (0, 0), smooth) / np.maximum(ws, 1e-3)[..., None]
    fs *= np.clip(ws / 0.3, 0.0, 1.0)[..., None]  # fades out where few neighbouring tiles counted
    # tile (i, j) is centred on work px (r + j step + (tile - 1) / 2, ...): read the tile grid there
    gx = (np.arange(w, dtype=np.float32) - r - (tile - 1) / 2) / step
    gy = (np.arange(h, dtype=np.float32) - r - (tile - 1) / 2) / step
    s = cv2.remap(fs, np.broadcast_to(gx, (h, w)).copy(), np.broadcast_to(gy[:, None], (h, w)).copy(),
                  cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    s *= (cons > 0.5)[..., None]
    out = s + _sample_along(fw, s)
    n = np.linalg.norm(G[W > 0], axis=-1)
    info.update({"median_shift_px": round(float(np.median(n)), 3), "p90_shift_px": round(float(np.percentile(n, 90)), 3)})
    return out.astype(np.float32), info


def soften_confidence(consistent: np.ndarray, infield: np.ndarray, occ_grow: int = 1) -> np.ndarray:
    """A 0/1 'this flow is right' map on the work grid -> the soft confidence the fusion uses.

    Occlusions are thin at work scale: isolated 'confident' specks are dropped (opening),
    low-confidence areas grow by ``occ_grow`` pixels (elliptical erosion), the edge of the
    ultra-wide's field is pulled in by a pixel, and the result is softened (sigma 1 px).
    Used by ``align_pair`` on its forward-backward consistency and by the benchmark on
    ground-truth visibility, so both go through the same post-processing."""
    k = np.ones((3, 3), np.uint8)
    conf = cv2.morphologyEx(np.asarray(consistent, np.float32), cv2.MORPH_OPEN, k)
    ke = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * occ_grow + 1,) * 2) if occ_grow > 0 else k
    conf = cv2.erode(conf, ke) * cv2.erode(np.asarray(infield, np.float32), k)
    conf = cv2.GaussianBlur(conf, (0, 0), 1.0)
    return np.clip(conf, 0, 1).astype(np.float32)


def flow_ramps(fw: np.ndarray, max_gradient: float = 0.4, min_width: int = 5) -> np.ndarray:
    """True where the flow changes faster than ``max_gradient`` px per px (the Frobenius
    norm of its Jacobian, 3x3 Sobel) over a region at least ``min_width`` px across (a
    morphological opening): a ramp no surface makes.

    At a depth edge the parallax jumps, and DIS's coarse-to-fine pyramid and smoothing
    spread the jump into a ramp tens of work px wide over the background beside the
    object. The forward and backward flows ramp alike, so the consistency check passes
    them, and the ultra-wide's texture there is placed 3 px and more off (three 12 MP
    synthetic pairs: consistent, visible, defocused pixels at least 3 ultra-wide px off were
    6-17 % of the frame and 16-33 % of the fused squared error; on the two focused near the
    fused image was worse than the main there). A surface changes its parallax slowly (a
    floor from 0 to 30 work px over a third of the frame: 0.1 px per px), and a correct
    edge is a step, which the Sobel marks over 2 px and the opening removes (with a
    Gaussian of 1 px first, a 30 px step stayed 6 px wide: on focused-far pairs the
    correct outlines ``defocused_object_flow`` sets were taken out, -0.04 dB).
    ``align_pair`` counts ramps as inconsistent where the grid is 4x coarser than the main
    (12 MP), with a threshold that grows as the grid approaches the main's size: the same
    ramp misplaces detail by fewer main px, and at 1024 px the ultra-wide's texture a few
    px off still beat the refined main on LPIPS (docs/BENCHMARKS.md, "Ramps in the flow")."""
    sq = None
    for c in (0, 1):
        for dx, dy in ((1, 0), (0, 1)):
            d = cv2.Sobel(fw[..., c], cv2.CV_32F, dx, dy, ksize=3)
            sq = d * d if sq is None else cv2.add(sq, d * d)
    ramp = (sq > (8.0 * max_gradient) ** 2).astype(np.uint8)  # the 3x3 Sobel is 8x a unit slope
    if min_width > 1:
        ramp = cv2.morphologyEx(ramp, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (min_width,) * 2))
    return ramp > 0


def photometric_agreement(main_s: np.ndarray, uwh_s: np.ndarray, fw: np.ndarray, weight: np.ndarray) -> float:
    """Correlation of mid frequencies (DoG, robust to defocus and colour) between the main and
    the flow-warped ultra-wide, weighted by ``weight``: about 0.7-1 for a true pair, near 0 for
    unrelated images (flow cannot make unrelated textures agree).

    The band (Gaussians of ``s`` and ``4 s`` work px) is taken on a 2x coarser grid
    (INTER_AREA) when the grid is at least 128 px: it holds nothing that grid cannot, and
    the wide Gaussians cost a quarter. On the 12 MP synthetic pair focused near / far and
    the real iPhone pair: 0.9192 / 0.9902 / 0.9937 on the work grid, 0.9218 / 0.9901 /
    0.9928 on the coarser one, unrelated images (the ultra-wide turned 180°) -0.011 to
    0.017 either way; 36-43 ms -> 6-8 ms."""
    h, w = fw.shape[:2]
    gm = _prep(main_s).astype(np.float32)
    gu = _sample_along(_prep(uwh_s).astype(np.float32), fw)
    wt = np.asarray(weight, np.float32)
    s = max(1.5, w / 400)
    if min(h, w) >= 128:
        half = (w // 2, h // 2)
        gm, gu, wt = (cv2.resize(x, half, interpolation=cv2.INTER_AREA) for x in (gm, gu, wt))
        s /= 2
    dog = lambda g: cv2.GaussianBlur(g, (0, 0), s) - cv2.GaussianBlur(g, (0, 0), 4 * s)  # noqa: E731
    a, b = dog(gm), dog(gu)
    wt = wt.astype(np.float64) + 1e-3
    num = float((wt * a * b).sum())
    den = float(np.sqrt((wt * a * a).sum() * (wt * b * b).sum())) + 1e-9
    return num / den


def align_pair(main: np.ndarray, ultrawide: np.ndarray, *, ratio: float | None = None, preset: Any = None,
               work_width: int = 1024, n_features: int = 3000, min_inliers: int = 20,
               flow_blur: float = 1.0, min_agreement: float = 0.5, min_confident: float = 0.2,
               fb_abs: float = 0.5, occ_grow: int = 1, main_path: Any = None,
               uw_path: Any = None, coarse: tuple[int, ...] = (2, 4),
               defocus_levels: tuple[tuple[float, int], ...] = ((2.0, 1), (4.0, 2), (8.0, 4)),
               epipolar: bool = True, objects: bool = True, tiles: bool = True,
               max_flow_gradient: float = 1.6) -> PairAlignment:
    """Align ``ultrawide`` to ``main`` (both float32 HxWx3 RGB, any sizes).

    ``ratio``: 35 mm focal length of the main divided by the ultra-wide's (2 for 26/13 mm);
    default from ``preset`` (an ``aifcli.presets.Preset`` with main and ultrawide
    cameras), else 2. ``coarse``: the grid factors of the fallback flow for inconsistent
    pixels (``coarse_fallback``; ``()`` turns it off). ``defocus_levels``: the blurs and
    grids of the defocus-matched flow where the main is defocused (``defocus_matched_flow``;
    ``()`` turns it off). ``epipolar``: replace the consistent vectors' component across the
    parallax direction by a fitted smooth field (``epipolar_projection``). ``objects``: one
    parallax per defocused object from its silhouette (``defocused_object_flow``; needs
    ``epipolar``). ``tiles``: correct the consistent flow by shifts matched on large,
    blur-matched tiles (``refine_flow_tiles``). ``max_flow_gradient``: pixels where the
    final flow ramps faster than this, in main px of flow per work px (``flow_ramps``; 0
    turns it off), count as inconsistent: 0.4 px per px on the work grid of a 12 MP main,
    4x its size; 1.6 on a main of the work grid's size, where the same ramp misplaces
    detail by a quarter as many main px. Raises
    ``InputError`` when the images do not overlap.

    Deterministic: USAC-MAGSAC draws its samples from OpenCV's per-thread random generator,
    so without a seed the result depended on what ran before in the process (the real
    iPhone pair gave 1254, 1262, 1257 inliers on three calls in a row). The generator is
    seeded here (``cv2.setRNGSeed(0)``, a side effect on the calling thread's OpenCV RNG).
    """
    cv2.setRNGSeed(0)
    timings: dict[str, float] = {}
    T0 = time.perf_counter()
    if ratio is None:
        ratio = 2.0
        if preset is not None and "ultrawide" in getattr(preset, "cameras", {}):
            ratio = preset.cameras["main"].focal_35mm / preset.cameras["ultrawide"].focal_35mm
    if ratio <= 0:
        raise InputError(f"focal ratio must be positive, got {ratio}")
    mh, mw = main.shape[:2]
    uh, uw_ = ultrawide.shape[:2]
    if min(mh, mw, uh, uw_) < 32:
        raise InputError("image too small to align (need at least 32 px)", uw_path if min(uh, uw_) < 32 else main_path)
    a = _work_scale(mh, mw, work_width)
    t0 = time.perf_counter()
    main_s = _resize(main, a)
    a2 = _axis_scales(main_s, main)  # (x, y): rounding the size can make them differ
    a = a2[0]
    timings["downscale"] = time.perf_counter() - t0
    H0 = initial_homography((mh, mw), (uh, uw_), ratio)
    H, n_match, n_inl, res, th, uw_s, b = estimate_homography(main_s, ultrawide, (mh, mw), a2, H0, n_features, min_inliers,
                                                              uw_path)
    planes = th.pop("_planes", [])  # type: ignore[arg-type]
    timings.update({f"homography_{k}": v for k, v in th.items()})
    used_prior = H is None
    if used_prior:
        # Too few features agree on one plane (defocused main, fine textures, strong parallax
        # between depth layers): keep the focal-ratio guess and let the dense flow do the rest;
        # the photometric check below decides whether that worked.
        H = H0.copy()
    scale = _local_scale(H, (mh, mw))
    det = np.linalg.det(H[:2, :2])
    if det <= 0 or not (0.05 < scale < 20):
        raise InputError(f"cannot align the pair: the fitted geometry is implausible (scale {scale:.3g})", uw_path,
                         "check that both files show the same scene")
    # Homography-warped ultra-wide on the work grid, then residual flow both ways.
    h, w = main_s.shape[:2]
    gm_w = _prep(main_s)
    # DIS needs 12 px or more on its coarsest level: drop the coarser grids a small image
    # (under 64 work px) does not have (a 44 x 33 px main failed with OpenCV's error).
    coarse = tuple(q for q in coarse if min(h, w) // q >= 16)
    defocus_levels = tuple((s, q) for s, q in defocus_levels if min(h, w) // q >= 16)

    def flow_for(Hc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sc = _local_scale(Hc, (mh, mw))
        if b[0] < 1.0 and sc / a * b[0] > 0.7:  # the shrunk copy is dense enough for the work grid
            src, c = uw_s, b
        else:
            src, c = _prefilter(ultrawide, sc / a)
        M = _scale_mat(c) @ Hc @ np.linalg.inv(_scale_mat(a2))
        uwh = cv2.warpPerspective(src, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE)
        gu = _prep(uwh)
        f, bk = dense_flow(gm_w, gu, flow_blur)
        return uwh, gu, f, bk, fb_confidence(f, bk, abs_=fb_abs)

    t0 = time.perf_counter()
    plane_choice = "focal-ratio guess" if used_prior else "dominant plane"
    uwh_s, gu_w, fw, bw, cons = flow_for(H)
    # The plane at infinity is the one to warp with (background parallax ~0, near objects
    # move); if the features' dominant plane is far from the focal-ratio guess, try the
    # farthest alternative (nearest to the guess, or the guess itself) and keep whichever
    # leaves more of the image forward-backward consistent.
    centre = np.array([[[(mw - 1) / 2, (mh - 1) / 2]]])
    off = lambda Hc: float(np.linalg.norm(cv2.perspectiveTransform(centre, Hc) - cv2.perspectiveTransform(centre, H0)))  # noqa: E731
    if not used_prior and off(H) > 0.01 * uw_:
        alts = [Hp for Hp, _ in planes] + [H0]
        H_far = min(alts, key=off)
        cand = flow_for(H_far)
        if cand[4].mean() > cons.mean() + 0.02:
            H = H_far
            scale = _local_scale(H, (mh, mw))
            uwh_s, gu_w, fw, bw, cons = cand
            plane_choice = "farther plane" if H_far is not H0 else "focal-ratio guess"
    if defocus_levels:
        fw, bw, cons, _ = defocus_matched_flow(gm_w, gu_w, fw, bw, cons, defocus_levels, flow_blur, fb_abs,
                                               uw_light=_light(uwh_s))
    if coarse:  # for the chosen plane only
        fw, bw, cons = coarse_fallback(gm_w, gu_w, fw, bw, cons, coarse, flow_blur, fb_abs)
    epi: dict[str, Any] = {"skipped": "turned off"}
    if epipolar:  # after the fills: the fit sees every consistent vector, the projection reaches them all
        fw, epi = epipolar_projection(fw, cons, gu_w)
        if objects:  # needs the fitted direction and cross field
            fw, cons, objs = defocused_object_flow(_gray8(main_s).astype(np.float32), _gray8(uwh_s).astype(np.float32),
                                                   fw, cons, epi)
            epi = {**epi, "objects": objs}
    timings["flow"] = time.perf_counter() - t0
    refine: dict[str, Any] = {"skipped": "turned off"}
    if tiles:  # last: the tiles see the final flow
        t0 = time.perf_counter()
        lum = lambda x: cv2.cvtColor(np.ascontiguousarray(x, np.float32), cv2.COLOR_RGB2GRAY)  # noqa: E731
        fw, refine = refine_flow_tiles(lum(main_s), lum(uwh_s), fw, cons)
        timings["refine"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ramps = 0.0
    if max_flow_gradient > 0:  # after every fill and correction: the ramps of the final flow
        ramp = flow_ramps(fw, max_flow_gradient * a)  # work px per work px
        ramps = float((ramp & (cons > 0.5)).mean())
        cons = np.where(ramp, np.float32(0.0), cons)
    # field of view: where main pixel + flow lands inside the ultra-wide
    al = PairAlignment(H=H, H0=H0, main_shape=(mh, mw), uw_shape=(uh, uw_), work_scale=a, work_scale_y=a2[1],
                       flow=fw, flow_bw=bw, confidence=cons, infield=cons, matches=n_match, inliers=n_inl, residual_px=res,
                       ratio=float(ratio), swapped_hint=scale > 1.1, used_prior=used_prior,
                       plane=plane_choice, epipolar=epi, refine=refine, ramp_fraction=ramps)
    uv = al.uw_map((h, w))
    margin = 1.0
    inf = ((uv[..., 0] >= margin) & (uv[..., 0] <= uw_ - 1 - margin) &
           (uv[..., 1] >= margin) & (uv[..., 1] <= uh - 1 - margin)).astype(np.float32)
    if inf.mean() < 0.2:
        raise InputError(f"cannot align the pair: the ultra-wide covers only {inf.mean():.0%} of the main view",
                         uw_path, "check that the files are a main + ultra-wide pair of the same scene")
    al.confidence = soften_confidence(cons, inf, occ_grow)
    al.infield = inf
    # Is this a pair at all? Unrelated images leave the flow inconsistent almost everywhere
    # (confident fraction < 0.1 measured) and their mid frequencies uncorrelated even after
    # the flow did its best; true pairs give > 0.7 and > 0.85.
    agree = photometric_agreement(gm_w, gu_w, fw, cons * inf)
    al.agreement = agree
    cf = float(al.confidence.mean())
    if agree < min_agreement or cf < min_confident:
        what = (f"only {n_inl} of {n_match} feature matches agree on one geometry" if used_prior else
                f"the images disagree after warping")
        raise InputError(f"cannot align the pair: {what} (agreement {agree:.2f}, {cf:.0%} consistent)", uw_path,
                         "check that both files show the same scene, shot at the same moment")
    timings["confidence"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - T0
    al.timings = timings
    return al
