"""aif refocus: CoC formula, layered rendering (exactness, sharp focus plane, radius growth,
no bleeding across a sharp foreground edge), disparity sources, controls and the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from aifcli.errors import InputError, UsageError
from aifcli.presets import get_preset
from aifcli.refocus import controls as C
from aifcli.refocus.coc import coc_from_depth, model_from_optics, parse_aperture
from aifcli.refocus.disparity import fill_from_background, load_disparity, refine
from aifcli.refocus.render import (Aperture, RenderOptions, aperture_kernel, boost_highlights, render_defocus,
                                   unboost_highlights)


def _scene(h=160, w=200, seed=0):
    """Random-block background (disparity 0) and a flat red square in front (disparity 1)."""
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.random((h // 8, w // 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    img = bg.copy()
    d = np.zeros((h, w), np.float32)
    img[50:110, 70:130] = [0.9, 0.1, 0.1]
    d[50:110, 70:130] = 1.0
    return img, d


# --- CoC (DC² eq. 1) ---------------------------------------------------------------------
def test_coc_linear_in_disparity_matches_eq1_and_preset():
    cam = get_preset("iphone-13").camera("main") if "iphone-13" in __import__("aifcli.presets", fromlist=["x"]).load_presets() \
        else get_preset("generic-phone").camera("main")
    focus = 1.2
    m = model_from_optics(cam.focal_mm, cam.f_number, cam.pixel_pitch_um, focus)
    depths = np.array([0.3, 0.8, 1.2, 2.0, 10.0])
    via_disp = m.coc(1.0 / depths, 1.0 / focus)
    np.testing.assert_allclose(via_disp, coc_from_depth(depths, focus, cam.focal_mm, cam.f_number, cam.pixel_pitch_um),
                               rtol=1e-5)
    np.testing.assert_allclose(via_disp, cam.coc_px(depths, focus), rtol=1e-5)
    assert via_disp[2] == pytest.approx(0.0, abs=1e-6)


def test_parse_aperture():
    assert parse_aperture("f/1.4") == 1.4 and parse_aperture("F2") == 2.0 and parse_aperture("2.8") == 2.8
    with pytest.raises(UsageError):
        parse_aperture("wide")


# --- renderer -------------------------------------------------------------------------------
def test_zero_blur_returns_input_exactly():
    img, d = _scene()
    res = render_defocus(img, d, np.zeros_like(d))
    assert np.array_equal(res.image, img)


def test_highlight_boost_is_invertible():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    y = boost_highlights(x, 3.0, 0.75)
    assert y[-1] == pytest.approx(3.0) and np.all(np.diff(y) > 0)
    np.testing.assert_allclose(unboost_highlights(y, 3.0, 0.75), x, atol=2e-6)


@pytest.mark.parametrize("blades", [0, 6])
def test_kernel_normalised_and_sized(blades):
    k = aperture_kernel(10.0, Aperture(blades))
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    # area of the support ~ pi r^2 (the polygon has the disc's area)
    assert (k > k.max() * 0.5).sum() == pytest.approx(np.pi * 100, rel=0.08)


def test_focus_plane_stays_sharp_and_no_bleed_over_sharp_foreground():
    img, d = _scene()
    coc = 30.0 * np.abs(d - 1.0)  # focus on the square, background CoC 30 px
    out = render_defocus(img, d, coc, focus=1.0).image
    sq = out[50:110, 70:130]
    assert np.abs(sq - img[50:110, 70:130]).max() < 1e-5  # the sharp subject is untouched, to its very edge
    # background right next to the square holds no red from the square
    ring = np.zeros(d.shape, bool)
    ring[44:116, 64:136] = True
    ring[50:110, 70:130] = False
    plain = render_defocus(img, np.zeros_like(d), np.full_like(d, 30.0)).image  # everything one layer
    red_layered = (out[ring][:, 0] - out[ring][:, 1:].mean(1)).mean()
    red_plain = (plain[ring][:, 0] - plain[ring][:, 1:].mean(1)).mean()
    assert red_plain > red_layered + 0.1  # a single layer smears the square's red over the background
    # the background far from the square is blurred (lost its block edges)
    assert np.abs(np.diff(out[:30, :, 1], axis=1)).mean() < 0.5 * np.abs(np.diff(img[:30, :, 1], axis=1)).mean()


def test_blurred_foreground_spreads_over_sharp_background():
    img, d = _scene()
    coc = 20.0 * np.abs(d - 0.0)  # focus on the background
    out = render_defocus(img, d, coc, focus=0.0).image
    far = np.ones(d.shape, bool)
    far[30:130, 50:150] = False
    assert np.abs(out[far] - img[far]).max() < 1e-5  # background away from the square untouched
    # just outside the square's edge the blurred red spreads over the background
    strip_out = out[75:85, 131:137]
    strip_in = img[75:85, 131:137]
    assert (strip_out[..., 0] - strip_in[..., 0]).mean() > 0.05


def _edge_width(profile: np.ndarray) -> float:
    """Distance between the 10 % and 90 % points of a monotone step profile."""
    p = (profile - profile[0]) / (profile[-1] - profile[0])
    i10 = np.argmax(p > 0.1)
    i90 = np.argmax(p > 0.9)
    return float(i90 - i10)


def test_blur_radius_grows_with_disparity_difference_as_formula():
    """A step edge on a plane at disparity d, focus d_f: its 10-90 % width grows ~ K |d - d_f|."""
    h, w = 64, 256
    img = np.zeros((h, w, 3), np.float32)
    img[:, w // 2:] = 1.0
    widths = []
    K = 40.0
    for dd in (0.25, 0.5, 1.0):
        d = np.full((h, w), dd, np.float32)
        coc = C.defocus_map(d, C.CocModel(K), 0.0).coc
        assert coc.max() == pytest.approx(K * dd)
        out = render_defocus(img, d, coc, linear=True, options=RenderOptions(highlight_gain=1.0)).image
        widths.append(_edge_width(out[h // 2, :, 1]))
    # disc of diameter c: a step blurred by a disc has a 10-90 % width of about 0.6 c
    for (dd, wd) in zip((0.25, 0.5, 1.0), widths):
        assert wd == pytest.approx(0.6 * K * dd, rel=0.3, abs=2)
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] / widths[0] == pytest.approx(4.0, rel=0.3)


def test_tiles_match_single_piece():
    img, d = _scene(200, 260, seed=3)
    coc = 16.0 * np.abs(d - 0.5)
    one = render_defocus(img, d, coc, focus=0.5).image
    tiled = render_defocus(img, d, coc, focus=0.5, options=RenderOptions(tile=64, threads=2)).image
    # identical up to the occlusion fill (an extrapolation that sees a different crop per tile)
    err = np.abs(one - tiled).max(axis=2)
    assert err.mean() < 1e-3 and np.percentile(err, 99) < 0.01 and err.max() < 0.05


def test_mask_keeps_subject_sharp():
    img, d = _scene()
    mask = np.zeros_like(d)
    mask[10:40, 10:60] = 1.0  # a background patch
    plan = C.defocus_map(d, C.CocModel(30.0), 1.0, mask=mask)
    out = render_defocus(img, plan.order, plan.coc).image
    assert np.abs(out[12:38, 12:58] - img[12:38, 12:58]).max() < 1e-5
    assert np.abs(out[120:150, 150:190] - img[120:150, 150:190]).mean() > 0.02


def test_tilt_makes_a_sharp_band():
    h, w = 120, 160
    d = np.tile(np.linspace(0, 1, h, dtype=np.float32)[:, None], (1, w))  # a ground plane, nearer at the bottom
    plan = C.defocus_map(d, C.CocModel(40.0), float(d[60, 0]), tilt=(-30.0, 0.0), centre=(80, 60))
    flat = C.defocus_map(d, C.CocModel(40.0), float(d[60, 0]))
    assert plan.coc[60, 80] == pytest.approx(0.0, abs=1e-4)
    # tilted against the scene: blur grows faster away from the band than without tilt
    assert plan.coc[5, 80] > flat.coc[5, 80] * 1.3 and plan.coc[115, 80] > flat.coc[115, 80] * 1.3


# --- disparity -------------------------------------------------------------------------------
def test_load_disparity_units_and_errors(tmp_path):
    d = np.linspace(1, 5, 40 * 30, dtype=np.float32).reshape(30, 40)
    np.save(tmp_path / "depth.npy", d)
    r = load_disparity(tmp_path / "depth.npy", (60, 80), "depth-m")
    assert r.unit == "inv-m" and r.disparity.shape == (60, 80)
    assert r.disparity[0, 0] > r.disparity[-1, -1]  # near (1 m) has the larger disparity
    cv2.imwrite(str(tmp_path / "d16.png"), (np.linspace(0, 1, 1200).reshape(30, 40) * 65535).astype(np.uint16))
    rel = load_disparity(tmp_path / "d16.png", (30, 40))
    assert rel.disparity.min() == 0.0 and rel.disparity.max() == 1.0
    with pytest.raises(InputError, match="aspect"):
        load_disparity(tmp_path / "d16.png", (40, 40))


def test_fill_from_background_and_refine():
    d = np.zeros((40, 40), np.float32)
    d[:, 20:] = 1.0
    valid = np.ones_like(d, bool)
    valid[:, 16:24] = False  # an occlusion band across the edge
    f = fill_from_background(np.where(valid, d, 0.5), valid)
    assert np.all(f[:, 16:24] == 0.0)  # filled from the far (background) side
    img = np.zeros((40, 40, 3), np.float32)
    img[:, 20:] = 1.0
    r = refine(f, img, valid.astype(np.float32))
    assert r[:, 22:].mean() > 0.8 and r[:, :18].mean() < 0.2  # the edge snaps back to the image edge


def test_sweep_and_focus_controls():
    d = np.tile(np.linspace(0, 1, 50, dtype=np.float32), (20, 1))
    fs = C.sweep_focus(d, 5)
    assert fs[0] > fs[-1] and len(fs) == 5
    assert C.focus_at(d, 49, 10) > 0.9
    assert C.parse_point("0.5,0.5", (21, 51)) == (25.0, 10.0)
    with pytest.raises(UsageError):
        C.parse_point("900,10", (20, 50))


# --- CLI ---------------------------------------------------------------------------------------
def aif(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aifcli", *args], capture_output=True, text=True, timeout=300)


def test_cli_image_disparity_sweep_and_errors(tmp_path):
    img, d = _scene()
    cv2.imwrite(str(tmp_path / "img.png"), (img[..., ::-1] * 255 + 0.5).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "d.png"), (d * 65535).astype(np.uint16))
    before = (tmp_path / "img.png").read_bytes()
    r = aif("refocus", str(tmp_path / "img.png"), "--disparity", str(tmp_path / "d.png"), "--focus-at", "100,80",
            "--blur", "30", "-o", str(tmp_path / "out.png"), "--debug-dir", str(tmp_path / "dbg"), "--json")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "dbg" / "disparity.png").exists() and (tmp_path / "dbg" / "disparity.npy").exists()
    out = cv2.imread(str(tmp_path / "out.png"))[..., ::-1].astype(np.float32) / 255
    assert np.abs(out[50:110, 70:130] - img[50:110, 70:130]).max() <= 1 / 255 + 1e-6
    assert (tmp_path / "img.png").read_bytes() == before
    # refuses to overwrite
    r = aif("refocus", str(tmp_path / "img.png"), "-d", str(tmp_path / "d.png"), "-o", str(tmp_path / "out.png"))
    assert r.returncode == 2 and "exists" in r.stderr
    # sweep: frames + gif
    r = aif("refocus", str(tmp_path / "img.png"), "-d", str(tmp_path / "d.png"), "--sweep", "3", "--blades", "6",
            "-o", str(tmp_path / "pull.jpg"))
    assert r.returncode == 0, r.stderr
    assert all((tmp_path / f"pull_{i:03d}.jpg").exists() for i in range(3)) and (tmp_path / "pull.gif").exists()
    # a single image without a disparity map: one line, exit 2
    r = aif("refocus", str(tmp_path / "img.png"), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "--disparity" in r.stderr and "Traceback" not in r.stderr
    # a disparity map of another shape
    cv2.imwrite(str(tmp_path / "bad.png"), np.zeros((50, 50), np.uint16))
    r = aif("refocus", str(tmp_path / "img.png"), "-d", str(tmp_path / "bad.png"), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "bad.png" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = aif("refocus", str(tmp_path / "img.png"), "-d", str(tmp_path / "d.png"), "--aperture", "f/1.4", "--blur", "3",
            "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "either" in r.stderr


# --- pair and bracket inputs ----------------------------------------------------------------------
def test_pair_parallax_gives_foreground_larger_disparity():
    from aifcli.align.pair import align_pair
    from aifcli.fuse.toy import make_toy_pair
    from aifcli.refocus.disparity import parallax_from_alignment

    tp = make_toy_pair(240, 320, seed=1)
    al = align_pair(tp.main_near, tp.ultrawide, ratio=tp.ratio)
    res = parallax_from_alignment(al, tp.main_near.shape[:2], tp.aif)
    fg = tp.fg_alpha > 0.99
    bg = cv2.erode((tp.fg_alpha < 0.01).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    gap = float(np.median(res.disparity[fg]) - np.median(res.disparity[bg]))
    flipped = parallax_from_alignment(al, tp.main_near.shape[:2], tp.aif, flip=True)
    gap_f = float(np.median(flipped.disparity[fg]) - np.median(flipped.disparity[bg]))
    # the two signs separate foreground and background clearly, in opposite directions
    assert abs(gap) > 0.3 and gap * gap_f < 0
    assert res.disparity.shape == tp.main_near.shape[:2] and res.unit == "relative"


def test_cli_pair_and_bracket_inputs(tmp_path):
    from aifcli.fuse.toy import make_toy_pair
    from aifcli.stack.synthetic import make_bracket

    tp = make_toy_pair(240, 320, seed=2)
    for name, a in (("main.png", tp.main_near), ("uw.png", tp.ultrawide)):
        cv2.imwrite(str(tmp_path / name), (np.clip(a, 0, 1)[..., ::-1] * 255 + 0.5).astype(np.uint8))
    r = aif("refocus", str(tmp_path / "main.png"), str(tmp_path / "uw.png"), "--deblur", "-o",
            str(tmp_path / "pair_aif.png"), "--debug-dir", str(tmp_path / "pdbg"), "--json")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pdbg" / "disparity.npy").exists() and (tmp_path / "pdbg" / "aif.png").exists()
    import json as _j

    info = _j.loads(r.stdout)
    assert info["input_kind"] == "pair" and info["disparity"]["source"] == "pair"
    # deblur writes the fused all-in-focus image exactly
    a = cv2.imread(str(tmp_path / "pair_aif.png"))
    b = cv2.imread(str(tmp_path / "pdbg" / "aif.png"))
    assert np.array_equal(a, b)
    br = make_bracket(120, 160, n=5, seed=3)
    (tmp_path / "br").mkdir()
    for i, f in enumerate(br.frames):
        cv2.imwrite(str(tmp_path / "br" / f"f{i:02d}.png"), (np.clip(f, 0, 1)[..., ::-1] * 255 + 0.5).astype(np.uint8))
    r = aif("refocus", str(tmp_path / "br"), "--blur", "12", "--focus-at", "0.3,0.45", "-o", str(tmp_path / "br.png"),
            "--json")
    assert r.returncode == 0, r.stderr
    assert _j.loads(r.stdout)["disparity"]["source"] == "bracket"
    assert cv2.imread(str(tmp_path / "br.png")).shape == (120, 160, 3)


def test_focus_a_hair_below_the_nearest_disparity_keeps_the_subject_sharp():
    """Regression: a focus disparity within float rounding of the map's maximum (synth
    scene 7: the focused card is the nearest thing) once made two coincident layer
    centres and wiped the in-focus card's border."""
    from aifcli.synth.pairs import make_pair_scene

    sc = make_pair_scene(0, "512", "generic-phone", noise=0.0, index=7)
    m = sc.metadata
    fd = m["baseline_mm"] / 1000 * m["main"]["focal_px"] / m["main"]["focus_near_m"]
    assert abs(fd - float(sc.disparity.max())) < 1e-4  # the situation under test
    out = render_defocus(sc.aif, sc.disparity, sc.coc_near, focus=fd, options=RenderOptions(highlight_gain=1)).image
    sharp = sc.coc_near < 0.5
    assert sharp.sum() > 1000 and np.abs(out - sc.aif)[sharp].max() < 1e-4


