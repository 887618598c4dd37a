"""aif stack library: alignment under breathing, fusion quality, depth map, streaming memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from aifcli.align.burst import register_burst, warp_frame
from aifcli.stack import stack_frames
from aifcli.stack.pyramid import collapse, laplacian_pyramid
from aifcli.stack.synthetic import make_bracket

CROP = (slice(16, -16), slice(16, -16))


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a.astype(np.float64) - b) ** 2
    if mask is not None:
        d = d[mask]
    return float(10 * np.log10(1.0 / d.mean()))


@pytest.fixture(scope="module")
def bracket():
    return make_bracket(240, 320, 8, breathing=0.006, shake=1.5, flicker=0.04, seed=3)


def test_pyramid_roundtrip(rng):
    img = rng.random((67, 93, 3)).astype(np.float32)
    assert np.abs(collapse(laplacian_pyramid(img, 4)) - img).max() < 1e-5


def test_alignment_recovers_breathing_and_shake(bracket):
    al = register_burst(bracket.frames)
    assert al.reference == bracket.reference
    assert not al.failed
    h, w = bracket.frames[0].shape[:2]
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], float).T
    for i, M in enumerate(bracket.transforms):
        true = np.linalg.inv(M)  # frame -> reference
        est = al.transforms[i]
        a, b = true @ corners, est @ corners
        err = np.abs(a[:2] / a[2] - b[:2] / b[2]).max()
        assert err < 0.6, (i, err)
        # magnification tracks the synthetic breathing (1 + 0.006 per frame)
        assert al.magnification(i) == pytest.approx(1 / M[0, 0], abs=2e-3)
    # gains undo the synthetic exposure flicker to within a couple of percent: every frame is
    # brought to the bracket's mean exposure, the reference frame included
    ref, _ = warp_frame(bracket.frames[bracket.reference], np.eye(3), al.gains[bracket.reference])
    for i in (0, len(bracket.frames) - 1):
        warped, valid = warp_frame(bracket.frames[i], al.transforms[i], al.gains[i])
        m = valid > 0
        ratio = np.median(cv2_blur(ref)[m] / np.maximum(cv2_blur(warped)[m], 1e-3))
        assert ratio == pytest.approx(1.0, abs=0.02)


def cv2_blur(x):
    import cv2

    return cv2.GaussianBlur(x, (0, 0), 8)[..., 1]


def test_fusion_beats_every_frame_and_alignment_matters(bracket):
    res = stack_frames(bracket.frames)
    best_single = max(psnr(f[CROP], bracket.aif[CROP]) for f in bracket.frames)
    fused = psnr(res.image[CROP], bracket.aif[CROP])
    assert fused > best_single + 4.0, (fused, best_single)
    unaligned = stack_frames(bracket.frames, align=False)
    assert fused > psnr(unaligned.image[CROP], bracket.aif[CROP]) + 3.0
    assert res.reference == bracket.reference
    assert res.image.shape == bracket.frames[0].shape and res.image.dtype == np.float32


def test_depth_map_subframe_error_including_ends(bracket):
    res = stack_frames(bracket.frames)
    err = np.abs(res.depth - bracket.focus_index)[CROP]
    assert err.mean() < 0.5
    n = len(bracket.frames)
    # regions sharp only in the first or the last frame must not be pulled to the middle
    for z in (0.0, n - 1.0):
        m = (bracket.focus_index[CROP] == z) & ~bracket.edges[CROP]
        assert np.abs(res.depth[CROP][m] - z).mean() < 0.5
    assert 0.0 <= res.confidence.min() and res.confidence.max() <= 1.0
    d = res.depth_normalized("first")
    assert d[bracket.focus_index == 0].mean() < d[bracket.focus_index == n - 1].mean()


def test_iterator_input_streams_in_one_pass(bracket):
    res = stack_frames(iter(bracket.frames))
    assert res.reference == 0  # one-shot iterator: reference is the first frame
    # the ground truth is in the middle frame's geometry: compare after mapping via the true transform
    assert len(res.frames_used) == len(bracket.frames)
    assert psnr(res.image[CROP], _to_frame0(bracket)[CROP]) > 30


def _to_frame0(b):
    import cv2

    h, w = b.aif.shape[:2]
    M = b.transforms[0]
    return cv2.warpAffine(b.aif, M[:2], (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def test_bad_frames_are_left_out_and_reported(bracket):
    frames = list(bracket.frames)
    frames[2] = None  # unreadable
    frames[5] = np.zeros((100, 100, 3), np.float32)  # another size
    rng = np.random.default_rng(0)
    frames.append(rng.random(frames[0].shape).astype(np.float32))  # not the same scene
    res = stack_frames(frames)
    assert set(res.coverage.failed) == {2, 5, 8}
    assert "size" in res.coverage.failed[5]
    assert 8 not in res.frames_used
    assert psnr(res.image[CROP], bracket.aif[CROP]) > 28


def test_prefer_near_far_changes_ties():
    # two frames equally sharp everywhere: prefer decides which one wins
    rng = np.random.default_rng(5)
    a = rng.random((64, 64, 3)).astype(np.float32)
    b = 1.0 - a
    near = stack_frames([a, b], align=False, prefer="near", near="first").image
    far = stack_frames([a, b], align=False, prefer="far", near="first").image
    assert np.abs(near - a).mean() < np.abs(near - b).mean()
    assert np.abs(far - b).mean() < np.abs(far - a).mean()


def test_noisy_frames_noise_is_not_focus():
    b = make_bracket(200, 260, 6, noise=0.03, breathing=0.0, shake=0.0, flicker=0.0, seed=9)
    res = stack_frames(b.frames, align=False)
    best_single = max(psnr(f[CROP], b.aif[CROP]) for f in b.frames)
    assert psnr(res.image[CROP], b.aif[CROP]) > best_single + 1.0
    assert np.abs(res.depth - b.focus_index)[CROP].mean() < 0.8


def test_coverage_report_lists_contributions_and_unused_frames():
    b = make_bracket(160, 200, 6, breathing=0.0, shake=0.0, flicker=0.0, seed=2)
    frames = b.frames + [b.frames[-1] * 0 + 0.5]  # a blank frame adds nothing
    res = stack_frames(frames, align=False)
    cov = res.coverage
    assert set(cov.contribution) == set(range(7))
    assert 6 in cov.unused
    assert cov.contribution[0] > 0.05 and cov.contribution[5] > 0.05
    assert sum(cov.contribution.values()) == pytest.approx(1.0, abs=1e-6)


def test_coverage_report_flags_a_focus_gap_from_the_focus_curve():
    # bookkeeping of coverage_report on a hand-made depth state: pixels whose fitted focus
    # peak lies between frames 1 and 2 with the best frame well below that peak form a gap
    from aifcli.stack.coverage import coverage_png, coverage_report
    from aifcli.stack.depthmap import DepthState

    h, w = 40, 60
    raw = np.zeros((h, w), np.float32)
    raw[:, 20:40] = 1.5
    raw[:, 40:] = 3.0
    ratio = np.ones((h, w), np.float32)
    ratio[:, 20:40] = 0.3
    conf = np.full((h, w), 0.9, np.float32)
    st = DepthState(raw, raw, conf, np.zeros((h, w), np.float32), ratio, np.round(raw).astype(np.int32),
                    np.ones((h, w), bool))
    rep = coverage_report(st, [0, 1, 2, 3])
    assert [(g["from"], g["to"]) for g in rep.gaps] == [(1, 2)]
    ratio[:] = 1.0
    assert not coverage_report(st, [0, 1, 2, 3]).gaps
    png = coverage_png(rep, st, 4)
    assert png.ndim == 3 and png.shape[2] == 3 and 0 <= png.min() and png.max() <= 1


def test_streaming_memory_does_not_grow_with_frame_count():
    b = make_bracket(192, 256, 4, breathing=0.003, seed=7)

    def frames(n):
        for i in range(n):
            yield b.frames[i % 4].copy()

    def peak(n):
        tracemalloc.start()
        stack_frames(frames(n))
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p

    p4, p16 = peak(4), peak(16)
    assert p16 < 1.15 * p4, (p4, p16)


def test_reduced_jpeg_registration_matches_full_decode(tmp_path):
    """The registration pass decodes JPEGs at reduced size (DCT scaling); the transforms must
    match those from full decodes to well under a pixel at full resolution."""
    import cv2

    from aifcli.cli.stack_cmd import FrameSource

    b = make_bracket(240, 320, 4, breathing=0.006, shake=1.5, flicker=0.04, seed=5)
    paths = []
    for i, f in enumerate(b.frames):
        big = cv2.resize(f, (2240, 1680), interpolation=cv2.INTER_CUBIC)
        p = tmp_path / f"f{i}.jpg"
        cv2.imwrite(str(p), cv2.cvtColor(np.clip(big * 255 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(p)
    src = FrameSource(paths)
    small, size = src.registration_frame(0)
    assert size == (1680, 2240) and small.shape[:2] == (840, 1120)  # 1/2: long side stays >= 1000 px
    full = register_burst(src[i] for i in range(len(src)))
    red = register_burst(src.registration_frame(i) for i in range(len(src)))
    assert full.good == red.good == list(range(4)) and red.size == (1680, 2240)
    h, w = red.size
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], float).T
    for i in red.good:
        a, c = full.transforms[i] @ corners, red.transforms[i] @ corners
        assert np.abs(a[:2] / a[2] - c[:2] / c[2]).max() < 0.5, i
        assert np.allclose(full.gains[i], red.gains[i], atol=0.01)
