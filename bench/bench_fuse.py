#!/usr/bin/env python
"""Benchmark of ``aif fuse`` on synthetic pairs with ground truth (EasyAIF Table I layout).

Quality (default): renders ``--scenes`` scenes per preset with ``aifcli.synth.pairs``
(main focused near and far + ultra-wide + ground truth) and scores, against the
ground-truth all-in-focus image:

  main only | colour-matched ultra-wide only | fusion without the confidence map |
  full ``aif fuse`` | oracle (ground-truth flow, occlusion and in-focus masks, same blend)

as PSNR / SSIM / LPIPS for the main focused on the foreground, on the background, and in
total; PSNR inside the main's in-focus region (main only vs full: the ultra-wide must not
soften it); RMSE in a band around occlusions (no-confidence vs full). Then total PSNR per
scene (so a result that holds on one scene only shows) and the issue's targets, each with
its value and "met" / "NOT met" (+3 dB over both inputs; SSIM and LPIPS better than both
inputs per focus group; every pair's in-focus PSNR within 0.2 dB of the main; occlusion-band
error 30 % below the no-confidence blend).

Gap analysis (``--gap``): ``aif fuse`` with its flow, its confidence, or both replaced by
the ground truth (masks and colour stay its own), to show which stage the distance to the
oracle comes from.

Content check (``--content-check-ab``): ``aif fuse`` with its content check (objects that
moved between the exposures) off and on, same alignment: PSNR, occlusion-band RMSE, the
fraction of the frame the check took, and in-process fuse time (``--size full`` for 12 MP).

Matching precision (``--match-precision``, near-focused pairs): the ultra-wide warped by the
ground-truth map is matched tile by tile (64 px, ZNCC against the best of eight disc blurs) with
the main; a perfect estimator would report zero shift, so the spread of what it reports on
the defocused background, next to the same in focus, is what matching itself can resolve
there; printed beside the end-point error of ``aif fuse``'s own flow on that background.

Speed (``--speed``): end-to-end time of one pair from JPEG files to a JPEG file (decode,
align, colour, fuse, encode) in a fresh process, ``--runs`` times, median and per-stage
medians, plus the process's peak RSS.

    nice python bench/bench_fuse.py --size 512 --scenes 4 --presets generic-phone,iphone-13
    nice python bench/bench_fuse.py --size 1024 --scenes 3 --presets generic-phone,iphone-13,huawei-mate30pro --gap
    nice python bench/bench_fuse.py --size 1024 --scenes 3 --presets generic-phone,iphone-13,huawei-mate30pro --content-check-ab
    nice python bench/bench_fuse.py --speed --runs 5            # 12 MP synthetic pair
    nice python bench/bench_fuse.py --speed --pair MAIN.jpg UW.jpg
    nice python bench/bench_fuse.py --defocus-figure docs/img/fuse --presets iphone-13   # docs/FUSE.md figure
    nice python bench/bench_fuse.py --epipolar-figure docs/img/fuse --presets huawei-mate30pro   # docs/FUSE.md figure
    nice python bench/bench_fuse.py --objects-figure docs/img/fuse --presets iphone-13   # docs/FUSE.md figure
    nice python bench/bench_fuse.py --band-figure docs/img/fuse                            # docs/FUSE.md figure
    nice python bench/bench_fuse.py --tiles-figure docs/img/fuse --presets huawei-mate30pro  # docs/FUSE.md figure
    nice python bench/bench_fuse.py --ramps-figure docs/img/fuse --presets huawei-mate30pro  # docs/FUSE.md figure
    nice python bench/bench_fuse.py --match-precision --size full --scenes 3 --presets iphone-13,huawei-mate30pro
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aifcli.align.pair import _zncc_peak, align_pair, disc_kernel, soften_confidence  # noqa: E402
from aifcli.color.local_affine import match_colors  # noqa: E402
from aifcli.fuse.pair import _resize, choose_fuse_scale, compose, debiased_refined_main, fuse_pair  # noqa: E402
from aifcli.metrics import psnr, ssim  # noqa: E402

METHODS = ("main", "uw_only", "no_conf", "full", "oracle")


def oracle(main: np.ndarray, uw: np.ndarray, uw_map: np.ndarray, occlusion: np.ndarray, infocus: np.ndarray,
           gt: np.ndarray, fuse_scale: float, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The same blend with ground-truth geometry and occlusions, and masks that know the
    truth: the main where it is in focus; elsewhere whichever of the main, the refined main
    and the (ground-truth-warped, colour-matched) ultra-wide is locally closest to the
    ground truth (the ultra-wide only where it sees the scene). A ceiling for this blend
    family. ``interpolation``: the warp's kernel, as ``aif fuse`` chose it for this grid
    (``PairAlignment.interpolation``)."""
    main_t = _resize(main, fuse_scale)
    gt_t = _resize(gt, fuse_scale)
    h, w = main_t.shape[:2]
    uv = cv2.resize(uw_map, (w, h), interpolation=cv2.INTER_LINEAR) if uw_map.shape[:2] != (h, w) else uw_map
    uwf = np.clip(cv2.remap(uw, uv[..., 0], uv[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE), 0.0, 1.0)
    conf = cv2.resize((~occlusion).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    iwc = match_colors(uwf, main_t, mask=conf).image
    idr = debiased_refined_main(main_t, iwc)  # the same candidate as aif fuse's (no content check: nothing moved)
    err = lambda x: cv2.GaussianBlur(((x - gt_t) ** 2).sum(-1), (0, 0), 2.0)  # noqa: E731
    e_wc = np.where(conf > 0.99, err(iwc), np.inf)  # occluded: nothing to take from the ultra-wide
    best = np.argmin(np.stack([err(main_t), err(idr), e_wc]), axis=0)
    keep = cv2.resize(infocus.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0.5
    soft = lambda m: cv2.GaussianBlur(m.astype(np.float32), (0, 0), 1.0)  # noqa: E731
    m_d, m_wc = soft(~keep & (best == 1)), soft(~keep & (best == 2))
    return compose(main, main_t, iwc, idr, m_wc, m_d)


def warp_kernel(res) -> int:
    """The kernel ``aif fuse`` warped the ultra-wide with onto its fuse grid (the masks' grid)."""
    return res.alignment.interpolation(res.masks["main"].shape[:2])


def focal_ratio(ps) -> float:
    """The main's focal length over the ultra-wide's (in frame widths) of an ``aif synth`` pair."""
    m, u = ps.metadata["main"], ps.metadata["ultrawide"]
    return (m["focal_px"] / m["width"]) / (u["focal_px"] / u["width"])


def score_outputs(row: dict, outs: dict, gt: np.ndarray, band: np.ndarray, infocus: np.ndarray, lp) -> None:
    """PSNR / SSIM / LPIPS, occlusion-band RMSE and in-focus PSNR of each output, into ``row``."""
    for k, img in outs.items():
        img = np.clip(img, 0, 1)
        row[f"psnr_{k}"] = psnr(img, gt)
        row[f"ssim_{k}"] = ssim(img, gt)
        if lp is not None:
            row[f"lpips_{k}"] = lp(img, gt)
        row[f"band_rmse_{k}"] = float(np.sqrt(((img - gt) ** 2)[band].mean())) if band.any() else 0.0
        if infocus.any():
            row[f"psnr_infocus_{k}"] = psnr(img, gt, infocus)


def bench_cases(args: argparse.Namespace, presets: list[str]):
    """Every (scene, focus) of the benchmark: a dict with the rendered ``ps``, its focal
    ratio, the occlusion band, the main for this focus and its in-focus mask, and the render
    time (on the first focus of a scene)."""
    from aifcli.synth.pairs import make_pair_scene

    for preset in presets:
        for idx in range(args.scenes):
            t0 = time.perf_counter()
            ps = make_pair_scene(args.seed, size=args.size, preset=preset, index=idx)
            t_render = time.perf_counter() - t0
            band = cv2.dilate(ps.occlusion.astype(np.uint8), np.ones((2 * args.band + 1,) * 2, np.uint8)) > 0
            for focus in ("near", "far"):
                yield {"preset": preset, "scene": idx, "focus": focus, "ps": ps, "ratio": focal_ratio(ps), "band": band,
                       "main": ps.main_near if focus == "near" else ps.main_far,
                       "infocus": ps.infocus_near if focus == "near" else ps.infocus_far, "render_s": t_render}


def score_quality(args: argparse.Namespace) -> dict:
    lp = None
    if not args.no_lpips:
        try:
            from aifcli.metrics import lpips_distance

            lp = lpips_distance
        except Exception as e:  # pragma: no cover
            print(f"LPIPS unavailable: {e}", file=sys.stderr)
    rows = []
    for c in bench_cases(args, args.presets.split(",")):
        ps, main, infocus, band, preset, idx, focus = (c[k] for k in ("ps", "main", "infocus", "band", "preset", "scene", "focus"))
        ratio, t_render = c["ratio"], c["render_s"]
        t0 = time.perf_counter()
        full = fuse_pair(main, ps.ultrawide, ratio=ratio, keep_intermediates=True)
        t_full = time.perf_counter() - t0
        noconf = fuse_pair(main, ps.ultrawide, alignment=full.alignment, use_confidence=False,
                           fuse_scale=full.fuse_scale)
        uw_only = full.intermediates["color_matched"]
        if uw_only.shape != main.shape:
            uw_only = cv2.resize(uw_only, (main.shape[1], main.shape[0]), interpolation=cv2.INTER_LINEAR)
        orc = oracle(main, ps.ultrawide, ps.uw_map, ps.occlusion, infocus, ps.aif, full.fuse_scale,
                     warp_kernel(full))
        outs = {"main": main, "uw_only": uw_only, "no_conf": noconf.image, "full": full.image, "oracle": orc}
        row = {"preset": preset, "scene": idx, "focus": focus, "render_s": round(t_render, 2),
               "fuse_s": round(t_full, 3), "occluded": round(float(ps.occlusion.mean()), 4),
               "infocus": round(float(infocus.mean()), 4), "mask_means": full.summary()["mask_means"]}
        score_outputs(row, outs, ps.aif, band, infocus, lp)
        rows.append(row)
        print(f"{preset} scene {idx} {focus}: " + "  ".join(f"{k} {row[f'psnr_{k}']:.2f}" for k in METHODS)
              + f"  (fuse {t_full:.2f} s)", file=sys.stderr)
    return {"rows": rows, "table": table(rows, lp is not None), "per_scene": per_scene(rows),
            "targets": targets(rows, lp is not None)}


def per_scene(rows: list[dict]) -> str:
    """Total PSNR per scene index (all presets and both focus settings): which scenes the
    averages come from, so that a result tuned on one scene shows."""
    lines = ["| scene | pairs | main only | ultra-wide only | without confidence | aif fuse | oracle |",
             "|---|---|---|---|---|---|---|"]
    for idx in sorted({r["scene"] for r in rows}):
        rr = [r for r in rows if r["scene"] == idx]
        lines.append(f"| {idx} | {len(rr)} | " + " | ".join(f"{_mean(rr, f'psnr_{k}'):.2f}" for k in METHODS) + " |")
    return "\n".join(lines)


def targets(rows: list[dict], with_lpips: bool) -> str:
    """The issue's targets, each with its measured value and whether this run meets it."""
    ok = lambda b: "met" if b else "NOT met"  # noqa: E731
    out = []
    g_main = _mean(rows, "psnr_full") - _mean(rows, "psnr_main")
    g_uw = _mean(rows, "psnr_full") - _mean(rows, "psnr_uw_only")
    o_main = _mean(rows, "psnr_oracle") - _mean(rows, "psnr_main")
    out.append(f"total PSNR +3 dB over main only and over the ultra-wide only: {g_main:+.2f} / {g_uw:+.2f} dB "
               f"({ok(g_main >= 3 and g_uw >= 3)}; the oracle: {o_main:+.2f} dB over the main)")
    for name, focus in (("focused on foreground", "near"), ("focused on background", "far")):
        g = [r for r in rows if r["focus"] == focus]
        if not g:
            continue
        checks = [("SSIM", "ssim", 1)] + ([("LPIPS", "lpips", -1)] if with_lpips else [])
        for label, key, sign in checks:
            f, m, u = (_mean(g, f"{key}_{k}") for k in ("full", "main", "uw_only"))
            out.append(f"{name} {label} better than both: {f:.4f} vs main {m:.4f}, ultra-wide {u:.4f} "
                       f"({ok(sign * (f - m) > 0 and sign * (f - u) > 0)})")
    d = [(r["psnr_infocus_full"] - r["psnr_infocus_main"], r) for r in rows
         if np.isfinite(r.get("psnr_infocus_full", np.nan)) and np.isfinite(r.get("psnr_infocus_main", np.nan))]
    if d:
        worst, wr = min(d, key=lambda x: x[0])
        out.append(f"in-focus PSNR within 0.2 dB of the main on every pair: worst {worst:+.2f} dB "
                   f"({wr['preset']} scene {wr['scene']} {wr['focus']}; {sum(x < -0.2 for x, _ in d)} of {len(d)} pairs "
                   f"beyond) ({ok(worst >= -0.2)})")
    # the band's reduction, also per focus group and for the oracle (ground-truth geometry,
    # occlusion and in-focus masks in the same blend): how much of the 30 % is recoverable
    red = lambda g, k="full": 1 - _mean(g, f"band_rmse_{k}") / _mean(g, "band_rmse_no_conf")  # noqa: E731
    groups = [(f, [r for r in rows if r["focus"] == f]) for f in ("near", "far")]
    per = ", ".join(f"focused {f} {red(g):.1%}" for f, g in groups if g)
    out.append(f"occlusion-band error 30 % below fusion without confidence: {red(rows):.1%} ({ok(red(rows) >= 0.3)}; "
               f"{per}; the oracle: {red(rows, 'oracle'):.1%}"
               + "".join(f", focused {f} {red(g, 'oracle'):.1%}" for f, g in groups if g) + ")")
    return "\n".join(out)


def _mean(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if key in r and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else float("nan")


def table(rows: list[dict], with_lpips: bool, methods=METHODS, names: dict | None = None) -> str:
    groups = {"focused on foreground": [r for r in rows if r["focus"] == "near"],
              "focused on background": [r for r in rows if r["focus"] == "far"], "total": rows}
    names = names or {"main": "main only", "uw_only": "colour-matched ultra-wide only", "no_conf": "fusion without confidence",
             "full": "**aif fuse**", "oracle": "oracle (GT flow, occlusion, in-focus)"}
    head = "| method | " + " | ".join(f"{g} PSNR / SSIM" + (" / LPIPS" if with_lpips else "") for g in groups) + \
           " | in-focus PSNR | occlusion-band RMSE |"
    lines = [head, "|" + "---|" * (len(groups) + 3)]
    for k in methods:
        cells = []
        for g in groups.values():
            c = f"{_mean(g, f'psnr_{k}'):.2f} / {_mean(g, f'ssim_{k}'):.4f}"
            if with_lpips:
                c += f" / {_mean(g, f'lpips_{k}'):.4f}"
            cells.append(c)
        lines.append(f"| {names[k]} | " + " | ".join(cells) +
                     f" | {_mean(rows, f'psnr_infocus_{k}'):.2f} | {_mean(rows, f'band_rmse_{k}'):.4f} |")
    return "\n".join(lines)


# --- classical vs learned ------------------------------------------------------------------------
ENGINE_METHODS = {
    "main": "main only",
    "uwf": "spatial alignment only (warped ultra-wide)",
    "iwc": "+ colour, classical (colour-matched ultra-wide)",
    "iwc_net": "+ colour, color-net",
    "classical": "+ fusion, classical (`aif fuse`)",
    "net": "+ fusion, fuse-net on classical colours",
    "net_colornet": "+ fusion, color-net + fuse-net (`aif fuse --engine net`)",
    "oracle": "oracle (GT flow, occlusion, in-focus)",
}


def score_engines(args: argparse.Namespace) -> dict:
    """Held-out scenes (seed ``--seed``, presets ``--presets``: never used in training) scored for
    the classical and learned engines, in Table I's layout, rows ordered as an ablation."""
    from aifcli.nets.data import HELD_OUT_PRESETS
    from aifcli.nets.fuse_net import fuse_with_net, load

    fnet = load(args.weights)
    try:
        from aifcli.nets.color_net import match_colors_net

        match_colors_net(np.zeros((32, 32, 3), np.float32), np.zeros((32, 32, 3), np.float32))
    except Exception as e:  # noqa: BLE001 - colour net not trained/shipped: its rows are skipped
        print(f"color-net unavailable ({e}); its rows are skipped", file=sys.stderr)
        match_colors_net = None
    lp = None
    if not args.no_lpips:
        from aifcli.metrics import lpips_distance as lp
    presets = args.presets.split(",")
    if args.seed != 0 or not set(presets) <= set(HELD_OUT_PRESETS):
        print("warning: seed/presets differ from the held-out set (seed 0; "
              f"{', '.join(HELD_OUT_PRESETS)})", file=sys.stderr)
    rows = []
    for c in bench_cases(args, presets):
        ps, main, infocus, band, preset, idx, focus = (c[k] for k in ("ps", "main", "infocus", "band", "preset", "scene", "focus"))
        t0 = time.perf_counter()
        full = fuse_pair(main, ps.ultrawide, ratio=c["ratio"], keep_intermediates=True)
        t_cl = time.perf_counter() - t0
        inter = full.intermediates
        main_t = _resize(main, full.fuse_scale)
        up = lambda a: a if a.shape[:2] == main.shape[:2] else cv2.resize(  # noqa: E731
            a, (main.shape[1], main.shape[0]), interpolation=cv2.INTER_LINEAR)
        infield = full.alignment.infield_at(main_t.shape[:2])
        t0 = time.perf_counter()
        net_img, _, _ = fuse_with_net(fnet, main, main_t, inter["color_matched"], full.confidence, infield)
        t_net = time.perf_counter() - t0 + t_cl - full.timings.get("masks", 0) - full.timings.get("blend", 0)
        outs = {"main": main, "uwf": up(inter["flow_warped"]), "iwc": up(inter["color_matched"]),
                "classical": full.image, "net": net_img}
        if match_colors_net is not None:
            iwc_n = match_colors_net(inter["flow_warped"], main_t, mask=full.confidence).image
            outs["iwc_net"] = up(iwc_n)
            t0 = time.perf_counter()
            outs["net_colornet"] = fuse_pair(main, ps.ultrawide, alignment=full.alignment, engine="net",
                                             weights=args.weights).image
            t_net = time.perf_counter() - t0 + full.timings["align"]
        outs["oracle"] = oracle(main, ps.ultrawide, ps.uw_map, ps.occlusion, infocus, ps.aif, full.fuse_scale,
                                warp_kernel(full))
        row = {"preset": preset, "scene": idx, "focus": focus, "time_classical_s": round(t_cl, 3),
               "time_net_s": round(t_net, 3)}
        score_outputs(row, outs, ps.aif, band, infocus, lp)
        rows.append(row)
        print(f"{preset} scene {idx} {focus}: " + "  ".join(f"{k} {row[f'psnr_{k}']:.2f}" for k in outs),
              file=sys.stderr)
    methods = [k for k in ENGINE_METHODS if f"psnr_{k}" in rows[0]]
    return {"rows": rows, "table": table(rows, lp is not None, methods, ENGINE_METHODS)}


# --- where the gap to the oracle is ------------------------------------------------------------
GAP_METHODS = {
    "main": "main only",
    "full": "**aif fuse**",
    "gt_flow": "ground-truth flow, own confidence",
    "gt_vis": "own flow, ground-truth visibility as confidence",
    "gt_both": "ground-truth flow and visibility (own masks and colour)",
    "oracle": "oracle (GT flow, occlusion, in-focus)",
}


def score_gap(args: argparse.Namespace) -> dict:
    """``aif fuse`` with parts of its alignment replaced by the ground truth (flow, visibility
    as confidence, or both; masks and colour stay its own): which part of the pipeline the
    distance to the oracle comes from."""
    lp = None
    if not args.no_lpips:
        from aifcli.metrics import lpips_distance as lp
    rows = []
    for c in bench_cases(args, args.presets.split(",")):
        ps, main, infocus, band, preset, idx, focus = (c[k] for k in ("ps", "main", "infocus", "band", "preset", "scene", "focus"))
        full = fuse_pair(main, ps.ultrawide, ratio=c["ratio"])
        al = full.alignment
        h0, w0 = al.flow.shape[:2]
        # visibility on the work grid, through align_pair's own confidence post-processing
        vis = cv2.resize((~ps.occlusion).astype(np.float32), (w0, h0), interpolation=cv2.INTER_AREA)
        vis = soften_confidence(vis > 0.99, al.infield)
        outs = {"main": main, "full": full.image}
        for k, a in (("gt_flow", al.with_uw_map(ps.uw_map)), ("gt_vis", dataclasses.replace(al, confidence=vis)),
                     ("gt_both", al.with_uw_map(ps.uw_map, vis))):
            outs[k] = fuse_pair(main, ps.ultrawide, alignment=a, fuse_scale=full.fuse_scale).image
        outs["oracle"] = oracle(main, ps.ultrawide, ps.uw_map, ps.occlusion, infocus, ps.aif, full.fuse_scale,
                                warp_kernel(full))
        row = {"preset": preset, "scene": idx, "focus": focus,
               "confident": round(float(al.confidence.mean()), 4), "visible": round(float(vis.mean()), 4)}
        score_outputs(row, outs, ps.aif, band, infocus, lp)
        rows.append(row)
        print(f"{preset} scene {idx} {focus}: " + "  ".join(f"{k} {row[f'psnr_{k}']:.2f}" for k in outs)
              + f"  (confident {row['confident']:.2f}, visible {row['visible']:.2f})", file=sys.stderr)
    return {"rows": rows, "table": table(rows, lp is not None, list(GAP_METHODS), GAP_METHODS)}


def score_content_check(args: argparse.Namespace) -> dict:
    """``aif fuse`` with the content check off and on (same alignment, engine ``--engine``):
    PSNR per focus group, occlusion-band RMSE, the fraction of the frame the check took from
    the ultra-wide, and the in-process time of colour + check + masks + blend (off and on
    alternated ``--runs`` times per pair; ``--size full`` for 12 MP)."""
    rows = []
    for c in bench_cases(args, args.presets.split(",")):
        ps, main, band = c["ps"], c["main"], c["band"]
        off = fuse_pair(main, ps.ultrawide, ratio=c["ratio"], content_check=False, engine=args.engine)
        kw = dict(alignment=off.alignment, fuse_scale=off.fuse_scale, engine=args.engine)
        on = fuse_pair(main, ps.ultrawide, content_check=True, **kw)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.runs):
            for cc in (False, True):
                t0 = time.perf_counter()
                fuse_pair(main, ps.ultrawide, content_check=cc, **kw)
                times[cc].append(time.perf_counter() - t0)
        row = {"preset": c["preset"], "scene": c["scene"], "focus": c["focus"], "rejected": on.content_rejected,
               "s_off": float(np.median(times[False])), "s_on": float(np.median(times[True]))}
        score_outputs(row, {"off": off.image, "on": on.image}, ps.aif, band, c["infocus"], None)
        rows.append(row)
        print(f"{c['preset']} scene {c['scene']} {c['focus']}: PSNR {row['psnr_off']:.3f} -> {row['psnr_on']:.3f}, "
              f"band {row['band_rmse_off']:.4f} -> {row['band_rmse_on']:.4f}, rejected {row['rejected']:.4f}, "
              f"{row['s_off']:.3f} -> {row['s_on']:.3f} s", file=sys.stderr)
    lines = ["| focus | pairs | PSNR off / on | occlusion-band RMSE off / on | worst pair change (dB) | "
             "frame rejected (mean) | fuse time off / on (s, median) |", "|---|---|---|---|---|---|---|"]
    for focus in ("near", "far"):
        g = [r for r in rows if r["focus"] == focus]
        mean = lambda k: float(np.mean([r[k] for r in g]))  # noqa: E731
        worst = min(r["psnr_on"] - r["psnr_off"] for r in g)
        lines.append(f"| {focus} | {len(g)} | {mean('psnr_off'):.3f} / {mean('psnr_on'):.3f} | "
                     f"{mean('band_rmse_off'):.4f} / {mean('band_rmse_on'):.4f} | {worst:+.3f} | {mean('rejected'):.4f} | "
                     f"{np.median([r['s_off'] for r in g]):.3f} / {np.median([r['s_on'] for r in g]):.3f} |")
    return {"rows": rows, "table": "\n".join(lines)}


# --- how precisely a defocused main can place the ultra-wide ---------------------------------
def _tile_shifts(m: np.ndarray, u: np.ndarray, tile: int = 64, step: int = 32, r: int = 4,
                 radii: tuple[float, ...] = (0.7, 1.5, 2.5, 3.5, 5.0, 7.0, 10.0, 14.0)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per tile of the luminance ``m`` (``tile`` px, every ``step`` px): the sub-pixel shift
    ``s`` with ``m(p) ~ u(p + s)``, from the ZNCC peak (parabola through it) over +-``r`` px
    against ``u`` blurred by whichever disc of ``radii`` matches best (the main's defocus;
    a bank of Gaussians instead gave a 0.2 px wider spread), and the tile's top-left
    corner. Tiles without texture or with the peak on the search border are left out. The
    plain form of ``align.pair.refine_flow_tiles`` (every disc tried at every tile, no
    other test), used here to measure what matching can resolve."""
    h, w = m.shape
    ub = [cv2.filter2D(u, -1, disc_kernel(rd), borderType=cv2.BORDER_REFLECT) for rd in radii]
    shifts, corners = [], []
    for y in range(r, h - tile - r + 1, step):
        for x in range(r, w - tile - r + 1, step):
            tpl = m[y:y + tile, x:x + tile]
            if tpl.std() < 0.004:
                continue
            _, peak = max((_zncc_peak(cv2.matchTemplate(b[y - r:y + tile + r, x - r:x + tile + r], tpl,
                                                        cv2.TM_CCOEFF_NORMED)) for b in ub), key=lambda vp: vp[0])
            if peak is None:
                continue
            shifts.append(peak[:2])
            corners.append((x, y))
    return np.float32(shifts).reshape(-1, 2), np.int32(corners).reshape(-1, 2)


def score_match_precision(args: argparse.Namespace) -> dict:
    """How precisely image matching can place the ultra-wide's detail where the main is
    defocused, against the flow's own error there. On the fuse grid of each near-focused
    pair: the ultra-wide warped by the *ground-truth* map is matched tile by tile
    (``_tile_shifts``) against the main; a perfect estimator reports zero shift, so the
    spread of the reported shifts on the defocused background (visible, outside the main's
    in-focus mask, where ``aif fuse``'s confidence trusts its flow) is the matching's own
    error there, next to the same on the in-focus regions; then the end-point error of
    ``aif fuse``'s own flow on the same background. All in fuse-grid pixels (the
    ultra-wide's density: 0.5 of a 12 MP main)."""
    rows = []
    for c in bench_cases(args, args.presets.split(",")):
        if c["focus"] != "near":
            continue
        ps, main, infocus = c["ps"], c["main"], c["infocus"]
        al = align_pair(main, ps.ultrawide, ratio=c["ratio"])
        t = choose_fuse_scale(al, main.shape[:2])
        main_t = _resize(main, t)
        sh = main_t.shape[:2]
        area = lambda x: cv2.resize(x.astype(np.float32), (sh[1], sh[0]), interpolation=cv2.INTER_AREA)  # noqa: E731
        gt = area(ps.uw_map)
        truth = al.with_uw_map(ps.uw_map)
        uwg = truth.warp(ps.ultrawide, sh)
        lum = lambda x: cv2.cvtColor(np.ascontiguousarray(x, np.float32), cv2.COLOR_RGB2GRAY)  # noqa: E731
        shifts, corners = _tile_shifts(cv2.GaussianBlur(lum(main_t), (0, 0), 1.0), lum(uwg))
        vis, foc = area(~ps.occlusion) > 0.99, area(infocus) > 0.5
        bg = (al.confidence_at(sh) > 0.5) & vis & ~foc  # where aif fuse trusts its flow on the defocused background
        tile_frac = lambda m: np.float32([m[y:y + 64, x:x + 64].mean() for x, y in corners])  # noqa: E731
        row = {"preset": c["preset"], "scene": c["scene"], "fuse_scale": round(t, 3)}
        for name, sel in (("defocused", tile_frac(bg) > 0.9), ("in_focus", tile_frac(foc) > 0.9)):
            v = shifts[sel]
            row[f"tiles_{name}"] = int(len(v))
            if len(v):
                n = np.linalg.norm(v, axis=1)
                row[f"{name}_median_px"] = float(np.median(n))
                row[f"{name}_std_px"] = [float(x) for x in v.std(0)]
                row[f"{name}_within_0.5"] = float(np.mean(n < 0.5))
        epe = np.linalg.norm(al.uw_map(sh) - gt, axis=-1)[bg]
        row["flow_epe_pct_50_75_90"] = [float(x) for x in np.percentile(epe, [50, 75, 90])] if bg.any() else []
        rows.append(row)
        print(f"{c['preset']} scene {c['scene']} near: ground-truth-warped ultra-wide, tile shifts "
              f"defocused median {row.get('defocused_median_px', np.nan):.2f} px (std x/y "
              f"{'/'.join(f'{x:.2f}' for x in row.get('defocused_std_px', []))}, {row['tiles_defocused']} tiles), "
              f"in focus median {row.get('in_focus_median_px', np.nan):.2f} px ({row['tiles_in_focus']} tiles); "
              f"own flow EPE on the confident defocused background p50/p75/p90 "
              f"{'/'.join(f'{x:.2f}' for x in row['flow_epe_pct_50_75_90'])} px", file=sys.stderr)
    lines = ["| pair | fuse scale | tiles defocused / in focus | matching's error, defocused: median, std x / y, "
             "within 0.5 px | in focus: median, within 0.5 px | own flow EPE, confident defocused: p50 / p75 / p90 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        d = (f"{r['defocused_median_px']:.2f}, {r['defocused_std_px'][0]:.2f} / {r['defocused_std_px'][1]:.2f}, "
             f"{r['defocused_within_0.5']:.0%}") if r["tiles_defocused"] else "-"
        f = f"{r['in_focus_median_px']:.2f}, {r['in_focus_within_0.5']:.0%}" if r["tiles_in_focus"] else "-"
        e = " / ".join(f"{x:.2f}" for x in r["flow_epe_pct_50_75_90"]) or "-"
        lines.append(f"| {r['preset']} scene {r['scene']} near | {r['fuse_scale']} | {r['tiles_defocused']} / "
                     f"{r['tiles_in_focus']} | {d} | {f} | {e} |")
    return {"rows": rows, "table": "\n".join(lines)}


# --- speed ------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would carry the parent's high-water mark across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def speed_child(main_path: str, uw_path: str, out_dir: str, engine: str = "classical") -> dict:
    from aifcli.align.pair_io import align_files, load_pair
    from aifcli.batch.malloc import tune_malloc_for
    from aifcli.io import write_image

    t = {}
    t0 = time.perf_counter()
    tune_malloc_for(main_path, uw_path)  # as fuse_files does
    p = load_pair(main_path, uw_path)
    t["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p, al = align_files(p)
    t["align"] = time.perf_counter() - t0
    r = fuse_pair(p.main.pixels, p.ultrawide.pixels, alignment=al, engine=engine)
    stages = [k for k in r.timings if k != "align"]
    for k in stages:
        t[k] = r.timings[k]
    t0 = time.perf_counter()
    write_image(Path(out_dir) / "fused.jpg", r.image, meta=p.main.meta, overwrite=True)
    t["encode"] = time.perf_counter() - t0
    t["total"] = t["decode"] + t["align"] + sum(r.timings[k] for k in stages) + t["encode"]
    t.update({f"align_{k}": v for k, v in al.timings.items()})
    t["peak_rss_mb"] = _peak_rss_mb()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    t["cpu_s_process"] = ru.ru_utime + ru.ru_stime  # all threads, imports included
    t["load_avg_1min"] = os.getloadavg()[0]
    return t


def run_speed(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_fuse_"))
    if args.pair:
        main_path, uw_path = args.pair
        source = f"{main_path} + {uw_path}"
    else:
        from aifcli.synth.pairs import make_pair_scene, pair_scene_files

        t0 = time.perf_counter()
        ps = make_pair_scene(args.seed, size="full", preset=args.presets.split(",")[0])
        files = pair_scene_files(ps)
        for name in ("main_near.jpg", "ultrawide.jpg"):
            (tmp / name).write_bytes(files[name])
        main_path, uw_path = str(tmp / "main_near.jpg"), str(tmp / "ultrawide.jpg")
        source = f"synthetic {ps.main_near.shape[1]}x{ps.main_near.shape[0]} pair ({args.presets.split(',')[0]}), " \
                 f"rendered in {time.perf_counter() - t0:.1f} s"
        del ps, files
    runs = []
    if args.in_process:  # warm: one process, imports and first-call costs paid once
        speed_child(main_path, uw_path, str(tmp), args.engine)
    for i in range(args.runs):
        if args.in_process:
            runs.append(speed_child(main_path, uw_path, str(tmp), args.engine))
            print(f"run {i + 1}: {runs[-1]['total']:.3f} s (in process)", file=sys.stderr)
            continue
        cp = subprocess.run([sys.executable, __file__, "--speed-child", main_path, uw_path, str(tmp), args.engine],
                            capture_output=True, text=True, check=True)
        runs.append(json.loads(cp.stdout.strip().splitlines()[-1]))
        print(f"run {i + 1}: {runs[-1]['total']:.3f} s, peak RSS {runs[-1]['peak_rss_mb']:.0f} MB, "
              f"load average {runs[-1]['load_avg_1min']:.1f}", file=sys.stderr)
    keys = runs[0].keys()
    med = {k: float(np.median([r[k] for r in runs])) for k in keys}
    return {"source": source, "runs": len(runs), "median": med, "all_totals": [r["total"] for r in runs]}


# --- figures for docs/FUSE.md ----------------------------------------------------------------
def _u8(img: np.ndarray) -> np.ndarray:
    img = np.clip(img, 0, 1)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, 2)
    return (img[..., ::-1] * 255 + 0.5).astype(np.uint8)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 9 * len(text) + 8), 20), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _fit(img: np.ndarray, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img, (width, round(h * width / w)), interpolation=cv2.INTER_AREA if width < w else cv2.INTER_NEAREST)


def make_engine_figures(args: argparse.Namespace, out: Path) -> None:
    """docs/LEARNED.md figures: held-out synthetic scenes (main, classical, learned, ground truth,
    the learned masks) and the real iPhone pair (classical vs learned, 100 % crops)."""
    from aifcli.align.pair_io import align_files, load_pair
    from aifcli.synth.pairs import make_pair_scene

    out.mkdir(parents=True, exist_ok=True)
    for preset, idx, focus in (("iphone-13", 2, "far"), ("huawei-mate30pro", 0, "near")):
        ps = make_pair_scene(0, size="1024", preset=preset, index=idx)
        main = ps.main_near if focus == "near" else ps.main_far
        cl = fuse_pair(main, ps.ultrawide, ratio=focal_ratio(ps), keep_intermediates=True)
        nt = fuse_pair(main, ps.ultrawide, alignment=cl.alignment, engine="net", weights=args.weights,
                       keep_intermediates=True)
        masks = np.stack([nt.masks["main"], nt.masks["ultrawide"], nt.masks["refined"]], -1)
        cmask = np.stack([cl.masks["main"], cl.masks["ultrawide"], cl.masks["refined"]], -1)
        err = lambda a: np.clip(np.abs(a - ps.aif).mean(-1) * 8, 0, 1)  # noqa: E731
        tiles = [("main", main), ("classical", cl.image), ("learned (--engine net)", nt.image),
                 ("ground truth", ps.aif), ("classical masks R=main G=uw B=refined", cmask),
                 ("learned masks", masks), ("|error| x8 classical", err(cl.image)), ("|error| x8 learned", err(nt.image)),
                 ("confidence", cl.confidence)]
        cells = [_label(_fit(_u8(im), 340), t) for t, im in tiles]
        hmin = min(c.shape[0] for c in cells)
        grid = np.vstack([np.hstack([c[:hmin] for c in cells[i:i + 3]]) for i in range(0, 9, 3)])
        cv2.imwrite(str(out / f"{preset}_{idx}_{focus}.jpg"), grid, [cv2.IMWRITE_JPEG_QUALITY, 88])
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs" / "iphone11pro-wide-tele"
    if real.is_dir():
        p = load_pair(real / "tele_52mm_Ref_IMG_20.jpg", real / "wide_26mm_HR_IMG_20.jpg", None, None, True)
        p, al = align_files(p, True)
        cl = fuse_pair(p.main.pixels, p.ultrawide.pixels, alignment=al)
        nt = fuse_pair(p.main.pixels, p.ultrawide.pixels, alignment=al, engine="net", weights=args.weights)
        h, w = cl.image.shape[:2]
        crops = []
        for cy, cx in ((0.5, 0.5), (0.3, 0.85), (0.75, 0.2)):
            y0, x0 = int(cy * h) - 200, int(cx * w) - 200
            y0, x0 = max(0, min(h - 400, y0)), max(0, min(w - 400, x0))
            crops.append(np.hstack([_label(_u8(im[y0:y0 + 400, x0:x0 + 400]), t) for t, im in
                                    (("tele (main)", p.main.pixels), ("classical", cl.image), ("learned", nt.image))]))
        cv2.imwrite(str(out / "iphone_crops.jpg"), np.vstack(crops), [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"iPhone pair: classical masks {cl.summary()['mask_means']}, learned {nt.summary()['mask_means']}; "
              f"mean |learned - classical| {float(np.abs(nt.image - cl.image).mean()):.4f}", file=sys.stderr)


def make_figures(args: argparse.Namespace, out: Path) -> None:
    from aifcli.synth.pairs import make_pair_scene

    out.mkdir(parents=True, exist_ok=True)
    for idx in range(args.scenes):
        ps = make_pair_scene(args.seed, size=args.size, preset=args.presets.split(",")[0], index=idx)
        for focus in ("near", "far"):
            main = ps.main_near if focus == "near" else ps.main_far
            full = fuse_pair(main, ps.ultrawide, ratio=2.0, keep_intermediates=True)
            nc = fuse_pair(main, ps.ultrawide, alignment=full.alignment, use_confidence=False)
            it = full.intermediates
            tiles = [("main", main), ("ultra-wide (input)", ps.ultrawide), ("homography-warped", it["homography_warped"]),
                     ("flow-warped", it["flow_warped"]), ("colour-matched", it["color_matched"]),
                     ("confidence", it["confidence"]), ("mask main", it["mask_main"]),
                     ("mask ultra-wide", it["mask_ultrawide"]), ("mask refined", it["mask_refined"]),
                     ("no confidence", nc.image), ("aif fuse", full.image), ("ground truth", ps.aif)]
            cells = [_label(_fit(_u8(im), 340), t) for t, im in tiles]
            hmin = min(c.shape[0] for c in cells)
            cells = [c[:hmin] for c in cells]
            grid = np.vstack([np.hstack(cells[i:i + 3]) for i in range(0, 12, 3)])
            cv2.imwrite(str(out / f"scene{idx}_{focus}_steps.jpg"), grid, [cv2.IMWRITE_JPEG_QUALITY, 88])
            # crops around the largest occlusion
            occ = ps.occlusion.astype(np.uint8)
            n, lab, stats, cent = cv2.connectedComponentsWithStats(occ)
            if n > 1:
                j = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
                cx, cy = (int(v) for v in cent[j])
            else:
                cy, cx = main.shape[0] // 2, main.shape[1] // 2
            r = max(48, main.shape[1] // 12)
            y0, x0 = int(np.clip(cy - r, 0, main.shape[0] - 2 * r)), int(np.clip(cx - r, 0, main.shape[1] - 2 * r))
            crop = lambda a: _fit(_u8(a[y0:y0 + 2 * r, x0:x0 + 2 * r]), 256)  # noqa: E731
            row = [_label(crop(a), t) for t, a in (("main", main), ("no confidence", nc.image),
                                                  ("aif fuse", full.image), ("ground truth", ps.aif))]
            cv2.imwrite(str(out / f"scene{idx}_{focus}_crops.jpg"), np.hstack(row), [cv2.IMWRITE_JPEG_QUALITY, 90])
            print(f"wrote scene{idx}_{focus}_*.png", file=sys.stderr)
    if args.pair:
        from aifcli.align.pair_io import align_files, load_pair

        p = load_pair(*args.pair)
        p, al = align_files(p)
        m = p.main.pixels
        w = al.warp(p.ultrawide.pixels, m.shape[:2], use_flow=False)
        y = lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)  # noqa: E731
        overlay = np.dstack([y(w), y(m), y(m)])  # red = warped wide, cyan = tele: grey where aligned
        before = np.dstack([y(cv2.resize(p.ultrawide.pixels, (m.shape[1], m.shape[0]))), y(m), y(m)])
        H, W = m.shape[:2]
        cy, cx, r = H // 2, W // 2, 200
        cv2.imwrite(str(out / "iphone_overlay.jpg"), np.hstack([
            _label(_fit(_u8(before), 480), "before (wide resized)"), _label(_fit(_u8(overlay), 480), "after: red=wide, cyan=tele"),
            _label(_fit(_u8(overlay[cy - r:cy + r, cx - r:cx + r]), 360), "100% crop, centre")]), [cv2.IMWRITE_JPEG_QUALITY, 88])
        info = al.to_dict()
        (out / "iphone_alignment.json").write_text(json.dumps({k: info[k] for k in (
            "H", "inliers", "matches", "residual_px", "scale_uw_px_per_main_px", "confident_fraction", "agreement",
            "flow_median_px")}, indent=1) + "\n")
        print(f"iPhone: {info['inliers']}/{info['matches']} inliers, residual {info['residual_px']} px", file=sys.stderr)
        # the content check: 2x crops around the largest change it makes (an object that moved)
        on = fuse_pair(m, p.ultrawide.pixels, alignment=al, keep_intermediates=True)
        off = fuse_pair(m, p.ultrawide.pixels, alignment=al, fuse_scale=on.fuse_scale, content_check=False)
        d = cv2.GaussianBlur(np.abs(on.image - off.image).max(axis=2), (0, 0), 8.0)
        cy, cx = np.unravel_index(int(np.argmax(d)), d.shape)
        r = 90
        y0, x0 = int(np.clip(cy - r, 0, H - 2 * r)), int(np.clip(cx - 2 * r, 0, W - 4 * r))
        uwf = cv2.resize(on.intermediates["flow_warped"], (W, H), interpolation=cv2.INTER_LINEAR)
        crop = lambda a: cv2.resize(_u8(a[y0:y0 + 2 * r, x0:x0 + 4 * r]), None, fx=2, fy=2,  # noqa: E731
                                    interpolation=cv2.INTER_NEAREST)
        tiles = [("tele (main)", m), ("wide, flow-warped", uwf), ("--no-content-check", off.image), ("aif fuse", on.image)]
        cells = [_label(crop(a), t) for t, a in tiles]
        cv2.imwrite(str(out / "iphone_moved_object.jpg"), np.vstack([np.hstack(cells[:2]), np.hstack(cells[2:])]),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"iPhone moved object: crop at x {x0}, y {y0} (content check took {on.content_rejected:.2%} of the frame)",
              file=sys.stderr)


def _write_crops(path: Path, main: np.ndarray, gt: np.ndarray, pair: dict[str, np.ndarray], labels: list[str],
                 main_label: str, r: int = 200) -> None:
    """Four 100 % crops side by side, written to ``path``: the main, the two results in
    ``pair`` (before, after; ``labels`` their tiles) and the ground truth, where the change
    lowers the error (Gaussian of 40 px) most, at least ``r`` px from the frame's edge."""
    (k0, before), (k1, after) = pair.items()
    err = lambda a: cv2.GaussianBlur(((a - gt) ** 2).sum(-1), (0, 0), 40.0)  # noqa: E731
    gain = err(before) - err(after)
    gain[:r], gain[-r:], gain[:, :r], gain[:, -r:] = 0, 0, 0, 0
    cy, cx = np.unravel_index(int(np.argmax(gain)), gain.shape)
    win = np.s_[cy - r:cy + r, cx - r:cx + r]
    tiles = [(main_label, main), (labels[0], before), (labels[1], after), ("ground truth", gt)]
    cv2.imwrite(str(path), np.hstack([_label(_u8(a[win]), t) for t, a in tiles]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    rmse = {k: float(np.sqrt(((v[win] - gt[win]) ** 2).mean())) for k, v in pair.items()}
    print(f"{path.name}: crop at x {cx - r}, y {cy - r}; RMSE {k0} {rmse[k0]:.4f}, {k1} {rmse[k1]:.4f}", file=sys.stderr)


def _ab_crop_figure(args: argparse.Namespace, out: Path, name: str, without: dict, label: str,
                    focus: str = "near", index: int = 0) -> None:
    """A 12 MP pair (first preset, scene ``index``, main focused ``focus``) fused with ``align_pair(**without)``
    and with the default alignment; 100 % crops where the change lowers the error most, next
    to the main and the ground truth, written to ``out / name``."""
    from aifcli.synth.pairs import make_pair_scene

    out.mkdir(parents=True, exist_ok=True)
    ps = make_pair_scene(args.seed, size="full", preset=args.presets.split(",")[0], index=index)
    main = ps.main_near if focus == "near" else ps.main_far
    res = {}
    for key, kw in (("without", without), ("with", {})):
        al = align_pair(main, ps.ultrawide, ratio=focal_ratio(ps), **kw)
        res[key] = fuse_pair(main, ps.ultrawide, alignment=al).image
    _write_crops(out / name, main, ps.aif, res, ["aif fuse, without", f"aif fuse, {label}"], f"main (focused {focus})")


def make_defocus_figure(args: argparse.Namespace, out: Path) -> None:
    """docs/FUSE.md figure: a defocused background at 12 MP fused with and without the
    defocus-matched flow (``align_pair(defocus_levels=())``)."""
    _ab_crop_figure(args, out, "defocus_matched_flow.jpg", {"defocus_levels": ()}, "defocus-matched flow")


def make_epipolar_figure(args: argparse.Namespace, out: Path) -> None:
    """docs/FUSE.md figure: a 12 MP pair fused with and without the epipolar projection
    (``align_pair(epipolar=False)``)."""
    _ab_crop_figure(args, out, "epipolar_projection.jpg", {"epipolar": False}, "epipolar projection")


def make_objects_figure(args: argparse.Namespace, out: Path) -> None:
    """docs/FUSE.md figure: a 12 MP pair focused far fused with and without the defocused
    objects' parallax (``align_pair(objects=False)``)."""
    _ab_crop_figure(args, out, "defocused_objects.jpg", {"objects": False}, "defocused objects", focus="far")


def make_tiles_figure(args: argparse.Namespace, out: Path) -> None:
    """docs/FUSE.md figure: a 12 MP pair (scene 1, focused near) fused with and without the
    tile refinement of the flow (``align_pair(tiles=False)``)."""
    _ab_crop_figure(args, out, "tile_refinement.jpg", {"tiles": False}, "tile refinement", index=1)


def make_ramps_figure(args: argparse.Namespace, out: Path) -> None:
    """docs/FUSE.md figure: a 12 MP pair (scene 0, focused near) fused with and without the
    flow's ramps counted as inconsistent (``align_pair(max_flow_gradient=0)``)."""
    _ab_crop_figure(args, out, "flow_ramps.jpg", {"max_flow_gradient": 0.0}, "ramps inconsistent")


def make_band_figure(args: argparse.Namespace, out: Path) -> None:
    """docs/FUSE.md figure: a 12 MP pair focused near, ``aif fuse`` with the main's band above
    the fuse grid kept everywhere (the blend before ``onto_main`` dropped it where it is noise
    and the main is not the source, rebuilt here from the result) and as shipped; 100 % crops
    where the change lowers the error most, next to the main and the ground truth."""
    from aifcli.fuse.pair import top_band_signal
    from aifcli.synth.pairs import make_pair_scene

    out.mkdir(parents=True, exist_ok=True)
    ps = make_pair_scene(args.seed, size="full", preset=args.presets.split(",")[0], index=1)
    main = ps.main_near
    r = fuse_pair(main, ps.ultrawide, ratio=focal_ratio(ps))
    h, w = main.shape[:2]
    up = lambda a: cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)  # noqa: E731
    main_t = _resize(main, r.fuse_scale)
    keep = up(np.maximum(r.masks["main"], top_band_signal(main, main_t)))[..., None]
    kept = np.clip(r.image + (1 - keep) * (main - up(main_t)), 0, 1)
    _write_crops(out / "top_band.jpg", main, ps.aif, {"kept": kept, "dropped": r.image},
                 ["aif fuse, main's top band kept", "aif fuse (top band dropped where noise)"], "main (focused near)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="512", help="main image width: 512, 1024, ... or full")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--presets", default="generic-phone")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--band", type=int, default=4, help="occlusion band half-width in px")
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--pair", nargs=2, metavar=("MAIN", "UW"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--in-process", action="store_true", help="time warm runs in this process (no fresh process per run)")
    ap.add_argument("--json", type=Path, help="write the full results here")
    ap.add_argument("--figures", type=Path, help="write the docs figures to this folder and exit")
    ap.add_argument("--weights", default=None, help="fuse-net weights for --engine-compare (default: shipped)")
    ap.add_argument("--engine", default="classical", choices=("classical", "net"), help="fusion engine for --speed and --content-check-ab")
    ap.add_argument("--engine-compare", action="store_true",
                    help="classical vs learned engines on held-out scenes (Table I + Table IV-style ablation)")
    ap.add_argument("--defocus-figure", type=Path, help="write docs/FUSE.md's defocus-matched flow figure here (12 MP, first preset) and exit")
    ap.add_argument("--epipolar-figure", type=Path, help="write docs/FUSE.md's epipolar projection figure here (12 MP, first preset) and exit")
    ap.add_argument("--objects-figure", type=Path,
                    help="write docs/FUSE.md's defocused-objects figure here (12 MP focused far, first preset) and exit")
    ap.add_argument("--band-figure", type=Path,
                    help="write docs/FUSE.md's figure of the main's band above the fuse grid here (12 MP focused near, "
                         "first preset, scene 1) and exit")
    ap.add_argument("--tiles-figure", type=Path,
                    help="write docs/FUSE.md's tile-refinement figure here (12 MP scene 1 focused near, first preset) and exit")
    ap.add_argument("--ramps-figure", type=Path,
                    help="write docs/FUSE.md's flow-ramps figure here (12 MP scene 0 focused near, first preset) and exit")
    ap.add_argument("--engine-figures", type=Path, help="write the docs/LEARNED.md figures here and exit")
    ap.add_argument("--gap", action="store_true",
                    help="aif fuse with ground-truth flow and/or visibility in place of its own: where the gap to the oracle is")
    ap.add_argument("--content-check-ab", action="store_true",
                    help="aif fuse with the content check off vs on: quality, rejected fraction, time (--engine)")
    ap.add_argument("--match-precision", action="store_true",
                    help="near-focused pairs: how precisely tile matching places the ground-truth-warped ultra-wide "
                         "on the defocused background (vs in focus), next to the own flow's error there")
    ap.add_argument("--speed-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    for out, make in ((args.figures, make_figures), (args.defocus_figure, make_defocus_figure),
                      (args.epipolar_figure, make_epipolar_figure), (args.objects_figure, make_objects_figure),
                      (args.band_figure, make_band_figure), (args.tiles_figure, make_tiles_figure),
                      (args.ramps_figure, make_ramps_figure), (args.engine_figures, make_engine_figures)):
        if out:  # a figure option: write it and stop
            make(args, out)
            return
    if args.speed_child:
        print(json.dumps(speed_child(*args.speed_child)))
        return
    if args.engine_compare:
        res = score_engines(args)
    elif args.gap:
        res = score_gap(args)
    elif args.content_check_ab:
        res = score_content_check(args)
    elif args.match_precision:
        res = score_match_precision(args)
    else:
        res = run_speed(args) if args.speed else score_quality(args)
    res["command"] = " ".join(["python"] + sys.argv)
    res["machine"] = f"{os.cpu_count()} CPU cores, {os.uname().machine}, OpenCV {cv2.__version__}"
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float))
    if args.speed:
        m = res["median"]
        print(f"{res['source']}: median end-to-end {m['total']:.3f} s over {res['runs']} runs "
              f"(all: {', '.join(f'{x:.2f}' for x in res['all_totals'])}), peak RSS {m['peak_rss_mb']:.0f} MB")
        print("stages (median s): " + ", ".join(f"{k} {m[k]:.3f}" for k in m
                                                 if k not in ("total", "peak_rss_mb", "load_avg_1min")))
    else:
        print(res["table"])
        for k in ("per_scene", "targets"):
            if k in res:
                print("\n" + res[k])


if __name__ == "__main__":
    main()
