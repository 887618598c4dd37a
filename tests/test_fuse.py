"""Occlusion-aware fusion (aif fuse): quality on toy scenes with ground truth, roles, bad pairs, batches."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from aifcli.cli.app import app
from aifcli.errors import UsageError
from aifcli.fuse import fuse_pair
from aifcli.fuse.toy import make_toy_pair
from aifcli.image import ImageMeta
from aifcli.io import read_image, write_image

runner = CliRunner()


def psnr(a, b, m=None):
    e = (a.astype(np.float64) - b) ** 2
    e = e[m] if m is not None else e
    return 10 * np.log10(1.0 / max(float(e.mean()), 1e-12))


def rmse(a, b, m):
    return float(np.sqrt(((a.astype(np.float64) - b) ** 2)[m].mean()))


@pytest.mark.parametrize("focus", ["near", "far"])
def test_fusion_beats_both_inputs_and_keeps_the_sharp_main(focus):
    tp = make_toy_pair(240, 320, seed=1)
    main = tp.main_near if focus == "near" else tp.main_far
    r = fuse_pair(main, tp.ultrawide, ratio=2.0, keep_intermediates=True)
    assert r.image.shape == main.shape and r.image.dtype == np.float32
    assert psnr(r.image, tp.aif) > psnr(main, tp.aif) + 1.0
    assert psnr(r.image, tp.aif) > psnr(r.intermediates["color_matched"], tp.aif) + 1.0
    infocus = tp.fg_alpha > 0.99 if focus == "near" else cv2.erode(1 - tp.fg_alpha, np.ones((25, 25))) > 0.99
    # in the main's in-focus region the result is no worse than the main: within 0.2 dB, or
    # (the toy main is exact there) within 0.5/255 RMS
    assert rmse(r.image, tp.aif, infocus) <= rmse(main, tp.aif, infocus) * 1.024 + 2e-3


@pytest.mark.parametrize("focus", ["near", "far"])
def test_on_the_ultrawides_grid_the_bicubic_warp_keeps_the_sharp_main(focus):
    # fuse_scale 0.5 is the toy ultra-wide's own density: the path of 12 MP pairs, where the
    # warp is bicubic and main_mask blurs the ultra-wide by 0.45 px before comparing
    # (without that blur its noise took part of the exact main's in-focus region: RMSE
    # 0.0019-0.0031 on three seeds, 0.0007-0.0012 with it)
    tp = make_toy_pair(240, 320, seed=1)
    main = tp.main_near if focus == "near" else tp.main_far
    r = fuse_pair(main, tp.ultrawide, ratio=2.0, fuse_scale=0.5)
    assert r.alignment.interpolation((120, 160)) == cv2.INTER_CUBIC
    assert r.alignment.interpolation(main.shape[:2]) == cv2.INTER_LINEAR  # upsampled 2x
    assert psnr(r.image, tp.aif) > psnr(main, tp.aif) + 1.0
    infocus = tp.fg_alpha > 0.99 if focus == "near" else cv2.erode(1 - tp.fg_alpha, np.ones((25, 25))) > 0.99
    assert rmse(r.image, tp.aif, infocus) <= rmse(main, tp.aif, infocus) * 1.024 + 2e-3


def test_masks_sum_to_one_and_intermediates_are_complete():
    tp = make_toy_pair(240, 320, seed=2)
    r = fuse_pair(tp.main_near, tp.ultrawide, ratio=2.0, keep_intermediates=True)
    s = r.masks["main"] + r.masks["ultrawide"] + r.masks["refined"]
    assert np.allclose(s, 1.0, atol=1e-4)
    for k in ("homography_warped", "flow_warped", "color_matched", "refined_main", "confidence", "mask_main",
              "mask_ultrawide", "mask_refined"):
        assert k in r.intermediates
    # where the main keeps everything, the output is the main, bit for bit
    keep = r.masks["main"] > 0.9999
    blurred_keep = cv2.erode(keep.astype(np.uint8), np.ones((41, 41))) > 0
    if blurred_keep.any():
        assert np.abs(r.image - tp.main_near)[blurred_keep].max() < 2e-3


def test_min_confidence_floors_the_ultrawide_share_where_the_flow_was_rejected():
    tp = make_toy_pair(240, 320, seed=1, baseline=0.03, z_fg=0.3)
    r0 = fuse_pair(tp.main_near, tp.ultrawide, ratio=2.0, min_confidence=0.0)
    r1 = fuse_pair(tp.main_near, tp.ultrawide, alignment=r0.alignment, min_confidence=0.25)
    assert np.array_equal(r0.confidence, r1.confidence)  # the reported confidence has no floor
    assert r0.summary()["min_confidence"] == 0.0 and r1.summary()["min_confidence"] == 0.25
    s = r1.masks["main"] + r1.masks["ultrawide"] + r1.masks["refined"]
    assert np.allclose(s, 1.0, atol=1e-4)
    low = (r0.confidence < 0.05) & (r0.masks["main"] < 0.5)
    assert low.sum() > 100
    assert r0.masks["ultrawide"][low].mean() < 0.05
    assert r1.masks["ultrawide"][low].mean() > r0.masks["ultrawide"][low].mean() + 0.02
    assert r1.masks["ultrawide"].max() <= 1.0 and r1.masks["refined"].min() >= -1e-6
    with pytest.raises(UsageError):
        fuse_pair(tp.main_near, tp.ultrawide, alignment=r0.alignment, min_confidence=1.5)


def test_defocus_bias_is_what_a_blur_in_light_adds():
    """A texture blurred in light is brighter in display values than the sharp one on
    average; ``defocus_bias`` of the sharp image predicts by how much, and taking it off
    the defocused image gives back most of the sharp image's local means. Flat: no bias."""
    from aifcli.fuse.pair import defocus_bias
    from aifcli.image import linear_to_srgb, srgb_to_linear

    rng = np.random.default_rng(0)
    sharp = cv2.resize(rng.uniform(0.02, 0.98, (64, 64, 3)).astype(np.float32), (256, 256),
                       interpolation=cv2.INTER_NEAREST)  # 4 px blocks of random grey levels
    defocused = linear_to_srgb(cv2.GaussianBlur(srgb_to_linear(sharp), (0, 0), 8.0))
    lo = lambda a: cv2.GaussianBlur(a, (0, 0), 16.0)[32:-32, 32:-32]  # noqa: E731
    before = float(np.abs(lo(defocused) - lo(sharp)).mean())
    b = defocus_bias(sharp, 8.0)
    after = float(np.abs(lo(defocused - b) - lo(sharp)).mean())
    assert b.shape == sharp.shape and float(b.mean()) > 0.02
    assert after < 0.3 * before, (before, after)
    assert np.abs(defocus_bias(np.full((128, 128, 3), 0.4, np.float32))).max() < 1e-4


