"""A tiny two-plane main + ultra-wide scene with exact ground truth, for tests and quick checks.

A textured background plane and a textured foreground square in front of it are seen by
a main camera at the origin and an ultra-wide camera ``baseline`` to the right with a
``ratio`` times wider field. Everything is ray-cast (2x supersampled), so the
parallax, occlusions and the background-plane homography are exact. The main image
is focused near (background blurred) or far (foreground blurred, its edge spreading
over the background); the ultra-wide is sharp, optionally defocused on the foreground
(a very near object), with a colour cast and noise.

``aif synth pairs`` (aifcli/synth) makes physically richer scenes; this stays here so
the fusion tests need nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class ToyPair:
    main_near: np.ndarray  # focused on the foreground
    main_far: np.ndarray  # focused on the background
    ultrawide: np.ndarray
    aif: np.ndarray  # ground-truth all-in-focus main view
    fg_alpha: np.ndarray  # foreground coverage in the main view (= in focus in main_near)
    occlusion: np.ndarray  # main pixels the ultra-wide cannot see (background hidden by the foreground)
    H_bg: np.ndarray  # main px -> uw px for the background plane
    uw_map: np.ndarray  # HxWx2 true ultra-wide coordinates of each main pixel (visible surface)
    ratio: float


def _texture(rng: np.random.Generator, n: int, cells: int = 12) -> np.ndarray:
    """Multi-octave coloured noise plus sharp-edged blobs: SIFT finds corners, flow finds texture."""
    tex = np.zeros((n, n, 3), np.float32)
    amp = 1.0
    for k in (4, 8, 16, 48, 128, 256, n // 2):
        small = rng.random((k, k, 3)).astype(np.float32)
        tex += amp * cv2.resize(small, (n, n), interpolation=cv2.INTER_CUBIC)
        amp *= 0.8
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    for _ in range(cells * cells // 2):
        x, y = rng.integers(0, n, 2)
        r = int(rng.integers(n // 80 + 2, n // 25 + 4))
        col = tuple(float(c) for c in rng.random(3))
        if rng.random() < 0.5:
            cv2.rectangle(tex, (int(x), int(y)), (int(x + r), int(y + r * 0.7)), col, -1)
        else:
            cv2.circle(tex, (int(x), int(y)), r // 2, col, -1)
    return np.clip(tex, 0, 1)


def make_toy_pair(height: int = 240, width: int = 320, *, ratio: float = 2.0, uw_size: tuple[int, int] | None = None,
                  baseline: float = 0.012, z_fg: float = 0.35, z_bg: float = 3.0, fg_size: float = 0.3,
                  fg_center: tuple[float, float] = (0.0, 0.0), blur_bg: float = 3.0, blur_fg: float = 4.0,
                  uw_fg_blur: float = 0.0, cast: tuple[float, float, float] = (1.1, 1.0, 0.82),
                  gamma: float = 1.1, noise: float = 0.004, with_fg: bool = True, seed: int = 0) -> ToyPair:
    """Render the scene; ``fg_size`` is the square's half-width as a fraction of the main's
    horizontal field, ``fg_center`` its centre in the same units."""
    rng = np.random.default_rng(seed)
    uh, uw = uw_size or (height, width)
    fm = float(width)  # main focal length in px (about 53 degrees horizontal field)
    fu = fm / ratio * (np.hypot(uh, uw) / np.hypot(height, width))
    half_w_bg = z_bg * (uw / 2 / fu) * 1.2 + baseline * 2
    tex_bg = _texture(rng, 1024)
    tex_fg = _texture(rng, 512, 8) * 0.8 + 0.2 * np.float32([0.9, 0.4, 0.2])
    fgx, fgy = fg_center[0] * z_fg * width / 2 / fm, fg_center[1] * z_fg * width / 2 / fm
    fgh = fg_size * z_fg * width / 2 / fm  # half-width in world units

    def render(h: int, w: int, f: float, cam_x: float, ss: int = 2):
        ys, xs = np.mgrid[0:h * ss, 0:w * ss].astype(np.float32)
        dx = ((xs + 0.5) / ss - 0.5 - (w - 1) / 2) / f
        dy = ((ys + 0.5) / ss - 0.5 - (h - 1) / 2) / f
        bx, by = cam_x + z_bg * dx, z_bg * dy
        m32 = lambda v: np.asarray(v, np.float32)  # noqa: E731
        bg = cv2.remap(tex_bg, m32((bx / half_w_bg * 0.5 + 0.5) * 1023), m32((by / half_w_bg * 0.5 + 0.5) * 1023),
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        fx, fy = cam_x + z_fg * dx, z_fg * dy
        inside = ((np.abs(fx - fgx) <= fgh) & (np.abs(fy - fgy) <= fgh)).astype(np.float32) if with_fg else \
            np.zeros_like(fx)
        fg = cv2.remap(tex_fg, m32(((fx - fgx) / fgh * 0.5 + 0.5) * 511), m32(((fy - fgy) / fgh * 0.5 + 0.5) * 511),
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        down = lambda a: cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)  # noqa: E731
        # which background points does the other camera see? (for the occlusion truth)
        return down(bg), down(fg), down(inside), (bx, by)

    bg_m, fg_m, a_m, (bxm, bym) = render(height, width, fm, 0.0)
    bg_u, fg_u, a_u, _ = render(uh, uw, fu, baseline)
    a3 = a_m[..., None]
    aif = fg_m * a3 + bg_m * (1 - a3)
    near = fg_m * a3 + cv2.GaussianBlur(bg_m, (0, 0), blur_bg) * (1 - a3) if blur_bg > 0 else aif.copy()
    if blur_fg > 0:
        fa = cv2.GaussianBlur(fg_m * a3, (0, 0), blur_fg)
        ab = cv2.GaussianBlur(a_m, (0, 0), blur_fg)[..., None]
        far = fa + bg_m * (1 - ab)
    else:
        far = aif.copy()
    au3 = a_u[..., None]
    if uw_fg_blur > 0:
        fu_l = cv2.GaussianBlur(fg_u * au3, (0, 0), uw_fg_blur)
        au3 = cv2.GaussianBlur(a_u, (0, 0), uw_fg_blur)[..., None]
        uwi = fu_l + bg_u * (1 - au3)
    else:
        uwi = fg_u * au3 + bg_u * (1 - au3)
    uwi = np.clip(uwi * np.float32(cast), 0, 1) ** gamma
    uwi = np.clip(uwi + rng.normal(0, noise, uwi.shape).astype(np.float32), 0, 1).astype(np.float32)
    # ground truth geometry, main pixel centres
    s = fu / fm
    cxm, cym = (width - 1) / 2, (height - 1) / 2
    cxu, cyu = (uw - 1) / 2, (uh - 1) / 2
    H_bg = np.array([[s, 0, cxu - s * cxm - fu * baseline / z_bg], [0, s, cyu - s * cym], [0, 0, 1]])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    depth = np.where(a_m > 0.5, z_fg, z_bg).astype(np.float32)
    uw_map = np.stack([cxu + s * (xs - cxm) - fu * baseline / depth, cyu + s * (ys - cym)], -1).astype(np.float32)
    # background point seen by main pixel, is it behind the square from the ultra-wide?
    X = z_bg * (xs - cxm) / fm
    Y = z_bg * (ys - cym) / fm
    px = baseline + (X - baseline) * z_fg / z_bg
    py = Y * z_fg / z_bg
    hidden = (np.abs(px - fgx) <= fgh) & (np.abs(py - fgy) <= fgh) if with_fg else np.zeros_like(X, bool)
    occ = (hidden & (a_m < 0.5)).astype(np.float32)
    f32 = lambda a: np.clip(a, 0, 1).astype(np.float32)  # noqa: E731
    return ToyPair(f32(near), f32(far), f32(uwi), f32(aif), a_m.astype(np.float32), occ, H_bg, uw_map, ratio)
