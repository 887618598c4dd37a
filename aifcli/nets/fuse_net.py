"""Occlusion-aware fusion network after EasyAIF's OAS-Net, sized for a laptop CPU.

Inputs, on the net grid (the classical fuse grid, shrunk to at most ``NET_MAX_WIDTH`` px):
the main ``I_m``, the flow-warped colour-matched ultra-wide ``I_wc``, the alignment
confidence and field masks, and two fixed focus features (log fine-band energy of each
image's luminance, the classical detail measure). A Haar-wavelet encoder (three DWT levels,
ASPP at the coarsest) and a decoder predict, at 1/4 of the grid:

- three mask logits -> softmax -> ``M_m, M_wc, M_d`` (EasyAIF eq. 2, summing to one);
- a bounded 2-D offset (±``max_offset`` px) that re-samples ``I_wc`` with ``grid_sample``
  (OAS-Net's deformable alignment, reduced to one offset per pixel);

and at 1/2 of the grid the Haar coefficients of a residual that turns the main into the
refined main ``I_d`` (a learned deblur for regions the ultra-wide cannot fill). Output:
``I = M_m I_m + M_wc warp(I_wc) + M_d I_d``.

Losses (EasyAIF eq. 3-4): L1 + SSIM on the output against the ground-truth all-in-focus
image, plus cross-entropy of the masks against targets made from the ground truth (the main
where it is in focus or locally closer to the truth, the ultra-wide where it is visible and
closer, the refined main at occlusions and failed flow).

No global pooling or normalisation: the receptive field is bounded (``RECEPTIVE_RADIUS``),
so ``tiling.tiled_forward`` gives the whole-image result tile by tile.
"""
from __future__ import annotations

from typing import Any, Callable

import cv2
import numpy as np

NET_MAX_WIDTH = 1024
# fuse-net was trained on renders 768-1280 px wide; above this many main pixels it was
# measured far below the classical engine (``size_warning``)
TRAINED_MAX_PIXELS = 2_000_000
MULTIPLE = 16  # three Haar levels + a stride-2 margin
RECEPTIVE_RADIUS = 160  # px on the net grid; covers the encoder's dilated convs + feature blurs
ARCH = "aif-fusenet-v1"
DEFAULT_WEIGHTS = "fuse-net"