@pytest.mark.parametrize("index", [1, 8])
def test_pair_disparity_sign_on_synth_pairs(index):
    """The automatic sign (near side = long tail of the parallax) matches the truth on
    scenes where 'lower is nearer' fails (1) and where the baseline points the other way (8)."""
    from aifcli.align.pair import align_pair
    from aifcli.presets import get_preset
    from aifcli.refocus.disparity import parallax_from_alignment
    from aifcli.synth.pairs import make_pair_scene

    pr = get_preset("generic-phone")
    sc = make_pair_scene(0, "512", pr, noise=1.0, index=index)
    al = align_pair(sc.main_near, sc.ultrawide, preset=pr)
    res = parallax_from_alignment(al, sc.aif.shape[:2], sc.aif)
    c = float(np.corrcoef(res.disparity.ravel(), sc.disparity.ravel())[0, 1])
    assert c > 0.4, (c, res.info)
    assert res.info["sign_from"] == "near-tail"


def test_fill_into_matches_full_frame_fill():
    """The boxed occlusion fill equals the full-frame reference where the 1/4 grid is exact."""
    from aifcli.refocus.render import _fill, _fill_into

    rng = np.random.default_rng(1)
    h, w = 400, 560
    yy, xx = np.mgrid[:h, :w]
    own = (xx - 220) ** 2 + (yy - 200) ** 2 < 120 ** 2
    P = np.zeros((h, w, 4), np.float32)
    P[own, :3] = rng.random((int(own.sum()), 3))
    P[own, 3] = 1.0
    zone = ~own & (xx < 400)
    ref = P.copy()
    fc, near = _fill(ref, 20.0)
    np.copyto(ref, fc, where=(zone & near)[..., None])
    got = P.copy()
    assert _fill_into(got, zone, 20.0)
    assert np.abs(got - ref).max() < 1e-5
