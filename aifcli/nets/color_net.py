"""Colour alignment after EasyAIF's WDC-Net: a small network on the wavelet low band that
predicts a smooth per-pixel affine colour transform, applied at full resolution.

Both the source (the ultra-wide warped into the main view, ``uwf``) and the reference
(the main) are area-shrunk to a 256 px wide copy and reduced to their Haar LL band
(128 px wide, where the training loss is taken): at that scale a defocused main and a sharp
ultra-wide look alike and only colour differs. One more Haar level (64 px wide, low band
and detail bands) is where the model

1. fits the classical prior in torch: a confidence-weighted, ridge-regularised local
   affine fit (the guided-filter-like fit of ``aifcli.color.local_affine``, pulled to a
   global fit where the window holds little weight), 12 coefficient planes ``P``;
2. runs a small wavelet encoder-decoder (Haar down-sampling, dilated 3x3 blocks, skip
   connections) on [source, reference, weight, prior-corrected source, weighted residual,
   radial position, P - I] and predicts a correction ``D`` (last layer zero-initialised);
3. outputs ``C = I + mix * (P - I) + D`` with a learned scalar ``mix`` (initialised 0), so
   an untrained model is the identity transform.

``C`` (3x3 matrix + offset per pixel, on the 64 px wide grid) is bilinearly upsampled to
the source's own size and applied there (``local_affine.apply_coefficients``): the
source's detail is kept, only its colours move. Training (``aif train color``) minimises L1 between the corrected
low band and the ground truth's, over pixels that are in the ultra-wide's field and not
occluded, plus a smoothness term on ``D``.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..color.local_affine import ColorMatchResult, apply_coefficients, check_pair
from .layers import ConvBlock, haar_dwt, n_params

ARCH = "aif-colornet-v1"
DEFAULT_WEIGHTS = "color-net"
SAT = 0.985  # saturated pixels carry no colour information (as in the classical fit)


# ----------------------------------------------------------------------------- the prior


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Separable box mean (2r+1)^2 by running sums, borders replicated."""
    k = 2 * r + 1
    c = F.pad(F.pad(x, (r, r, 0, 0), mode="replicate").cumsum(-1), (1, 0))
    x = (c[..., k:] - c[..., :-k]) / k
    c = F.pad(F.pad(x, (0, 0, r, r), mode="replicate").cumsum(-2), (0, 0, 1, 0))
    return (c[..., k:, :] - c[..., :-k, :]) / k


def _gauss_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, borders replicated."""
    r = max(1, int(round(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-t * t / (2 * sigma * sigma))
    g = g / g.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def identity_coef(n: int, h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Nx12xHxW identity transform: A = I (planes 0, 4, 8), b = 0."""
    c = torch.zeros(n, 12, h, w, device=device, dtype=dtype)
    c[:, [0, 4, 8]] = 1.0
    return c


