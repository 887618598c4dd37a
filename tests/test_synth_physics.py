"""Physics of `aif synth`: focus, CoC size, parallax, occlusion edges, near/far sharpness."""
from __future__ import annotations

import numpy as np
import pytest

from aifcli.presets import get_preset
from aifcli.synth.optics import Lens, blur_disc, disc_kernel
from aifcli.synth.pairs import make_pair_scene, module_lens
from aifcli.synth.render import Focus, composite
from aifcli.synth.scene import Layer, View, render_layer

EX, EY = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])


def _lens_view(width: int = 512) -> tuple[Lens, View]:
    pr = get_preset("generic-phone")
    lens, w, h = module_lens(pr, "main", width / pr.camera("main").width)
    return lens, View.make(lens.focal_px, w, h)


def _wall(z: float, texture: str = "fractal", gain=1.0) -> Layer:
    return Layer("wall", np.array([0, 0, z]), EX, EY, texture, 3, texel_m=z / 300, gain=gain)


def _card(z: float, view: View, x0: float, x1: float, y0: float, y1: float, texture: str = "flat", gain=1.0) -> Layer:
    """A rectangle covering pixels [x0, x1] x [y0, y1] of ``view`` at depth z."""
    f, cx, cy = view.focal_px, view.K[0, 2], view.K[1, 2]
    u0, u1 = (x0 - cx) * z / f, (x1 - cx) * z / f
    v0, v1 = (y0 - cy) * z / f, (y1 - cy) * z / f
    outline = np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]])
    return Layer("card", np.array([0, 0, z]), EX, EY, texture, 5, texel_m=z / 400, outline=outline, gain=gain)


def _render(layers, view, focus):
    lis = [render_layer(l, view) for l in layers]
    return composite(lis, focus, view.width, view.height)


def test_plane_at_focus_distance_is_not_blurred():
    lens, view = _lens_view()
    z = 0.8
    sharp = _render([_wall(z)], view, None)
    focused = _render([_wall(z)], view, Focus(lens, z))
    assert np.array_equal(sharp, focused)
    # and a plane off focus is blurred: contrast drops
    off = _render([_wall(z)], view, Focus(lens, 0.2))
    assert np.abs(np.diff(off, axis=1)).mean() < 0.5 * np.abs(np.diff(sharp, axis=1)).mean()


