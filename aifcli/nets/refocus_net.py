"""Learned refocus for pairs after DC²'s DFNet: blend the classical candidates, then refine.

The classical pipeline already makes, for a main + ultra-wide pair and a *target* defocus
map ``c_t`` (CoC diameters in px):

- ``A``: the fused all-in-focus image rendered with ``c_t`` (``aif refocus``'s result);
- ``B``: the main image alone re-blurred toward the target, by the missing blur
  ``sqrt(max(c_t^2 - c_m^2, 0))`` (DC²'s "W only": exact where the target is blurrier than
  the main, wrong where the main must be deblurred);
- ``C``: the fused all-in-focus image itself (what a sharp target looks like).

``c_m``, the main's own CoC, is *estimated* (``estimate_main_coc``: blur matching of the
main against the fused image, then a fit of ``c = K |d - d_f|`` over the disparity), the
same way in training, in the benchmark and in ``aif refocus --engine net``.

The network (``RefocusNet``, arch ``aif-refocusnet-v1``) sees the three candidates, ``c_t``,
``c_m`` and the radial position (x, y from the image centre over the half diagonal, DFNet's
position input), goes down twice by the Haar transform, runs an ASPP (dilations 1-2-4-8 at
1/4 scale: multi-scale fusion of the mask features), comes back up by pixel shuffle with
skip connections, and predicts three softmax blending masks over A, B, C plus a small
residual (DFNet's refinement path): ``out = sum_i m_i * cand_i + r``. No global pooling and
no normalisation over the image: the receptive field is bounded (radius < ``HALO`` px), so
``tiling.tiled_forward`` gives the same output as a whole-image pass.

Training is DC²'s proxy task: from ``main_near`` (+ the ultra-wide) render the far focus and
compare with the physically rendered ``main_far``, and vice versa, on ``aif synth`` pair
scenes (seed 1000, the training presets). Loss: L1 + SSIM + gradient (DC²).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

ARCH = "aif-refocusnet-v1"
DEFAULT_WEIGHTS = "refocus-net"
HALO = 96  # > receptive-field radius (about 75 px), on the 16-px tiling grid
MULTIPLE = 16
COC_NORM = 16.0  # CoC maps enter the net as c / COC_NORM, clipped to [0, 4]
SIZES = (512, 640, 768)  # scene widths for --generate (data.TRAIN_SIZES is for the fusion nets)


# --- the main's own CoC ------------------------------------------------------------------
def _luma(rgb: np.ndarray) -> np.ndarray:
    y = cv2.transform(np.ascontiguousarray(rgb, np.float32), np.float32([[0.2126, 0.7152, 0.0722]]))
    return y if y.ndim == 2 else y[..., 0]


def estimate_main_coc(main: np.ndarray, fused: np.ndarray, disparity: np.ndarray,
                      work_width: int = 768) -> tuple[np.ndarray, dict[str, float]]:
    """The main image's CoC map (px, main resolution), estimated from the pair.

    Blur matching: the fused (all-in-focus) image is blurred by Gaussians standing in for
    discs of diameter D (sigma = D/4) and compared with the main in a local window; the best
    D per pixel, weighted by the fused image's detail, is fitted by ``c = K |d - d_f|`` (a
    grid over d_f, weighted least squares for K). The fit is what is returned: smooth and
    consistent with the disparity, also where the ultra-wide could not help.
    """
    h, w = main.shape[:2]
    s = min(1.0, work_width / w)
    size = (max(16, round(w * s)), max(16, round(h * s)))
    m = _luma(cv2.resize(main, size, interpolation=cv2.INTER_AREA) if s < 1 else main)
    f = _luma(cv2.resize(fused, size, interpolation=cv2.INTER_AREA) if s < 1 else fused)
    d = cv2.resize(disparity.astype(np.float32), size, interpolation=cv2.INTER_AREA) if s < 1 else \
        disparity.astype(np.float32)
    diams = np.array([0, 1, 2, 3, 4, 6, 8, 11, 15, 20], np.float32)
    errs = []
    for D in diams:
        fb = cv2.GaussianBlur(f, (0, 0), float(D) / 4) if D > 0 else f
        errs.append(cv2.GaussianBlur((fb - m) ** 2, (0, 0), 3.0))
    E = np.stack(errs)
    best = diams[np.argmin(E, 0)]
    hp = f - cv2.GaussianBlur(f, (0, 0), 2.0)
    wgt = cv2.GaussianBlur(hp * hp, (0, 0), 3.0)
    # a decision is informative only where the errors differ between blur levels
    spread = E.max(0) - E.min(0)
    wgt = (wgt * (spread > 1e-5)).astype(np.float64)
    if wgt.sum() <= 0:
        return np.zeros((h, w), np.float32), {"k_px": 0.0, "focus_disparity": float(np.median(disparity))}
    sub = (slice(None, None, 2), slice(None, None, 2))
    dv, cv, wv = d[sub].ravel().astype(np.float64), best[sub].ravel().astype(np.float64), wgt[sub].ravel()
    best_fit = (np.inf, 0.0, float(np.median(dv)))
    lo, hi = float(dv.min()), float(dv.max())
    span = max(hi - lo, 1e-6)
    # focus beyond the scene's range too (a frame focused nearer or farther than everything)
    grid = np.concatenate([np.quantile(dv, np.linspace(0.0, 1.0, 49)), lo - span * np.array([0.25, 1, 4]),
                           hi + span * np.array([0.25, 1, 4])])
    for df in grid:
        x = np.abs(dv - df)
        k = float((wv * x * cv).sum() / max((wv * x * x).sum(), 1e-12))
        k = max(k, 0.0)
        r = float((wv * np.abs(cv - k * x)).sum())
        if r < best_fit[0]:
            best_fit = (r, k, float(df))
    _, k, df = best_fit
    k_full = k / s
    c = (k_full * np.abs(disparity.astype(np.float32) - df)).astype(np.float32)
    return c, {"k_px": float(k_full), "focus_disparity": df}


# --- candidates --------------------------------------------------------------------------
def candidates(main: np.ndarray, fused: np.ndarray, order: np.ndarray, coc_target: np.ndarray,
               coc_main: np.ndarray, *, focus: float | None = None, classical: np.ndarray | None = None,
               options: Any = None, linear: bool = False) -> dict[str, np.ndarray]:
    """The classical candidates A (fused rendered at c_t), B (main re-blurred), C (fused)."""
    from ..refocus.render import render_defocus

    if classical is None:
        classical = render_defocus(fused, order, coc_target, focus=focus, linear=linear, options=options).image
    extra = np.sqrt(np.clip(coc_target ** 2 - coc_main ** 2, 0, None)).astype(np.float32)
    wonly = render_defocus(main, order, extra, linear=linear, options=options).image
    return {"A": classical, "B": wonly, "C": fused}


def radial_position(h: int, w: int) -> np.ndarray:
    """HxWx2 (x, y) from the image centre over the half diagonal (DFNet's position input)."""
    r = 0.5 * math.hypot(h, w)
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / r
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / r
    return np.stack(np.broadcast_arrays(x[None, :], y[:, None]), -1).astype(np.float32)


def net_input(cands: dict[str, np.ndarray], coc_target: np.ndarray, coc_main: np.ndarray) -> np.ndarray:
    """HxWx13 float32: A, B, C, c_t, c_m, position."""
    h, w = coc_target.shape
    ct = np.clip(coc_target / COC_NORM, 0, 4)[..., None]
    cm = np.clip(coc_main / COC_NORM, 0, 4)[..., None]
    return np.concatenate([cands["A"], cands["B"], cands["C"], ct, cm, radial_position(h, w)], -1).astype(np.float32)


# --- the network -------------------------------------------------------------------------
def _build_module(config: dict[str, Any]) -> Any:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from .layers import ASPP, ConvBlock, haar_dwt

    c0, c1, c2 = int(config.get("c0", 8)), int(config.get("c1", 16)), int(config.get("c2", 32))
    rates = tuple(config.get("rates", (1, 2, 4, 8)))
    res_scale = float(config.get("residual_scale", 0.1))

    class RefocusNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.loss_weights = (float(config.get("ssim_weight", 0.2)), float(config.get("grad_weight", 0.5)),
                                 float(config.get("lpips_weight", 0.0)))
            cin = 13
            self.full = ConvBlock(cin, c0)
            self.enc1 = ConvBlock(4 * cin, c1)
            self.enc1b = ConvBlock(c1, c1, residual=True)
            self.enc2 = ConvBlock(4 * c1, c2)
            self.aspp = ASPP(c2, c2, rates)
            self.up2 = nn.Conv2d(c2, 4 * c1, 3, padding=1, padding_mode="replicate")
            self.dec1 = ConvBlock(2 * c1, c1)
            self.up1 = nn.Conv2d(c1, 4 * c0, 3, padding=1, padding_mode="replicate")
            self.dec0 = ConvBlock(2 * c0, c0)
            self.head = nn.Conv2d(c0, 6, 3, padding=1, padding_mode="replicate")
            nn.init.zeros_(self.head.weight)
            with torch.no_grad():
                self.head.bias.zero_()
                self.head.bias[0] = 2.0  # start near the classical render (candidate A)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            cands = x[:, :9]
            f0 = self.full(x)
            ll, hi = haar_dwt(x)
            f1 = self.enc1b(self.enc1(torch.cat([ll, hi], 1)))
            ll, hi = haar_dwt(f1)
            f2 = self.aspp(self.enc2(torch.cat([ll, hi], 1)))
            u1 = F.leaky_relu(F.pixel_shuffle(self.up2(f2), 2), 0.1)
            g1 = self.dec1(torch.cat([u1, f1], 1))
            u0 = F.leaky_relu(F.pixel_shuffle(self.up1(g1), 2), 0.1)
            g0 = self.dec0(torch.cat([u0, f0], 1))
            o = self.head(g0)
            m = torch.softmax(o[:, :3], 1)
            blend = m[:, 0:1] * cands[:, 0:3] + m[:, 1:2] * cands[:, 3:6] + m[:, 2:3] * cands[:, 6:9]
            return blend + res_scale * o[:, 3:6]

    return RefocusNet()


def build(config: dict[str, Any]) -> Any:
    return _build_module(config)


def forward_image(model: Any, inp: np.ndarray, *, tile: int = 1536, halo: int = HALO) -> np.ndarray:
    """HxWx13 -> HxWx3 in [0, 1], tiled (same result as one pass)."""
    import torch

    from .tiling import tiled_forward

    # HxWxC is NHWC in memory already: channels_last (oneDNN's convolutions run faster so on CPU)
    x = torch.from_numpy(np.ascontiguousarray(inp, np.float32))[None].permute(0, 3, 1, 2)
    model = model.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = tiled_forward(model, x, tile=tile, halo=halo, multiple=MULTIPLE)
    return np.clip(y[0].numpy().transpose(1, 2, 0), 0, 1).astype(np.float32)


def load(weights: str | Path | None = None) -> tuple[Any, dict[str, Any]]:
    from .weights import load_weights

    return load_weights(weights or DEFAULT_WEIGHTS, arch=ARCH, task="refocus", build=build)


def refocus_pair_net(main: np.ndarray, fused: np.ndarray, disparity: np.ndarray, order: np.ndarray,
                     coc_target: np.ndarray, *, focus: float | None = None, classical: np.ndarray | None = None,
                     model: Any = None, weights: str | Path | None = None, options: Any = None,
                     linear: bool = False, tile: int = 1536) -> tuple[np.ndarray, dict[str, Any]]:
    """``aif refocus --engine net`` for a pair: the refocused main view (float32 HxWx3).

    ``main``: the main image; ``fused``: the pair's all-in-focus image (same size);
    ``disparity``/``order``: the disparity and the renderer's layer order; ``coc_target``:
    the target CoC (px); ``classical``: candidate A when already rendered. Linear inputs are
    encoded to sRGB for the net (it was trained on display-encoded images) and back.
    """
    import time

    import torch

    from ..image import linear_to_srgb, srgb_to_linear

    T: dict[str, float] = {}
    if model is None:
        model, _ = load(weights)
    t0 = time.perf_counter()
    coc_m, fit = estimate_main_coc(linear_to_srgb(main) if linear else main,
                                   linear_to_srgb(fused) if linear else fused, disparity)
    T["main_coc"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cands = candidates(main, fused, order, coc_target, coc_m, focus=focus, classical=classical,
                       options=options, linear=linear)
    if linear:
        cands = {k: linear_to_srgb(np.clip(v, 0, 1)) for k, v in cands.items()}
    T["candidates"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    torch.manual_seed(0)
    out = forward_image(model, net_input(cands, coc_target, coc_m), tile=tile)
    T["net"] = time.perf_counter() - t0
    if linear:
        out = srgb_to_linear(out)
    return out, {"main_coc_fit": {k: round(v, 4) for k, v in fit.items()},
                 "timings": {k: round(v, 3) for k, v in T.items()}}


# --- training task -----------------------------------------------------------------------
def _pair_scenes(src: Any):
    """(name, index, loader) per scene; the loader gives a dict: images, disparity, CoC maps,
    focus disparities, ratio. Generated scenes are rendered only when loaded (a cached scene
    is never rendered)."""
    import json

    from .data import _ratio, iter_scenes

    def focus_d(meta: dict[str, Any], f: str) -> float:
        return float(meta["baseline_mm"] / 1000 * meta["main"]["focal_px"] / meta["main"][f"focus_{f}_m"])

    if src.data is None:
        from ..synth.pairs import make_pair_scene

        src.check()

        def render(i: int, size: int, preset: str) -> dict[str, Any]:
            ps = make_pair_scene(src.seed, size=str(size), preset=preset, index=i)
            return {"near": ps.main_near, "far": ps.main_far, "uw": ps.ultrawide, "disparity": ps.disparity,
                    "coc_near": ps.coc_near, "coc_far": ps.coc_far, "focus_near": focus_d(ps.metadata, "near"),
                    "focus_far": focus_d(ps.metadata, "far"), "ratio": _ratio(ps.metadata)}

        for i in range(src.generate):
            size = src.sizes[i % len(src.sizes)]
            preset = src.presets[i % len(src.presets)]
            yield (f"seed{src.seed}_scene{i:04d}_{preset}_{size}", i,
                   lambda i=i, size=size, preset=preset: render(i, size, preset))
        return
    for sc in iter_scenes(src):
        gt = Path(src.data) / sc.name / "gt"
        meta = json.loads((gt / "metadata.json").read_text())
        disp = (meta["baseline_mm"] / 1000 * meta["main"]["focal_px"] / np.load(gt / "depth.npy")).astype(np.float32)
        d = {"near": sc.main["near"], "far": sc.main["far"], "uw": sc.ultrawide, "disparity": disp,
             "coc_near": sc.coc["near"], "coc_far": sc.coc["far"], "focus_near": focus_d(meta, "near"),
             "focus_far": focus_d(meta, "far"), "ratio": sc.ratio}
        yield sc.name, sc.index, (lambda d=d: d)


def make_items(name: str, index: int, sc: dict[str, Any], render_threads: int = 1) -> list[dict[str, Any]]:
    """Two items per scene (near -> far, far -> near): net input, target and the classical render."""
    from ..fuse import fuse_pair
    from ..refocus.render import RenderOptions
    from .data import VAL_EVERY

    ro = RenderOptions(highlight_gain=1.0, threads=render_threads)
    items = []
    for src_f, dst_f in (("near", "far"), ("far", "near")):
        main = sc[src_f]
        fr = fuse_pair(main, sc["uw"], ratio=sc["ratio"])
        coc_m, _ = estimate_main_coc(main, fr.image, sc["disparity"])
        ct = sc[f"coc_{dst_f}"]
        cands = candidates(main, fr.image, sc["disparity"], ct, coc_m, focus=sc[f"focus_{dst_f}"], options=ro)
        inp = net_input(cands, ct, coc_m)
        items.append({"inp": inp.astype(np.float16), "gt": sc[dst_f].astype(np.float16),
                      "name": f"{name}_{src_f}2{dst_f}", "val": index % VAL_EVERY == 0})
    return items


_LPIPS_NET: Any = None


def _lpips_loss(y: Any, gt: Any) -> Any:
    """LPIPS-Alex (aifcli.metrics, plain torch, frozen) as a loss: DC²'s perceptual term."""
    global _LPIPS_NET
    if _LPIPS_NET is None:
        from ..metrics import LPIPS

        _LPIPS_NET = LPIPS("alex").model
        for p in _LPIPS_NET.parameters():
            p.requires_grad_(False)
    maps = _LPIPS_NET.layer_maps(y * 2 - 1, gt * 2 - 1)
    return sum(m.mean() for m in maps)


class RefocusTask:
    name = "refocus"
    arch = ARCH
    title = "aif refocus-net: learned defocus control for pairs (DC² DFNet style)"
    summary = ("Refocuses a main + ultra-wide pair toward a target defocus map by blending three classical "
               "candidates (the fused all-in-focus image rendered at the target CoC, the main re-blurred "
               "toward the target, the fused image) with softmax masks from a multi-scale ASPP, plus a small "
               "residual refinement; inputs also the target and estimated main CoC maps and the radial "
               "position. Plain torch, fully convolutional, bounded receptive field (tiled = untiled).")
    notes = ("Trained on DC²'s proxy task: refocus main_near -> main_far and main_far -> main_near of "
             "synthetic pair scenes (aif synth, physically rendered thin-lens defocus with layered occlusions, "
             "sensor noise 1.0) with the ground-truth disparity and target CoC, the main's CoC estimated by "
             "blur matching (as at inference). Loss L1 + ssim_weight (1 - SSIM) + grad_weight gradient L1 + "
             "lpips_weight LPIPS-Alex (weights in the config; the benchmark's LPIPS is the same network, so "
             "that metric is partly trained on when lpips_weight > 0). Validation "
             "compares the net with the classical candidate (aif refocus: fuse, then render) on the fixed "
             "validation scenes (index % 8 == 0). Scene widths for --generate are 512/640/768 px (this "
             "module's SIZES, not data.TRAIN_SIZES). The benchmark (bench/bench_refocus.py --engine-compare) "
             "uses seed 0 and the held-out presets generic-phone, iphone-13, huawei-mate30pro.")

    def default_config(self) -> dict[str, Any]:
        return {"c0": 8, "c1": 16, "c2": 32, "rates": [1, 2, 4, 8], "residual_scale": 0.1,
                "ssim_weight": 0.2, "grad_weight": 0.5, "lpips_weight": 0.0}

    def build(self, config: dict[str, Any]) -> Any:
        return build(config)

    def prepare(self, src: Any, progress: Callable[[str], None]) -> list[dict[str, Any]]:
        import time

        import torch

        from .data import TRAIN_SIZES

        if src.data is None and tuple(src.sizes) == tuple(TRAIN_SIZES):
            src.sizes = SIZES  # laptop-sized scenes; the model card's data line says so
        threads = max(1, torch.get_num_threads())
        cv2.setNumThreads(threads)
        from .data import cached_scene_items

        def make(name: str, index: int, load: Any) -> list[dict[str, Any]] | None:
            try:
                return make_items(name, index, load(), threads)
            except Exception as e:  # noqa: BLE001 - a scene the classical pipeline refuses teaches nothing
                progress(f"skipped {name}: {e}")
                return None

        return cached_scene_items(src, _pair_scenes(src), make, prefix="refocus-", cache=getattr(src, "cache", None),
                                  progress=progress)

    def batch(self, items: list[dict[str, Any]], rng: np.random.Generator, batch: int, crop: int) -> dict[str, Any]:
        from .data import random_crops

        return random_crops(items, ("inp", "gt"), rng, batch, crop)

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        from .losses import gradient_loss, l1, ssim_loss

        y = model(batch["inp"])
        a, s, g = l1(y, batch["gt"]), ssim_loss(y, batch["gt"]), gradient_loss(y, batch["gt"])
        ws, wg, wl = getattr(model, "loss_weights", (0.2, 0.5, 0.0))
        loss = a + ws * s + wg * g
        parts = {"l1": float(a.detach()), "ssim": float(s.detach()), "grad": float(g.detach())}
        if wl > 0:
            p = _lpips_loss(y, batch["gt"])
            loss = loss + wl * p
            parts["lpips"] = float(p.detach())
        return loss, parts

    def validate(self, model: Any, items: list[dict[str, Any]]) -> dict[str, float]:
        from ..metrics import psnr, ssim

        try:
            from ..metrics import LPIPS

            lp = LPIPS("alex")
        except Exception:  # noqa: BLE001 - LPIPS weights unavailable: PSNR/SSIM only
            lp = None
        rows: dict[str, list[float]] = {}
        for it in items:
            inp = it["inp"].astype(np.float32)
            gt = it["gt"].astype(np.float32)
            out = forward_image(model, inp)
            for key, img in (("net", out), ("classical", np.clip(inp[..., 0:3], 0, 1)),
                             ("w_only", np.clip(inp[..., 3:6], 0, 1))):
                rows.setdefault(f"psnr_{key}", []).append(float(psnr(img, gt)))
                rows.setdefault(f"ssim_{key}", []).append(float(ssim(img, gt)))
                if lp is not None and key != "w_only":
                    rows.setdefault(f"lpips_{key}", []).append(float(lp.distance(img, gt)))
        return {k: float(np.mean(v)) for k, v in rows.items()}


TASK = RefocusTask()
