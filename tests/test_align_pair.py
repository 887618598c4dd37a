"""Pair alignment: homography + residual flow + forward-backward confidence (aif align)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from aifcli.align.pair import (_prep, align_pair, coarse_fallback, defocus_matched_flow, defocused_object_flow,
                               dense_flow, epipolar_projection, fb_confidence, flow_ramps, initial_homography)
from aifcli.align.pair import _cross_basis
from aifcli.cli.app import app
from aifcli.errors import InputError
from aifcli.fuse.toy import make_toy_pair
from aifcli.io import read_gray, write_image

runner = CliRunner()


def test_pure_homography_scene_has_near_zero_flow():
    tp = make_toy_pair(240, 320, with_fg=False, seed=3)
    al = align_pair(tp.main_far, tp.ultrawide, ratio=2.0)
    flow = al.flow_at((240, 320))
    mag = np.linalg.norm(flow, axis=-1)
    assert np.median(mag) < 0.3, np.median(mag)
    err = np.linalg.norm(al.uw_map((240, 320)) - tp.uw_map, axis=-1)
    assert np.median(err) < 0.3
    # the homography alone already maps the plane
    err_h = np.linalg.norm(al.uw_map((240, 320), use_flow=False) - tp.uw_map, axis=-1)
    assert np.percentile(err_h, 90) < 0.8
    assert al.confidence.mean() > 0.85
    assert al.inliers >= 20 and al.residual_px < 1.0


def test_parallax_is_recovered_and_occlusions_get_low_confidence():
    tp = make_toy_pair(240, 320, seed=1)
    al = align_pair(tp.main_near, tp.ultrawide, ratio=2.0)
    vis = tp.occlusion < 0.5
    err = np.linalg.norm(al.uw_map((240, 320)) - tp.uw_map, axis=-1)
    assert np.median(err[vis]) < 0.5
    conf = al.confidence_at((240, 320))
    assert conf[tp.occlusion > 0.5].mean() < 0.5 < conf[vis].mean()
    # warped ultra-wide lands on the main's geometry: correlation with the truth on visible pixels
    w = al.warp(tp.ultrawide)
    assert w.shape == tp.main_near.shape


def test_flow_ramps_mark_spread_edges_not_steps_or_slanted_surfaces():
    """A depth edge is a step in the flow; DIS spreads it into a ramp over the background,
    consistent both ways. Ramps steeper than 0.4 px per px and at least 5 px wide are
    marked; a step (2 px under the Sobel) and a slanted surface's gradual change are not;
    either axis."""
    h, w = 120, 200
    x = np.arange(w, dtype=np.float32)
    cols = lambda m: np.nonzero(m.any(axis=0))[0]  # noqa: E731
    for axis in (0, 1):
        def flow(profile):
            f = np.zeros((h, w, 2), np.float32)
            f[..., axis] = profile[None, :]
            return f
        step = flow(np.where(x < 100, 0.0, 30.0).astype(np.float32))
        ramp = flow(np.clip(x - 85.0, 0.0, 30.0).astype(np.float32))
        slant = flow(0.1 * x)
        assert not flow_ramps(step).any()
        assert flow_ramps(step, min_width=0).any()  # the Sobel does see it: the opening removes it
        c = cols(flow_ramps(ramp))
        assert c.min() <= 87 and c.max() >= 113, c  # the whole ramp, 85..115
        assert not flow_ramps(slant).any()


def test_alignment_drops_consistent_ramps_beside_a_foreground():
    """On the toy pair with a foreground object, the flow beside the object is spread from
    the object's parallax, consistently both ways: some confident, visible pixels are 3 px
    and more off. Counting ramps as inconsistent takes out most of them and keeps the
    confidence of the pixels whose flow is right."""
    tp = make_toy_pair(240, 320, seed=1)
    vis = tp.occlusion < 0.5
    bad, good = {}, {}
    for g in (0.0, 0.4):
        al = align_pair(tp.main_near, tp.ultrawide, ratio=2.0, max_flow_gradient=g)
        err = np.linalg.norm(al.uw_map((240, 320)) - tp.uw_map, axis=-1)
        conf = (al.confidence_at((240, 320)) > 0.5) & vis
        bad[g], good[g] = int((conf & (err >= 3.0)).sum()), int((conf & (err < 1.0)).sum())
        assert (al.ramp_fraction > 0) == (g > 0)
        assert al.to_dict()["flow_ramp_fraction"] == round(al.ramp_fraction, 4)
    assert bad[0.0] > 100 and bad[0.4] < bad[0.0] / 3, bad
    assert good[0.4] > 0.98 * good[0.0], good


def test_with_uw_map_reproduces_a_given_map():
    """The ablation hook: a copy of an alignment whose flow gives exactly the ground-truth map
    (the input alignment is left alone)."""
    tp = make_toy_pair(240, 320, seed=1)
    al = align_pair(tp.main_near, tp.ultrawide, ratio=2.0)
    before = al.flow.copy()
    conf = np.ones_like(al.confidence)
    gt = al.with_uw_map(tp.uw_map, conf)
    err = np.linalg.norm(gt.uw_map((240, 320)) - tp.uw_map, axis=-1)
    assert np.percentile(err, 99) < 0.05, np.percentile(err, 99)
    assert gt.confidence.min() == 1.0 and np.array_equal(al.flow, before)
    # the alignment's own flow is off somewhere (occlusions), the replacement is not
    assert np.linalg.norm(al.uw_map((240, 320)) - tp.uw_map, axis=-1).max() > 1.0


def test_initial_homography_is_a_centred_scaling():
    H = initial_homography((300, 400), (300, 400), 2.0)
    p = H @ np.array([199.5, 149.5, 1.0])
    assert np.allclose(p[:2], [199.5, 149.5])
    assert np.isclose(H[0, 0], 0.5)


def test_fb_confidence_flags_inconsistent_flow():
    fw = np.zeros((20, 20, 2), np.float32)
    bw = np.zeros((20, 20, 2), np.float32)
    fw[5:10, 5:10] = 3.0  # forward moves, backward says nothing moved: inconsistent
    c = fb_confidence(fw, bw)
    assert c[7, 7] == 0 and c[15, 15] == 1


def _defocused_background_pair(with_fg: bool, seed: int = 0, h: int = 256, w: int = 384, dx: float = 1.5,
                                dfg: float = 12.0):
    """CLAHE luminances of a main whose textured background is shifted by ``dx`` px and
    heavily defocused, and a sharp, noisier ultra-wide; optionally an in-focus foreground
    square with ``dfg`` px of parallax. Returns (main, uw, occluded, foreground)."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((h + 64, w + 64)).astype(np.float32), (0, 0), 1.2)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    uw = tex[32:32 + h, 32:32 + w].copy()
    main = cv2.warpAffine(tex, np.float32([[1, 0, 32 + dx], [0, 1, 32]]), (w, h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)  # main(x) = uw(x + dx)
    main = cv2.GaussianBlur(main, (0, 0), 8.0)
    fg = np.zeros((h, w), bool)
    occ = np.zeros((h, w), bool)
    if with_fg:
        x0, x1, y0, y1 = 140, 240, 70, 190
        fgt = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0) * 0.5 + 0.4
        fg[y0:y1, x0:x1] = True
        main[fg] = fgt[fg]
        fgu = np.zeros((h, w), bool)
        fgu[y0:y1, int(x0 + dfg):int(x1 + dfg)] = True
        uw[fgu] = cv2.warpAffine(fgt, np.float32([[1, 0, -dfg], [0, 1, 0]]), (w, h))[fgu]
        xs = np.arange(w)[None, :] + dx  # where a background pixel of the main lands in the ultra-wide
        rows = (np.arange(h)[:, None] >= y0) & (np.arange(h)[:, None] < y1)
        occ = ~fg & rows & (xs >= x0 + dfg) & (xs < x1 + dfg)
    uw += rng.normal(0, 0.03, uw.shape).astype(np.float32)
    main += rng.normal(0, 0.01, main.shape).astype(np.float32)
    g = lambda a: _prep(np.clip(np.dstack([a] * 3), 0, 1))  # noqa: E731
    return g(main), g(uw), occ, fg


