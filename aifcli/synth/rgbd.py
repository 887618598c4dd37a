"""Scenes from any RGB image plus a depth or disparity map (``aif synth from-rgbd``).

The image becomes the main camera's all-in-focus view. Its inverse depth is cut into
``layers`` fronto-parallel slabs (equal steps in inverse depth, so equal steps in CoC);
each slab is an RGBA plane at its pixels' mean inverse depth. So that the ultra-wide, which looks from a
baseline to the side, sees something plausible where a nearer slab uncovers a farther
one, each slab is extended behind the nearer slabs by the largest parallax (+ a margin)
with colours filled from its own pixels by normalised convolution; the farthest slab
is an opaque backdrop mirrored beyond the image edges (the ultra-wide sees a wider field
than the image holds). Ground truth is exact for this layered scene: depth is the slab
depth (quantised), and parallax, flow and occlusion follow from it.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, UsageError
from ..image import srgb_to_linear
from ..presets import Preset, get_preset
from .optics import Lens
from .pairs import PairScene, module_lens, render_pair
from .scene import Layer, Scene, View, rot_xyz


def read_depth_file(path: str | Path) -> np.ndarray:
    """A depth or disparity map from .npy, .npz (first array), .pfm, or a 16/8-bit PNG/TIFF."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path, "check the path")
    ext = path.suffix.lower()
    try:
        if ext == ".npy":
            a = np.load(path, allow_pickle=False)
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if not z.files:
                    raise InputError("the .npz holds no arrays", path)
                a = z[z.files[0]]
        elif ext in (".pfm", ".png", ".tif", ".tiff", ".exr"):
            a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
            if a is None:
                raise InputError("cannot decode the depth/disparity image", path)
        else:
            raise InputError(f"unsupported depth/disparity file type '{ext}'", path,
                             "use .npy, .npz, .pfm, or a 16-bit PNG/TIFF")
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"cannot read depth/disparity ({e.__class__.__name__})", path) from None
    a = np.asarray(a)
    if a.ndim == 3:
        a = a[..., 0]
    if a.ndim != 2:
        raise InputError(f"expected a 2-D map, got shape {a.shape}", path)
    return a.astype(np.float32)


