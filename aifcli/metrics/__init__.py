"""aif metrics: PSNR, SSIM and LPIPS on arrays, and the pieces of ``aif evaluate``.

``psnr`` and ``ssim`` are light (NumPy + OpenCV); ``LPIPS`` imports torch only when
first used, so ``from aifcli.metrics import psnr, ssim`` stays cheap.
"""
from __future__ import annotations

from typing import Any

from .psnr import mse, psnr
from .ssim import ssim, ssim_map

__all__ = ["LPIPS", "LpipsUnavailable", "lpips_distance", "mse", "psnr", "ssim", "ssim_map"]


def __getattr__(name: str) -> Any:  # lazy: torch loads only when LPIPS is asked for
    if name in ("LPIPS", "LpipsUnavailable", "lpips_distance"):
        from . import lpips as _l

        return getattr(_l, name)
    raise AttributeError(name)