def test_coarse_fallback_recovers_flow_behind_a_defocused_background():
    gm, gu, _, _ = _defocused_background_pair(with_fg=False)
    fw, bw = dense_flow(gm, gu, 1.0)
    c = fb_confidence(fw, bw)
    assert c.mean() < 0.5  # the fine flow follows the ultra-wide's texture and fails its check
    f2, b2, c2 = coarse_fallback(gm, gu, fw, bw, c)
    filled = (c2 > 0.5) & (c < 0.5)
    assert c2.mean() > 0.9
    assert np.median(np.abs(f2[..., 0] - 1.5)[filled]) < 0.5 and np.median(np.abs(f2[..., 1])[filled]) < 0.5
    assert np.array_equal(c, fb_confidence(fw, bw))  # inputs untouched


def test_coarse_fallback_keeps_out_of_occlusions():
    """Coarse flow is smooth across the foreground's edge and passes its own check where the
    ultra-wide sees the foreground instead of the main's background; the guard refuses it there."""
    gm, gu, occ, fg = _defocused_background_pair(with_fg=True)
    fw, bw = dense_flow(gm, gu, 1.0)
    c = fb_confidence(fw, bw)
    _, _, c2 = coarse_fallback(gm, gu, fw, bw, c)
    assert c2[~occ & ~fg].mean() > 0.8
    assert c2[occ].mean() < 0.2
    _, _, c_unguarded = coarse_fallback(gm, gu, fw, bw, c, guard_px=1e9, guard_spread=1e9, photo_max=0)
    assert c_unguarded[occ].mean() > 0.8  # what the guard is for


