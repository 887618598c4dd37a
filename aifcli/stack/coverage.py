"""Coverage report of a bracket: which frames contributed, which added nothing, and the
depth ranges no frame covered sharply ("focus gaps").

Contribution of a frame = share of the confidently textured pixels whose best focus is
that frame. A focus gap between frames i and i+1 is a depth range where, for most textured pixels,
the focus curve (a Gaussian fitted in log energy through the best frame and its two
neighbours) peaks between frames i and i+1 and the best frame reaches less than half of
that peak energy: the bracket's step was larger than the depth of field there. This is the batch version of the focus-control loop of the
seed paper (deep-learning-aif-imaging-focus-control): it tells you where to add frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .depthmap import DepthState


@dataclass
class CoverageReport:
    frames: list[int]  # input indices of the frames that were merged
    contribution: dict[int, float]  # input index -> share of confident pixels (0..1)
    unused: list[int]  # frames that added (almost) nothing
    gaps: list[dict[str, Any]] = field(default_factory=list)  # {"from": i, "to": j, "share": ...}
    confident_share: float = 0.0  # share of pixels with usable depth
    failed: dict[int, str] = field(default_factory=dict)  # input index -> why it was left out

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames,
                "contribution": {str(k): round(v, 4) for k, v in self.contribution.items()},
                "unused": self.unused, "gaps": self.gaps, "confident_share": round(self.confident_share, 4),
                "failed": {str(k): v for k, v in self.failed.items()}}


def coverage_report(state: DepthState, frames: list[int], failed: dict[int, str] | None = None, *,
                    min_confidence: float = 0.25, unused_below: float = 0.002,
                    gap_ratio: float = 0.5, gap_share: float = 0.25) -> CoverageReport:
    conf = state.confidence >= min_confidence
    total = int(conf.sum())
    contribution: dict[int, float] = {}
    if total:
        win = np.round(state.raw_depth[conf]).astype(np.int64)
        counts = {int(k): int(v) for k, v in zip(*np.unique(win, return_counts=True))}
    else:
        counts = {}
    for f in frames:
        contribution[f] = counts.get(f, 0) / total if total else 0.0
    unused = [f for f in frames if contribution[f] < unused_below]
    gaps = []
    if state.textured is not None:
        tex = state.textured
        n_tex = int(tex.sum())
        soft = tex & (state.sharpness_ratio < gap_ratio)
        d = state.raw_depth
        for a, b in zip(frames, frames[1:]):
            inside = tex & (d > a) & (d < b)
            n = int(inside.sum())
            if n < max(50, 0.005 * max(n_tex, 1)):
                continue
            share = float((soft & inside).sum()) / n
            if share >= gap_share:
                gaps.append({"from": a, "to": b, "share": round(share, 3), "pixels": round(n / d.size, 4)})
    return CoverageReport(list(frames), contribution, unused, gaps, total / conf.size, dict(failed or {}))


def coverage_png(report: CoverageReport, state: DepthState, n_frames: int, width: int = 720) -> np.ndarray:
    """A picture of the report (RGB float32): contribution bars per frame (grey = added
    nothing, red ticks = focus gaps, x = failed) above the best-frame map (turbo colours,
    dark = low confidence, red = inside a focus gap)."""
    top_h, pad = 160, 10
    h0, w0 = state.depth.shape
    map_h = int(round(width * h0 / max(w0, 1)))
    img = np.full((top_h + map_h + 2 * pad, width, 3), 255, np.uint8)
    n = max(n_frames, 1)
    bw = (width - 2 * pad) / n
    mx = max(report.contribution.values(), default=0.0) or 1.0
    for i in range(n):
        x0, x1 = int(pad + i * bw + 1), int(pad + (i + 1) * bw - 1)
        if i in report.failed:
            cv2.line(img, (x0, top_h - 30), (x1, top_h - 10), (200, 0, 0), 2)
            cv2.line(img, (x0, top_h - 10), (x1, top_h - 30), (200, 0, 0), 2)
            continue
        c = report.contribution.get(i)
        if c is None:
            continue
        hh = int((top_h - 2 * pad) * c / mx)
        col = (160, 160, 160) if i in report.unused else tuple(int(v) for v in _turbo(i / max(n - 1, 1)))
        cv2.rectangle(img, (x0, top_h - pad - max(hh, 1)), (x1, top_h - pad), col, -1)
    for g in report.gaps:
        xa = int(pad + (g["from"] + 1) * bw)
        xb = int(pad + (g["to"]) * bw)
        cv2.rectangle(img, (xa - 2, pad), (max(xa + 2, xb), pad + 8), (220, 0, 0), -1)
    d = np.clip(state.depth / max(n - 1, 1), 0, 1)
    col = cv2.applyColorMap((d * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1].astype(np.float32)
    col *= (0.25 + 0.75 * np.clip(state.confidence, 0, 1))[..., None]
    ranges = [(g["from"], g["to"]) for g in report.gaps]
    if ranges:
        gapmask = np.zeros(d.shape, bool)
        if state.textured is not None:
            for a, b in ranges:
                gapmask |= state.textured & (state.raw_depth > a) & (state.raw_depth < b) \
                    & (state.sharpness_ratio < 0.5)
        col[gapmask] = (255, 0, 0)
    col = cv2.resize(col.astype(np.uint8), (width - 2 * pad, map_h), interpolation=cv2.INTER_AREA)
    img[top_h + pad:top_h + pad + map_h, pad:width - pad] = col
    return img.astype(np.float32) / 255.0


def _turbo(t: float) -> np.ndarray:
    v = cv2.applyColorMap(np.array([[int(t * 255)]], np.uint8), cv2.COLORMAP_TURBO)[0, 0, ::-1]
    return v


def format_table(report: CoverageReport) -> list[tuple[str, str]]:
    rows = []
    for f, c in report.contribution.items():
        rows.append((str(f), f"{c:.1%}" + ("  (added nothing)" if f in report.unused else "")))
    for f, why in report.failed.items():
        rows.append((str(f), f"left out: {why}"))
    return rows
