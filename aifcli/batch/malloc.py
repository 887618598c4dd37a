"""Process-level memory tuning for the full-resolution pipelines (``aif stack``, ``aif fuse``).

Written by hand: neither numpy nor OpenCV exposes glibc's allocator settings, and the fix
is one ``mallopt`` call.
"""
from __future__ import annotations

import os
import sys
from typing import Any

MALLOC_MAX_PIXELS = 16_000_000


def tune_malloc(pixels: int) -> None:
    """Keep large freed blocks in the process instead of returning them to the kernel.

    The pipelines allocate and free many full- or fuse-resolution float32 arrays (36-144 MB
    each at 12 MP). glibc serves every block over 32 MB with a fresh mmap, so each one is
    page-faulted and zeroed again. Stacking a 12 MP bracket spent a quarter of its CPU time
    there (system time 12 s -> 2 s with this); one 12 MP ``aif fuse`` pair 0.35 s of CPU
    (end to end 1.74-1.90 s -> 1.50-1.62 s). With mmap off and a high trim threshold the
    heap reuses the same pages, at the price of a higher peak (12 MP stack +150 MB, fuse
    +106 MB; 24 MP stack +470 MB, which would break its 3 GB budget), so it is only done
    for images up to ``MALLOC_MAX_PIXELS`` and undone above. Linux/glibc only;
    ``AIF_MALLOC=default`` (or the older ``AIF_STACK_MALLOC=default``) turns it off."""
    if not sys.platform.startswith("linux") or "default" in (os.environ.get("AIF_MALLOC"),
                                                             os.environ.get("AIF_STACK_MALLOC")):
        return
    small = 0 < pixels <= MALLOC_MAX_PIXELS
    numpy_hugepages(not small)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        if small:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        else:  # glibc's defaults
            libc.mallopt(M_MMAP_MAX, 65536)
            libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):  # not glibc
        pass


def numpy_hugepages(enabled: bool) -> None:
    """Turn numpy's ``madvise(MADV_HUGEPAGE)`` on its large arrays on or off (numpy turns it
    on by default on Linux); left alone when ``NUMPY_MADVISE_HUGEPAGE`` is set, the user's
    choice.

    ``tune_malloc`` turns it off together with the heap reuse. On this project's benchmark
    VM (a Firecracker guest, 2026-11-23) the first touch of a transparent huge page cost
    about 7x more system time per byte than 4 KiB pages: a 12 MP ``aif fuse`` pair spent
    0.8 s of system time in its final blend alone (``onto_main``, 0.65 s wall -> 0.20 s
    without), and the end-to-end time varied from 2.1 to 3.2 s between runs; with 4 KiB
    pages it held 2.13-2.22 s (every run about 0.15 s slower than a fast run with huge
    pages, none as slow as their slow ones; the mean is lower). A 12 MP bracket of 10
    frames stacked in 11.5 s instead of 12.8 s (system time 3.4 -> 2.0 s). Once the heap
    holds the pages, later arrays reuse them and huge pages would save nothing but TLB
    misses, which these streaming image operations barely have (docs/BENCHMARKS.md,
    "Huge pages")."""
    if os.environ.get("NUMPY_MADVISE_HUGEPAGE") is not None:
        return
    try:
        import numpy as np

        core = getattr(np, "_core", None) or np.core  # numpy 2.x / 1.x
        core.multiarray._set_madvise_hugepage(bool(enabled))
    except (AttributeError, ImportError):  # an older or other numpy: its default stays
        pass


def tune_malloc_for(*paths: Any) -> None:
    """``tune_malloc`` for the largest of these images (sizes from their headers); when one
    cannot be read, nothing is tuned and the reader that follows reports the file."""
    from ..io import image_size

    try:
        pixels = max(h * w for h, w in (image_size(p) for p in paths))
    except Exception:  # unreadable or no paths
        return
    tune_malloc(pixels)
