"""Disparity for refocusing: from a file, a main + ultra-wide pair, or a focus bracket.

Convention: larger = nearer. ``normalise`` maps a map to [0, 1] by robust percentiles
(relative disparity); metric maps (1/m) are kept as they are.

- File: 16-bit PNG / TIFF (read as [0, 1]) or .npy (raw values); ``unit`` says what the
  values are: ``relative`` disparity, ``inv-m`` (1/m), ``depth-m`` (metres; inverted) or
  ``depth-relative`` (larger = farther; flipped).
- Pair: after the homography, the residual flow is parallax (DESIGN.md §2): its component
  along the dominant flow direction is disparity up to scale and offset. Unreliable pixels
  (forward-backward inconsistent, outside the ultra-wide) are occlusions: they are filled
  from the *background side* (the smallest disparity among reliable neighbours), then the
  map is refined edge-aware against the main image (confidence-weighted guided filter).
- Bracket: the stack's depth map (fractional index of the sharpest frame). With a
  bracket stepped evenly in dioptres (the usual focus-bracketing), the frame index is
  affine in inverse depth, so it is a relative disparity once flipped to near = large.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, UsageError

UNITS = ("relative", "inv-m", "depth-m", "depth-relative")


@dataclass
class DisparityResult:
    disparity: np.ndarray  # float32 HxW, larger = nearer
    unit: str  # "relative" ([0, 1]) or "inv-m"
    source: str  # "file", "pair", "bracket"
    confidence: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = self.disparity
        return {"source": self.source, "unit": self.unit, "min": round(float(d.min()), 5),
                "max": round(float(d.max()), 5), **self.info}


def normalise(d: np.ndarray, lo_pct: float = 0.5, hi_pct: float = 99.5) -> np.ndarray:
    """Robust min-max to [0, 1]."""
    lo, hi = np.percentile(d[np.isfinite(d)], [lo_pct, hi_pct]) if np.isfinite(d).any() else (0.0, 1.0)
    if hi - lo < 1e-12:
        return np.zeros_like(d, dtype=np.float32)
    return np.clip((d - lo) / (hi - lo), 0, 1).astype(np.float32)


def load_disparity(path: str | Path, shape: tuple[int, int], unit: str = "relative") -> DisparityResult:
    """A disparity (or depth) map from a file, resized to the image ``shape`` (H, W)."""
    from ..io import read_gray

    path = Path(path)
    if unit not in UNITS:
        raise UsageError(f"--disparity-unit {unit!r} is not one of {', '.join(UNITS)}")
    a = read_gray(path)
    if a.ndim == 3:
        a = a[..., 0]
    if a.ndim != 2 or min(a.shape) < 2:
        raise InputError(f"disparity map has shape {a.shape}; expected a single-channel HxW map", path)
    if not np.isfinite(a).any():
        raise InputError("disparity map has no finite values", path)
    h, w = shape
    if abs(a.shape[1] / a.shape[0] - w / h) > 0.02 * (w / h):
        raise InputError(f"disparity map is {a.shape[1]}x{a.shape[0]} but the image is {w}x{h} "
                         "(different aspect ratio)", path, "give the map made for this image")
    a = np.where(np.isfinite(a), a, np.nanmedian(np.where(np.isfinite(a), a, np.nan))).astype(np.float32)
    info: dict[str, Any] = {"file": str(path), "file_size": [int(a.shape[1]), int(a.shape[0])]}
    if a.shape != (h, w):
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR if a.shape[0] < h else cv2.INTER_AREA)
        info["resized"] = True
    if unit == "depth-m":
        if (a <= 0).mean() > 0.5:
            raise InputError("depth map (metres) is mostly <= 0", path, "check --disparity-unit")
        a = 1.0 / np.maximum(a, 1e-3)
        return DisparityResult(a.astype(np.float32), "inv-m", "file", info=info)
    if unit == "inv-m":
        return DisparityResult(np.maximum(a, 0).astype(np.float32), "inv-m", "file", info=info)
    if unit == "depth-relative":
        a = -a
    return DisparityResult(normalise(a), "relative", "file", info=info)


# --- edge-aware refinement ----------------------------------------------------------------
def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float,
                  weight: np.ndarray | None = None, work_width: int = 1024) -> np.ndarray:
    """Fast, confidence-weighted guided filter (He et al. 2013; He & Sun 2015 subsampling).

    ``guide``: HxW gray [0, 1]; ``src``: HxW; ``weight``: per-pixel confidence. The linear
    coefficients are fitted on a grid at most ``work_width`` wide and applied at full
    resolution, so edges follow the full-resolution guide.
    """
    H, W = src.shape
    s = min(1.0, work_width / W)
    g = cv2.resize(guide, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else guide
    p = cv2.resize(src, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_AREA) if s < 1 else src
    wt = np.ones_like(p) if weight is None else (
        cv2.resize(weight, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_AREA) if s < 1 else weight)
    wt = wt.astype(np.float32) + 1e-4
    r = max(1, int(round(radius * s)))
    mw = _box(wt, r)
    mI = _box(wt * g, r) / mw
    mp = _box(wt * p, r) / mw
    cIp = _box(wt * g * p, r) / mw - mI * mp
    vI = _box(wt * g * g, r) / mw - mI * mI
    a = cIp / (vI + eps)
    b = mp - a * mI
    ma, mb = _box(a, r), _box(b, r)
    if s < 1:
        ma = cv2.resize(ma, (W, H), interpolation=cv2.INTER_LINEAR)
        mb = cv2.resize(mb, (W, H), interpolation=cv2.INTER_LINEAR)
    return (ma * guide + mb).astype(np.float32)


def fill_from_background(d: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid pixels with the farther (smaller) of the nearest valid disparities.

    Occlusions in a stereo pair are background seen by one camera only, so holes are
    filled from the *background side*: along each row and each column, a hole takes the
    minimum of the nearest valid values on either side, and the smaller of the row and
    column candidates wins (the classic scanline fill of stereo matching, vectorised).
    """
    out = d.astype(np.float32).copy()
    ok = valid.astype(bool)
    if ok.all():
        return out
    if not ok.any():
        return np.full_like(out, float(np.median(d)))
    inf = np.float32(np.inf)

    def scan(a: np.ndarray, m: np.ndarray) -> np.ndarray:
        n = a.shape[1]
        ar = np.arange(n)[None, :]
        li = np.maximum.accumulate(np.where(m, ar, -1), axis=1)
        ri = np.minimum.accumulate(np.where(m, ar, n)[:, ::-1], axis=1)[:, ::-1]
        lv = np.where(li >= 0, np.take_along_axis(a, np.clip(li, 0, n - 1), axis=1), inf)
        rv = np.where(ri < n, np.take_along_axis(a, np.clip(ri, 0, n - 1), axis=1), inf)
        return np.minimum(lv, rv)

    cand = np.minimum(scan(out, ok), scan(out.T, ok.T).T)
    cand = np.where(np.isfinite(cand), cand, float(np.median(out[ok])))
    return np.where(ok, out, cand).astype(np.float32)


