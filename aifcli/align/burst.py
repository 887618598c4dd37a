"""Burst registration for focus brackets: neighbour to neighbour, chained to a reference.

Focus breathing changes magnification from frame to frame, and the blur changes even
more. Registering every frame directly to one reference fails at the ends of long
brackets (the two images share almost no sharp detail). So each frame is registered to
its previous *good* neighbour, whose blur is similar, and the transforms are chained to
the reference frame (the middle one, index ``N // 2`` of the frames that were read).

Registration works on band-passed luminance (difference of Gaussians, then normalised
by its local RMS) at reduced scale, coarse to fine, with ``cv2.findTransformECC``
(Evangelidis & Psarakis 2008). Motion models: ``translation``, ``similarity``
(rotation + uniform scale + shift: ECC affine projected onto the nearest similarity),
``affine`` (default) and ``homography``. A per-frame, per-channel gain (exposure and
white balance drift) is estimated from heavily low-passed images and chained the same
way. A frame whose registration does not converge, correlates poorly, or asks for an
implausible transform is reported as failed and left out.

All transforms are 3x3 matrices mapping *frame* pixel coordinates to *reference*
pixel coordinates at full resolution (use ``cv2.warpPerspective(frame, T, size,
flags=... | cv2.WARP_INVERSE_MAP)`` with ``inv(T)``, or ``warp_frame``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import cv2
import numpy as np

MOTIONS = ("translation", "similarity", "affine", "homography")
_ECC_MODE = {"translation": cv2.MOTION_TRANSLATION, "similarity": cv2.MOTION_AFFINE,
             "affine": cv2.MOTION_AFFINE, "homography": cv2.MOTION_HOMOGRAPHY}


@dataclass
class FrameRegistration:
    index: int  # position in the input sequence
    ok: bool
    to_prev: np.ndarray | None = None  # 3x3: this frame -> the neighbour it was registered to
    neighbour: int | None = None
    correlation: float = 0.0  # ECC correlation at the finest level (1 = identical)
    gain: np.ndarray | None = None  # per-channel gain relative to the neighbour
    reason: str = ""


@dataclass
class BurstAlignment:
    """Result of ``register_burst``: transforms to the reference and per-frame gains."""

    size: tuple[int, int]  # (height, width) of the frames
    reference: int  # input index of the reference frame
    transforms: dict[int, np.ndarray]  # input index -> 3x3 frame -> reference (full resolution)
    gains: dict[int, np.ndarray]  # input index -> per-channel multiplier to the bracket's mean exposure
    failed: dict[int, str]  # input index -> why it was left out
    frames: list[FrameRegistration] = field(default_factory=list)
    motion: str = "affine"
    scale: float = 0.25
    seconds: float = 0.0

    @property
    def good(self) -> list[int]:
        return sorted(self.transforms)

    def magnification(self, i: int) -> float:
        """Linear scale of frame ``i`` relative to the reference (focus breathing)."""
        a = self.transforms[i][:2, :2]
        return float(np.sqrt(abs(np.linalg.det(a))))

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "motion": self.motion, "scale": self.scale,
                "seconds": round(self.seconds, 3),
                "frames": [{"index": f.index, "ok": f.ok, "neighbour": f.neighbour,
                            "correlation": round(f.correlation, 4),
                            "magnification": round(self.magnification(f.index), 5) if f.index in self.transforms else None,
                            "gain": [round(float(g), 4) for g in self.gains[f.index]] if f.index in self.gains else None,
                            "reason": f.reason} for f in self.frames],
                "failed": {str(k): v for k, v in self.failed.items()}}


def _luma(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    y = cv2.transform(rgb, np.array([[0.2126, 0.7152, 0.0722]], np.float32))
    return y[..., 0] if y.ndim == 3 else y


def prepare(rgb: np.ndarray, scale: float, size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Small working copies of one frame for registration: band-passed luminance
    pyramid (finest first) and a low-passed colour image for gain estimation.

    ``size``: the frame's full-resolution (height, width) when ``rgb`` is a reduced
    decode of it (e.g. a JPEG decoded at 1/4 size); ``scale`` is relative to that size."""
    h, w = size or rgb.shape[:2]
    sw, sh = max(16, int(round(w * scale))), max(16, int(round(h * scale)))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    y = _luma(small)
    # Perceptual-ish encoding so dark and bright regions weigh alike (input may be linear).
    y = np.sqrt(np.clip(y, 0, None))
    # Band-pass: difference of Gaussians keeps mid frequencies; blur differences between
    # neighbours mostly change the highest ones. Local RMS normalisation equalises contrast.
    lo = cv2.GaussianBlur(y, (0, 0), 6.0)
    bp = cv2.GaussianBlur(y, (0, 0), 1.0) - lo
    rms = np.sqrt(cv2.GaussianBlur(bp * bp, (0, 0), 12.0)) + 1e-3
    bp = (bp / rms).astype(np.float32)
    pyr = [bp]
    while min(pyr[-1].shape) >= 160 and len(pyr) < 3:
        pyr.append(cv2.pyrDown(pyr[-1]))
    # gains only need low frequencies: a quarter of the working size, lightly blurred
    col = cv2.GaussianBlur(cv2.resize(small, (max(8, sw // 4), max(8, sh // 4)), interpolation=cv2.INTER_AREA),
                           (0, 0), 2.0)
    return {"pyr": pyr, "color": col, "shape": np.array([h, w])}


def _scale_matrix(s: float) -> np.ndarray:
    return np.diag([s, s, 1.0])


def _to_similarity(m: np.ndarray) -> np.ndarray:
    """Nearest rotation + uniform scale + shift to a 2x3 affine (least squares on its linear part)."""
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    p, q = (a + d) / 2, (c - b) / 2
    out = m.copy()
    out[0, 0], out[0, 1], out[1, 0], out[1, 1] = p, -q, q, p
    return out


def _ecc(template: list[np.ndarray], moving: list[np.ndarray], motion: str, iters: int,
         eps: float) -> tuple[np.ndarray, float]:
    """Coarse-to-fine ECC: returns 3x3 warp mapping template coords -> moving coords at
    the finest pyramid level, and the final correlation coefficient."""
    mode = _ECC_MODE[motion]
    warp = np.eye(3, dtype=np.float32)
    cc = 0.0
    levels = min(len(template), len(moving))
    for lv in range(levels - 1, -1, -1):
        t, m = template[lv], moving[lv]
        w = warp if mode == cv2.MOTION_HOMOGRAPHY else warp[:2].copy()
        crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iters if lv == 0 else iters * 2, eps)
        cc, w = cv2.findTransformECC(t, m, w, mode, crit, None, 3)
        if motion == "similarity":
            w = _to_similarity(w)
        warp = w if w.shape[0] == 3 else np.vstack([w, [0, 0, 1]]).astype(np.float32)
        if lv > 0:  # carry to the next finer level (coordinates double)
            s = _scale_matrix(2.0)
            warp = (s @ warp @ np.linalg.inv(s)).astype(np.float32)
    return warp.astype(np.float64), float(cc)


def _plausible(warp: np.ndarray, shape: tuple[int, int], max_shift: float, max_scale: float) -> str:
    h, w = shape
    det = np.linalg.det(warp[:2, :2])
    if not np.isfinite(warp).all() or det <= 0:
        return "degenerate transform"
    s = float(np.sqrt(det))
    if s > max_scale or s < 1 / max_scale:
        return f"scale change {s:.3f} is implausible between neighbours"
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], float).T
    moved = warp @ corners
    moved = moved[:2] / moved[2:]
    shift = np.abs(moved - corners[:2]).max()
    if shift > max_shift * max(h, w):
        return f"shift of {shift / max(h, w):.0%} of the frame is implausible between neighbours"
    return ""