def test_coarse_fallback_refuses_content_the_main_does_not_show():
    """An object in the ultra-wide that the main did not see (it moved between the exposures),
    textured like the scene but darker: the flow around it is coherent, but the warped
    ultra-wide does not look like the main up to defocus there, so the coarse flow is not taken."""
    gm, gu, _, _ = _defocused_background_pair(with_fg=False)
    other = _defocused_background_pair(with_fg=False, seed=5)[1].astype(np.float32)
    gu = gu.copy()
    gu[100:160, 150:260] = np.clip(other[100:160, 150:260] - 25, 0, 255).astype(np.uint8)
    obj = np.zeros(gm.shape, bool)
    obj[110:150, 160:250] = True
    away = np.ones(gm.shape, bool)
    away[60:200, 110:300] = False
    fw, bw = dense_flow(gm, gu, 1.0)
    c = fb_confidence(fw, bw)
    _, _, c2 = coarse_fallback(gm, gu, fw, bw, c)
    _, _, c_blind = coarse_fallback(gm, gu, fw, bw, c, photo_max=0)
    assert c2[obj].mean() < 0.15
    assert c_blind[obj].mean() > 0.4  # the geometric guard alone would have taken much of it
    assert c2[away].mean() > c[away].mean() + 0.4  # away from it the fallback still works
    assert np.mean(c2[away] == c_blind[away]) > 0.98


def _bg_error_stats(f: np.ndarray, c: np.ndarray, region: np.ndarray, dx: float = 1.5) -> tuple[float, float]:
    """(consistent fraction of ``region``, median end-point error of its consistent pixels)."""
    ok = (c > 0.5) & region
    e = np.hypot(f[..., 0] - dx, f[..., 1])
    return float(ok[region].mean()), float(np.median(e[ok]))


def test_defocus_matched_flow_recovers_a_defocused_background():
    """The main's background is blurred (sigma 8) where the ultra-wide is sharp: plain DIS is
    consistent on a fifth of it, 1.1 px off; matched to a blurred ultra-wide it is consistent
    on half of it and twice as accurate."""
    gm, gu, _, _ = _defocused_background_pair(with_fg=False)
    fw, bw = dense_flow(gm, gu, 1.0)
    c = fb_confidence(fw, bw)
    everywhere = np.ones(gm.shape, bool)
    c_frac, c_err = _bg_error_stats(fw, c, everywhere)
    f2, _, c2, choice = defocus_matched_flow(gm, gu, fw, bw, c)
    d_frac, d_err = _bg_error_stats(f2, c2, everywhere)
    assert (choice > 0).mean() > 0.9  # the blurred ultra-wide matches the main's sharpness
    assert d_frac > c_frac + 0.2 and d_err < 0.7 * c_err
    assert np.array_equal(c, fb_confidence(fw, bw))  # inputs untouched


