"""A small, self-contained focus-bracket generator for tests and quick experiments.

Layers of texture at known depths (in frame units) are composited back to front; in
frame ``k`` a layer at depth ``z`` is blurred by a Gaussian of sigma ``blur * |k - z|``
(alpha blurred with it, so occlusion edges behave like real ones: a blurred foreground
spreads over the background behind it), then the frame is scaled by ``1 + breathing *
(k - N // 2)`` around the centre (focus breathing), shifted by a small shake, gained
(exposure flicker) and optionally given noise. Ground truth is in the geometry of the
reference frame ``N // 2``: the sharp composite and the fractional frame index of best
focus per pixel. ``aif synth bursts`` makes physically richer brackets; this one exists
so that tests need no other module and no files.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Bracket:
    frames: list[np.ndarray]
    aif: np.ndarray  # ground-truth all-in-focus, reference geometry
    focus_index: np.ndarray  # ground-truth fractional frame index per pixel
    edges: np.ndarray  # bool: a band around depth discontinuities (halo band)
    transforms: list[np.ndarray]  # 3x3 reference -> frame pixel mapping used per frame
    reference: int


def _texture(rng: np.random.Generator, h: int, w: int, tint: tuple[float, float, float], scale: float) -> np.ndarray:
    base = np.zeros((h, w), np.float32)
    for octave, amp in ((scale * 16, 0.5), (scale * 4, 0.3), (scale, 0.25)):
        sh, sw = max(2, int(h / octave)), max(2, int(w / octave))
        n = rng.standard_normal((sh, sw)).astype(np.float32)
        base += amp * cv2.resize(n, (w, h), interpolation=cv2.INTER_CUBIC)
    base = (base - base.min()) / (np.ptp(base) + 1e-6)
    # add crisp strokes: real subjects have edges, not only noise
    img = np.stack([base * t for t in tint], axis=2)
    for _ in range(int(h * w / 4000)):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (p0[0] + int(rng.integers(-30, 30)), p0[1] + int(rng.integers(-30, 30)))
        c = float(rng.uniform(0, 1))
        cv2.line(img, p0, p1, (c, c, c), 1, cv2.LINE_AA)
    return np.clip(0.1 + 0.8 * img, 0, 1).astype(np.float32)


def make_bracket(h: int = 240, w: int = 320, n: int = 8, *, blur: float = 1.2, breathing: float = 0.004,
                 shake: float = 1.0, flicker: float = 0.03, noise: float = 0.0, seed: int = 0) -> Bracket:
    rng = np.random.default_rng(seed)
    ref = n // 2
    # layers: background at the far end, a middle plane, near objects at the near end
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    layers = []
    bg = _texture(rng, h, w, (0.9, 0.8, 0.7), 3.0)
    layers.append((float(n - 1), bg, np.ones((h, w), np.float32)))
    mid_alpha = ((xx > w * 0.45) & (yy > h * 0.15) & (yy < h * 0.85)).astype(np.float32)
    layers.append(((n - 1) / 2.0, _texture(rng, h, w, (0.6, 0.8, 1.0), 2.0), mid_alpha))
    r = min(h, w) * 0.22
    near_alpha = (((xx - w * 0.3) ** 2 + (yy - h * 0.45) ** 2) < r * r).astype(np.float32)
    bright = _texture(rng, h, w, (1.0, 1.0, 0.9), 1.5) * 0.3 + 0.7  # high contrast against the rest
    layers.append((0.0, bright, near_alpha))
    # ground truth: sharp composite and depth of the front-most layer
    aif = np.zeros((h, w, 3), np.float32)
    fidx = np.zeros((h, w), np.float32)
    for z, tex, a in layers:
        aif = aif * (1 - a[..., None]) + tex * a[..., None]
        fidx = np.where(a > 0.5, z, fidx)
    dz = cv2.morphologyEx(fidx, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    edges = cv2.dilate(dz.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    frames, transforms = [], []
    for k in range(n):
        img = np.zeros((h, w, 3), np.float32)
        for z, tex, a in layers:
            s = blur * abs(k - z)
            if s > 0.3:
                tb = cv2.GaussianBlur(tex * a[..., None], (0, 0), s)
                ab = cv2.GaussianBlur(a, (0, 0), s)
            else:
                tb, ab = tex * a[..., None], a
            img = img * (1 - ab[..., None]) + tb
        sc = 1.0 + breathing * (k - ref)
        dx, dy = (rng.uniform(-shake, shake, 2) if k != ref else (0.0, 0.0))
        M = np.array([[sc, 0, (1 - sc) * w / 2 + dx], [0, sc, (1 - sc) * h / 2 + dy], [0, 0, 1]])
        warped = cv2.warpAffine(img, M[:2], (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        g = 1.0 + (rng.uniform(-flicker, flicker) if k != ref else 0.0)
        warped = warped * np.float32(g)
        if noise > 0:
            warped = warped + rng.normal(0, noise, warped.shape).astype(np.float32)
        frames.append(np.clip(warped, 0, 1).astype(np.float32))
        transforms.append(M)
    return Bracket(frames, aif, fidx, edges, transforms, ref)