def test_debiased_refined_main_uses_the_bias_only_where_trusted_and_on_large_grids():
    """The refined main loses the ultra-wide's defocus bias, times the content check's
    agreement (none where it disagrees); on grids under MIN_WIDE_PX neither the correction
    nor the wider band applies (sized in grid px, they hurt small images)."""
    from aifcli.fuse.pair import MIN_WIDE_PX, debiased_refined_main, defocus_bias, refined_main

    rng = np.random.default_rng(1)
    h, w = 600, MIN_WIDE_PX + 32
    uw = cv2.resize(rng.uniform(0.02, 0.98, (h // 4, w // 4, 3)).astype(np.float32), (w, h),
                    interpolation=cv2.INTER_NEAREST)
    main = cv2.GaussianBlur(uw, (0, 0), 6.0)
    plain = refined_main(main)
    got = debiased_refined_main(main, uw)
    want = plain - cv2.resize(defocus_bias(uw, out_shape=(h // 4, w // 4)), (w, h), interpolation=cv2.INTER_LINEAR)
    assert float(np.abs(got - plain).mean()) > 0.01  # the bias of a texture this strong is several levels
    assert float(np.abs(got - want)[8:-8, 8:-8].mean()) < 0.002
    assert np.array_equal(debiased_refined_main(main, uw, agree=np.zeros((h, w), np.float32)), plain)
    assert np.array_equal(debiased_refined_main(main, None), plain)
    small = main[:256, :MIN_WIDE_PX - 1]
    assert np.array_equal(debiased_refined_main(small, uw[:256, :MIN_WIDE_PX - 1]), refined_main(small, boost2=0.0))


def test_large_foreground_occluder_does_not_ghost():
    """The confidence map must keep the ultra-wide's foreground out of the disoccluded background."""
    ratios = []
    for seed in (1, 2, 3):
        tp = make_toy_pair(240, 320, seed=seed, baseline=0.03, z_fg=0.3)
        band = cv2.dilate(tp.occlusion, np.ones((5, 5))) > 0.5
        full = fuse_pair(tp.main_near, tp.ultrawide, ratio=2.0)
        ghost = fuse_pair(tp.main_near, tp.ultrawide, alignment=full.alignment, use_confidence=False)
        ratios.append(rmse(full.image, tp.aif, band) / rmse(ghost.image, tp.aif, band))
        assert full.masks["ultrawide"][tp.occlusion > 0.5].mean() < 0.3
    assert np.mean(ratios) < 0.85, ratios


def test_ultrawide_defocused_near_camera_main_wins():
    tp = make_toy_pair(240, 320, seed=1, uw_fg_blur=4.0)
    r = fuse_pair(tp.main_near, tp.ultrawide, ratio=2.0)
    fg = cv2.erode(tp.fg_alpha, np.ones((9, 9))) > 0.99
    assert r.masks["main"][cv2.resize(fg.astype(np.uint8), r.masks["main"].shape[::-1]) > 0].mean() > 0.95
    assert rmse(r.image, tp.aif, fg) <= rmse(tp.main_near, tp.aif, fg) * 1.024 + 1e-3


def test_colour_cast_does_not_leak_into_the_result():
    tp = make_toy_pair(240, 320, seed=4, cast=(1.3, 0.9, 0.7), gamma=1.3)
    r = fuse_pair(tp.main_near, tp.ultrawide, ratio=2.0, keep_intermediates=True)
    lo = lambda a: cv2.GaussianBlur(a, (0, 0), 6)  # noqa: E731
    # the aligned ultra-wide carries the cast; colour matching removes it
    assert np.abs(lo(r.intermediates["flow_warped"]) - lo(tp.main_near)).mean() > 0.04
    assert np.abs(lo(r.intermediates["color_matched"]) - lo(tp.main_near)).mean() < 0.015
    # low frequencies (colour) of the result stay the main's
    assert np.abs(lo(r.image) - lo(tp.main_near)).mean() < 0.01


def test_refined_main_removes_noise_and_keeps_edges():
    """I_d, used where the main is defocused and the ultra-wide untrusted: the main's
    finest band there is noise, which it removes; an edge well above the noise stays."""
    from aifcli.fuse.pair import refined_main

    rng = np.random.default_rng(0)
    clean = np.full((200, 200, 3), 0.3, np.float32)
    clean[:, 100:] = 0.7  # a step of 0.4
    noisy = (clean + rng.normal(0, 0.01, clean.shape)).astype(np.float32)
    out = refined_main(noisy, boost=0, boost2=0)
    flat = np.zeros((200, 200), bool)
    flat[:, 10:80] = flat[:, 120:190] = True
    assert rmse(out, clean, flat) < 0.6 * rmse(noisy, clean, flat)  # noise removed
    # the edge keeps its height and its steepest part (coefficients far above the noise)
    height = lambda a: float(a[:, 102:106].mean() - a[:, 94:98].mean())  # noqa: E731
    assert abs(height(out) - height(clean)) < 0.02
    assert np.abs(out[:, 99:101] - noisy[:, 99:101]).max() < 1e-6
    assert np.allclose(refined_main(noisy, k=0, boost=0, boost2=0), noisy)  # the main itself


def test_refined_main_restores_some_of_a_defocused_mid_band():
    """The default refined main raises the mid band that defocus attenuated: a sinusoid of
    period 24 px blurred to 2/3 of its amplitude comes back most of the way, without
    overshooting it."""
    from aifcli.fuse.pair import refined_main

    x = np.arange(256, dtype=np.float32)
    clean = np.repeat((0.5 + 0.2 * np.sin(2 * np.pi * x / 24))[None], 128, axis=0).astype(np.float32)
    blurred = cv2.GaussianBlur(clean, (0, 0), 3.4)
    out = refined_main(np.dstack([blurred] * 3))[..., 0]
    inner = np.zeros(clean.shape, bool)
    inner[20:-20, 30:-30] = True
    amp = lambda a: float(np.std(a[inner]))  # noqa: E731
    assert amp(blurred) < 0.7 * amp(clean)
    assert amp(blurred) * 1.2 < amp(out) < amp(clean)
    assert rmse(out, clean, inner) < 0.5 * rmse(blurred, clean, inner)


def test_sharp_main_marks_the_mains_own_detail_not_noise_or_blur():
    """Texture well above the noise: 1 (the main keeps it, whatever the ultra-wide shows);
    the same texture defocused, and a flat noisy area: 0."""
    from aifcli.fuse.pair import sharp_main

    rng = np.random.default_rng(1)
    tex = cv2.GaussianBlur(rng.random((240, 240)).astype(np.float32), (0, 0), 1.0)
    tex = (tex - tex.mean()) / tex.std() * 0.08 + 0.5
    img = np.full((240, 720), 0.5, np.float32)
    img[:, :240] = tex  # in focus
    img[:, 240:480] = cv2.GaussianBlur(tex, (0, 0), 4.0)  # defocused
    noisy = np.dstack([img] * 3) + rng.normal(0, 0.01, (240, 720, 3)).astype(np.float32)  # flat + noise on the right
    k = sharp_main(noisy.astype(np.float32))
    assert k[20:220, 20:220].mean() > 0.95
    assert k[20:220, 260:460].mean() < 0.05 and k[20:220, 500:700].mean() < 0.05


def test_main_detail_keeps_a_low_contrast_in_focus_surface_from_a_noisier_ultrawide():
    """main_mask with own_detail: a faint in-focus texture in the main, which the ultra-wide
    shows 2 px off and with twice the noise, stays the main's (the energy test alone gives
    the ultra-wide about half); a defocused main under an aligned, sharp ultra-wide still
    goes to the ultra-wide."""
    from aifcli.fuse.pair import main_mask

    rng = np.random.default_rng(3)
    n = 240

    def texture(c):
        t = cv2.GaussianBlur(rng.random((n, n)).astype(np.float32), (0, 0), 1.0)
        return (t - t.mean()) / t.std() * c + 0.5

    faint, strong = texture(0.015), texture(0.08)
    main = np.full((n, 3 * n), 0.5, np.float32)
    uw = main.copy()
    main[:, :n], uw[:, :n] = faint, np.roll(faint, 2, axis=1)
    main[:, n:2 * n], uw[:, n:2 * n] = cv2.GaussianBlur(strong, (0, 0), 4.0), strong

    def rgb(g, s):
        return np.clip(np.dstack([g] * 3) + rng.normal(0, s, (n, 3 * n, 3)), 0, 1).astype(np.float32)

    m, u, field = rgb(main, 0.006), rgb(uw, 0.012), np.ones((n, 3 * n), np.float32)
    on, off = main_mask(m, u, field), main_mask(m, u, field, own_detail=False)
    inner = (slice(20, -20), slice(20, n - 20))
    assert on[inner].mean() > 0.95 and off[inner].mean() < 0.7
    defocused = (slice(20, -20), slice(n + 20, 2 * n - 20))
    assert on[defocused].mean() < 0.05


def test_main_mask_mid_band_gives_a_defocused_striped_object_to_the_ultrawide():
    """Wide stripes: between their edges the finest band is noise in both images, so the
    finest band alone lets a defocused main keep part of the flat stretches; the mid band
    sees the main's soft edges there. Where both are sharp the mid band changes nothing."""
    from aifcli.fuse.pair import main_mask

    rng = np.random.default_rng(5)
    n = 192
    stripes = (((np.arange(3 * n) // 24) % 2) * 0.5 + 0.25).astype(np.float32)[None].repeat(n, 0)
    main = stripes.copy()
    main[:, :n] = cv2.GaussianBlur(stripes, (0, 0), 3.0)[:, :n]  # left third: the main defocused

    def rgb(g):
        return np.clip(np.dstack([g] * 3) + rng.normal(0, 0.01, g.shape + (3,)), 0, 1).astype(np.float32)

    m, u, field = rgb(main), rgb(stripes), np.ones((n, 3 * n), np.float32)
    on, off = main_mask(m, u, field), main_mask(m, u, field, mid_band=False)
    defocused, sharp = (slice(20, -20), slice(20, n - 20)), (slice(20, -20), slice(n + 20, 3 * n - 20))
    assert on[defocused].mean() < 0.05 and off[defocused].mean() > 0.15
    assert np.allclose(on[sharp], off[sharp], atol=1e-3) and on[sharp].mean() > 0.7


def test_noise_energy_map_follows_brightness_dependent_noise():
    from aifcli.align.pair import fine_band
    from aifcli.fuse.pair import noise_energy_map

    rng = np.random.default_rng(4)
    y = np.repeat(np.linspace(0.1, 0.9, 512, dtype=np.float32)[None], 256, axis=0)
    noisy = y + rng.normal(0, 1, y.shape).astype(np.float32) * (0.002 + 0.02 * y)  # shot-noise-like
    band = fine_band(noisy)
    e = cv2.GaussianBlur(band * band, (0, 0), 8.0)
    est = noise_energy_map(cv2.GaussianBlur(noisy, (0, 0), 3.0), e)
    dark, bright = (slice(None), slice(20, 80)), (slice(None), slice(430, 490))
    for r in (dark, bright):
        assert 0.6 < est[r].mean() / e[r].mean() < 1.05
    assert est[bright].mean() > 4 * est[dark].mean()


def _paste_bus(uw, y0, x0, h=16, w=36):
    """An object in the ultra-wide only, as if it drove into view between the two exposures:
    red body, green roof, a row of white windows."""
    uw = uw.copy()
    uw[y0:y0 + h, x0:x0 + w] = (0.75, 0.12, 0.15)
    uw[y0:y0 + h // 4, x0:x0 + w] = (0.15, 0.75, 0.2)
    uw[y0 + h // 2:y0 + h // 2 + 3, x0 + 3:x0 + w - 3:6] = (0.9, 0.9, 0.9)
    return uw


def test_object_that_moved_between_exposures_is_kept_out():
    """Forward-backward consistency can accept flow on an object only one camera saw (the
    bus on the real iPhone pair); the content check against the main keeps it out."""
    tp = make_toy_pair(480, 640, seed=3)
    y0, x0, h, w = 326, 384, 16, 36
    uw = _paste_bus(tp.ultrawide, y0, x0, h, w)
    off = fuse_pair(tp.main_near, uw, ratio=2.0, content_check=False)
    on = fuse_pair(tp.main_near, uw, ratio=2.0, alignment=off.alignment)
    m = off.alignment.uw_map((480, 640))
    region = (m[..., 0] >= x0 - 2) & (m[..., 0] <= x0 + w + 2) & (m[..., 1] >= y0 - 2) & (m[..., 1] <= y0 + h + 2)
    assert region.sum() > 1500
    e_off, e_on, e_main = (rmse(x, tp.aif, region) for x in (off.image, on.image, tp.main_near))
    assert e_off > 2 * e_main  # without the check the bus leaks in
    assert e_on < 0.5 * e_off and e_on < 1.2 * e_main + 0.005, (e_off, e_on, e_main)
    assert on.masks["ultrawide"][region].mean() < 0.15
    # without a moved object the check changes (almost) nothing
    ref = fuse_pair(tp.main_near, tp.ultrawide, ratio=2.0, content_check=False)
    chk = fuse_pair(tp.main_near, tp.ultrawide, ratio=2.0, alignment=ref.alignment)
    assert chk.confidence.mean() > 0.99 * ref.confidence.mean()
    assert psnr(chk.image, tp.aif) > psnr(ref.image, tp.aif) - 0.05


def _exif(focal_35mm: int, model: str = "iPhone 13") -> bytes:
    from PIL import Image as PILImage

    ex = PILImage.Exif()
    ex[0x010F] = "Apple"
    ex[0x0110] = model
    ifd = ex.get_ifd(0x8769)
    ifd[0xA405] = focal_35mm
    return ex.tobytes()


def _write_pair(d, tp, with_exif=False, main="main.jpg", uw="uw.jpg", which="main_near"):
    d.mkdir(parents=True, exist_ok=True)
    mm = ImageMeta(exif_bytes=_exif(26)) if with_exif else None
    um = ImageMeta(exif_bytes=_exif(13)) if with_exif else None
    write_image(d / main, getattr(tp, which), meta=mm, quality=97)
    write_image(d / uw, tp.ultrawide, meta=um, quality=97)
    return d / main, d / uw


def test_swapped_roles_detected_from_exif(tmp_path):
    tp = make_toy_pair(240, 320, seed=1)
    m, u = _write_pair(tmp_path, tp, with_exif=True)
    out = tmp_path / "out.png"
    r = runner.invoke(app, ["fuse", str(u), str(m), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["pair"]["swapped"] and info["pair"]["ratio_source"] == "EXIF"
    assert "roles swapped from EXIF" in r.stderr
    assert read_image(out).pixels.shape == tp.main_near.shape
    assert psnr(read_image(out).pixels, tp.aif) > psnr(tp.main_near, tp.aif) + 1.0


def test_swapped_roles_detected_from_geometry_without_exif(tmp_path):
    tp = make_toy_pair(240, 320, seed=1)
    m, u = _write_pair(tmp_path, tp)
    r = runner.invoke(app, ["fuse", str(u), str(m), "-o", str(tmp_path / "o.png"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["pair"]["swapped"]


def test_bad_pairs_fail_with_one_clear_line(tmp_path):
    a = make_toy_pair(240, 320, seed=1)
    b = make_toy_pair(240, 320, seed=9, with_fg=False)
    write_image(tmp_path / "main.png", a.main_far)
    write_image(tmp_path / "other.png", b.ultrawide)  # a different scene
    (tmp_path / "notes.jpg").write_text("not an image")
    r = runner.invoke(app, ["fuse", str(tmp_path / "main.png"), str(tmp_path / "other.png"), "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 2 and "cannot align" in r.output and "other.png" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o.png").exists()
    r = runner.invoke(app, ["fuse", str(tmp_path / "main.png"), str(tmp_path / "notes.jpg"), "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 2 and "notes.jpg" in r.output
    r = runner.invoke(app, ["fuse", str(tmp_path / "main.png"), "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 2 and "missing the ultra-wide" in r.output
    r = runner.invoke(app, ["fuse", str(tmp_path / "no_such_dir"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "no such file or folder" in r.output
    r = runner.invoke(app, ["fuse", str(tmp_path / "main.png"), str(tmp_path / "." / "main.png"), "-o",
                            str(tmp_path / "o.png")])
    assert r.exit_code == 2 and "same file" in r.output and not (tmp_path / "o.png").exists()


def test_tiny_pair_fuses(tmp_path):
    """Below 64 work px the coarse grids are left out (DIS needs 12 px on its coarsest
    level; a 44 px main failed with OpenCV's error before)."""
    tp = make_toy_pair(240, 320, seed=1)
    small = lambda x, w: cv2.resize(x, (w, w * 3 // 4), interpolation=cv2.INTER_AREA)  # noqa: E731
    write_image(tmp_path / "main.png", small(tp.main_far, 44))
    write_image(tmp_path / "uw.png", small(tp.ultrawide, 64))
    r = runner.invoke(app, ["fuse", str(tmp_path / "main.png"), str(tmp_path / "uw.png"), "-o", str(tmp_path / "o.png"),
                            "--ratio", "2"])
    assert r.exit_code == 0, r.output
    assert read_image(tmp_path / "o.png").pixels.shape[:2] == (33, 44)


def test_debug_dir_and_overwrite(tmp_path):
    tp = make_toy_pair(240, 320, seed=2)
    m, u = _write_pair(tmp_path / "in", tp)
    out = tmp_path / "aif.jpg"
    dbg = tmp_path / "dbg"
    r = runner.invoke(app, ["fuse", str(m), str(u), "-o", str(out), "--debug-dir", str(dbg), "--ratio", "2"])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in dbg.iterdir())
    for k in ("homography_warped", "flow_warped", "color_matched", "confidence", "mask_main", "mask_ultrawide",
              "mask_refined"):
        assert f"aif.{k}.png" in names
    assert "aif.fuse.json" in names
    r = runner.invoke(app, ["fuse", str(m), str(u), "-o", str(out)])
    assert r.exit_code == 2 and "exists" in r.output
    r = runner.invoke(app, ["fuse", str(m), str(u), "-o", str(out), "--overwrite"])
    assert r.exit_code == 0


def test_batch_names_outputs_and_reports_failures(tmp_path):
    root = tmp_path / "pairs"
    tp = make_toy_pair(240, 320, seed=3)
    d = root / "scene_0000"
    _write_pair(d, tp, main="main_near.jpg", uw="ultrawide.jpg")
    write_image(d / "main_far.jpg", tp.main_far, quality=97)
    bad = root / "scene_0001"
    other = make_toy_pair(240, 320, seed=8, with_fg=False)
    _write_pair(bad, tp, main="main_near.jpg", uw="ultrawide.jpg")
    write_image(bad / "ultrawide.jpg", other.ultrawide, overwrite=True)  # wrong scene
    out = tmp_path / "out"
    r = runner.invoke(app, ["fuse", str(root), "-o", str(out), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)["plan"]
    assert {p["name"] for p in plan} == {"scene_0000/main_near", "scene_0000/main_far", "scene_0001"}
    assert not out.exists()
    r = runner.invoke(app, ["fuse", str(root), "-o", str(out), "--jobs", "1", "--ratio", "2"])
    assert r.exit_code == 1, r.output
    assert (out / "scene_0000_main_near.jpg").exists() and (out / "scene_0000_main_far.jpg").exists()
    assert not (out / "scene_0001.jpg").exists()
    log = json.loads((out / "aif-log.json").read_text())
    assert any(i["status"] == "failed" and "cannot align" in (i["error"] or "") for i in log["items"])
    r = runner.invoke(app, ["fuse", str(root), "-o", str(out), "--skip-existing", "--json", "--ratio", "2"])
    assert r.exit_code == 1
    st = {i["name"]: i["status"] for i in json.loads(r.stdout)["items"]}
    assert st["scene_0000/main_near"] == "skipped" and st["scene_0001"] == "failed"


def test_real_wide_tele_pair_fuses_end_to_end(shared_data, tmp_path):
    """12 MP iPhone files with EXIF Orientation=3: roles from EXIF (tele = main), output upright."""
    d = shared_data / "pairs" / "iphone11pro-wide-tele"
    out = tmp_path / "aif.jpg"
    r = runner.invoke(app, ["fuse", str(d / "wide_26mm_HR_IMG_20.jpg"), str(d / "tele_52mm_Ref_IMG_20.jpg"),
                            "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["pair"]["swapped"] and info["pair"]["main"].endswith("tele_52mm_Ref_IMG_20.jpg")
    assert info["alignment"]["inliers"] > 200
    res = read_image(out)
    tele = read_image(d / "tele_52mm_Ref_IMG_20.jpg")
    assert res.pixels.shape == tele.pixels.shape and res.meta.orientation == 1
    # the tele is sharp almost everywhere: the result stays close to it
    assert psnr(res.pixels, tele.pixels) > 35


def test_pyramid_blend_protects_the_main_at_coarse_levels():
    """A candidate whose mask is 0 over the main's region must not reach into it through
    the blurred coarse levels of its mask (the in-focus loss seen at 12 MP)."""
    from aifcli.fuse.pair import pyramid_blend

    rng = np.random.default_rng(0)
    diff = cv2.GaussianBlur(rng.normal(0, 1.0, (256, 256, 3)).astype(np.float32), (0, 0), 6.0)
    diff *= 0.1 / diff.std()  # coarse structure of amplitude 0.1
    mask = np.ones((256, 256), np.float32)
    mask[64:192, 64:192] = 0.0  # the main keeps this square
    inner = (slice(80, 176), slice(80, 176))
    free = pyramid_blend([diff], [mask], 5)
    kept = pyramid_blend([diff], [mask], 5, protect=mask.copy())
    assert np.abs(free[inner]).mean() > 3e-4  # without protection the coarse levels bleed in
    assert np.abs(kept[inner]).max() < 1e-6
    # max_erosion 2 (compose's on grids of MIN_WIDE_PX and more): the candidate's coarse
    # bands reach closer to the main's region (the defocused main's bias stays in a narrower
    # band) and still hardly into it
    near = pyramid_blend([diff], [mask], 5, protect=mask.copy(), max_erosion=2)
    ring = np.zeros(mask.shape, bool)
    ring[40:216, 40:216] = True
    ring[56:200, 56:200] = False  # 8-24 px outside the square
    assert np.abs(near - diff)[ring].mean() < 0.75 * np.abs(kept - diff)[ring].mean()
    assert np.abs(near[inner]).mean() < 0.1 * np.abs(free[inner]).mean()
    # with nothing to protect the blend is the plain Burt-Adelson one
    ones = np.ones_like(mask)
    assert np.allclose(pyramid_blend([diff], [ones], 5, protect=ones), pyramid_blend([diff], [ones], 5))


def test_compose_protects_regions_of_the_main_not_its_specks():
    """On wide grids ``compose`` protects the main's regions at coarse levels, but not a speck
    of ``M_m`` (narrower than ``REGION_PX``) inside an area the ultra-wide replaces: around
    the speck the ultra-wide's coarse bands come through, while a large in-focus square
    keeps them out as before."""
    from aifcli.fuse.pair import MIN_WIDE_PX, REGION_PX, _levels_for, compose, pyramid_blend

    n = MIN_WIDE_PX + 32
    rng = np.random.default_rng(0)
    diff = cv2.GaussianBlur(rng.normal(0, 1.0, (n, n, 3)).astype(np.float32), (0, 0), 8.0)
    diff *= 0.05 / diff.std()  # mid and coarse structure
    main = np.full((n, n, 3), 0.5, np.float32)
    mm = np.zeros((n, n), np.float32)
    mm[100:112, 100:112] = 1.0  # a speck, narrower than REGION_PX
    mm[400:700, 400:700] = 1.0  # a region
    assert 12 < REGION_PX < 300
    m_wc, m_d = 1.0 - mm, np.zeros_like(mm)
    out = compose(main, main, main + diff, main, m_wc, m_d) - main
    before = pyramid_blend([diff], [m_wc], _levels_for((n, n)), protect=m_wc, coarsest=True, max_erosion=2)
    ring = np.zeros((n, n), bool)
    ring[70:142, 70:142] = True
    ring[94:118, 94:118] = False  # 6-30 px around the speck
    assert np.abs(out - diff)[ring].mean() < 0.2 * np.abs(before - diff)[ring].mean()
    assert np.abs(out[470:630, 470:630]).max() < 1e-6  # the region's inside stays the main's


def test_pyramid_blend_passes_the_coarsest_level_on_request_and_still_protects_the_main():
    """``coarsest``: the lowest frequencies of a candidate come through where its mask is 1
    (the colour-matched ultra-wide's means, which a defocused main gets wrong), and the
    protection keeps them out of the main's region like every other level."""
    from aifcli.fuse.pair import pyramid_blend

    diff = np.full((512, 512, 3), 0.02, np.float32)  # a pure offset: nothing but the coarsest level
    ones = np.ones((512, 512), np.float32)
    assert np.abs(pyramid_blend([diff], [ones], 4)).max() < 1e-6
    assert np.allclose(pyramid_blend([diff], [ones], 4, coarsest=True), 0.02, atol=1e-6)
    mask = ones.copy()
    mask[128:384, 128:384] = 0.0  # 16 px of the coarsest level (1/16)
    kept = pyramid_blend([diff], [mask], 4, protect=mask.copy(), coarsest=True)
    assert np.abs(kept[176:336, 176:336]).max() < 1e-6  # eroded by 2 px of that level, and its pyrUp's reach
    assert np.allclose(kept[:32, :32], 0.02, atol=2e-3)


def test_a_main_defocused_in_linear_light_gets_the_scenes_means_back():
    """Defocus averages light, so a defocused texture encoded for display is brighter than the
    sharp one on average. Where the ultra-wide replaces the main, the result must move
    towards the sharp scene's local means, not keep the defocused main's (``match_colors``'
    linear_light and the blend's coarsest level). A planar scene rendered in linear light:
    the main blurred by 8 px outside a sharp rectangle, the ultra-wide at half its density
    with a colour cast. Measured: the main's bias 0.0077, the fused result's 0.0046 (0.0079
    with display-space means and the coarsest level left to the main); what remains is the
    fit's regression dilution and the ultra-wide's upsampling in display values."""
    from aifcli.image import linear_to_srgb
    from aifcli.fuse.toy import _texture

    rng = np.random.default_rng(2)
    lin = np.clip(cv2.resize(_texture(rng, 1024), (1280, 960), interpolation=cv2.INTER_CUBIC), 0, 1) ** 2.2
    sharp = np.zeros((960, 1280), bool)
    sharp[300:660, 400:880] = True
    main = linear_to_srgb(np.where(sharp[..., None], lin, cv2.GaussianBlur(lin, (0, 0), 8.0)))
    uw = linear_to_srgb(cv2.resize(lin * np.float32([1.1, 1.0, 0.85]), (640, 480), interpolation=cv2.INTER_AREA))
    uw = np.clip(uw + rng.normal(0, 0.003, uw.shape).astype(np.float32), 0, 1)
    gt = linear_to_srgb(lin)
    r = fuse_pair(main, uw, ratio=1.0)
    low = lambda x: cv2.GaussianBlur(x, (0, 0), 32.0)  # noqa: E731
    region = cv2.erode((~sharp).astype(np.uint8), np.ones((161, 161), np.uint8)) > 0
    region[:80], region[-80:], region[:, :80], region[:, -80:] = False, False, False, False
    bias_main = float(np.mean((low(main) - low(gt))[region]))
    bias_fused = float(np.mean((low(r.image) - low(gt))[region]))
    assert bias_main > 0.005
    assert abs(bias_fused) < 0.75 * bias_main


def test_the_mains_band_above_the_fuse_grid_is_dropped_only_where_it_is_noise_and_not_kept():
    """At 12 MP the blend runs on a grid of half the main's density: the main's band above
    it is its noise where it is defocused, and must not stay on top of the ultra-wide; where
    it holds detail, or the main is the source, it stays."""
    from aifcli.fuse.pair import onto_main

    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.random((128, 320, 3)).astype(np.float32), (0, 0), 4.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 0.6 + 0.2  # both halves span 0.2-0.8
    fine = (rng.random((128, 320, 1)) > 0.5).astype(np.float32) * 0.3 - 0.15  # detail at the pixel scale
    clean = smooth.copy()
    clean[:, 160:] += fine[:, 160:]  # right half: in focus
    main = np.clip(clean + rng.normal(0, 0.02, clean.shape).astype(np.float32), 0, 1)
    main_t = cv2.resize(main, (160, 64), interpolation=cv2.INTER_AREA)
    corr = np.zeros_like(main_t)
    keep = np.zeros((64, 160), np.float32)
    keep[:, 40:80] = 1.0  # the main is the source in the second quarter
    out = onto_main(main, main_t, corr, keep)
    q = [slice(8 + 80 * k, 72 + 80 * k) for k in range(4)]
    # defocused (no detail above the grid), not the source: the noise is gone
    assert rmse(out[:, q[0]], clean[:, q[0]], ...) < 0.6 * rmse(main[:, q[0]], clean[:, q[0]], ...)
    assert np.abs(out[:, q[1]] - main[:, q[1]]).max() < 1e-6  # the source: the main itself
    # in focus, not the source: the detail above the grid stays
    for k in (2, 3):
        assert rmse(out[:, q[k]], main[:, q[k]], ...) < 0.02
    # on the same grid the correction is just added
    same = onto_main(main, main, np.full_like(main, 0.01), np.zeros((128, 320), np.float32))
    assert np.allclose(same, np.clip(main + 0.01, 0, 1))


def test_fusion_on_a_coarser_grid_drops_the_defocused_mains_noise():
    from aifcli.fuse.pair import top_band_signal

    tp = make_toy_pair(240, 320, seed=1)
    rng = np.random.default_rng(1)
    main = np.clip(tp.main_near + rng.normal(0, 0.02, tp.main_near.shape).astype(np.float32), 0, 1)
    r = fuse_pair(main, tp.ultrawide, ratio=2.0, fuse_scale=0.5)
    up = lambda x: cv2.resize(x, (320, 240), interpolation=cv2.INTER_LINEAR)  # noqa: E731
    main_t = cv2.resize(main, (160, 120), interpolation=cv2.INTER_AREA)
    w = up(np.maximum(r.masks["main"], top_band_signal(main, main_t)))[..., None]
    # the same fusion with the main's band above the grid kept everywhere (the old way)
    kept = np.clip(r.image + (1 - w) * (main - up(main_t)), 0, 1)
    bg = tp.fg_alpha < 0.01  # the defocused background, focused near
    assert psnr(r.image, tp.aif, bg) > psnr(kept, tp.aif, bg) + 0.7
    assert psnr(r.image, tp.aif) > psnr(kept, tp.aif) + 0.7
