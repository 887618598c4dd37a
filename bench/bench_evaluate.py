"""Benchmark of ``aif evaluate`` on 12 MP images: each metric, LPIPS tiled vs untiled
(time, peak memory, agreement), --align, and the whole command on a folder of pairs.

    nice python bench/bench_evaluate.py [--pairs 4] [--jobs 2] [--size 4032x3024]

Prints a table and a JSON line; record the figures in docs/BENCHMARKS.md with the machine.
Images are made here (a natural photo upscaled + texture noise, and a blurred copy), so
the run needs no data. Runs that compare memory use separate processes.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_pair(w: int, h: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data as skdata

    rng = np.random.default_rng(seed)
    base = cv2.resize(skdata.astronaut(), (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    tex = (cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 1.2) - 0.5)[:, :, None]
    gt = np.clip(base + 0.25 * tex, 0, 1).astype(np.float32)
    pred = np.clip(cv2.GaussianBlur(gt, (0, 0), 1.5) + rng.normal(0, 0.01, gt.shape).astype(np.float32), 0, 1)
    return pred, gt


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    ts, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def lpips_child(w: int, h: int, tile: int) -> dict:
    """Run in a fresh process: LPIPS time and peak RSS for one tile setting."""
    code = f"""
import json, resource, time, sys
sys.path.insert(0, {str(ROOT)!r})
from bench.bench_evaluate import make_pair
from aifcli.metrics.lpips import LPIPS
p, g = make_pair({w}, {h})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
m = LPIPS('alex', tile={tile})
t0 = time.perf_counter(); d = m.distance(p, g); t = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{'tile': {tile}, 'seconds': t, 'lpips': d, 'peak_mb': peak / 1024, 'before_mb': base / 1024}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return {"tile": tile, "error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="4032x3024")
    ap.add_argument("--pairs", type=int, default=4, help="pairs for the end-to-end run")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-untiled", action="store_true", help="skip the untiled LPIPS run (needs several GB)")
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.lower().split("x"))
    from aifcli.metrics import psnr, ssim
    from aifcli.metrics.align import align_to_gt

    res: dict = {"size": f"{w}x{h}", "cores": os.cpu_count(), "torch_threads": None,
                 "load_avg_start": os.getloadavg()}
    import torch

    res["torch_threads"] = torch.get_num_threads()
    pred, gt = make_pair(w, h)
    res["psnr_s"], _ = timed(lambda: psnr(pred, gt))
    res["ssim_s"], _ = timed(lambda: ssim(pred, gt))
    small = cv2.resize(pred, (w * 95 // 100, h * 95 // 100), interpolation=cv2.INTER_AREA)
    res["align_s"], _ = timed(lambda: align_to_gt(small, gt), repeat=1)
    del pred, gt, small

    lp = [lpips_child(w, h, 2048), lpips_child(w, h, 1024)]
    if not a.skip_untiled:
        lp.append(lpips_child(w, h, 0))
    res["lpips"] = lp
    if len(lp) == 3 and all("lpips" in x for x in lp):
        res["lpips_tiled_minus_untiled"] = max(abs(lp[0]["lpips"] - lp[2]["lpips"]), abs(lp[1]["lpips"] - lp[2]["lpips"]))

    # end to end: a folder of pairs, written as 16-bit PNG like `aif synth` GT
    from aifcli.io import write_image

    with tempfile.TemporaryDirectory(prefix="aif-bench-eval-") as td:
        P, G = Path(td) / "pred", Path(td) / "gt"
        for i in range(a.pairs):
            p, g = make_pair(w, h, seed=i)
            write_image(G / f"img{i:03d}.png", g, bit_depth=16)
            write_image(P / f"img{i:03d}.png", p, bit_depth=16)
            del p, g
        for lp_flag in (["--no-lpips"], []):
            cmd = [sys.executable, "-m", "aifcli", "evaluate", str(P), str(G), "-j", str(a.jobs), "--json", "-q",
                   *lp_flag]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            t = time.perf_counter() - t0
            key = "cli_no_lpips" if lp_flag else "cli_with_lpips"
            if r.returncode != 0:
                res[key] = {"error": r.stderr.strip()[-300:]}
                continue
            rep = json.loads(r.stdout)
            per = [x.get("seconds_total") for x in rep["images"]]
            res[key] = {"pairs": a.pairs, "jobs": a.jobs, "wall_s": round(t, 2), "per_pair_wall_s": round(t / a.pairs, 2),
                        "item_seconds_median": round(statistics.median(per), 2),
                        "lpips_seconds_median": round(statistics.median([x.get("seconds_lpips", 0) for x in rep["images"]]), 2)}
    res["load_avg_end"] = os.getloadavg()
    res["peak_rss_mb_parent"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"size {res['size']}  cores {res['cores']}  torch threads {res['torch_threads']}  "
          f"load average start {res['load_avg_start'][0]:.1f} end {res['load_avg_end'][0]:.1f}")
    print(f"PSNR {res['psnr_s']:.3f} s   SSIM {res['ssim_s']:.3f} s   --align (scale+shift search + warp) {res['align_s']:.3f} s")
    for x in lp:
        if "error" in x:
            print(f"LPIPS tile={x['tile']}: failed: {x['error']}")
        else:
            print(f"LPIPS tile={x['tile'] or 'none':>5}: {x['seconds']:.2f} s, peak RSS {x['peak_mb']:.0f} MB "
                  f"(inputs {x['before_mb']:.0f} MB), value {x['lpips']:.6f}")
    if "lpips_tiled_minus_untiled" in res:
        print(f"|tiled - untiled| max: {res['lpips_tiled_minus_untiled']:.2e}")
    for k in ("cli_no_lpips", "cli_with_lpips"):
        print(f"{k}: {res[k]}")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