def _gauss1d(sigma: float):
    import torch

    r = int(np.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def _build(config: dict[str, Any]):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from .layers import ASPP, ConvBlock, haar_dwt, haar_idwt

    c1, c2, c3 = int(config["c1"]), int(config["c2"]), int(config["c3"])
    max_off = float(config["max_offset"])

    class FuseNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = dict(config)  # loss weights live here too (not tensors: not in the state dict)
            cin = 3 + 3 + 1 + 1 + 2  # main, iwc, conf, infield, log-energies
            self.register_buffer("g_hp", _gauss1d(1.5), persistent=False)
            self.register_buffer("g_win", _gauss1d(3.0), persistent=False)
            self.enc1 = ConvBlock(cin * 4, c1)
            self.enc2 = nn.Sequential(ConvBlock(c1 * 4, c2), ConvBlock(c2, c2, 2, residual=True))
            self.enc3 = nn.Sequential(ConvBlock(c2 * 4, c3), ASPP(c3, c3, (1, 2, 4)))
            self.dec2 = ConvBlock(c3 + c2, c2)
            self.head2 = nn.Conv2d(c2, 3 + 2, 3, padding=1, padding_mode="replicate")
            self.dec1 = ConvBlock(c2 + c1, c1)
            self.head1 = nn.Conv2d(c1, 12, 3, padding=1, padding_mode="replicate")
            with torch.no_grad():
                self.head1.weight.mul_(0.1)
                self.head1.bias.zero_()
                self.head2.weight.mul_(0.1)
                self.head2.bias.zero_()
                self.head2.bias[0] = 2.0  # start close to "keep the main"

        def _blur(self, x, g):
            k = g.numel()
            c = x.shape[1]
            x = F.pad(x, (k // 2, k // 2, k // 2, k // 2), mode="replicate")
            x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
            return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)

        def log_energy(self, rgb):
            y = 0.2126 * rgb[:, 0:1] + 0.7152 * rgb[:, 1:2] + 0.0722 * rgb[:, 2:3]
            hp = y - self._blur(y, self.g_hp)
            return torch.log(self._blur(hp * hp, self.g_win) + 2e-6)

        def heads(self, main, iwc, conf, infield):
            em, eu = self.log_energy(main), self.log_energy(iwc)
            x = torch.cat([main, iwc, conf, infield, (em + 9.0) / 4.0, (eu + 9.0) / 4.0], 1)
            ll, hi = haar_dwt(x)
            e1 = self.enc1(torch.cat([ll, hi], 1))  # 1/2
            ll, hi = haar_dwt(e1)
            e2 = self.enc2(torch.cat([ll, hi], 1))  # 1/4
            ll, hi = haar_dwt(e2)
            e3 = self.enc3(torch.cat([ll, hi], 1))  # 1/8
            d2 = self.dec2(torch.cat([F.interpolate(e3, scale_factor=2, mode="bilinear", align_corners=False), e2], 1))
            h2 = self.head2(d2)
            d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2, mode="bilinear", align_corners=False), e1], 1))
            h1 = self.head1(d1)
            return h2, h1

        def forward(self, main, iwc, conf, infield):
            """Returns (output, masks Nx3xHxW [main, ultra-wide, refined], refined main, warped iwc, offset)."""
            h2, h1 = self.heads(main, iwc, conf, infield)
            n, _, h, w = main.shape
            up = lambda t: F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)  # noqa: E731
            masks = torch.softmax(up(h2[:, :3]), 1)
            off = up(torch.tanh(h2[:, 3:5]) * (max_off / 4.0)) * 4.0  # net-grid px
            ys = torch.arange(h, dtype=main.dtype, device=main.device).view(1, h, 1)
            xs = torch.arange(w, dtype=main.dtype, device=main.device).view(1, 1, w)
            gx = (xs + off[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
            gy = (ys + off[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
            iwc_w = F.grid_sample(iwc, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                                  align_corners=True)
            refined = main + haar_idwt(h1[:, :3] * 0.5, h1[:, 3:])
            out = masks[:, 0:1] * main + masks[:, 1:2] * iwc_w + masks[:, 2:3] * refined
            return out, masks, refined, iwc_w, off

    return FuseNet()


def _mask_targets(main, iwc, gt, occ, infocus):
    """Soft targets for (M_m, M_wc, M_d) from the ground truth (torch, Nx1xHxW each)."""
    import torch
    import torch.nn.functional as F

    def local_err(x):
        e = (x - gt).abs().mean(1, keepdim=True)
        return F.avg_pool2d(e, 5, 1, 2, count_include_pad=False)

    em, eu = local_err(main), local_err(iwc)
    t_main = torch.maximum(infocus, (em <= eu * 1.05).float())
    t_uw = (1 - t_main) * (1 - occ)
    t_d = 1 - t_main - t_uw
    return torch.cat([t_main, t_uw, t_d], 1)


class FuseTask:
    name = "fuse"
    arch = ARCH
    title = "fuse-net: occlusion-aware main + ultra-wide fusion (after EasyAIF's OAS-Net)"
    summary = ("Predicts the three masks of EasyAIF eq. 2 (main, warped colour-matched ultra-wide, refined main), "
               "a per-pixel re-alignment offset for the ultra-wide and a wavelet-domain deblur residual for the "
               "refined main, from the main, the ultra-wide after aif's classical alignment and colour match, the "
               "alignment confidence and field masks and two focus features. Used by `aif fuse --engine net`.")
    notes = ("Trained only on synthetic `aif synth` scenes (textured planes and cut-outs, thin-lens defocus, "
             "Poisson-Gaussian noise); the held-out benchmark (bench/bench_fuse.py --engine-compare) uses other "
             "seeds and presets. Real photographs were only checked visually.")

    def default_config(self) -> dict[str, Any]:
        return {"c1": 8, "c2": 24, "c3": 32, "max_offset": 3.0, "occ_weight": 4.0, "occ_band": 4}

    def build(self, config: dict[str, Any]):
        return _build({**self.default_config(), **config})

    def prepare(self, src, progress: Callable[[str], None]):
        from .data import pair_items

        return pair_items(src, progress)

    def batch(self, items, rng, batch, crop):
        from .data import random_crops

        return random_crops(items, ("main", "iwc", "conf", "infield", "gt", "occ", "infocus"), rng, batch, crop)

    def loss(self, model, b):
        from .losses import l1, ssim_loss

        import torch.nn.functional as F

        out, masks, refined, iwc_w, _ = model(b["main"], b["iwc"], b["conf"], b["infield"])
        tgt = _mask_targets(b["main"], iwc_w.detach(), b["gt"], b["occ"], b["infocus"])
        # occlusion edges are a few percent of the pixels but where ghosts appear: weight a band
        # around them (EasyAIF's occlusion-aware loss emphasis, as a pixel weight)
        k = 2 * int(model.cfg.get("occ_band", 4)) + 1
        w = 1.0 + float(model.cfg.get("occ_weight", 0.0)) * F.max_pool2d(b["occ"], k, 1, k // 2)
        lo = l1(out, b["gt"], w)
        ls = ssim_loss(out, b["gt"])
        lm = (w * -(tgt * masks.clamp_min(1e-6).log()).sum(1, keepdim=True)).sum() / w.sum()
        lr = l1(refined, b["gt"], b["occ"])  # the refined main must be good where nothing else is
        total = lo + 0.5 * ls + 0.05 * lm + 0.2 * lr
        return total, {"l1": float(lo.detach()), "ssim": float(ls.detach()), "mask": float(lm.detach())}

    def validate(self, model, items):
        from ..fuse.pair import compose, main_mask, refined_main
        from ..metrics import psnr, ssim

        rows = []
        for it in items:
            f = {k: it[k].astype(np.float32) for k in ("main", "iwc", "conf", "infield", "gt", "infocus")}
            out = run_net(model, f["main"], f["iwc"], f["conf"][..., 0], f["infield"][..., 0])["image"]
            mm = main_mask(f["main"], f["iwc"], f["infield"][..., 0])
            conf = f["conf"][..., 0]
            cl = compose(f["main"], f["main"], f["iwc"], refined_main(f["main"]), (1 - mm) * conf,
                         (1 - mm) * (1 - conf))
            rows.append((psnr(np.clip(out, 0, 1), f["gt"]), psnr(cl, f["gt"]), psnr(f["main"], f["gt"]),
                         ssim(np.clip(out, 0, 1), f["gt"]), ssim(cl, f["gt"])))
        a = np.array(rows)
        return {"psnr_net": float(a[:, 0].mean()), "psnr_classical_blend": float(a[:, 1].mean()),
                "psnr_main_only": float(a[:, 2].mean()), "ssim_net": float(a[:, 3].mean()),
                "ssim_classical_blend": float(a[:, 4].mean())}


TASK = FuseTask()


def load(weights: str | None = None):
    from .weights import load_weights

    model, _ = load_weights(weights or DEFAULT_WEIGHTS, arch=ARCH, task="fuse", build=TASK.build)
    return model


def run_net(model, main: np.ndarray, iwc: np.ndarray, conf: np.ndarray, infield: np.ndarray, *, tile: int = 1024,
            halo: int = RECEPTIVE_RADIUS) -> dict[str, np.ndarray]:
    """The network on float32 arrays of one grid (HxWx3, HxW masks), tiled; returns image, masks, refined."""
    import torch

    from .tiling import tiled_forward

    def t(a: np.ndarray):
        a = a if a.ndim == 3 else a[..., None]
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float()

    x = torch.cat([t(main), t(iwc), t(conf), t(infield)], 1)

    def fn(xx):
        out, masks, refined, _, off = model(xx[:, 0:3], xx[:, 3:6], xx[:, 6:7], xx[:, 7:8])
        return torch.cat([out, masks, refined, off], 1)

    with torch.inference_mode():
        y = tiled_forward(fn, x, tile=tile, halo=halo, multiple=MULTIPLE)[0].numpy().transpose(1, 2, 0)
    return {"image": y[..., 0:3], "masks": y[..., 3:6], "refined": y[..., 6:9], "offset": y[..., 9:11]}


def size_warning(main_shape: tuple[int, int]) -> str | None:
    """A note for the user when the main is larger than fuse-net's training data.

    On 18 synthetic 12 MP pairs (``bench/bench_fuse.py --engine-compare --size full
    --scenes 3``, 2026-11-23) ``--engine net`` scored 26.80 dB total against 28.52 for the
    classical engine and 26.23 for the main alone; focused near 23.93 dB, LPIPS 0.722,
    against 26.58 / 0.330: its masks keep the main on about 80 % of a near-focused frame
    (classical: 13 %). Running it on the fuse grid instead of the 1024-px net grid did not
    help (one pair: 21.94 -> 22.23 dB, classical 25.80). Re-run 2026-12-07 after the
    alignment's scale fix and tile refinement, which both engines share: 26.86 against 28.89
    dB (2.0 dB below; focused near 23.95 against 27.01); after the bicubic warp at 12 MP
    26.88 against 28.97 (2.1 dB below), and against 29.06 after the classical engine's colour
    match on means of light (2.2 dB below; the net engine does not use it); re-run after the
    flow's ramps and the classical refined main's bias correction: 26.88 against 29.24
    (2.4 dB below). The network needs training at that size; until then the note says so."""
    h, w = main_shape
    if h * w <= TRAINED_MAX_PIXELS:
        return None
    return (f"--engine net: fuse-net was trained on images up to 1280 px wide; on {w}x{h} pairs it keeps the "
            "defocused main where the classical engine takes the ultra-wide (12 MP synthetic pairs: 2.4 dB below "
            "the classical engine, docs/LEARNED.md); for full-resolution photos use --engine classical")


def net_scale(fuse_shape: tuple[int, int]) -> float:
    """The net grid relative to the fuse grid: 1, or smaller so its width is at most NET_MAX_WIDTH."""
    return min(1.0, NET_MAX_WIDTH / float(fuse_shape[1]))


def fuse_with_net(model, main: np.ndarray, main_t: np.ndarray, iwc: np.ndarray, conf: np.ndarray,
                  infield: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Fuse on the fuse grid with the net's masks; the correction is added to the full-res main
    (``fuse.pair.onto_main``: the main's band above the fuse grid dropped where it is noise and
    the net does not keep the main).

    Returns (image at main resolution, masks on the fuse grid, refined main on the fuse grid).
    """
    from ..align.pair import _resize
    from ..fuse.pair import onto_main

    s = net_scale(main_t.shape[:2])
    h, w = main_t.shape[:2]
    if s < 0.999:
        small_main = _resize(main_t, s)
        r = run_net(model, small_main, _resize(iwc, s), _resize(conf, s), _resize(infield, s))
        up = lambda a: cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)  # noqa: E731
        masks = up(r["masks"])
        # the net's deblur residual is computed on its grid: upsampled, added to the fuse-grid main
        d_refined = up(r["refined"] - small_main)
        # the re-alignment offset, in fuse-grid px, applied to the full fuse-grid ultra-wide
        off = up(r["offset"]) * np.float32(1.0 / s)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        iwc_w = cv2.remap(iwc, cv2.add(gx, off[..., 0]), cv2.add(gy, off[..., 1]), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        # I - I_m = M_wc (I_wc - I_m) + M_d (I_d - I_m): the correction, without forming I on this grid
        corr = cv2.subtract(iwc_w, main_t)
        corr *= masks[..., 1:2]
        corr += d_refined * masks[..., 2:3]
        refined = main_t + d_refined
    else:
        r = run_net(model, main_t, iwc, conf, infield)
        masks, refined = r["masks"], r["refined"]
        corr = r["image"] - main_t
    # the main's band above the fuse grid: dropped where it is noise and the net does not keep the main
    out = onto_main(main, main_t, np.ascontiguousarray(corr, dtype=np.float32), masks[..., 0])
    return out, masks, refined
