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
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        if 0 < pixels <= MALLOC_MAX_PIXELS:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        else:  # glibc's defaults
            libc.mallopt(M_MMAP_MAX, 65536)
            libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):  # not glibc
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