def apply_coef(coef: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """out_c = sum_k A[c,k] src_k + b_c; coef Nx12xhxw (bilinearly resized to src), src Nx3xHxW."""
    if coef.shape[-2:] != src.shape[-2:]:
        coef = F.interpolate(coef, size=src.shape[-2:], mode="bilinear", align_corners=False)
    n, _, h, w = src.shape
    A = coef[:, :9].view(n, 3, 3, h, w)
    return (A * src[:, None]).sum(2) + coef[:, 9:]


@torch.no_grad()
def prior_fit(s: torch.Tensor, r: torch.Tensor, w: torch.Tensor, radius: float = 0.12, eps: float = 2e-3,
              min_weight: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """The classical local affine fit (aifcli.color.local_affine) on the low band, in torch.

    s, r: Nx3xHxW, w: Nx1xHxW weights. Returns (coef Nx12xHxW, global Nx3x4).
    """
    n, _, h, wd = s.shape
    s64, r64, w64 = s.double(), r.double(), w.double()
    # global weighted affine fit r ~ A s + b, ridge towards identity
    X = torch.cat([s64, torch.ones_like(s64[:, :1])], 1).flatten(2)  # Nx4xP
    Y = r64.flatten(2)  # Nx3xP
    ww = w64.flatten(2) + 1e-9
    wsum = ww.sum(-1, keepdim=True)  # Nx1x1
    XtW = X * ww
    reg = torch.diag(torch.tensor([eps, eps, eps, 0.0], dtype=torch.float64, device=s.device))
    prior = torch.cat([torch.eye(3, dtype=torch.float64, device=s.device),
                       torch.zeros(1, 3, dtype=torch.float64, device=s.device)], 0)
    lhs = XtW @ X.transpose(1, 2) + reg * wsum
    rhs = XtW @ Y.transpose(1, 2) + (reg @ prior) * wsum
    G = torch.linalg.solve(lhs, rhs).transpose(1, 2).float()  # Nx3x4
    # local fit: windowed weighted covariances
    rad = max(2, int(round(radius * wd)))
    wf = w.float()
    W = _box(wf, rad) + 1e-6
    mean = lambda x: _box(x * wf, rad) / W  # noqa: E731
    ms, mr = mean(s), mean(r)
    ii, jj = torch.triu_indices(3, 3)
    prods_ss = torch.stack([s[:, i] * s[:, j] for i, j in zip(ii.tolist(), jj.tolist())], 1)
    prods_sr = torch.stack([s[:, i] * r[:, j] for i in range(3) for j in range(3)], 1)
    m_ss = mean(prods_ss)
    m_sr = mean(prods_sr).view(n, 3, 3, h, wd)
    css = torch.empty(n, 3, 3, h, wd, device=s.device)
    for k, (i, j) in enumerate(zip(ii.tolist(), jj.tolist())):
        css[:, i, j] = m_ss[:, k] - ms[:, i] * ms[:, j]
        css[:, j, i] = css[:, i, j]
    csr = m_sr - ms[:, :, None] * mr[:, None, :]
    eye = torch.eye(3, device=s.device)
    AgT = G[:, :, :3].transpose(1, 2)  # Nx3x3
    lhs_l = (css.permute(0, 3, 4, 1, 2) + eps * eye).double()
    rhs_l = (csr.permute(0, 3, 4, 1, 2) + eps * AgT[:, None, None]).double()
    AT = torch.linalg.solve(lhs_l, rhs_l).float()  # NxHxWx3x3
    A = AT.transpose(-1, -2).permute(0, 3, 4, 1, 2)  # Nx3(out)x3(in)xHxW
    b = mr - (A * ms[:, None]).sum(2)
    alpha = (W / min_weight).clamp(0, 1)
    Ag = G[:, :, :3, None, None]
    A = A * alpha[:, None] + Ag * (1 - alpha[:, None])
    b = b * alpha + G[:, :, 3, None, None] * (1 - alpha)
    coef = torch.cat([A.reshape(n, 9, h, wd), b], 1)
    coef = _gauss_blur(coef, max(1.0, rad / 3))
    return coef, G


# ----------------------------------------------------------------------------- the model


@functools.lru_cache(maxsize=16)
def _radial_np(h: int, w: int) -> np.ndarray:
    """Squared distance from the centre, 1 at the corners: float32 HxW."""
    y = (np.arange(h, dtype=np.float64) - (h - 1) / 2) / (0.5 * np.hypot(h, w))
    x = (np.arange(w, dtype=np.float64) - (w - 1) / 2) / (0.5 * np.hypot(h, w))
    return (y[:, None] ** 2 + x[None, :] ** 2).astype(np.float32)


def _radial(n: int, h: int, w: int, device=None) -> torch.Tensor:
    return torch.from_numpy(_radial_np(h, w)).to(device).expand(n, 1, h, w)


class ColorNet(nn.Module):
    """Inputs on the ``grid``-wide copy (H, W multiples of 16); coefficients on its level-2 LL grid (1/4)."""

    def __init__(self, width: int = 16, radius: float = 0.12, eps: float = 2e-3, smooth: float = 0.02):
        super().__init__()
        self.smooth = float(smooth)  # weight of the correction's total variation in the training loss
        c1, c2 = width, width + width // 2
        self.radius, self.eps = float(radius), float(eps)
        # level 1 (LL1): source, reference, weight, radius^2 -> Haar -> 4 x 8 bands on level 2,
        # with the prior's 18 planes (P - I, corrected source, weighted residual)
        self.inp = ConvBlock(4 * 8 + 18, c1)                  # 1/4 of the grid
        self.enc = ConvBlock(4 * c1, c2)                      # 1/8 (Haar: 4 bands in)
        self.mid = nn.Sequential(ConvBlock(c2, c2, dilation=2, residual=True),
                                 ConvBlock(c2, c2, dilation=4, residual=True))
        self.dec = ConvBlock(c2 + c1, c1)                     # 1/4
        self.out = nn.Conv2d(c1, 12, 3, padding=1, padding_mode="replicate")
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.mix = nn.Parameter(torch.zeros(1))

    @staticmethod
    def low_band(x: torch.Tensor) -> torch.Tensor:
        """Haar LL, rescaled to the input's range (= 2x2 mean)."""
        return haar_dwt(x)[0] * 0.5

    def forward(self, src: torch.Tensor, ref: torch.Tensor, weight: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """src/ref Nx3xHxW, weight Nx1xHxW on the grid -> (coef Nx12xH/4xW/4, correction D, global Nx3x4)."""
        s1, r1, w1 = self.low_band(src), self.low_band(ref), self.low_band(weight)
        n, _, h1, w1d = s1.shape
        x1 = torch.cat([s1, r1, w1, _radial(n, h1, w1d, s1.device)], 1)
        ll, hi = haar_dwt(x1)
        s, r, w = ll[:, :3] * 0.5, ll[:, 3:6] * 0.5, ll[:, 6:7] * 0.5
        h, wd = s.shape[-2:]
        prior, G = prior_fit(s, r, w, self.radius, self.eps)
        ident = identity_coef(n, h, wd, s.device)
        sp = apply_coef(prior, s)
        f1 = self.inp(torch.cat([ll, hi, prior - ident, sp, (r - sp) * w], 1))
        ll2, hi2 = haar_dwt(f1)
        f2 = self.mid(self.enc(torch.cat([ll2, hi2], 1)))
        u1 = self.dec(torch.cat([F.interpolate(f2, scale_factor=2, mode="bilinear", align_corners=False), f1], 1))
        d = self.out(u1)
        coef = ident + self.mix * (prior - ident) + d
        return coef, d, G


def build(config: dict[str, Any]) -> ColorNet:
    return ColorNet(width=int(config.get("width", 16)), radius=float(config.get("radius", 0.12)),
                    eps=float(config.get("eps", 2e-3)), smooth=float(config.get("smooth", 0.02)))


# ----------------------------------------------------------------------------- inference

def load(weights: str | Path | None = None) -> tuple[ColorNet, dict[str, Any]]:
    """The colour network from ``weights`` (a path or a name in weights/; default color-net)."""
    from .weights import load_weights

    return load_weights(weights or DEFAULT_WEIGHTS, arch=ARCH, task="color", build=build)


def grid_shape(h: int, w: int, grid: int = 256) -> tuple[int, int]:
    """The working grid for an HxW image: ``grid`` wide, height a multiple of 16 by aspect."""
    gh = max(16, int(round(grid * h / w / 16)) * 16)
    return gh, grid


def _area(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.shape[:2] == shape:
        return a
    return cv2.resize(a, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _weight_map(mask: np.ndarray | None, s: np.ndarray, r: np.ndarray) -> np.ndarray:
    shape = s.shape[:2]
    if mask is None:
        w = np.ones(shape, np.float32)
    else:
        m = np.asarray(mask, np.float32)
        if m.ndim == 3:
            m = m[..., 0]
        w = np.clip(_area(m, shape), 0, 1)
    return (w * (s.max(2) < SAT) * (r.max(2) < SAT)).astype(np.float32)


def _t(a: np.ndarray) -> torch.Tensor:
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))[None]


def match_colors_net(source: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None,
                     weights: str | Path | None = None, *, model: ColorNet | None = None,
                     source_path=None) -> ColorMatchResult:
    """Give ``source`` the colours of ``reference`` with the learned colour network.

    Same contract as ``aifcli.color.local_affine.match_colors``: HxWx3 float32 [0,1]
    images of the same aspect ratio (the reference may be smaller), ``mask`` HxW weights
    of any size. ``weights``: a weights file or name (default ``color-net`` from weights/).
    Deterministic; the residuals are weighted RMS on the low band, against the reference.
    """
    t0 = time.perf_counter()
    check_pair(source, reference, source_path)
    sh, sw = source.shape[:2]
    if model is None:
        model, _ = load(weights)
    t_load = time.perf_counter() - t0
    shape = grid_shape(sh, sw)
    s = np.clip(_area(source, shape), 0, 1)
    r = np.clip(_area(reference, shape), 0, 1)
    w = _weight_map(mask, s, r)
    wf = float(w.mean())
    if w.sum() < 64:
        w = np.full_like(w, 1e-3)  # nothing reliable: fit everywhere, weakly
    with torch.no_grad():
        st, rt, wt = _t(s), _t(r), _t(w)
        coef, _, G = model(st, rt, wt)
        ls, lr, lw = (ColorNet.low_band(x) for x in (st, rt, wt))
        pred = apply_coef(coef, ls)
        lw = lw + 1e-9
        res_b = float(torch.sqrt(((ls - lr) ** 2 * lw).sum() / (lw.sum() * 3)))
        res_a = float(torch.sqrt(((pred - lr) ** 2 * lw).sum() / (lw.sum() * 3)))
    t_fit = time.perf_counter() - t0 - t_load
    t1 = time.perf_counter()
    coef_np = np.ascontiguousarray(coef[0].numpy().transpose(1, 2, 0))
    out = apply_coefficients(np.ascontiguousarray(source, dtype=np.float32), coef_np)
    timings = {"load": t_load, "fit": t_fit, "apply": time.perf_counter() - t1}
    return ColorMatchResult(out, G[0].numpy().astype(np.float32), True, wf, res_b, res_a, timings)


# ----------------------------------------------------------------------------- training


def delta_e(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> float:
    """Mean CIEDE2000 between two HxWx3 [0,1] sRGB images over ``valid``."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    if not valid.any():
        return float("nan")
    d = deltaE_ciede2000(rgb2lab(np.clip(a, 0, 1).astype(np.float64)), rgb2lab(np.clip(b, 0, 1).astype(np.float64)))
    return float(d[valid].mean())


class ColorTask:
    name = "color"
    arch = ARCH
    title = "aif colour network (WDC-Net style)"
    summary = ("Colour alignment of the warped ultra-wide to the main camera: a wavelet low-band encoder-decoder "
               "that corrects a classical local affine colour fit and outputs a smooth per-pixel 3x3 matrix + "
               "offset (12 planes on a 64 px wide grid), applied to the ultra-wide at full resolution. Used by "
               "`aif colormatch --engine net`.")
    notes = ("Each training item is a whole image (not a crop: --crop is ignored), area-shrunk to 256x192 and "
             "reduced to its Haar LL band (128x96) where the loss is taken: L1 between the corrected low band "
             "and the ground-truth all-in-focus image (main camera colour) over pixels inside the ultra-wide's "
             "field and not occluded, plus 0.02 x the total variation of the learned correction. Augmentation: "
             "flips; for the source (p=0.8) a random colour matrix (off-diagonal +-0.12, gains 0.8-1.2), offset "
             "+-0.03, per-channel gamma 0.85-1.2 and vignetting up to 40 % in the corners; for the reference "
             "and the ground truth together (p=0.5) a random colour matrix (off-diagonal +-0.05, gains 0.9-1.1). "
             "Validation: mean CIEDE2000 on the 128 px low band over the valid overlap (in field, not "
             "occluded), for the network and for the classical `aif colormatch` output (`iwc`) of the same "
             "items. The model is the identity transform before training (zero-initialised output, zero prior "
             "mix). Data preparation can be cached per scene with --cache DIR (or $AIF_COLOR_CACHE=DIR).")
    GRID = (192, 256)

    def default_config(self) -> dict[str, Any]:
        return {"width": 16, "radius": 0.12, "eps": 2e-3, "smooth": 0.02}

    def build(self, config: dict[str, Any]) -> ColorNet:
        return build(config)

    def prepare(self, src, progress: Callable[[str], None]) -> list[dict[str, Any]]:
        """Like ``data.pair_items`` but every item shrunk at once to the 256x192 grid (bounded memory).

        With ``--cache DIR`` (or $AIF_COLOR_CACHE), each scene's small items are kept there
        (``color-<scene name>.npz``) and re-used by later runs with the same data source;
        a cached scene is not rendered again.
        """
        import os

        from .data import VAL_EVERY, cached_scene_items, classical_inputs, iter_scene_loaders
        from .data import _area as area_to

        cache = src.cache or (Path(os.environ["AIF_COLOR_CACHE"]) if os.environ.get("AIF_COLOR_CACHE") else None)
        g = self.GRID
        lo = (g[0] // 2, g[1] // 2)
        keys = ("src", "ref", "conf", "gt", "valid", "iwc_lo")

        def make(name: str, index: int, load_scene: Any) -> list[dict[str, Any]]:
            sc = load_scene()
            new: list[dict[str, Any]] = []
            for focus in ("near", "far"):
                try:
                    ci = classical_inputs(sc.main[focus], sc.ultrawide, sc.ratio)
                except Exception as e:  # noqa: BLE001 - a scene the alignment refuses teaches nothing
                    progress(f"skipped {sc.name} {focus}: {e}")
                    continue
                shape = ci["main"].shape[:2]
                inf = ci["infield"] if ci["infield"].ndim == 2 else ci["infield"][..., 0]
                valid = inf.astype(np.float32) * (1.0 - area_to(sc.occlusion.astype(np.float32), shape))
                arr = {"src": _area(ci["uwf"], g), "ref": _area(ci["main"], g), "conf": _area(ci["conf"], g),
                       "gt": _area(area_to(sc.aif, shape), g), "valid": _area(valid, g),
                       "iwc_lo": _area(ci["iwc"], lo)}
                arr = {k: np.ascontiguousarray((v[..., None] if v.ndim == 2 else v).astype(np.float16))
                       for k, v in arr.items()}
                new.append({**arr, "name": f"{sc.name}_{focus}", "val": sc.index % VAL_EVERY == 0})
            return new

        items = cached_scene_items(src, iter_scene_loaders(src), make, prefix="color-", cache=cache, progress=progress)
        for it in items:  # float32 in memory (~3 MB an item): no conversion per batch
            for k in keys:
                it[k] = it[k].astype(np.float32)
        return items

    def batch(self, items: list[dict[str, Any]], rng: np.random.Generator, batch: int, crop: int) -> dict[str, Any]:
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("src", "ref", "conf", "gt", "valid")}
        for _ in range(batch):
            it = items[int(rng.integers(len(items)))]
            a = {k: it[k] for k in out}
            if rng.random() < 0.5:
                a = {k: v[:, ::-1] for k, v in a.items()}
            if rng.random() < 0.5:
                a = {k: v[::-1] for k, v in a.items()}
            if rng.random() < 0.8:  # another camera look for the source: colour matrix, gains, offset,
                h, w = a["src"].shape[:2]  # tone curve, vignetting
                M = np.eye(3) + rng.uniform(-0.12, 0.12, (3, 3)) * (1 - np.eye(3))
                M = (M * rng.uniform(0.8, 1.2, 3)[:, None]).astype(np.float32)
                vig = 1 - np.float32(rng.uniform(0.0, 0.4)) * _radial_np(h, w)
                x = (a["src"].reshape(-1, 3) @ M.T).reshape(h, w, 3)
                x *= vig[..., None]
                x += rng.uniform(-0.03, 0.03, 3).astype(np.float32)
                np.clip(x, 1e-6, 1, out=x)
                x = cv2.exp(cv2.log(x) * rng.uniform(0.85, 1.2, 3).astype(np.float32).reshape(1, 1, 3))
                a["src"] = np.ascontiguousarray(x, dtype=np.float32)
            if rng.random() < 0.5:  # another look for the reference camera (and so its truth)
                M = np.eye(3) + rng.uniform(-0.05, 0.05, (3, 3)) * (1 - np.eye(3))
                M = (M * rng.uniform(0.9, 1.1, 3)[:, None]).astype(np.float32)
                for k in ("ref", "gt"):
                    h, w = a[k].shape[:2]
                    a[k] = np.clip((a[k].reshape(-1, 3) @ M.T).reshape(h, w, 3), 0, 1)
            for k, v in a.items():
                out[k].append(np.ascontiguousarray(v.transpose(2, 0, 1)))
        return {k: np.stack(v) for k, v in out.items()}

    @staticmethod
    def _weight(src: torch.Tensor, ref: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
        return conf * (src.amax(1, keepdim=True) < SAT) * (ref.amax(1, keepdim=True) < SAT)

    def loss(self, model: ColorNet, b: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        w = self._weight(b["src"], b["ref"], b["conf"])
        coef, d, _ = model(b["src"], b["ref"], w)
        pred = F.avg_pool2d(apply_coef(coef, b["src"]), 2)
        gt = F.avg_pool2d(b["gt"], 2)
        valid = F.avg_pool2d(b["valid"], 2)
        rec = (pred - gt).abs().mul(valid).sum() / (valid.sum() * 3).clamp_min(1.0)
        tv = (d[..., 1:, :] - d[..., :-1, :]).abs().mean() + (d[..., :, 1:] - d[..., :, :-1]).abs().mean()
        smooth = float(getattr(model, "smooth", 0.02))
        return rec + smooth * tv, {"l1": float(rec.detach()), "tv": float(tv.detach())}

    def validate(self, model: ColorNet, items: list[dict[str, Any]]) -> dict[str, float]:
        de_net, de_cls, de_src, l1_net, l1_cls = [], [], [], [], []
        for it in items:
            b = {k: torch.from_numpy(np.ascontiguousarray(it[k].astype(np.float32).transpose(2, 0, 1)))[None]
                 for k in ("src", "ref", "conf", "gt", "valid")}
            w = self._weight(b["src"], b["ref"], b["conf"])
            coef, _, _ = model(b["src"], b["ref"], w)
            pred = F.avg_pool2d(apply_coef(coef, b["src"]), 2)[0].numpy().transpose(1, 2, 0)
            src_lo = F.avg_pool2d(b["src"], 2)[0].numpy().transpose(1, 2, 0)
            gt = F.avg_pool2d(b["gt"], 2)[0].numpy().transpose(1, 2, 0)
            valid = F.avg_pool2d(b["valid"], 2)[0, 0].numpy() > 0.99
            iwc = it["iwc_lo"].astype(np.float32)
            de_net.append(delta_e(pred, gt, valid))
            de_cls.append(delta_e(iwc, gt, valid))
            de_src.append(delta_e(src_lo, gt, valid))
            l1_net.append(float(np.abs(np.clip(pred, 0, 1) - gt)[valid].mean()))
            l1_cls.append(float(np.abs(iwc - gt)[valid].mean()))
        return {"deltaE2000 net": float(np.nanmean(de_net)), "deltaE2000 classical": float(np.nanmean(de_cls)),
                "deltaE2000 uncorrected": float(np.nanmean(de_src)),
                "low-band L1 net": float(np.mean(l1_net)), "low-band L1 classical": float(np.mean(l1_cls)),
                "prior mix": float(model.mix.detach()),
                "items": len(items)}


TASK = ColorTask()

__all__ = ["ARCH", "ColorNet", "TASK", "apply_coef", "build", "load", "match_colors_net", "n_params", "prior_fit"]