def refine(disparity: np.ndarray, image: np.ndarray, confidence: np.ndarray | None = None, *,
           radius_frac: float = 0.006, eps: float = 1e-3, fill_occlusions: bool = True) -> np.ndarray:
    """Edge-aware refinement of a disparity map against the image (display-encoded RGB).

    Low-confidence pixels (< 0.5) are first filled from the background side, then a
    confidence-weighted guided filter snaps disparity edges to image edges.
    """
    from ..image import luminance

    d = disparity.astype(np.float32)
    if confidence is not None and fill_occlusions:
        d = fill_from_background(d, confidence >= 0.5)
    lo, hi = float(d.min()), float(d.max())
    span = max(hi - lo, 1e-9)
    g = luminance(image)
    r = max(2, int(round(radius_frac * float(np.hypot(*d.shape)))))
    out = guided_filter(g, (d - lo) / span, r, eps, weight=confidence)
    return (np.clip(out, 0, 1) * span + lo).astype(np.float32)


# --- from a pair --------------------------------------------------------------------------
def parallax_from_alignment(al: Any, shape: tuple[int, int], image: np.ndarray | None = None,
                            flip: bool = False) -> DisparityResult:
    """Relative disparity from a ``PairAlignment``'s residual flow (parallax).

    The flow's principal direction (PCA over confident pixels) is the baseline
    direction. The sign comes from the shape of the parallax distribution: relative to
    the homography's plane it is bounded on the far side (infinity) and long-tailed on
    the near side; ``flip`` reverses it.
    """
    t0 = time.perf_counter()
    fl = al.flow.astype(np.float32)
    conf = al.confidence.astype(np.float32)
    good = conf > 0.5
    v = fl[good] if good.sum() > 50 else fl.reshape(-1, 2)
    v = v - v.mean(0)
    _, _, vt = np.linalg.svd(v[:: max(1, v.shape[0] // 50000)], full_matrices=False)
    u = vt[0]
    proj = fl[..., 0] * u[0] + fl[..., 1] * u[1]
    # Sign: parallax relative to the homography's plane is bounded on the far side
    # (points at infinity) and long-tailed on the near side (1/Z grows without bound),
    # so the side where the distribution reaches farther from its median is near.
    # Ties fall back to the skewness, then to "the lower part of the frame is nearer".
    pg = proj[good] if good.sum() > 50 else proj.ravel()
    med = float(np.median(pg))
    lo, hi = (float(v) for v in np.percentile(pg, [1, 99]))
    ext = (hi - med) - (med - lo)
    rows = np.linspace(-1, 1, proj.shape[0], dtype=np.float32)[:, None] * np.ones_like(proj)
    wsel = good if good.sum() > 50 else np.ones_like(good)
    corr = float(np.corrcoef(proj[wsel].ravel(), rows[wsel].ravel())[0, 1]) if proj[wsel].std() > 0 else 0.0
    skew = float(np.mean((pg - pg.mean()) ** 3))
    if abs(ext) > 0.1 * max(hi - lo, 1e-9):
        sign, sign_from = (1.0 if ext > 0 else -1.0), "near-tail"
    elif abs(skew) > 1e-12:
        sign, sign_from = (1.0 if skew > 0 else -1.0), "skewness"
    else:
        sign, sign_from = (1.0 if corr >= 0 else -1.0), "lower-is-nearer"
    if flip:
        sign, sign_from = -sign, sign_from + "+flip"
    proj = proj * sign
    proj = fill_from_background(proj, good)
    small = cv2.resize(image, (proj.shape[1], proj.shape[0]), interpolation=cv2.INTER_AREA) if image is not None else None
    if small is not None:
        proj = refine(proj, small, conf)
    d = normalise(proj)
    d = cv2.resize(d, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    if image is not None and image.shape[:2] == tuple(shape):
        d = refine(d, image)
    c = al.confidence_at(shape)
    info = {"direction": [round(float(u[0]), 4), round(float(u[1]), 4)], "sign": sign,
            "sign_from": sign_from, "tail_asymmetry": round(ext / max(hi - lo, 1e-9), 3),
            "row_correlation": round(corr, 3),
            "flow_px_range": [round(float(np.percentile(proj, 1)) / al.work_scale, 3),
                              round(float(np.percentile(proj, 99)) / al.work_scale, 3)],
            "seconds": round(time.perf_counter() - t0, 3)}
    return DisparityResult(normalise(d), "relative", "pair", c, info)


def bracket_disparity(depth_index: np.ndarray, n_frames: int, confidence: np.ndarray | None, image: np.ndarray,
                      near: str = "first") -> DisparityResult:
    """Relative disparity from a stack's depth map (fractional best-focus frame index)."""
    if near not in ("first", "last"):
        raise UsageError(f"--near {near!r} must be 'first' or 'last'")
    dn = depth_index.astype(np.float32) / max(n_frames - 1, 1)
    disp = 1.0 - dn if near == "first" else dn
    if disp.shape != image.shape[:2]:
        disp = cv2.resize(disp, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    conf = confidence
    if conf is not None and conf.shape != disp.shape:
        conf = cv2.resize(conf, (disp.shape[1], disp.shape[0]), interpolation=cv2.INTER_LINEAR)
    d = refine(disp, image, None if conf is None else np.clip(conf * 2, 0, 1), fill_occlusions=False)
    return DisparityResult(normalise(d), "relative", "bracket", conf, {"near": near, "frames": int(n_frames)})