@pytest.mark.parametrize("z,focus,width", [(2.0, 0.12, 512), (0.15, 5.0, 1024), (0.6, 0.12, 1024), (5.0, 0.1, 2048)])
def test_step_edge_blur_matches_coc(z, focus, width):
    """The line spread of a blurred step edge has variance r^2/4 for a disc of radius r."""
    lens, view = _lens_view(width)
    w, h = view.width, view.height
    card = _card(z, view, -50, w / 2, -50, h + 50, gain=1.0)  # left half white, same depth black behind
    img = _render([_wall(z, "flat", gain=0.0), card], view, Focus(lens, focus))[..., 1]
    prof = img[h // 2 - 20:h // 2 + 20].mean(axis=0).astype(np.float64)
    lsf = np.clip(-np.diff(prof), 0, None)
    x = np.arange(len(lsf)) + 0.5
    mu = (lsf * x).sum() / lsf.sum()
    sd = np.sqrt((lsf * (x - mu) ** 2).sum() / lsf.sum())
    r_meas = 2 * sd
    r_true = float(lens.coc_px(z, focus)) / 2
    assert r_true > 3  # a meaningful blur
    assert abs(r_meas - r_true) / r_true < 0.10, (r_meas, r_true)


def test_blur_disc_reduced_scale_matches_full_resolution():
    rng = np.random.default_rng(0)
    img = np.zeros((200, 300), np.float32)
    img[:, 150:] = 1.0
    img += rng.random(img.shape).astype(np.float32) * 0.01
    r = 14.0
    import cv2

    full = cv2.filter2D(img, -1, disc_kernel(r), borderType=cv2.BORDER_REPLICATE)
    fast = blur_disc(img, r)
    assert np.abs(full - fast)[:, 20:-20].max() < 0.05


def test_parallax_matches_baseline_focal_over_depth():
    """A card at depth Z seen from a camera b to the side moves by b * f / Z (after H)."""
    lens, main = _lens_view()
    b = 0.012
    uw = View.make(lens.focal_px * 0.5, main.width, main.height, C=(b, 0, 0))
    for z in (0.25, 1.0):
        card = _card(z, main, 200, 260, 150, 230, texture="fractal")
        a_m = render_layer(card, main)
        a_u = render_layer(card, uw)

        def centroid(li):
            x0, y0, x1, y1 = li.bbox
            a = li.alpha.astype(np.float64)
            ys, xs = np.mgrid[y0:y1, x0:x1]
            return (a * xs).sum() / a.sum(), (a * ys).sum() / a.sum()

        (mx, my), (ux, uy) = centroid(a_m), centroid(a_u)
        # points at infinity: x_u = s (x_m - cx) + cx  with s = 0.5; undo that, then compare
        s, cx = 0.5, (main.width - 1) / 2
        x_back = (ux - cx) / s + cx
        d_expected = b * lens.focal_px / z
        assert abs((mx - x_back) - d_expected) < 0.05 * d_expected + 0.05, (mx - x_back, d_expected)


def test_pair_ground_truth_geometry_is_consistent():
    ps = make_pair_scene(11, "512", noise=0.0)
    m = ps.metadata
    f = m["main"]["focal_px"]
    b = m["baseline_mm"] / 1000
    assert np.allclose(ps.disparity, b * f / ps.depth, rtol=1e-4)
    # flow magnitude equals the disparity (the rotation is in H; the parallax is b f / Z
    # up to the ultra-wide's scale and the small rotation)
    vis = ~ps.occlusion
    mag = np.hypot(ps.flow[..., 0], ps.flow[..., 1])
    assert np.median(np.abs(mag[vis] - ps.disparity[vis]) / ps.disparity[vis]) < 0.02
    # uw_map = H applied to (p + flow)
    H = np.array(ps.H)
    y, x = 100, 300
    p = np.array([x + ps.flow[y, x, 0], y + ps.flow[y, x, 1], 1.0])
    q = H @ p
    assert np.allclose(q[:2] / q[2], ps.uw_map[y, x], atol=1e-2)
    # the ultra-wide, remapped to the main view, matches the main all-in-focus image where
    # visible (up to the two cameras' colour differences: compare per-channel z-scores)
    import cv2

    warped = cv2.remap(ps.ultrawide, ps.uw_map[..., 0], ps.uw_map[..., 1], cv2.INTER_LINEAR)
    g1, g2 = warped[..., 1][vis], ps.aif[..., 1][vis]
    corr = np.corrcoef(g1, g2)[0, 1]
    shifted = np.roll(warped, 6, axis=1)[..., 1][vis]
    assert corr > 0.9 and corr > np.corrcoef(shifted, g2)[0, 1] + 0.05


def test_no_background_bleeds_over_sharp_foreground_edge():
    lens, view = _lens_view(1024)
    w, h = view.width, view.height
    green = _wall(20.0, "flat", gain=(0.0, 1.0, 0.0))
    card = _card(0.12, view, 100, 300, 100, 300, gain=(1.0, 0.0, 0.0))
    near = _render([green, card], view, Focus(lens, 0.12))  # card sharp, wall blurred
    inside = near[102:299, 102:299]
    assert inside[..., 1].max() < 1e-4 and inside[..., 0].min() > 0.999
    # and the blurred background stays out of the card even right at its edge
    assert near[150:250, 100, 1].max() < 0.6
    # a blurred foreground spreads over a sharp background: red beyond the card's outline
    far = _render([green, card], view, Focus(lens, 20.0))
    r = float(lens.coc_px(0.12, 20.0)) / 2
    assert r > 4
    outside = far[200, 300 + int(r / 2), 0]
    assert outside > 0.05 and near[200, 300 + int(r / 2), 0] < 1e-4


def test_near_and_far_shots_are_sharp_exactly_where_they_should_be():
    import cv2

    ps = make_pair_scene(5, "1024", noise=0.0)

    def hf(img):
        g = img[..., 1].astype(np.float32)
        return np.abs(cv2.Laplacian(g, cv2.CV_32F))

    ref = hf(ps.aif)
    for img, infocus, coc in ((ps.main_near, ps.infocus_near, ps.coc_near), (ps.main_far, ps.infocus_far, ps.coc_far)):
        k = np.ones((9, 9), np.uint8)
        sharp = cv2.erode(infocus.astype(np.uint8), k).astype(bool)
        # where the far layer is far behind, stay clear of nearer layers' blur spreading
        blurred = cv2.erode((coc > 4).astype(np.uint8), k).astype(bool)
        assert sharp.sum() > 500 and blurred.sum() > 500
        e = hf(img)
        assert e[sharp].mean() > 0.8 * ref[sharp].mean()
        assert e[blurred].mean() < 0.5 * ref[blurred].mean()
        # in-focus pixels equal the all-in-focus image (same camera, no noise)
        assert np.abs(img - ps.aif)[sharp].mean() < 0.01


def test_burst_homographies_map_reference_to_each_frame():
    """Warping frame i into the reference geometry with its ground-truth homography makes
    the pixels in focus in frame i equal the reference all-in-focus image."""
    import cv2

    from aifcli.synth.bursts import make_burst

    b = make_burst(1, "512", 6, noise=0.0, flicker=0.0, shake_px=3.0, breathing=3.0)
    h, w = b.aif.shape[:2]
    assert b.reference == 3
    checked = 0
    for i in (0, 1, 2, 4, 5):  # every frame but the reference that has enough sharp pixels
        H = b.homographies[i]
        back = cv2.warpPerspective(b.frames[i], H, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE)
        sharp = np.abs(b.focus_index - i) < 0.3
        sharp[:12], sharp[-12:], sharp[:, :12], sharp[:, -12:] = False, False, False, False
        sharp = cv2.erode(sharp.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        if sharp.sum() < 300:
            continue
        checked += 1
        err = np.abs(back - b.aif)[sharp].mean()
        # without the homography (breathing + shake) the same comparison is much worse
        err_raw = np.abs(b.frames[i] - b.aif)[sharp].mean()
        assert err < 0.02 and err_raw > 2 * err, (i, err, err_raw)
    assert checked >= 3


def test_lateral_chromatic_aberration_shifts_red_out_and_blue_in():
    from aifcli.synth.camera import lateral_ca

    h, w = 300, 400
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x0, y0 = 350.0, 260.0  # a blurred dot near the corner
    g = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 3.0 ** 2)).astype(np.float32)
    img = np.dstack([g, g, g])
    out = lateral_ca(img.copy(), 4.0)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    rc = 0.5 * np.hypot(w - 1, h - 1)
    k = 4.0 / rc  # red is magnified by 1 + k, blue by 1 - k

    def centroid(a):
        return (a * xx).sum() / a.sum(), (a * yy).sum() / a.sum()

    for ch, sgn in ((0, 1), (2, -1)):
        mx, my = centroid(out[..., ch])
        assert abs(mx - (cx + (1 + sgn * k) * (x0 - cx))) < 0.05
        assert abs(my - (cy + (1 + sgn * k) * (y0 - cy))) < 0.05
    assert np.array_equal(out[..., 1], img[..., 1])


