"""Scoring one prediction against its ground truth: arrays in (``score_arrays``), and the
batch item function of ``aif evaluate`` (``evaluate_item``), which reads its own files.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UsageError
from ..image import linear_to_srgb
from .common import crop_border, rgb_to_y
from .psnr import psnr as _psnr
from .ssim import ssim as _ssim

CONVENTIONS = (
    "PSNR = 10 log10(1/MSE) on RGB floats in [0,1] (data range 1.0; files read at their native bit depth), "
    "MSE over pixels and channels. SSIM after Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, "
    "K2 0.03, population covariance, fully covered windows only, mean over channels (equals scikit-image "
    "structural_similarity with gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0). "
    "LPIPS v0.1 (AlexNet unless stated) on RGB mapped to [-1,1], lower is better. "
    "Group and total rows are means over images."
)


def score_arrays(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, *, y_channel: bool = False,
                 crop: int = 0, lpips_model: Any = None) -> dict[str, Any]:
    """PSNR, SSIM (and LPIPS when a model is given) of two HxWx3 [0,1] arrays of equal shape.

    ``y_channel``: PSNR and SSIM on BT.601 luma (super-resolution convention); LPIPS stays RGB.
    ``crop``: pixels removed on every side first (also from the mask).
    """
    if pred.shape != gt.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {gt.shape}")
    p, g, m = crop_border(pred, crop), crop_border(gt, crop), crop_border(mask, crop)
    a, b = (rgb_to_y(p), rgb_to_y(g)) if y_channel else (p, g)
    out: dict[str, Any] = {"psnr": _psnr(a, b, mask=m), "ssim": _ssim(a, b, mask=m)}
    if lpips_model is not None and min(p.shape[:2]) < 32:
        out["lpips_note"] = "image smaller than 32x32: LPIPS not defined"
    elif lpips_model is not None:
        t0 = time.perf_counter()
        out["lpips"] = lpips_model.distance(p, g, mask=m)
        out["seconds_lpips"] = time.perf_counter() - t0
    return out


_MODEL: dict[tuple[Any, ...], Any] = {}


def _lpips_model(opts: dict[str, Any]) -> Any:
    from .lpips import LPIPS

    key = (opts["net"], opts.get("weights"), opts.get("tile"))
    if key not in _MODEL:
        _MODEL[key] = LPIPS(opts["net"], opts.get("weights"), opts.get("tile", 2048))
    return _MODEL[key]


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from ..io import read_gray

    if not path.exists():
        raise InputError("mask not found", path, "check --mask, or pass --mask none")
    m = read_gray(path)
    if m.shape != shape:
        raise InputError(f"mask is {m.shape[1]}x{m.shape[0]} but the ground truth is {shape[1]}x{shape[0]}", path,
                         "give a mask of the ground truth's size")
    if not np.any(m > 0):
        raise InputError("mask selects no pixels", path, "check the mask")
    return m


def evaluate_item(item: Any) -> dict[str, Any]:
    """Batch item: ``item.inputs = [pred, gt(, mask)]``; ``item.params`` as ``aif evaluate`` builds them."""
    import cv2

    from ..io import read_image

    # a corrupt file is reported once, as this item's error; OpenCV's own log would repeat it
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # pragma: no cover - older OpenCV builds
        pass
    t0 = time.perf_counter()
    prm = item.params
    pred_path, gt_path = Path(item.inputs[0]), Path(item.inputs[1])
    mask_path = Path(prm["mask"]) if prm.get("mask") else None
    gt_img = read_image(gt_path)
    pred_img = read_image(pred_path)
    pred, gt = pred_img.pixels, gt_img.pixels
    notes = []
    if pred_img.meta.linear != gt_img.meta.linear:
        # compare in the display encoding the GT file uses (sRGB), once
        if pred_img.meta.linear:
            pred = linear_to_srgb(pred)
            notes.append("prediction sRGB-encoded from linear")
        else:
            gt = linear_to_srgb(gt)
            notes.append("ground truth sRGB-encoded from linear")
    mask = _read_mask(mask_path, gt.shape[:2]) if mask_path else None
    info: dict[str, Any] = {"width": gt.shape[1], "height": gt.shape[0], "pred_bits": pred_img.meta.bit_depth,
                            "gt_bits": gt_img.meta.bit_depth}
    if pred.shape != gt.shape:
        if not prm.get("align"):
            raise InputError(f"size differs: prediction {pred.shape[1]}x{pred.shape[0]}, ground truth "
                             f"{gt.shape[1]}x{gt.shape[0]}", pred_path,
                             "pass --align to register it to the ground truth first")
    if prm.get("align"):
        from .align import align_to_gt

        pred, valid, res = align_to_gt(pred, gt, scale_range=float(prm.get("align_range", 0.15)))
        info["align"] = res.to_dict()
        if res.coverage < 0.05:
            raise InputError(f"--align found no overlap with the ground truth (coverage {res.coverage:.1%})", pred_path,
                             "is this the right pair?")
        mask = valid if mask is None else mask * valid
    crop = int(prm.get("crop_border", 0))
    try:
        lp = None
        if prm.get("lpips"):
            lp = _lpips_model(prm["lpips"])
        scores = score_arrays(pred, gt, mask, y_channel=bool(prm.get("y_channel")), crop=crop, lpips_model=lp)
    except ValueError as e:
        raise InputError(str(e), pred_path) from None
    info.update(scores)
    if mask is not None:
        mm = crop_border(mask, crop)
        info["mask_fraction"] = float(np.mean(mm > 0.5))
    if notes:
        info["notes"] = notes
    if prm.get("html"):
        from .html import make_visuals

        info["visuals"] = make_visuals(pred, gt, mask, prm["html"])
    info["seconds_total"] = time.perf_counter() - t0
    return info


def mean_of(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None
    if any(math.isinf(v) for v in vals):
        return math.inf
    return float(np.mean(vals))


def check_options(crop: int, tile: int) -> None:
    if crop < 0:
        raise UsageError("--crop-border must be 0 or more")
    if tile and (tile < 64 or tile % 16):
        raise UsageError("--lpips-tile must be 0 (no tiling) or a multiple of 16, at least 64")
