#!/usr/bin/env python3
"""OpenCV 4.x vs 5.x on the operations aif leans on (DESIGN.md §4).

Run the same script under two interpreters, one per OpenCV line, alternating rounds so
machine noise hits both alike, and compare medians as ratios:

    python bench/bench_opencv.py --compare .venv/bin/python /tmp/cv5/bin/python

With no --compare it times the current interpreter's OpenCV and prints JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def run_ops(rounds: int) -> dict:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    h, w = 3024, 4032
    base = rng.random((h // 8, w // 8, 3), dtype=np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)  # smooth, photo-like structure
    img += rng.random((h, w, 3), dtype=np.float32) * 0.1
    img8 = np.clip(img * 200, 0, 255).astype(np.uint8)
    gray_q = cv2.cvtColor(cv2.resize(img8, (w // 4, h // 4), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    H = np.array([[1.01, 0.01, 5], [-0.01, 0.99, -3], [1e-6, 2e-6, 1]], np.float64)
    mx, my = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx += 1.5
    my -= 0.7
    sift = cv2.SIFT_create(nfeatures=4000)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    g2 = np.roll(gray_q, 3, axis=1)
    half = cv2.resize(img8, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    ops = {
        "sift_quarter": lambda: sift.detectAndCompute(gray_q, None),
        "warpPerspective_12mp": lambda: cv2.warpPerspective(img, H, (w, h), flags=cv2.INTER_LINEAR),
        "remap_12mp": lambda: cv2.remap(img, mx, my, cv2.INTER_LINEAR),
        "gaussian_12mp": lambda: cv2.GaussianBlur(img, (0, 0), 3.0),
        "pyrdown_12mp": lambda: cv2.pyrDown(img),
        "dis_flow_quarter": lambda: dis.calc(gray_q, g2, None),
        "jpeg_encode_6mp": lambda: cv2.imencode(".jpg", half, [cv2.IMWRITE_JPEG_QUALITY, 95]),
    }
    out = {}
    for name, fn in ops.items():
        fn()  # warm up
        ts = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        out[name] = statistics.median(ts)
    out["_version"] = cv2.__version__
    out["_akaze"] = hasattr(cv2, "AKAZE_create")
    out["_brisk"] = hasattr(cv2, "BRISK_create")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compare", nargs=2, metavar=("PY_A", "PY_B"), help="two interpreters to compare")
    ap.add_argument("--alternations", type=int, default=3)
    ap.add_argument("--pipeline", nargs="+", metavar="ARGS",
                    help="with --compare: time whole `aif` commands instead (each quoted, e.g. "
                         "'fuse M.jpg U.jpg -o /tmp/o.jpg --overwrite')")
    a = ap.parse_args()
    if a.compare and a.pipeline:
        return pipeline(a.compare, a.pipeline, a.alternations)
    if not a.compare:
        print(json.dumps(run_ops(a.rounds)))
        return 0
    runs: dict[str, list[dict]] = {p: [] for p in a.compare}
    for _ in range(a.alternations):
        for py in a.compare:
            r = subprocess.run([py, __file__, "--rounds", str(a.rounds)], capture_output=True, text=True, check=True)
            runs[py].append(json.loads(r.stdout.strip().splitlines()[-1]))
    A, B = a.compare
    va, vb = runs[A][0]["_version"], runs[B][0]["_version"]
    print(f"| operation | OpenCV {va} (ms) | OpenCV {vb} (ms) | {vb} / {va} |")
    print("|---|---:|---:|---:|")
    for k in runs[A][0]:
        if k.startswith("_"):
            continue
        ma = statistics.median(r[k] for r in runs[A]) * 1000
        mb = statistics.median(r[k] for r in runs[B]) * 1000
        print(f"| {k} | {ma:.1f} | {mb:.1f} | {mb / ma:.2f} |")
    print(f"\nAKAZE: {va} {runs[A][0]['_akaze']}, {vb} {runs[B][0]['_akaze']}; "
          f"BRISK: {va} {runs[A][0]['_brisk']}, {vb} {runs[B][0]['_brisk']}")
    return 0


def pipeline(pythons: list[str], commands: list[str], alternations: int) -> int:
    """Wall time of whole aif commands under each interpreter, alternating, median per cell."""
    import shlex

    times: dict[tuple[str, str], list[float]] = {}
    versions = {}
    for py in pythons:
        versions[py] = subprocess.run([py, "-c", "import cv2; print(cv2.__version__)"], capture_output=True,
                                      text=True, check=True).stdout.strip()
    for _ in range(alternations):
        for cmd in commands:
            for py in pythons:
                t = time.perf_counter()
                subprocess.run([py, "-m", "aifcli", *shlex.split(cmd)], check=True, capture_output=True)
                times.setdefault((cmd, py), []).append(time.perf_counter() - t)
    A, B = pythons
    print(f"| command | OpenCV {versions[A]} (s) | OpenCV {versions[B]} (s) | {versions[B]} / {versions[A]} |")
    print("|---|---:|---:|---:|")
    for cmd in commands:
        ma, mb = statistics.median(times[(cmd, A)]), statistics.median(times[(cmd, B)])
        print(f"| aif {cmd.split()[0]} | {ma:.2f} | {mb:.2f} | {mb / ma:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