def test_defocus_matched_flow_leaves_sharp_mains_and_occlusions_alone():
    gm, gu, occ, fg = _defocused_background_pair(with_fg=True)
    fw, bw = dense_flow(gm, gu, 1.0)
    c = fb_confidence(fw, bw)
    _, _, c2, choice = defocus_matched_flow(gm, gu, fw, bw, c)
    assert c2[occ].mean() < 0.2  # the occluded background stays untrusted
    assert (choice[fg] > 1).mean() < 0.05  # the in-focus foreground is matched sharp (or nearly)
    # a sharp main: nothing to match, the flow is kept as it is
    rng = np.random.default_rng(3)
    tex = cv2.GaussianBlur(rng.random((200, 260)).astype(np.float32), (0, 0), 1.2)
    g = _prep(np.dstack([(tex - tex.min()) / (tex.max() - tex.min())] * 3))
    fw, bw = dense_flow(g, g, 1.0)
    c = fb_confidence(fw, bw)
    f2, _, c2, choice = defocus_matched_flow(g, g, fw, bw, c)
    assert (choice == 0).mean() > 0.95 and np.abs(f2 - fw).max() < 0.5


def _parallax_field(h: int = 120, w: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Parallax along (cos 3 deg, sin 3 deg) that varies with 'depth' (-4..34 px), a smooth
    cross component (a homography's error: 0.1 + 0.2 x / w px), and noise across it (sigma 0.3)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.array([np.cos(np.radians(3)), np.sin(np.radians(3))], np.float32)
    n = np.array([-d[1], d[0]], np.float32)
    along = 30.0 * (xs > w / 2) + 4.0 * np.sin(ys / 9.0)
    cross = 0.1 + 0.2 * xs / w
    truth = along[..., None] * d + cross[..., None] * n
    noisy = truth + rng.normal(0.0, 0.3, (h, w)).astype(np.float32)[..., None] * n
    return truth.astype(np.float32), noisy.astype(np.float32)


def test_epipolar_projection_removes_noise_across_the_parallax_direction():
    truth, noisy = _parallax_field()
    h, w = truth.shape[:2]
    cons = np.ones((h, w), np.float32)
    cons[:20] = 0.0  # inconsistent rows are left as they are
    rng = np.random.default_rng(1)
    tex = (cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0) * 255).astype(np.uint8)  # 2-D texture
    out, info = epipolar_projection(noisy, cons, tex)
    assert "skipped" not in info and info["projected"] > 0.5
    err_before = np.linalg.norm(noisy - truth, axis=-1)[20:]
    err_after = np.linalg.norm(out - truth, axis=-1)[20:]
    assert np.median(err_after) < 0.5 * np.median(err_before), (np.median(err_before), np.median(err_after))
    assert np.array_equal(out[:20], noisy[:20])
    # the component along the parallax (the depth) is untouched
    d = np.array(info["direction"], np.float32)
    assert np.abs((out - noisy) @ d).max() < 1e-3


def test_epipolar_projection_fits_parallax_that_bends_and_ignores_wrong_vectors():
    # a homography that is not exact bends the parallax: an object's cross component grows
    # with its parallax (here 0.02 px per px: 0.6 px at 30 px), and a third of the consistent
    # vectors are wrong (a floor's, off across by 1-3 px to one side, as DIS's wrong vectors
    # on a featureless floor are); the fit must see through both
    h, w = 120, 160
    rng = np.random.default_rng(4)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.array([np.cos(np.radians(2)), np.sin(np.radians(2))], np.float32)
    n = np.array([-d[1], d[0]], np.float32)
    along = np.where((np.abs(xs - 110) < 30) & (np.abs(ys - 45) < 30), 30.0, 2.0 * xs / w + np.sin(ys / 9.0))
    cross = 0.1 + 0.2 * xs / w + 0.02 * along
    truth = (along[..., None] * d + cross[..., None] * n).astype(np.float32)
    noisy = truth + rng.normal(0.0, 0.15, (h, w, 2)).astype(np.float32)  # DIS's noise: both components
    floor = ys > 80
    noisy[floor] += (2.0 + 1.0 * np.sin(xs[floor] / 15.0))[:, None] * n  # consistently wrong, all to one side
    cons = np.ones((h, w), np.float32)
    tex = (cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0) * 255).astype(np.uint8)
    out, info = epipolar_projection(noisy, cons, tex)
    assert "skipped" not in info and "bend_dropped" not in info and info["inliers"] < 0.8, info
    obj = (np.abs(xs - 110) < 26) & (np.abs(ys - 45) < 26)
    err = lambda f, m: float(np.median(np.abs((f - truth) @ n)[m]))  # noqa: E731
    # noise across: median 0.10 px before
    assert err(out, obj) < 0.09 and err(out, ~floor & ~obj) < 0.1, (err(out, obj), err(out, ~floor & ~obj))
    # without the consensus the wrong vectors pull the fit further (0.14 / 0.17 px here)
    out0, info0 = epipolar_projection(noisy, cons, tex, ransac_tries=0)
    assert "skipped" in info0 or err(out0, obj) > 1.5 * err(out, obj), (info0, err(out0, obj))
    # a quadratic without the parallax term cannot follow the bend: fitted to the truth
    # itself, it leaves the object about 0.2 px off
    sel = ~floor[::4, ::4].ravel()
    A = np.stack(_cross_basis(xs[::4, ::4].ravel(), ys[::4, ::4].ravel(), w, h), 1)[sel]
    q = (truth[::4, ::4].reshape(-1, 2) @ n)[sel]
    res = np.abs(q - A @ np.linalg.lstsq(A, q, rcond=None)[0])
    assert np.median(res[obj[::4, ::4].ravel()[sel]]) > 0.1


