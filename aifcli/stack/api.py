"""``stack_frames``: the focus-stacking pipeline on arrays, one frame in memory at a time.

Stages (one module each): align/burst.py (registration, gains) -> focus.py (focus
energy) -> merge.py (streaming multi-scale fusion) and depthmap.py (depth + confidence)
-> coverage.py (report). ``frames`` is either a sequence (indexable, e.g. a lazy list of
files; it is walked twice: a registration pass, then a fusion pass, and the reference is
the middle good frame) or a one-shot iterator (one pass: each frame is registered to the
previous good one as it arrives, and the reference is the first good frame).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np

from ..align.burst import BurstAlignment, FrameRegistration, NeighbourRegistrar, chain, register_burst, warp_frame
from .coverage import CoverageReport, coverage_report
from .depthmap import DepthState, DepthTracker
from .focus import focus_energy, luminance
from .merge import StreamingMerger
from .pyramid import gaussian_pyramid, max_levels

PREFER = ("none", "near", "far")


@dataclass
class StackResult:
    image: np.ndarray  # float32 HxWx3 in the reference geometry, same encoding as the input
    depth: np.ndarray  # float32 HxW fractional frame index (input numbering)
    confidence: np.ndarray  # float32 HxW [0, 1]
    coverage: CoverageReport
    alignment: BurstAlignment | None
    reference: int  # input index of the reference frame
    frames_used: list[int]
    n_frames: int  # frames offered (including failed ones)
    depth_state: DepthState | None = None  # reduced-resolution depth internals (for reports)
    timings: dict[str, float] = field(default_factory=dict)

    def depth_normalized(self, near: str = "first") -> np.ndarray:
        """Depth in [0, 1] from near (0) to far (1); ``near`` says which end of the bracket is near."""
        d = self.depth / max(self.n_frames - 1, 1)
        return np.clip(d if near == "first" else 1.0 - d, 0, 1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "frames_used": self.frames_used, "n_frames": self.n_frames,
                "coverage": self.coverage.to_dict(),
                "alignment": self.alignment.to_dict() if self.alignment else None,
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}


def _is_sequence(frames: Any) -> bool:
    return isinstance(frames, Sequence) or (hasattr(frames, "__len__") and hasattr(frames, "__getitem__"))


def stack_frames(frames: Sequence[np.ndarray | None] | Iterable[np.ndarray | None], *, align: bool = True,
                 motion: str = "affine", reference: int | None = None, prefer: str = "none",
                 near: str = "first", linear: bool = False, power: float = 3.0, base_power: float = 1.0,
                 halo: bool = False, levels: int | None = None, halo_level: int = 3, halo_radius: int = 2,
                 cross_scale: float = 0.0, depth_level: int = 2, window: float = 2.0,
                 color_focus: bool = True,
                 on_frame: Callable[[int, int], None] | None = None) -> StackResult:
    """Focus-stack a bracket into one all-in-focus image, a depth map and a coverage report.

    frames: float32 HxWx3 RGB [0,1] in bracket order (``None`` = unreadable, reported).
    align: register frames (neighbour to neighbour, chained; see ``aifcli.align.burst``).
    motion: translation | similarity | affine | homography.
    prefer: none | near | far -- bias ties towards the near or far frames (see-through subjects).
    near: which end of the bracket is near ("first" or "last"), for ``prefer`` and depth.
    linear: the pixels are linear light (RAW); the focus measure then works on encoded luminance.
    power: selection sharpness (weight = energy**power); base_power: the same for the base band.
    halo: max-filter the scores from ``halo_level`` up over ``halo_radius`` px, so the frame sharp
      at an edge also wins the coarse bands around it (off by default: on aif synth brackets it
      raised the halo-band error, see docs/STACK.md).
    cross_scale: add this fraction of each coarser level's score to the finer one (sub-band
      consistency; 0 = off, measured neutral to worse).
    depth_level: pyramid level of the focus energy used for the depth map (2 = quarter size).
    Memory: a fixed number of full-resolution buffers, independent of the number of frames.
    """
    if prefer not in PREFER:
        raise ValueError(f"prefer must be one of {PREFER}")
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    alignment: BurstAlignment | None = None
    if _is_sequence(frames):
        n = len(frames)  # type: ignore[arg-type]
        if align:
            # A source may offer cheap reduced decodes for registration (JPEG DCT scaling):
            # ``registration_frame(i) -> (small image, full (h, w))``; see aif stack's FrameSource.
            reduced = getattr(frames, "registration_frame", None)
            reg_frames = ((reduced(i) if reduced is not None else frames[i]) for i in range(n))  # type: ignore[index]
            alignment = register_burst(_prefetch(reg_frames), motion=motion, reference=reference)
            timings["align"] = time.perf_counter() - t0
            if not alignment.good:
                raise ValueError("no frame could be read")
            stream = ((i, frames[i], alignment.transforms[i], alignment.gains[i]) for i in alignment.good)  # type: ignore[index]
        else:
            stream = ((i, frames[i], None, None) for i in range(n))  # type: ignore[index]
        # decode the next frame in a thread while this one is fused (one extra frame in memory)
        stream = _prefetch(stream)
        return _fuse(stream, n, alignment, prefer, near, linear, power, base_power,
                     (halo_level, halo_radius) if halo else None, levels, on_frame, timings, t0, cross_scale, depth_level, window, color_focus)
    # one-shot iterator: register on the fly against the first good frame
    regs: list[FrameRegistration] = []
    registrar = NeighbourRegistrar(motion=motion) if align else None

    def online() -> Iterable[tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None]]:
        T: dict[int, np.ndarray] = {}
        G: dict[int, np.ndarray] = {}
        for i, rgb in enumerate(frames):
            if registrar is None:
                regs.append(FrameRegistration(i, rgb is not None, reason="" if rgb is not None else "could not be read"))
                yield i, rgb, None, None
                continue
            r = registrar.step(i, rgb)
            regs.append(r)
            if not r.ok:
                continue
            if r.neighbour is None:
                T[i], G[i] = np.eye(3), np.ones(3)
            else:
                T[i], G[i] = T[r.neighbour] @ r.to_prev, G[r.neighbour] * r.gain
            yield i, rgb, T[i], G[i]

    res = _fuse(online(), None, None, prefer, near, linear, power, base_power,
                (halo_level, halo_radius) if halo else None, levels, on_frame, timings, t0, cross_scale, depth_level, window, color_focus)
    size = registrar.size if registrar else (res.image.shape[:2])
    alignment = chain(regs, size, res.frames_used[0] if res.frames_used else None, motion,
                      (registrar.scale if registrar else 1.0) or 1.0)
    res.alignment = alignment if align else None
    res.n_frames = len(regs)
    res.coverage.failed = {r.index: r.reason for r in regs if not r.ok}
    return res


_END = object()


def _prefetch(items: Iterable[Any]) -> Iterator[Any]:
    """Yield the items of ``items``, producing the next one in a background thread while the
    caller works on the current one (decoding releases the GIL). Order and results are
    unchanged; at most one item is held ahead."""
    it = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix="aif-prefetch") as ex:
        fut = ex.submit(next, it, _END)
        while True:
            box = [fut.result()]
            if box[0] is _END:
                return
            fut = ex.submit(next, it, _END)
            # hand the item over without keeping a reference here while suspended, so the
            # consumer can free a frame as soon as it is done with it
            yield box.pop()


def _fuse(stream: Iterable[tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None]], n: int | None,
          alignment: BurstAlignment | None, prefer: str, near: str, linear: bool, power: float,
          base_power: float, halo: tuple[int, int] | None, levels: int | None,
          on_frame: Callable[[int, int], None] | None, timings: dict[str, float], t0: float,
          cross_scale: float = 0.0, depth_level: int = 1, window: float = 2.0,
          color_focus: bool = True) -> StackResult:
    merger: StreamingMerger | None = None
    tracker = DepthTracker()
    used: list[int] = []
    failed: dict[int, str] = dict(alignment.failed) if alignment else {}
    shape: tuple[int, int] | None = None
    t_fuse = time.perf_counter()
    for i, rgb, T, G in stream:
        if rgb is None:
            failed.setdefault(i, "could not be read")
            continue
        if shape is None:
            shape = rgb.shape[:2]
            nl = levels if levels is not None else max_levels(shape)
            merger = StreamingMerger(shape, nl, power=power, base_power=base_power,
                                     halo_from=halo[0] if halo else None, halo_radius=halo[1] if halo else 1,
                                     cross_scale=cross_scale)
        elif rgb.shape[:2] != shape:
            failed.setdefault(i, f"size {rgb.shape[1]}x{rgb.shape[0]} differs from the bracket's {shape[1]}x{shape[0]}")
            continue
        assert merger is not None
        if T is not None:
            warped, valid = warp_frame(rgb, T, G, shape)
            if valid.min() >= 1.0:
                valid = None
        else:
            warped, valid = rgb, None
        del rgb
        y = None if color_focus else luminance(warped, linear)  # the colour measure does not use it
        energy, floor = focus_energy(warped, linear=linear, y=y, window=window, color=color_focus)
        if valid is not None:
            energy *= valid
        bias = 0.0
        if prefer != "none":
            t = (i / max(n - 1, 1)) if n else min(i / 30.0, 1.0)
            nearness = 1.0 - t if near == "first" else t
            bias = float(np.log(2.0)) * (nearness if prefer == "near" else 1.0 - nearness)
        gp = gaussian_pyramid(energy, merger.levels)
        vp = gaussian_pyramid(valid, merger.levels) if valid is not None else None
        scores = merger.scores_from_pyramid(gp, vp, bias)
        merger.add(warped, scores)
        del y
        dl = min(depth_level, merger.levels)
        tracker.add(gp[dl], i, vp[dl] if vp is not None else None, floor)
        used.append(i)
        if on_frame:
            on_frame(i, len(used))
    if merger is None or not used:
        raise ValueError("no frame could be read")
    timings["fuse"] = time.perf_counter() - t_fuse
    t1 = time.perf_counter()
    image = np.clip(merger.result(), 0.0, 1.0)
    state = tracker.finish()
    h, w = shape  # type: ignore[misc]
    depth = cv2.resize(state.depth, (w, h), interpolation=cv2.INTER_LINEAR)
    conf = cv2.resize(state.confidence, (w, h), interpolation=cv2.INTER_LINEAR)
    cov = coverage_report(state, used, failed)
    timings["finish"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    ref = alignment.reference if alignment else used[0]
    return StackResult(image, depth, conf, cov, alignment, ref, used, n if n is not None else max(used) + 1,
                       state, timings)
