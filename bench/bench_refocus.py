#!/usr/bin/env python
"""Benchmark of ``aif refocus`` on synthetic pairs with ground truth (DC² evaluation).

Quality (default): ``--scenes`` scenes from ``aifcli.synth.pairs`` (noise-free by default,
so rendering is what is measured). Each scene has a ground-truth all-in-focus image (AIF),
metric depth, and the main camera physically rendered (thin lens, layered compositing)
focused near and far.

(a) Shallow depth of field (DC² Table 2): from the ground-truth AIF and disparity, render
    the near- and the far-focused frame with the scene's own CoC (DC² eq. 1) and compare
    with the physically rendered frames. Contenders: ``layered`` (aif refocus) and
    ``single`` (a single-layer scatter without occlusion handling, BokehMe-classical
    style, implemented below: each pixel scattered with its own disc, normalised).
(b) Refocus near -> far from a pair (DC² Table 3/4): ``pair`` fuses main_near + ultra-wide
    (aif fuse) and renders the far focus from that; ``w_only`` refocuses the main image
    alone (no deblurring possible: it adds the missing blur sqrt(c_far^2 - c_near^2)
    where the target is blurrier, like "W only"); both use the ground-truth disparity for
    the defocus map, as DC² uses the phone's stereo depth. ``pair_est`` uses the
    disparity estimated from the pair's parallax instead, mapped to the ground truth's
    scale by a least-squares affine fit (the parallax gives disparity up to scale and
    offset).
The synthetic renders hold no light above the clipping level, so aif's highlight boost
(a perceptual default for real photos) is off here unless ``--highlights`` says otherwise.
Metrics: PSNR / SSIM (aifcli.metrics, Wang 2004 convention) / LPIPS-Alex when weights are
available, and the mean absolute error in a band around depth edges (``edge_mae``).

Speed (``--speed``): one 12 MP (4032x3024) render with blur radii up to ``--radius`` px,
focus near and focus far, median of ``--runs``.

    nice python bench/bench_refocus.py --scenes 6 --size 512
    nice python bench/bench_refocus.py --speed --runs 3 --radius 40
    nice python bench/bench_refocus.py --engine-compare --scenes 9 --size 512 --threads 1
    nice python bench/bench_refocus.py --engine-speed --runs 1 --threads 1

Classical vs learned (``--engine-compare``, ``--engine-speed``): see ``engine_compare``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aifcli.image import linear_to_srgb, srgb_to_linear  # noqa: E402
from aifcli.metrics import psnr, ssim  # noqa: E402
from aifcli.refocus.render import RenderOptions, blur_premultiplied, radius_levels, render_defocus  # noqa: E402


# --- the single-layer baseline ----------------------------------------------------------------
def single_layer_scatter(img: np.ndarray, coc: np.ndarray, gamma_linear: bool = True) -> np.ndarray:
    """BokehMe-classical-style scatter without occlusion handling.

    Every pixel spreads its light over a disc of its own CoC; the result is normalised by
    the accumulated weights. Implemented as per-radius-level convolutions (the same soft
    disc kernels as aif's renderer), so only the occlusion handling differs.
    """
    lin = srgb_to_linear(img) if gamma_linear else img
    r = np.clip(coc, 0, None) * 0.5
    levels = radius_levels(float(r.max()))
    pos = np.interp(r, levels, np.arange(levels.size, dtype=np.float32))
    k0 = np.floor(pos).astype(np.int32)
    fr = (pos - k0).astype(np.float32)
    acc = np.zeros(img.shape[:2] + (4,), np.float32)
    for k in range(int(k0.min()), int(min(k0.max() + 1, levels.size - 1)) + 1):
        wk = (np.where(k0 == k, 1 - fr, 0) + np.where(k0 == k - 1, fr, 0)).astype(np.float32)
        if not (wk > 0).any():
            continue
        P = np.concatenate([lin * wk[..., None], wk[..., None]], axis=2)
        acc += blur_premultiplied(P, float(levels[k]))
    out = acc[..., :3] / np.maximum(acc[..., 3:], 1e-6)
    return linear_to_srgb(np.clip(out, 0, 1)) if gamma_linear else np.clip(out, 0, 1)


def edge_band(depth: np.ndarray, half_width: int) -> np.ndarray:
    """Pixels within ``half_width`` px of a depth discontinuity (> 3 % jump in depth)."""
    ld = np.log(np.maximum(depth, 1e-3)).astype(np.float32)
    k = np.ones((3, 3), np.uint8)
    jump = (cv2.dilate(ld, k) - cv2.erode(ld, k)) > 0.03
    kk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * half_width + 1, 2 * half_width + 1))
    return cv2.dilate(jump.astype(np.uint8), kk) > 0


def scores(pred: np.ndarray, gt: np.ndarray, band: np.ndarray, lp) -> dict:
    out = {"psnr": psnr(pred, gt), "ssim": ssim(pred, gt),
           "edge_mae": float(np.abs(pred - gt)[band].mean()) if band.any() else float("nan")}
    if lp is not None:
        out["lpips"] = float(lp.distance(pred, gt))
    return out


def get_lpips():
    try:
        from aifcli.metrics import LPIPS

        return LPIPS("alex")
    except Exception as e:  # LpipsUnavailable or torch problems: report, do not fail
        print(f"LPIPS unavailable: {e}", file=sys.stderr)
        return None


def quality(args) -> dict:
    from aifcli.fuse import fuse_pair
    from aifcli.presets import get_preset
    from aifcli.refocus.disparity import parallax_from_alignment
    from aifcli.synth.pairs import make_pair_scene

    lp = get_lpips() if not args.no_lpips else None
    pr = get_preset(args.preset)
    ro = RenderOptions(highlight_gain=args.highlights)
    rows: dict[str, list[dict]] = {}
    times: dict[str, list[float]] = {}

    def add(key: str, s: dict, t: float | None = None) -> None:
        rows.setdefault(key, []).append(s)
        if t is not None:
            times.setdefault(key, []).append(t)

    for i in range(args.scenes):
        t0 = time.perf_counter()
        sc = make_pair_scene(args.seed, args.size, pr, noise=args.noise, index=i)
        tgen = time.perf_counter() - t0
        hw = max(4, round(8 * sc.aif.shape[1] / 512))
        band = edge_band(sc.depth, hw)
        d = sc.disparity
        focus_d = {"near": float(sc.metadata["baseline_mm"] / 1000 * sc.metadata["main"]["focal_px"]
                                 / sc.metadata["main"]["focus_near_m"]),
                   "far": float(sc.metadata["baseline_mm"] / 1000 * sc.metadata["main"]["focal_px"]
                                / sc.metadata["main"]["focus_far_m"])}
        # (a) shallow DoF from the ground-truth AIF
        for tgt, coc, ref in (("near", sc.coc_near, sc.main_near), ("far", sc.coc_far, sc.main_far)):
            t0 = time.perf_counter()
            out = render_defocus(sc.aif, d, coc, focus=focus_d[tgt], options=ro).image
            add(f"a_layered_{tgt}", scores(out, ref, band, lp), time.perf_counter() - t0)
            t0 = time.perf_counter()
            base = single_layer_scatter(sc.aif, coc)
            add(f"a_single_{tgt}", scores(base, ref, band, lp), time.perf_counter() - t0)
            if i == 0 and args.save:
                _save(args.save / f"a_{tgt}.png", np.concatenate([ref, out, base], axis=1))
        # (b) refocus near -> far
        t0 = time.perf_counter()
        fr = fuse_pair(sc.main_near, sc.ultrawide, pr)
        tf = time.perf_counter() - t0
        out = render_defocus(fr.image, d, sc.coc_far, focus=focus_d["far"], options=ro).image
        add("b_pair", scores(out, sc.main_far, band, lp), time.perf_counter() - t0)
        extra = np.sqrt(np.clip(sc.coc_far ** 2 - sc.coc_near ** 2, 0, None)).astype(np.float32)
        wonly = render_defocus(sc.main_near, d, extra, options=ro).image
        add("b_w_only", scores(wonly, sc.main_far, band, lp))
        dest = parallax_from_alignment(fr.alignment, fr.image.shape[:2], fr.image)
        A = np.stack([dest.disparity.ravel(), np.ones(d.size, np.float32)], 1)
        coef, *_ = np.linalg.lstsq(A, d.ravel(), rcond=None)
        dfit = (dest.disparity * coef[0] + coef[1]).astype(np.float32)
        k = sc.metadata["main"]["coc_scale_far_px"] / (sc.metadata["baseline_mm"] / 1000 * sc.metadata["main"]["focal_px"]) \
            * sc.metadata["main"]["focus_far_m"]
        coc_est = (k * np.abs(dfit - focus_d["far"])).astype(np.float32)
        order = dfit if coef[0] > 0 else -dfit
        out_est = render_defocus(fr.image, order, coc_est, options=ro).image
        add("b_pair_est", scores(out_est, sc.main_far, band, lp))
        corr = float(np.corrcoef(dest.disparity.ravel(), d.ravel())[0, 1])
        add("disp_corr", {"corr": corr})
        if i == 0 and args.save:
            _save(args.save / "b_far.png", np.concatenate([sc.main_near, out, wonly, sc.main_far], axis=1))
        print(f"scene {i}: {sc.aif.shape[1]}x{sc.aif.shape[0]}, max CoC near {sc.coc_near.max():.1f} far "
              f"{sc.coc_far.max():.1f} px, gen {tgen:.1f} s, fuse {tf:.1f} s, disparity corr {corr:+.3f}",
              file=sys.stderr)
    table = {k: {m: float(np.mean([r[m] for r in v])) for m in v[0]} for k, v in rows.items()}
    for k, v in times.items():
        table[k]["seconds"] = float(np.median(v))
    return table


def _save(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), (np.clip(img, 0, 1)[..., ::-1] * 255 + 0.5).astype(np.uint8))


def speed(args) -> dict:
    """12 MP render with radii up to args.radius px: a ground ramp, a wall, three cards."""
    rng = np.random.default_rng(0)
    H, W = 3024, 4032
    small = rng.random((H // 24, W // 24, 3)).astype(np.float32)
    img = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    img += (rng.random((H, W, 1), dtype=np.float32) - 0.5) * 0.1
    img = np.clip(img, 0, 1)
    d = np.zeros((H, W), np.float32)
    yy = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    d[:] = np.where(yy > 0.55, (yy - 0.55) * 1.0, 0.0)  # floor from the wall towards the camera
    d[700:2300, 1000:2000] = 0.95  # near card
    d[400:1200, 2600:3500] = 0.6
    d[1700:2600, 2900:3800] = 0.75
    K = 2 * args.radius  # CoC diameter over the full disparity range
    out = {}
    for name, fd in (("focus_near", 0.95), ("focus_far", 0.0)):
        coc = (K * np.abs(d - fd)).astype(np.float32)
        ts, info = [], None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            r = render_defocus(img, d, coc, focus=fd, options=RenderOptions(threads=args.threads))
            ts.append(time.perf_counter() - t0)
            info = r.to_dict()
        out[name] = {"seconds_median": float(np.median(ts)), "seconds_all": [round(t, 2) for t in ts],
                     "max_radius_px": float(coc.max() / 2), **(info or {})}
        print(name, out[name], file=sys.stderr)
    # tilt-shift: per-pixel radii that do not follow disparity (the split-level path)
    from aifcli.refocus.controls import CocModel, defocus_map

    plan = defocus_map(d, CocModel(K), 0.5, tilt=(-30.0, 0.0), centre=(W / 2, H * 0.6), max_coc=2 * args.radius)
    ts = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        r = render_defocus(img, d, plan.coc, options=RenderOptions(threads=args.threads))
        ts.append(time.perf_counter() - t0)
    out["tilt"] = {"seconds_median": float(np.median(ts)), "seconds_all": [round(t, 2) for t in ts],
                   "max_radius_px": float(plan.coc.max() / 2), **r.to_dict()}
    print("tilt", out["tilt"], file=sys.stderr)
    return out


def examples(args) -> dict:
    """The pictures in docs/REFOCUS.md, made through the CLI on a synthetic scene and,
    when ../shared/data is present, on the real dsc28 bracket."""

    import tempfile

    out = args.examples
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aif-refocus-examples-") as t:
        return _examples(args, out, Path(t))


def _examples(args, out: Path, tmp: Path) -> dict:
    import subprocess

    from aifcli.synth.pairs import make_pair_scene

    sc = make_pair_scene(args.seed, "1024", args.preset, noise=0.0, index=args.example_scene)
    _save(tmp / "synth_aif.png", sc.aif)
    np.save(tmp / "synth_disp.npy", sc.disparity)
    # mask: the card nearest to the camera
    dmax = float(sc.disparity.max())
    mask = (sc.disparity > 0.8 * dmax).astype(np.float32)
    cv2.imwrite(str(tmp / "synth_mask.png"), (mask * 255).astype(np.uint8))

    def aif(*a: str) -> None:
        cmd = [sys.executable, "-m", "aifcli", "refocus", *a, "--overwrite", "-q"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(" ".join(cmd[2:]), f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)

    img, disp = str(tmp / "synth_aif.png"), str(tmp / "synth_disp.npy")
    aif(img, "-d", disp, "--sweep", "4", "--blur", "60", "-o", str(tmp / "synth_pull.jpg"))
    frames = [cv2.imread(str(tmp / f"synth_pull_{i:03d}.jpg")) for i in range(4)]
    small = [cv2.resize(f, (512, 384), interpolation=cv2.INTER_AREA) for f in frames]
    cv2.imwrite(str(out / "synth_focus_sequence.jpg"), np.concatenate(
        [np.concatenate(small[:2], 1), np.concatenate(small[2:], 1)], 0), [cv2.IMWRITE_JPEG_QUALITY, 88])
    (tmp / "synth_pull.gif").replace(out / "synth_focus_pull.gif")
    aif(img, "-d", disp, "--tilt", "-35", "--focus-at", "0.5,0.6", "--blur", "70", "-o", str(tmp / "synth_tilt.jpg"))
    aif(img, "-d", disp, "--mask", str(tmp / "synth_mask.png"), "--blur", "60", "--focus-at", "0.5,0.05",
        "-o", str(tmp / "synth_mask.jpg"))
    aif(img, "-d", disp, "--focus-at", "0.5,0.05", "--blur", "60", "--blades", "6", "-o", str(tmp / "synth_hex.jpg"))
    row = [cv2.resize(cv2.imread(str(p)), (512, 384), interpolation=cv2.INTER_AREA) for p in
           (tmp / "synth_aif.png", tmp / "synth_tilt.jpg", tmp / "synth_mask.jpg")]
    cv2.imwrite(str(out / "synth_aif_tilt_mask.jpg"), np.concatenate(row, 1), [cv2.IMWRITE_JPEG_QUALITY, 88])
    # layered vs single-layer scatter at 4x the scene's blur, focused on the near card
    sc0 = make_pair_scene(args.seed, "1024", args.preset, noise=0.0, index=0)
    m = sc0.metadata["main"]
    fd = sc0.metadata["baseline_mm"] / 1000 * m["focal_px"] / m["focus_near_m"]
    far = np.abs(sc0.disparity - fd) > 1
    k = float(np.median(sc0.coc_near[far] / np.abs(sc0.disparity - fd)[far]))
    coc = (4 * k * np.abs(sc0.disparity - fd)).astype(np.float32)
    lay = render_defocus(sc0.aif, sc0.disparity, coc, focus=fd).image
    one = single_layer_scatter(sc0.aif, coc)
    x, y, s = 560, 380, 320
    _save(out / "strong_blur_layered_vs_single.png", np.concatenate([lay[y:y + s, x:x + s], one[y:y + s, x:x + s]], 1))
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "stacks" / "dsc28"
    if real.is_dir():
        aif(str(real), "--blur", "30", "--focus-at", "0.5,0.9", "-o", str(tmp / "dsc_near.jpg"),
            "--debug-dir", str(tmp / "dsc"))
        rimg, rdisp = str(tmp / "dsc" / "aif.png"), str(tmp / "dsc" / "disparity.npy")
        aif(rimg, "-d", rdisp, "--blur", "30", "--focus-at", "0.3,0.25", "-o", str(tmp / "dsc_far.jpg"))
        aif(rimg, "-d", rdisp, "--blur", "40", "--tilt", "40", "--focus-at", "0.5,0.5", "-o", str(tmp / "dsc_tilt.jpg"))
        m = (np.load(rdisp) > 0.75).astype(np.uint8) * 255
        cv2.imwrite(str(tmp / "dsc_mask.png"), m)
        aif(rimg, "-d", rdisp, "--blur", "40", "--mask", str(tmp / "dsc_mask.png"), "-o", str(tmp / "dsc_mask.jpg"))
        d8 = cv2.applyColorMap((np.load(rdisp) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
        tiles = [cv2.imread(rimg), d8] + [cv2.imread(str(tmp / f"dsc_{n}.jpg")) for n in ("near", "far", "tilt", "mask")]
        tiles = [cv2.resize(t, (375, 250), interpolation=cv2.INTER_AREA) for t in tiles]
        cv2.imwrite(str(out / "dsc28_aif_disp_near_far_tilt_mask.jpg"),
                    np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:], 1)], 0),
                    [cv2.IMWRITE_JPEG_QUALITY, 88])
    return {"written": sorted(p.name for p in out.iterdir() if p.is_file())}


# --- classical vs learned (aif refocus --engine classical|net) ------------------------------------
HELD_OUT = ("generic-phone", "iphone-13", "huawei-mate30pro")


def engine_compare(args) -> dict:
    """Refocus near -> far and far -> near from a pair on held-out scenes (seed 0, held-out
    presets cycling): ``classical`` = aif fuse, then render at the target CoC (what
    ``aif refocus MAIN UW`` does, with the ground-truth disparity); ``net`` = aifcli.nets.
    refocus_net on the same fused image, disparity and target (the main's own CoC estimated
    from the pair, as in the CLI); ``w_only_true_cm`` = the main re-blurred with the
    ground-truth main CoC (a reference, not an engine). Times: per image, after the fusion
    (the fusion is common to both), ``net`` includes the classical render (its candidate A)."""
    import torch

    from aifcli.fuse import fuse_pair
    from aifcli.nets import refocus_net as RN
    from aifcli.presets import get_preset
    from aifcli.synth.pairs import make_pair_scene

    if args.threads:
        torch.set_num_threads(args.threads)
    lp = get_lpips() if not args.no_lpips else None
    model, info = RN.load(args.weights)
    ro = RenderOptions(highlight_gain=args.highlights, threads=args.threads)
    rows: dict[str, list[dict]] = {}
    for i in range(args.scenes):
        pname = HELD_OUT[i % len(HELD_OUT)]
        pr = get_preset(pname)
        sc = make_pair_scene(args.seed, args.size, pr, noise=args.noise, index=i)
        band = edge_band(sc.depth, max(4, round(8 * sc.aif.shape[1] / 512)))
        d = sc.disparity
        m = sc.metadata["main"]
        fdisp = {f: float(sc.metadata["baseline_mm"] / 1000 * m["focal_px"] / m[f"focus_{f}_m"]) for f in ("near", "far")}
        imgs = {"near": sc.main_near, "far": sc.main_far}
        cocs = {"near": sc.coc_near, "far": sc.coc_far}
        for src_f, dst_f in (("near", "far"), ("far", "near")):
            key = f"{src_f}2{dst_f}"
            fr = fuse_pair(imgs[src_f], sc.ultrawide, pr)
            t0 = time.perf_counter()
            cl = render_defocus(fr.image, d, cocs[dst_f], focus=fdisp[dst_f], options=ro).image
            t_cl = time.perf_counter() - t0
            t0 = time.perf_counter()
            net, nmeta = RN.refocus_pair_net(imgs[src_f], fr.image, d, d, cocs[dst_f], focus=fdisp[dst_f],
                                             classical=cl, model=model, options=ro)
            t_net = time.perf_counter() - t0 + t_cl
            extra = np.sqrt(np.clip(cocs[dst_f] ** 2 - cocs[src_f] ** 2, 0, None)).astype(np.float32)
            wo = render_defocus(imgs[src_f], d, extra, options=ro).image
            ref = imgs[dst_f]
            for name, img, t in (("classical", cl, t_cl), ("net", net, t_net), ("w_only_true_cm", wo, None)):
                s_ = scores(img, ref, band, lp)
                if t is not None:
                    s_["seconds"] = t
                rows.setdefault(f"{key}_{name}", []).append(s_)
            if i == 0 and args.save:
                _save(args.save / f"engines_{key}.png", np.concatenate([imgs[src_f], cl, net, ref], axis=1))
            print(f"scene {i} {pname} {key}: classical {rows[f'{key}_classical'][-1]['psnr']:.2f} dB, net "
                  f"{rows[f'{key}_net'][-1]['psnr']:.2f} dB (main CoC fit {nmeta['main_coc_fit']})", file=sys.stderr)
    table = {k: {mm: float(np.mean([r[mm] for r in v])) for mm in v[0]} for k, v in rows.items()}
    for eng in ("classical", "net", "w_only_true_cm"):
        both = rows[f"near2far_{eng}"] + rows[f"far2near_{eng}"]
        table[f"both_{eng}"] = {mm: float(np.mean([r[mm] for r in both])) for mm in both[0]}
    table["weights"] = {"path": info["path"]}
    return table


def engine_speed(args) -> dict:
    """12 MP: a full-resolution generic-phone scene (4032x3024), fused, then refocused far
    by both engines; median of ``--runs``."""
    import torch

    from aifcli.fuse import fuse_pair
    from aifcli.nets import refocus_net as RN
    from aifcli.synth.pairs import make_pair_scene

    if args.threads:
        torch.set_num_threads(args.threads)
    model, _ = RN.load(args.weights)
    sc = make_pair_scene(args.seed, "full", "generic-phone", noise=1.0, index=0)
    m = sc.metadata["main"]
    fd = float(sc.metadata["baseline_mm"] / 1000 * m["focal_px"] / m["focus_far_m"])
    ro = RenderOptions(highlight_gain=args.highlights, threads=args.threads)
    t0 = time.perf_counter()
    fr = fuse_pair(sc.main_near, sc.ultrawide, "generic-phone")
    t_fuse = time.perf_counter() - t0
    cl_t, net_t, parts = [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        cl = render_defocus(fr.image, sc.disparity, sc.coc_far, focus=fd, options=ro).image
        cl_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, meta = RN.refocus_pair_net(sc.main_near, fr.image, sc.disparity, sc.disparity, sc.coc_far, focus=fd,
                                      classical=cl, model=model, options=ro)
        net_t.append(time.perf_counter() - t0 + cl_t[-1])
        parts.append(meta["timings"])
        print("12 MP run:", round(cl_t[-1], 2), round(net_t[-1], 2), meta["timings"], file=sys.stderr)
    return {"size": [int(sc.aif.shape[1]), int(sc.aif.shape[0])], "fuse_seconds": round(t_fuse, 2),
            "classical_seconds_median": float(np.median(cl_t)), "net_seconds_median": float(np.median(net_t)),
            "net_parts": parts, "torch_threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--size", default="512")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument("--preset", default="generic-phone")
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("--save", type=Path, default=None, help="folder for side-by-side images of scene 0")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--radius", type=float, default=40.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--highlights", type=float, default=1.0,
                    help="aif's highlight boost (1 = off: synth ground truth has no light above clipping)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--examples", type=Path, default=None, help="write the docs pictures to this folder")
    ap.add_argument("--example-scene", type=int, default=2)
    ap.add_argument("--engine-compare", action="store_true",
                    help="classical vs learned refocus (weights/refocus-net.pt) on held-out scenes: seed --seed, "
                         "presets generic-phone / iphone-13 / huawei-mate30pro cycling")
    ap.add_argument("--engine-speed", action="store_true", help="time both engines at 12 MP")
    ap.add_argument("--weights", default=None, help="refocus net weights (default: weights/refocus-net.pt)")
    args = ap.parse_args()
    if args.engine_compare or args.engine_speed:
        res = engine_compare(args) if args.engine_compare else engine_speed(args)
        txt = json.dumps(res, indent=2)
        print(txt)
        if args.json:
            args.json.write_text(txt)
        if args.engine_compare:
            print("\n| direction | engine | PSNR | SSIM | LPIPS | edge-band MAE | s/img |\n|---|---|---:|---:|---:|---:|---:|")
            for k, v in res.items():
                if k == "weights":
                    continue
                dirn, eng = k.split("_", 1)
                print(f"| {dirn} | {eng} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v.get('lpips', float('nan')):.4f} | "
                      f"{v['edge_mae']:.4f} | {v.get('seconds', float('nan')):.2f} |")
        return
    if args.examples:
        print(json.dumps(examples(args), indent=2))
        return
    res = speed(args) if args.speed else quality(args)
    txt = json.dumps(res, indent=2)
    print(txt)
    if args.json:
        args.json.write_text(txt)
    if not args.speed:
        print("\n| method | PSNR | SSIM | LPIPS | edge-band MAE | s/img |\n|---|---:|---:|---:|---:|---:|")
        for k, v in res.items():
            if k == "disp_corr":
                continue
            print(f"| {k} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v.get('lpips', float('nan')):.4f} | "
                  f"{v['edge_mae']:.4f} | {v.get('seconds', float('nan')):.2f} |")
        if "disp_corr" in res:
            print(f"\nestimated-vs-true disparity correlation (mean): {res['disp_corr']['corr']:+.3f}")


if __name__ == "__main__":
    main()