def test_epipolar_projection_leaves_stripes_and_directionless_flow_alone():
    truth, noisy = _parallax_field()
    h, w = truth.shape[:2]
    cons = np.ones((h, w), np.float32)
    stripes = ((np.sin(np.arange(w, dtype=np.float32) / 2.0) * 100 + 128)[None, :].repeat(h, 0)).astype(np.uint8)
    out, info = epipolar_projection(noisy, cons, stripes)
    # along one-directional texture a vector's error can lie along the stripes, where it does
    # no harm: it is not moved across them
    assert info["projected"] < 0.05 and np.abs(out - noisy).max() < 1e-6 or np.array_equal(out, noisy)
    # flow without a dominant direction (no parallax, only noise): nothing is fitted
    rng = np.random.default_rng(2)
    iso = rng.normal(0.0, 0.5, (h, w, 2)).astype(np.float32)
    out, info = epipolar_projection(iso, cons, stripes)
    assert info["skipped"] == "no dominant parallax direction" and out is iso
    out, info = epipolar_projection(noisy, np.zeros((h, w), np.float32), stripes)
    assert info["skipped"] == "too few consistent vectors"


def _striped_disc_pair(defocused: bool, d: float = 20.0, h: int = 192, w: int = 256, seed: int = 3
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Work-grid luma (grey levels) of a main and an ultra-wide: a textured background with no
    parallax and a striped disc (period 5 px) that the ultra-wide sees ``d`` px to the right.
    The main shows the disc blurred (sigma 5 px, stripes gone) when ``defocused``."""
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.2)
    bg = (bg - bg.mean()) / bg.std() * 25 + 110
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

    def layer(shift: float) -> tuple[np.ndarray, np.ndarray]:
        alpha = (((xs - w / 2 - shift) / 55) ** 2 + ((ys - h / 2) / 45) ** 2 < 1).astype(np.float32)
        return alpha, 150 + 60 * np.sin(2 * np.pi * (xs - shift) / 5.0)

    a_u, o_u = layer(d)
    uw = bg * (1 - a_u) + o_u * a_u
    a_m, o_m = layer(0.0)
    if defocused:  # a blurred object layer over the sharp background (what a thin lens does to a near disc)
        a_m = cv2.GaussianBlur(a_m, (0, 0), 5.0)
        inside = (a_m > 0).astype(np.float32)
        o_m = cv2.GaussianBlur(o_m * inside, (0, 0), 5.0) / np.maximum(cv2.GaussianBlur(inside, (0, 0), 5.0), 1e-3)
    main = bg * (1 - a_m) + o_m * a_m
    truth = np.zeros((h, w, 2), np.float32)
    truth[..., 0] = d * (layer(0.0)[0] > 0)
    return main.astype(np.float32), uw.astype(np.float32), truth


def test_defocused_object_gets_its_parallax_from_its_silhouette():
    main, uw, truth = _striped_disc_pair(True)
    h, w = main.shape
    inside = truth[..., 0] > 0
    # the flow on the featureless disc settled on the wrong stripe, and is inconsistent in places
    fw = truth.copy()
    fw[inside, 0] += 5.0
    cons = np.ones((h, w), np.float32)
    cons[inside & (np.arange(w)[None, :] % 16 < 4)] = 0.0
    epi = {"direction": [1.0, 0.0], "cross_coef": [0.0] * 6}
    out, c, objs = defocused_object_flow(main, uw, fw, cons, epi)
    used = [o for o in objs if "replaced" in o]
    assert len(used) == 1 and abs(used[0]["parallax"] - 20.0) < 0.5, objs
    # set inside the region eroded by the blur (the rim, a mix of object and background, keeps its flow)
    core = cv2.erode(inside.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    assert np.abs(out[core] - truth[core]).max() < 0.5
    assert (c[core] == 1.0).all()
    # the background keeps its flow, and the inputs are untouched
    far = cv2.dilate(inside.astype(np.uint8), np.ones((41, 41), np.uint8)) == 0
    assert np.array_equal(out[far], fw[far]) and np.abs(fw[inside, 0] - 25.0).max() < 1e-5


def test_defocused_object_flow_leaves_sharp_objects_and_unfitted_pairs_alone():
    main, uw, truth = _striped_disc_pair(False)
    h, w = main.shape
    fw = truth.copy()
    fw[truth[..., 0] > 0, 0] += 5.0  # on the wrong stripe, but the main shows the stripes: not a defocused object
    cons = np.ones((h, w), np.float32)
    epi = {"direction": [1.0, 0.0], "cross_coef": [0.0] * 6}
    out, c, objs = defocused_object_flow(main, uw, fw, cons, epi)
    assert not any("replaced" in o for o in objs) and np.array_equal(out, fw), objs
    main, uw, truth = _striped_disc_pair(True)
    out, c, objs = defocused_object_flow(main, uw, fw, cons, {"skipped": "no dominant parallax direction"})
    assert objs == [] and out is fw and c is cons


def test_unrelated_images_fail_with_a_clear_message():
    a = make_toy_pair(240, 320, seed=1).main_far
    b = make_toy_pair(240, 320, seed=7, with_fg=False).ultrawide
    with pytest.raises(InputError, match="cannot align"):
        align_pair(a, b, ratio=2.0, uw_path="b.jpg")


def test_align_cli_writes_all_outputs_and_refuses_overwrite(tmp_path):
    tp = make_toy_pair(240, 320, seed=2)
    write_image(tmp_path / "m.png", tp.main_near)
    write_image(tmp_path / "u.png", tp.ultrawide)
    out = tmp_path / "al.png"
    r = runner.invoke(app, ["align", str(tmp_path / "m.png"), str(tmp_path / "u.png"), "-o", str(out), "--ratio", "2"])
    assert r.exit_code == 0, r.output
    for suffix in (".png", ".confidence.png", ".flow.npy", ".homography.json"):
        assert (tmp_path / f"al{suffix}").exists()
    info = json.loads((tmp_path / "al.homography.json").read_text())
    assert np.array(info["H"]).shape == (3, 3) and info["inliers"] >= 20
    # the epipolar step reports what it fitted, or why it did nothing
    assert "direction" in info["epipolar"] or "skipped" in info["epipolar"]
    flow = np.load(tmp_path / "al.flow.npy")
    assert flow.shape == (240, 320, 2)
    conf = read_gray(tmp_path / "al.confidence.png")
    assert conf.shape == (240, 320) and 0.5 < conf.mean() <= 1.0
    r = runner.invoke(app, ["align", str(tmp_path / "m.png"), str(tmp_path / "u.png"), "-o", str(out)])
    assert r.exit_code == 2 and "exists" in r.output
    r = runner.invoke(app, ["align", str(tmp_path / "m.png"), str(tmp_path / "u.png"), "-o", str(tmp_path / "v.png"),
                            "--ratio", "2", "-v"])
    assert r.exit_code == 0 and "epipolar projection" in r.output and "flow ramps:" in r.output, r.output
    assert 0.0 <= info["flow_ramp_fraction"] < 0.2
    # with a fit, the defocused objects step says what it found (the JSON lists them)
    epi = info["epipolar"]
    assert "skipped" in epi or ("defocused objects:" in r.output and "objects" in epi), r.output


def test_align_cli_bad_inputs(tmp_path):
    tp = make_toy_pair(240, 320, seed=2)
    write_image(tmp_path / "m.png", tp.main_near)
    (tmp_path / "bad.jpg").write_bytes(b"this is not a jpeg")
    r = runner.invoke(app, ["align", str(tmp_path / "m.png"), str(tmp_path / "bad.jpg"), "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 2 and "bad.jpg" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["align", str(tmp_path / "m.png"), str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 2 and "nope.jpg" in r.output
    assert not (tmp_path / "o.png").exists()


def test_real_wide_tele_pair_aligns(shared_data):
    from aifcli.align.pair_io import align_files, load_pair

    d = shared_data / "pairs" / "iphone11pro-wide-tele"
    p = load_pair(d / "tele_52mm_Ref_IMG_20.jpg", d / "wide_26mm_HR_IMG_20.jpg")
    assert abs(p.ratio - 2.0) < 0.05 and not p.swapped
    p, al = align_files(p)
    assert al.inliers > 200
    assert al.residual_px < 3.0
    assert 0.45 < al.scale < 0.56


def test_alignment_is_deterministic_within_a_process():
    """USAC draws from OpenCV's per-thread RNG: the same pair must align the same way
    whatever ran before (a batch, a benchmark loop). Unseeded, this 512 px synthetic pair
    gave 315, 321, 318, 303 inliers and a translation moving by 0.8 px on four calls."""
    from aifcli.synth.pairs import make_pair_scene

    ps = make_pair_scene(0, size="512", index=0)
    a = align_pair(ps.main_near, ps.ultrawide, ratio=2.0)
    b = align_pair(ps.main_near, ps.ultrawide, ratio=2.0)
    assert (a.inliers, a.matches) == (b.inliers, b.matches)
    assert np.array_equal(a.H, b.H) and np.array_equal(a.flow, b.flow)


@pytest.mark.parametrize("uw_size", [(611, 811), (587, 801)])
def test_shrunk_ultrawide_keeps_both_axes_scales(uw_size):
    # An ultra-wide denser than the work grid is shrunk before matching; rounding its size
    # makes the x and y factors differ (811 -> 639 px is 0.7879, 611 -> 481 px 0.7872).
    # With one factor for both axes the map drifted in y across the frame (median error
    # -0.16 px at the top, -0.35 px at the bottom here; 1.35 ultra-wide px on a 12 MP
    # synthetic pair).
    tp = make_toy_pair(240, 320, uw_size=uw_size, with_fg=False, seed=3)
    al = align_pair(tp.main_far, tp.ultrawide, ratio=2.0)
    d = al.uw_map((240, 320)) - tp.uw_map
    for rows in (slice(0, 60), slice(-60, None)):
        assert abs(np.median(d[rows, :, 1])) < 0.06, (rows, np.median(d[rows, :, 1]))
    # the warp onto a grid coarser than the ultra-wide prefilters it: its y must not drift either
    n = float(uw_size[0])  # the row index as an image in [0, 1] (the warp clips to that range)
    ramp = np.repeat((np.arange(uw_size[0], dtype=np.float32) / n)[:, None, None], uw_size[1], 1).repeat(3, 2)
    shape = (120, 160)  # 2x coarser than the main: the ultra-wide is shrunk by about 2.5
    got = al.warp(ramp, shape)[..., 0] * n
    want = al.uw_map(shape)[..., 1]
    # the bicubic warp (Keys, a = -0.75) does not reproduce a ramp exactly: up to +-0.05 px of
    # the shrunk image, i.e. +-0.12 rows here, periodic in the sub-pixel phase (band means
    # 0.06 and -0.06 here); so the mean error over 40-row bands at the top and the bottom, and
    # its drift between them, against 0.3 rows (one factor for both axes: ~1 row at the bottom)
    top, bottom = ((got[r, 10:-10] - want[r, 10:-10]).mean() for r in (slice(10, 50), slice(-50, -10)))
    assert abs(bottom) < 0.3 and abs(bottom - top) < 0.3, (top, bottom)


def test_tile_refinement_removes_a_smooth_flow_error_under_defocus():
    # a main that is the ultra-wide moved by a known smooth flow and blurred by a disc (its
    # defocus), and a flow off by a constant 0.78 px: the blur-matched tiles find the offset
    from aifcli.align.pair import _disc_blur, _sample_along, refine_flow_tiles

    rng = np.random.default_rng(0)
    h, w = 240, 320
    yu = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.5)
    yu = (yu - yu.min()) / (yu.max() - yu.min())
    xs = np.arange(w, dtype=np.float32)[None, :].repeat(h, 0)
    truth = np.dstack([1.0 + 0.8 * xs / w, np.full((h, w), 0.5, np.float32)]).astype(np.float32)
    ym = _disc_blur(_sample_along(yu, truth), 2.5) + rng.normal(0, 0.003, (h, w)).astype(np.float32)
    fw = truth + np.float32([0.6, -0.5])
    cons = np.ones((h, w), np.float32)
    out, info = refine_flow_tiles(ym, yu, fw, cons)
    err = np.linalg.norm(out - truth, axis=-1)[40:-40, 40:-40]
    assert np.median(err) < 0.15 and info["tiles"] == info["of"], (np.median(err), info)
    # inconsistent pixels keep their flow; a flat image gives no tile and changes nothing
    cons[:, : w // 2] = 0
    out2, _ = refine_flow_tiles(ym, yu, fw, cons)
    assert np.array_equal(out2[:, : w // 2], fw[:, : w // 2])
    assert np.median(np.linalg.norm(out2 - truth, axis=-1)[40:-40, w // 2 + 40:-40]) < 0.15
    flat = np.full((h, w), 0.5, np.float32)
    out3, info3 = refine_flow_tiles(flat, flat, fw, np.ones((h, w), np.float32))
    assert info3["tiles"] == 0 and np.array_equal(out3, fw)


def test_tile_refinement_blurs_light_as_the_lens_did():
    """A main defocused in linear light (then encoded for display, as a camera does) and its
    sharp ultra-wide at zero flow: matched in light, the tiles report about half the spurious
    shift they report when the disc blurs display values (whose edges spread the wrong way)."""
    from aifcli.align.pair import disc_kernel, refine_flow_tiles
    from aifcli.fuse.toy import _texture
    from aifcli.image import linear_to_srgb

    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        lin = np.clip(cv2.resize(_texture(rng, 512), (384, 288), interpolation=cv2.INTER_AREA), 0, 1) ** 2.2
        y = cv2.cvtColor(lin, cv2.COLOR_RGB2GRAY)
        ym = linear_to_srgb(cv2.filter2D(y, -1, disc_kernel(3.0), borderType=cv2.BORDER_REFLECT))
        fw = np.zeros((288, 384, 2), np.float32)
        cons = np.ones((288, 384), np.float32)
        _, in_light = refine_flow_tiles(ym, linear_to_srgb(y), fw, cons)
        _, in_display = refine_flow_tiles(ym, linear_to_srgb(y), fw, cons, light=False)
        # measured: p90 0.074 / 0.086 px in light, 0.157 / 0.158 px on display values
        assert in_light["p90_shift_px"] < 0.6 * in_display["p90_shift_px"], (in_light, in_display)
        assert in_light["p90_shift_px"] < 0.1
