#!/usr/bin/env python3
"""Contact sheet of `aif synth` output: pairs, a focus bracket and their ground truth.

    python scripts/contact_sheet.py                       # docs/img/synth_contact_sheet.png
    python scripts/contact_sheet.py -o sheet.png --pairs 3 --seed 1 --size 512

Everything is rendered in memory with the library API (``make_pair_scene``,
``make_burst``, ``make_rgbd_scene``); the same arguments give the same PNG.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TILE_W = 256


def _tile(img: np.ndarray, label: str, h: int) -> np.ndarray:
    """RGB float [0,1] or HxW -> uint8 BGR tile of width TILE_W x height h with a label."""
    a = np.asarray(img, np.float32)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    a = cv2.resize(a, (TILE_W, h), interpolation=cv2.INTER_AREA)
    t = cv2.cvtColor((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.rectangle(t, (0, 0), (TILE_W - 1, 16), (0, 0, 0), -1)
    cv2.putText(t, label, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return t


def _colour(v: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    lo = float(np.nanmin(v)) if lo is None else lo
    hi = float(np.nanmax(v)) if hi is None else hi
    u = ((np.clip((v - lo) / max(hi - lo, 1e-9), 0, 1)) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB).astype(np.float32) / 255


def _flow_rgb(flow: np.ndarray) -> np.ndarray:
    mag, ang = cv2.cartToPolar(flow[..., 0].astype(np.float32), flow[..., 1].astype(np.float32))
    hsv = np.zeros(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = (ang * 90 / np.pi).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / max(np.percentile(mag, 99), 1e-6) * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32) / 255


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "img" / "synth_contact_sheet.png")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", default="1024")
    ap.add_argument("--frames", type=int, default=8)
    args = ap.parse_args()

    from aifcli.synth.bursts import make_burst
    from aifcli.synth.pairs import make_pair_scene

    rows = []
    for k in range(args.pairs):
        ps = make_pair_scene(args.seed, args.size, index=k)
        h = int(round(TILE_W * ps.aif.shape[0] / ps.aif.shape[1]))
        m = ps.metadata["main"]
        # a 1:1 crop around the edge of the near-focused region: defocus at full scale
        edge = cv2.morphologyEx(ps.infocus_near.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        ys, xs = np.nonzero(edge)
        H_, W_ = ps.aif.shape[:2]
        cy = int(np.median(ys)) if len(ys) else H_ // 2
        cx = int(np.median(xs)) if len(xs) else W_ // 2
        y0 = int(np.clip(cy - h // 2, 0, H_ - h))
        x0 = int(np.clip(cx - TILE_W // 2, 0, W_ - TILE_W))
        crop = (slice(y0, y0 + h), slice(x0, x0 + TILE_W))
        rows.append(np.hstack([
            _tile(ps.main_near[crop], "main_near 1:1 crop", h),
            _tile(ps.main_far[crop], "main_far 1:1 crop", h),
            _tile(ps.main_near, f"main_near {m['focus_near_m']:.2f} m", h),
            _tile(ps.main_far, f"main_far {m['focus_far_m']:.1f} m", h),
            _tile(ps.ultrawide, "ultrawide", h),
            _tile(ps.aif, "gt/aif", h),
            _tile(_colour(1.0 / ps.depth), "gt/depth (inverse)", h),
            _tile(_flow_rgb(ps.flow), "gt/flow", h),
            _tile(ps.occlusion.astype(np.float32), "gt/occlusion", h),
            _tile(np.dstack([ps.infocus_near, ps.infocus_far, np.zeros_like(ps.infocus_far)]).astype(np.float32),
                  "gt/infocus near(R) far(G)", h),
        ]))
    b = make_burst(args.seed, args.size, args.frames)
    h = int(round(TILE_W * b.aif.shape[0] / b.aif.shape[1]))
    n = len(b.frames)
    picks = [0, n // 4, n // 2, (3 * n) // 4, n - 1]
    tiles = [_tile(b.frames[i], f"frame {i} ({b.focus_m[i] * 100:.1f} cm)", h) for i in picks]
    tiles += [_tile(b.aif, "gt/aif (ref frame)", h), _tile(_colour(b.focus_index, 0, n - 1), "gt/focus_index", h),
              _tile(_colour(1.0 / b.depth), "gt/depth (inverse)", h)]
    crop = (slice(b.aif.shape[0] // 2 - h // 2, b.aif.shape[0] // 2 + h - h // 2),
            slice(b.aif.shape[1] // 2 - TILE_W // 2, b.aif.shape[1] // 2 + TILE_W // 2))
    tiles = [_tile(b.frames[0][crop], "frame 0 1:1 crop", h), _tile(b.frames[-1][crop], f"frame {n - 1} 1:1 crop", h)] + tiles
    row = np.hstack(tiles)
    if row.shape[0] != rows[0].shape[0]:
        row = cv2.resize(row, (row.shape[1], rows[0].shape[0]), interpolation=cv2.INTER_AREA)
    rows.append(row)
    sheet = np.vstack(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    ok, enc = cv2.imencode(".png", sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    args.output.write_bytes(enc.tobytes())
    print(f"wrote {args.output} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