def push_pull_fill(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill pixels where ``valid`` is False from valid neighbours (push-pull: area-averaged
    pyramid of weighted values, then coarse-to-fine upsampling into the holes)."""
    if valid.all():
        return a.astype(np.float32, copy=True)
    w = valid.astype(np.float32)
    P = [(a * (w if a.ndim == 2 else w[..., None])).astype(np.float32)]
    W = [w]
    while min(P[-1].shape[:2]) > 2:
        h2, w2 = (P[-1].shape[0] + 1) // 2, (P[-1].shape[1] + 1) // 2
        P.append(cv2.resize(P[-1], (w2, h2), interpolation=cv2.INTER_AREA))
        W.append(cv2.resize(W[-1], (w2, h2), interpolation=cv2.INTER_AREA))

    def norm(p: np.ndarray, wt: np.ndarray) -> np.ndarray:
        d = np.maximum(wt, 1e-8)
        return p / (d if p.ndim == 2 else d[..., None])

    F = norm(P[-1], W[-1])
    for p, wt in zip(reversed(P[:-1]), reversed(W[:-1])):
        up = cv2.resize(F, (p.shape[1], p.shape[0]), interpolation=cv2.INTER_LINEAR)
        al = np.clip(wt * 2.0, 0.0, 1.0)
        if p.ndim == 3:
            al = al[..., None]
        F = al * norm(p, wt) + (1 - al) * up
    out = a.astype(np.float32, copy=True)
    out[~valid] = F[~valid]
    return out


_fill_invalid = push_pull_fill


def inverse_depth_from_map(m: np.ndarray, kind: str, near: float, far: float, scale: float = 1.0,
                           path: Path | None = None) -> np.ndarray:
    """Inverse depth (1/m) from a depth map (``kind='depth'``, metres x ``scale``) or a
    disparity map (``kind='disparity'``, any units: mapped linearly onto [1/far, 1/near])."""
    valid = np.isfinite(m) & (m > 0)
    if valid.mean() < 0.05:
        raise InputError("fewer than 5 % of the map's pixels are valid (finite, > 0)", path,
                         "is this a depth or disparity map?")
    if kind == "depth":
        inv = np.zeros_like(m)
        inv[valid] = 1.0 / (m[valid] * scale)
    elif kind == "disparity":
        lo, hi = np.percentile(m[valid], [0.5, 99.5])
        if hi <= lo:
            raise InputError("the disparity map is constant", path)
        t = np.clip((m - lo) / (hi - lo), 0, 1)
        inv = (1.0 / far + t * (1.0 / near - 1.0 / far)).astype(np.float32)
    else:
        raise UsageError(f"--kind {kind!r} is not depth or disparity")
    return _fill_invalid(inv.astype(np.float32), valid)


def make_rgbd_scene(image: np.ndarray, inv_depth: np.ndarray, preset: str | Preset = "generic-phone",
                    seed: int = 0, noise: float = 1.0, layers: int = 32, focus_near: float | None = None,
                    focus_far: float | None = None, blades: int = 0, name: str = "rgbd") -> PairScene:
    """A phone pair scene from a display-encoded RGB image (HxWx3 float [0,1]) and its
    inverse depth (1/m, HxW). The image's width plays the main camera's full width."""
    pr = get_preset(preset) if isinstance(preset, str) else preset
    if "ultrawide" not in pr.cameras:
        raise UsageError(f"preset '{pr.name}' has no ultra-wide camera", pr.source)
    if not 2 <= layers <= 256:
        raise UsageError(f"--layers {layers} is outside 2..256")
    h, w = image.shape[:2]
    if inv_depth.shape != (h, w):
        inv_depth = cv2.resize(inv_depth, (w, h), interpolation=cv2.INTER_NEAREST)
    rng = np.random.default_rng([int(seed), 0, 11])
    scale = w / pr.camera("main").width
    lm0, _, _ = module_lens(pr, "main", scale)
    lu, _, _ = module_lens(pr, "ultrawide", scale)
    lm = Lens(lm0.focal_mm, lm0.f_number, lm0.pixel_pitch_um)
    main = View.make(lm.focal_px, w, h)
    base_mm = pr.baseline_mm if pr.baseline_mm else 12.0
    phi = float(rng.uniform(-0.35, 0.35))
    C = np.array([np.cos(phi), np.sin(phi), 0.0]) * base_mm / 1000.0
    # the ultra-wide's image has the same size ratio to the main's as on the device
    cm, cu = pr.camera("main"), pr.camera("ultrawide")
    uw = View.make(lu.focal_px, max(8, int(round(w * cu.width / cm.width))), max(8, int(round(h * cu.height / cm.height))),
                   C=C, R=rot_xyz(*rng.uniform(-0.004, 0.004, 3)))

    lo, hi = float(inv_depth.min()), float(inv_depth.max())
    if hi - lo < 1e-9:
        hi = lo * 1.001 + 1e-6
    edges = np.linspace(lo, hi, layers + 1)
    idx = np.clip(np.searchsorted(edges, inv_depth, side="right") - 1, 0, layers - 1)
    lin = srgb_to_linear(np.clip(image, 0, 1))
    # the largest parallax in main pixels, plus the ultra-wide's extra field: how far to
    # extend each slab behind nearer ones
    ext = int(np.ceil(np.linalg.norm(C) * main.focal_px * hi)) + 4
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ext + 1, 2 * ext + 1))
    f = main.focal_px
    Ki = np.linalg.inv(main.K)
    lys: list[Layer] = []
    for k in range(layers):
        own = idx == k
        if not own.any():
            continue
        z = float(1.0 / inv_depth[own].mean())  # the slab sits at its pixels' mean inverse depth
        if k == 0 or not lys:
            alpha = np.ones((h, w), np.float32)
        else:
            nearer = idx > k
            grown = cv2.dilate(own.astype(np.uint8), kernel).astype(bool)
            alpha = (own | (grown & nearer)).astype(np.float32)
        colour = lin.copy()
        if not own.all():
            colour = push_pull_fill(lin, own)
        rgba = np.dstack([colour, alpha]).astype(np.float32)
        O = z * (Ki @ np.array([0.0, 0.0, 1.0]))
        lys.append(Layer(f"slab{k}", O, np.array([z / f, 0, 0]), np.array([0, z / f, 0]), "image", 0, texel_m=1.0,
                         image=rgba, image_border=cv2.BORDER_REFLECT_101 if len(lys) == 0 else cv2.BORDER_CONSTANT))
    scene = Scene(lys, int(seed), {"source": name, "layers": layers, "inverse_depth_range": [lo, hi]})
    depth_q = 1.0 / inv_depth
    if focus_near is None:
        focus_near = float(np.percentile(depth_q, 3))
    if focus_far is None:
        focus_far = float(np.percentile(depth_q, 97))
    return render_pair(scene, pr, rng, seed=int(seed), index=0, size=str(w), noise=noise, blades=blades,
                       main=main, uw=uw, lm=lm, lu=lu, focus_near=focus_near, focus_far=focus_far,
                       extra_meta={"kind": "pair-from-rgbd", "source": name},
                       occ_inv_tol=2.0 * (hi - lo) / layers)