def _gain(ref_col: np.ndarray, mov_col: np.ndarray, warp_small: np.ndarray, work_width: int) -> np.ndarray:
    """Per-channel gain g so that g * moving ~= template, on the overlap of low-passed images."""
    h, w = ref_col.shape[:2]
    q = _scale_matrix(w / work_width)  # working-scale warp -> colour-image scale
    warp_small = q @ warp_small @ np.linalg.inv(q)
    warped = cv2.warpPerspective(mov_col, warp_small, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(-1, -1, -1))
    lo = np.minimum(np.minimum(warped[..., 0], warped[..., 1]), warped[..., 2])
    hi = np.maximum(np.maximum(warped[..., 0], warped[..., 1]), warped[..., 2])
    rlo = np.minimum(np.minimum(ref_col[..., 0], ref_col[..., 1]), ref_col[..., 2])
    rhi = np.maximum(np.maximum(ref_col[..., 0], ref_col[..., 1]), ref_col[..., 2])
    m = (lo > 0.02) & (hi < 0.98) & (rlo > 0.02) & (rhi < 0.98)
    b = max(1, min(h, w) // 16)
    m[:b], m[-b:], m[:, :b], m[:, -b:] = False, False, False, False
    if m.sum() < 50:
        return np.ones(3)
    g = np.array([np.median(ref_col[..., c][m] / np.maximum(warped[..., c][m], 1e-4)) for c in range(3)])
    return np.clip(g, 0.5, 2.0)


class NeighbourRegistrar:
    """Registers frames one at a time, each to the previous good one (see the module doc).

    ``step(i, rgb)`` returns the frame's ``FrameRegistration``; only the previous good
    frame's small working copy is kept.
    """

    def __init__(self, *, motion: str = "affine", scale: float | None = None, min_correlation: float = 0.5,
                 max_shift: float = 0.15, max_scale: float = 1.15, iters: int = 60, eps: float = 1e-5,
                 gains: bool = True):
        if motion not in MOTIONS:
            raise ValueError(f"motion must be one of {MOTIONS}")
        self.motion, self.scale, self.min_correlation = motion, scale, min_correlation
        self.max_shift, self.max_scale, self.iters, self.eps, self.gains = max_shift, max_scale, iters, eps, gains
        self.prev: dict[str, Any] | None = None
        self.prev_idx: int | None = None
        self.size: tuple[int, int] | None = None

    def step(self, i: int, rgb: np.ndarray | None, size: tuple[int, int] | None = None) -> FrameRegistration:
        """Register one frame. ``size``: its full-resolution (height, width) when ``rgb`` is a
        reduced decode (at least the working size, ~1000 px); transforms stay full resolution."""
        if rgb is None:
            return FrameRegistration(i, False, reason="could not be read")
        fsize = tuple(size) if size is not None else rgb.shape[:2]
        if self.size is None:
            self.size = fsize
            if self.scale is None:
                self.scale = min(1.0, 1000.0 / max(self.size))
        elif fsize != self.size:
            return FrameRegistration(i, False, reason=f"size {fsize[1]}x{fsize[0]} differs from "
                                                      f"the bracket's {self.size[1]}x{self.size[0]}")
        cur = prepare(rgb, self.scale, fsize)
        if self.prev is None:
            self.prev, self.prev_idx = cur, i
            return FrameRegistration(i, True, np.eye(3), None, 1.0, np.ones(3))
        try:
            # warp maps prev (template) coords -> current frame coords at working scale
            warp, cc = _ecc(self.prev["pyr"], cur["pyr"], self.motion, self.iters, self.eps)
        except cv2.error:
            return FrameRegistration(i, False, neighbour=self.prev_idx, reason="registration did not converge")
        why = _plausible(warp, cur["pyr"][0].shape, self.max_shift, self.max_scale)
        if not why and cc < self.min_correlation:
            why = f"registration correlation {cc:.2f} < {self.min_correlation:g}"
        if why:
            return FrameRegistration(i, False, neighbour=self.prev_idx, correlation=cc, reason=why)
        g = _gain(self.prev["color"], cur["color"], warp, cur["pyr"][0].shape[1]) if self.gains else np.ones(3)
        # full resolution: frame -> prev = inv(prev -> frame), rescaled from the working scale
        h, w = self.size
        S = np.diag([cur["pyr"][0].shape[1] / w, cur["pyr"][0].shape[0] / h, 1.0])
        to_prev = np.linalg.inv(S) @ np.linalg.inv(warp) @ S
        reg = FrameRegistration(i, True, to_prev, self.prev_idx, cc, g)
        self.prev, self.prev_idx = cur, i
        return reg


def register_burst(frames: Iterable[np.ndarray | None], *, motion: str = "affine", scale: float | None = None,
                   reference: int | None = None, **kw: Any) -> BurstAlignment:
    """Register a bracket: each frame to its previous good neighbour, chained to the reference.

    ``frames``: full-resolution float32 HxWx3 images in bracket order, read one at a time
    (``None`` marks a frame that could not be read; it is reported and skipped), or
    ``(image, (height, width))`` pairs where ``image`` is a reduced decode of a frame of that
    full size (at least ~1000 px on the long side; faster to read, same transforms).
    ``scale``: working scale (default: long side ~1000 px). ``reference``: input index of the
    reference frame (default: the middle of the good frames, ``good[len(good) // 2]``).
    Other keywords go to ``NeighbourRegistrar``. Only two small working copies are held at
    a time, so memory does not grow with the number of frames.
    """
    t0 = time.perf_counter()
    reg = NeighbourRegistrar(motion=motion, scale=scale, **kw)
    regs = [reg.step(i, *f) if isinstance(f, tuple) else reg.step(i, f) for i, f in enumerate(frames)]
    return chain(regs, reg.size, reference, motion, reg.scale or 0.0, time.perf_counter() - t0)


def chain(regs: list[FrameRegistration], size: tuple[int, int] | None, reference: int | None, motion: str,
          scale: float, seconds: float = 0.0) -> BurstAlignment:
    """Chain neighbour transforms and gains to the reference frame."""
    failed = {r.index: r.reason for r in regs if not r.ok}
    good = [r.index for r in regs if r.ok]
    if size is None or not good:
        return BurstAlignment((0, 0), -1, {}, {}, failed, regs, motion, scale, seconds)
    ref = good[len(good) // 2] if reference is None else reference
    if ref not in good:
        ref = min(good, key=lambda g: abs(g - ref))
    by_idx = {r.index: r for r in regs}
    T: dict[int, np.ndarray] = {ref: np.eye(3)}
    G: dict[int, np.ndarray] = {ref: np.ones(3)}
    pos = good.index(ref)
    for k in range(pos + 1, len(good)):  # later frames: T_i = T_neighbour @ (i -> neighbour)
        r = by_idx[good[k]]
        T[r.index] = T[r.neighbour] @ r.to_prev
        G[r.index] = G[r.neighbour] * r.gain
    for k in range(pos - 1, -1, -1):  # earlier frames: invert the next frame's edge
        nxt = by_idx[good[k + 1]]
        T[good[k]] = T[nxt.index] @ np.linalg.inv(nxt.to_prev)
        G[good[k]] = G[nxt.index] / nxt.gain
    # Bring every frame to the bracket's mean exposure rather than the reference frame's own
    # (which flickers like any other): divide by the geometric mean of the gains.
    norm = np.exp(np.mean([np.log(G[i]) for i in G], axis=0))
    G = {i: g / norm for i, g in G.items()}
    return BurstAlignment(size, ref, T, G, failed, regs, motion, scale, seconds)


def warp_frame(rgb: np.ndarray, transform: np.ndarray, gain: np.ndarray | None = None,
               size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warp a full-resolution frame into the reference geometry; returns (image, valid mask).

    Pixels the frame does not cover are filled by replicating its border (so pyramids
    see no hard edge) and marked 0 in the mask.
    """
    h, w = size or rgb.shape[:2]
    identity = np.allclose(transform, np.eye(3), atol=1e-9)
    if identity:
        out = rgb
        valid = np.ones((h, w), np.float32)
    else:
        inv = np.linalg.inv(transform)
        if np.allclose(transform[2], [0, 0, 1], atol=1e-12):
            out = cv2.warpAffine(rgb, inv[:2], (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        else:
            out = cv2.warpPerspective(rgb, inv, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        valid = _coverage_mask(transform, rgb.shape[:2], (h, w))
    if gain is not None and not np.allclose(gain, 1.0):
        g = np.diag(np.asarray(gain, np.float32)).astype(np.float32)
        # per-channel gain; in place on the warped copy, a new array when out is the input
        out = cv2.transform(out, g) if out is rgb else cv2.transform(out, g, dst=out)
    return out, valid


def _coverage_mask(transform: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """1 where the reference pixel maps inside the source frame (at 1/4 scale, then upsampled)."""
    h, w = dst
    f = 4
    sh, sw = max(1, h // f), max(1, w // f)
    S = np.diag([f, f, 1.0])
    inv = np.linalg.inv(transform) @ S
    xs = (np.arange(sw, dtype=np.float64) + 0.5 - 0.5 / f)[None, :]
    ys = (np.arange(sh, dtype=np.float64) + 0.5 - 0.5 / f)[:, None]
    den = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]  # separable: no (3, N) point array
    px = (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / den
    py = (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / den
    inside = ((px >= 0) & (px <= src[1] - 1) & (py >= 0) & (py <= src[0] - 1)).astype(np.float32)
    return cv2.resize(inside, (w, h), interpolation=cv2.INTER_NEAREST)

