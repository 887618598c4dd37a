"""PSNR and SSIM equal scikit-image's (configured as the field does) to 1e-6."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aifcli.metrics import psnr, ssim
from aifcli.metrics.common import crop_border, rgb_to_y


def _sk_ssim(a, b, channel_axis=-1):
    return structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0, channel_axis=channel_axis)


def _natural_pair(rng):
    gt = skdata.astronaut().astype(np.float32) / 255.0
    gt = gt[100:356, 120:440]  # 256x320, keeps the test fast
    noisy = np.clip(gt + rng.normal(0, 0.05, gt.shape), 0, 1).astype(np.float32)
    import cv2

    blurred = cv2.GaussianBlur(gt, (0, 0), 2.0)
    return gt, noisy, blurred


def test_ssim_psnr_random_equal_skimage(rng):
    a = rng.random((67, 91, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1).astype(np.float32)
    assert ssim(b, a) == pytest.approx(_sk_ssim(b, a), abs=1e-6)
    assert psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-6)
    c = rng.random((40, 33)).astype(np.float32)
    d = rng.random((40, 33)).astype(np.float32)
    assert ssim(c, d) == pytest.approx(_sk_ssim(c, d, channel_axis=None), abs=1e-6)


def test_ssim_psnr_natural_equal_skimage(rng):
    gt, noisy, blurred = _natural_pair(rng)
    for pred in (noisy, blurred):
        ours = ssim(pred, gt)
        assert ours == pytest.approx(_sk_ssim(pred, gt), abs=1e-6)
        assert psnr(pred, gt) == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=1.0), abs=1e-6)
    # scikit-image's defaults are a different metric: make sure ours is not that one
    default = structural_similarity(blurred, gt, data_range=1.0, channel_axis=-1)
    assert abs(default - ssim(blurred, gt)) > 1e-3


def test_ssim_strips_match_whole(monkeypatch, rng):
    import importlib

    m = importlib.import_module("aifcli.metrics.ssim")

    a = rng.random((300, 50, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    whole = ssim(a, b)
    monkeypatch.setattr(m, "STRIP_ROWS", 37)
    assert ssim(a, b) == pytest.approx(whole, abs=1e-12)


def test_identical_and_symmetric(rng):
    a = rng.random((30, 40, 3))
    b = rng.random((30, 40, 3))
    assert math.isinf(psnr(a, a))
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)
    assert psnr(a, b) == pytest.approx(psnr(b, a), abs=1e-12)


def test_mask_scores_only_selected_pixels(rng):
    gt = rng.random((64, 64, 3))
    pred = gt.copy()
    pred[:, 32:] = rng.random((64, 32, 3))  # right half wrong
    mask = np.zeros((64, 64), np.float32)
    mask[:, :20] = 1
    assert math.isinf(psnr(pred, gt, mask=mask))
    assert ssim(pred, gt, mask=mask) == pytest.approx(1.0, abs=1e-12)
    full = ssim(pred, gt)
    assert full < 0.9
    # a mask of ones is the unmasked metric
    ones = np.ones((64, 64))
    assert ssim(pred, gt, mask=ones) == pytest.approx(full, abs=1e-12)
    assert psnr(pred, gt, mask=ones) == pytest.approx(psnr(pred, gt), abs=1e-12)
    with pytest.raises(ValueError):
        psnr(pred, gt, mask=np.zeros((64, 64)))


def test_data_range_and_errors(rng):
    a = rng.random((20, 20, 3))
    b = rng.random((20, 20, 3))
    assert psnr(a * 255, b * 255, data_range=255) == pytest.approx(psnr(a, b), abs=1e-9)
    assert ssim(a * 255, b * 255, data_range=255) == pytest.approx(ssim(a, b), abs=1e-9)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, b[:10])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[:8], b[:8])


def test_y_channel_and_crop(rng):
    rgb = np.zeros((2, 2, 3))
    rgb[0, 0] = 1.0
    y = rgb_to_y(rgb)
    assert y[0, 0] == pytest.approx(235 / 255, abs=1e-9)
    assert y[1, 1] == pytest.approx(16 / 255, abs=1e-9)
    a = rng.random((30, 30, 3))
    assert crop_border(a, 4).shape == (22, 22, 3)
    with pytest.raises(ValueError):
        crop_border(a, 15)