def test_spherical_aberration_rims_bokeh_in_front_and_softens_it_behind():
    lens, view = _lens_view(1024)
    black = _wall(20.0, "flat", gain=0.0)

    def dot_profile(z, focus, s):
        c = view.width / 2
        card = _card(z, view, c - 1.5, c + 1.5, view.height / 2 - 1.5, view.height / 2 + 1.5)
        img = _render([black, card], view, Focus(lens, focus, 0, s))[..., 1]
        r = float(lens.coc_px(z, focus)) / 2
        cy, cx = view.height // 2, view.width // 2
        centre = img[cy - 1:cy + 2, cx - 1:cx + 2].mean()
        ring = np.mean([img[cy, cx + int(0.8 * r)], img[cy, cx - int(0.8 * r)], img[cy + int(0.8 * r), cx],
                        img[cy - int(0.8 * r), cx]])
        return centre, ring, r

    c0, r0, rad = dot_profile(2.0, 0.1, 0.0)
    assert rad > 8 and abs(c0 - r0) < 0.2 * c0  # uniform disc
    cb, rb, _ = dot_profile(2.0, 0.1, 0.8)  # behind the focal plane: soft, bright centre
    cf, rf, _ = dot_profile(0.1, 2.0, 0.8)  # in front: bright rim
    assert cb > 1.5 * rb and rf > 1.5 * cf


def test_a_floor_at_a_grazing_angle_renders_without_moire():
    """Mip-mapped texture warp: the far part of a ground plane matches a 4x supersampled
    render (the single blur per plane it replaced left 0.045 RMS of moire here, no filter 0.11)."""
    import cv2

    floor = lambda: Layer("floor", np.array([0, 0.15, 0.0]), EX, np.array([0, 0, 1.0]), "fractal-fine", 3,  # noqa: E731
                          texel_m=0.001, z_max=30.0)
    view = View.make(200.0, 256, 192)

    def img(v, prefilter=True):
        li = render_layer(floor(), v, prefilter=prefilter)
        out = np.zeros((v.height, v.width, 4), np.float32)
        x0, y0, x1, y1 = li.bbox
        out[y0:y1, x0:x1] = li.rgba
        return out

    ref = cv2.resize(img(view.scaled(4)), (256, 192), interpolation=cv2.INTER_AREA)
    far = slice(100, 130)  # just below the horizon (row ~96)
    err = lambda a: float(np.sqrt(((a[far, :, :3] - ref[far, :, :3]) ** 2).mean()))  # noqa: E731
    assert err(img(view)) < 0.025
    assert err(img(view)) < 0.3 * err(img(view, prefilter=False))
