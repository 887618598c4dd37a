#!/usr/bin/env python
"""Benchmark of ``aif synth``: seconds per pair scene / per bracket, render vs encode vs write.

    nice python bench/bench_synth.py --size full --scenes 3          # 12 MP pair scenes
    nice python bench/bench_synth.py --bursts --size 1024 --frames 30 --format dng

Each scene is rendered (``make_pair_scene``), encoded (``pair_scene_files``) and written
to a temporary folder, timed per stage, with the process CPU time beside the wall time
(the machine is shared: wall time rises with other load, CPU time much less). A floor
measured in the same run is printed for reference: decoding and re-encoding one 12 MP
JPEG. Prints a table and one JSON line; record figures in docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def floor_ms() -> float:
    """Decode + encode of one 4032x3024 JPEG (the I/O floor of a pair scene, x3)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    img = cv2.resize((rng.random((378, 504, 3)) * 255).astype(np.uint8), (4032, 3024), interpolation=cv2.INTER_CUBIC)
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    t = time.perf_counter()
    for _ in range(3):
        a = cv2.imdecode(enc, cv2.IMREAD_COLOR)
        cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return (time.perf_counter() - t) / 3 * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="full")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--bursts", action="store_true", help="time brackets instead of pairs")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--format", default="jpeg")
    args = ap.parse_args()

    from aifcli.synth.bursts import burst_files, make_burst
    from aifcli.synth.pairs import make_pair_scene, pair_scene_files

    rows = []
    ref = floor_ms()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.scenes):
            t0, c0 = time.perf_counter(), cpu()
            if args.bursts:
                obj = make_burst(args.seed, args.size, args.frames, args.preset or "generic-camera", index=k,
                                 raw=args.format == "dng")
            else:
                obj = make_pair_scene(args.seed, args.size, args.preset or "generic-phone", index=k)
            t1, c1 = time.perf_counter(), cpu()
            files = burst_files(obj, args.format) if args.bursts else pair_scene_files(obj)
            t2, c2 = time.perf_counter(), cpu()
            folder = Path(tmp) / f"s{k}"
            total = 0
            for rel, data in files.items():
                p = folder / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
                total += len(data)
            os.sync()
            t3, c3 = time.perf_counter(), cpu()
            rows.append({"scene": k, "render_s": t1 - t0, "encode_s": t2 - t1, "write_s": t3 - t2,
                         "total_s": t3 - t0, "cpu_s": c3 - c0, "mb": total / 1e6})
            print(f"scene {k}: render {t1 - t0:6.2f} s  encode {t2 - t1:5.2f} s  write {t3 - t2:5.2f} s  "
                  f"total {t3 - t0:6.2f} s  cpu {c3 - c0:6.2f} s  {total / 1e6:6.1f} MB", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in ("render_s", "encode_s", "write_s", "total_s", "cpu_s")}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median per {'bracket' if args.bursts else 'scene'}: total {med['total_s']:.2f} s (cpu {med['cpu_s']:.2f} s), "
          f"render {med['render_s']:.2f} s, encode {med['encode_s']:.2f} s, write {med['write_s']:.2f} s; "
          f"peak RSS {peak_mb:.0f} MB; floor (12 MP JPEG decode+encode) {ref:.0f} ms; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(json.dumps({"bench": "synth", "args": vars(args), "median": med, "peak_rss_mb": peak_mb,
                      "floor_jpeg_ms": ref, "rows": rows, "loadavg": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
