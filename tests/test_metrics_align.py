"""--align: field-of-view scale + translation recovered, overlap mask, wide ranges."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from aifcli.metrics import psnr
from aifcli.metrics.align import _matrix, align_to_gt


def _gt():
    return cv2.resize(skdata.astronaut(), (400, 300), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


@pytest.mark.parametrize("scale,dx,dy,shape,rng_", [(1.04, 5.0, -3.0, (300, 400), 0.15),
                                                      (0.93, -4.0, 2.0, (300, 400), 0.15),
                                                      (2.0, 3.0, 1.0, (300, 400), 1.2)])
def test_recovers_scale_and_shift(scale, dx, dy, shape, rng_):
    gt = _gt()
    M = _matrix(scale, dx, dy, shape, gt.shape[:2])
    pred = cv2.warpAffine(gt, cv2.invertAffineTransform(M), (shape[1], shape[0]), flags=cv2.INTER_CUBIC)
    warped, valid, res = align_to_gt(pred, gt, scale_range=rng_)
    assert res.scale == pytest.approx(scale, rel=0.004)
    assert res.dx == pytest.approx(dx, abs=0.6) and res.dy == pytest.approx(dy, abs=0.6)
    assert warped.shape == gt.shape and valid.shape == gt.shape[:2]
    if scale < 1:  # the prediction sees less than the GT: the uncovered border is masked out
        assert 0.5 < valid.mean() < 0.95
    # as good as warping with the true transform (the resampling round trip limits both)
    ideal = cv2.warpAffine(pred, M, (gt.shape[1], gt.shape[0]), flags=cv2.INTER_CUBIC)
    assert psnr(warped, gt, mask=valid) > psnr(ideal, gt, mask=valid) - 1.5  # sub-pixel residue at 40+ dB
    assert psnr(warped, gt, mask=valid) > 28


def test_out_of_range_scale_is_not_found():
    gt = _gt()
    M = _matrix(2.0, 0.0, 0.0, (300, 400), gt.shape[:2])
    pred = cv2.warpAffine(gt, cv2.invertAffineTransform(M), (400, 300), flags=cv2.INTER_CUBIC)
    _, _, res = align_to_gt(pred, gt, scale_range=0.15)
    assert res.scale <= 1.16  # the search stays inside its range and says so via a low score
    assert res.ncc < 0.9
