#!/usr/bin/env python3
"""Benchmark: `aif colormatch` classical vs learned (--engine net) on held-out synthetic pairs.

Scenes: ``make_pair_scene(0, size, preset=P, index=i)`` for the presets the training data
holds out (seed 0 is never used for training), both main_near and main_far. Each pair is
aligned by aif's classical pipeline (``aifcli.nets.data.classical_inputs``: homography +
flow, confidence), then the warped ultra-wide is colour-matched to the main by the
classical local affine fit and by the network. Against the ground-truth all-in-focus image
(main camera colour), over the valid overlap (inside the ultra-wide's field, not occluded),
on the low band (both images area-shrunk to 128 px wide, where colour lives and the
ultra-wide's lower resolution does not count):

- mean CIEDE2000 (skimage.color.deltaE_ciede2000),
- low-frequency RMS (RGB, 0-1 scale).

Timing: one 4032x3024 source (the 12 MP case: colour-match the ultra-wide after warping
it to the full main grid), reference and mask at the fuse scale; median of --repeat runs,
weights loaded once beforehand.

    python bench/bench_color.py                       # 3 scenes per preset, markdown table
    python bench/bench_color.py --scenes 4 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aifcli.color.local_affine import match_colors  # noqa: E402
from aifcli.errors import InputError  # noqa: E402
from aifcli.nets.color_net import delta_e, load, match_colors_net  # noqa: E402
from aifcli.nets.data import HELD_OUT_PRESETS, _area, _ratio, classical_inputs  # noqa: E402
from aifcli.nets.weights import sha256_file  # noqa: E402
from aifcli.synth.pairs import make_pair_scene  # noqa: E402

LOW_W = 128


def low(a: np.ndarray) -> np.ndarray:
    h = round(LOW_W * a.shape[0] / a.shape[1])
    return cv2.resize(np.ascontiguousarray(a, dtype=np.float32), (LOW_W, h), interpolation=cv2.INTER_AREA)


def metrics(img: np.ndarray, gt_lo: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    x = np.clip(low(img), 0, 1)
    return delta_e(x, gt_lo, valid), float(np.sqrt(((x - gt_lo) ** 2)[valid].mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=3, help="scenes per preset (index 0..N-1)")
    ap.add_argument("--size", default="1024", help="main width of the rendered scenes")
    ap.add_argument("--presets", nargs="+", default=list(HELD_OUT_PRESETS))
    ap.add_argument("--weights", default=None, help="weights file (default: weights/color-net.pt)")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats (median)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model, info = load(args.weights)
    rows = []
    skipped: list[str] = []
    for preset in args.presets:
        for i in range(args.scenes):
            ps = make_pair_scene(0, size=args.size, preset=preset, index=i)
            for focus, main in (("near", ps.main_near), ("far", ps.main_far)):
                try:
                    ci = classical_inputs(main, ps.ultrawide, _ratio(ps.metadata))
                except InputError as e:  # the classical alignment refuses it: nothing to colour-match
                    skipped.append(f"{preset} {i} {focus}")
                    print(f"{preset} {i} {focus}: skipped ({e})", file=sys.stderr)
                    continue
                shape = ci["main"].shape[:2]
                inf = ci["infield"] if ci["infield"].ndim == 2 else ci["infield"][..., 0]
                valid_full = inf.astype(np.float32) * (1 - _area(ps.occlusion.astype(np.float32), shape))
                valid = low(valid_full) > 0.99
                gt_lo = low(_area(ps.aif, shape))
                net = match_colors_net(ci["uwf"], ci["main"], ci["conf"], model=model).image
                r = {"preset": preset, "index": i, "focus": focus, "valid": float(valid.mean())}
                for name, img in (("uncorrected", ci["uwf"]), ("classical", ci["iwc"]), ("net", net)):
                    r[f"de_{name}"], r[f"rms_{name}"] = metrics(img, gt_lo, valid)
                rows.append(r)
                print(f"{preset} {i} {focus}: dE2000 uncorrected {r['de_uncorrected']:.3f} classical "
                      f"{r['de_classical']:.3f} net {r['de_net']:.3f}", file=sys.stderr)

    # timing on a 12 MP source
    ps = make_pair_scene(0, size=args.size, preset=args.presets[0], index=0)
    ci = classical_inputs(ps.main_near, ps.ultrawide, _ratio(ps.metadata))
    src12 = cv2.resize(ci["uwf"], (4032, 3024), interpolation=cv2.INTER_LINEAR)
    tim = {}
    for name, fn in (("classical", lambda: match_colors(src12, ci["main"], ci["conf"])),
                     ("net", lambda: match_colors_net(src12, ci["main"], ci["conf"], model=model))):
        fn()
        ts = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        tim[name] = float(np.median(ts))

    def mean(k, rs):
        return float(np.mean([r[k] for r in rs]))

    print(f"\nHeld-out scenes: seed 0, size {args.size}, {args.scenes} per preset x near/far "
          f"({len(rows)} pairs); weights {info['path']} (sha256 {sha256_file(info['path'])[:12]}); "
          f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}\n")
    print("| preset | pairs | ΔE2000 uncorrected | ΔE2000 classical | ΔE2000 net | LF RMS classical | LF RMS net |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.presets + ["**all**"]:
        rs = rows if preset == "**all**" else [r for r in rows if r["preset"] == preset]
        print(f"| {preset} | {len(rs)} | {mean('de_uncorrected', rs):.3f} | {mean('de_classical', rs):.3f} | "
              f"{mean('de_net', rs):.3f} | {mean('rms_classical', rs):.4f} | {mean('rms_net', rs):.4f} |")
    if skipped:
        print(f"\nskipped (the classical alignment refused the pair): {', '.join(skipped)}")
    wins = sum(r["de_net"] < r["de_classical"] for r in rows)
    print(f"\nnet better than classical (ΔE2000) on {wins} of {len(rows)} pairs")
    print(f"\n| 12 MP source (4032x3024) | classical | net |\n|---|---|---|\n"
          f"| seconds per image (median of {args.repeat}) | {tim['classical']:.3f} | {tim['net']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "timing_s": tim, "weights": info["path"]}, indent=1))


if __name__ == "__main__":
    main()
