"""Local affine colour matching (aif colormatch)."""
from __future__ import annotations

import cv2
import numpy as np
from typer.testing import CliRunner

from aifcli.cli.app import app
from aifcli.color import match_colors
from aifcli.fuse.toy import make_toy_pair
from aifcli.io import read_image, write_gray8, write_image

runner = CliRunner()


def _cast(img: np.ndarray) -> np.ndarray:
    """A different camera: channel mixing, gains, a tone curve and vignetting."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (w / 2) ** 2
    vig = (1.0 - 0.25 * r2)[..., None]
    M = np.array([[1.05, 0.08, 0.0], [0.02, 0.9, 0.05], [0.0, 0.1, 0.75]], np.float32)
    out = np.clip(img @ M.T * vig + 0.03, 0, 1) ** 1.15
    return out.astype(np.float32)


def _rms(a, b, m=None):
    e = (a - b) ** 2
    return float(np.sqrt(e[m].mean() if m is not None else e.mean()))


def test_colour_cast_and_vignetting_are_removed():
    ref = make_toy_pair(240, 320, seed=4).aif
    src = _cast(ref)
    res = match_colors(src, ref)
    assert _rms(src, ref) > 0.05
    assert _rms(res.image, ref) < 0.02
    assert res.residual_after < res.residual_before / 3
    assert res.image.shape == src.shape and res.image.dtype == np.float32


def test_mask_keeps_unreliable_pixels_out_of_the_fit():
    ref = make_toy_pair(240, 320, seed=5).aif
    src = _cast(ref)
    src_bad = src.copy()
    src_bad[80:160, 100:200] = np.float32([1.0, 0.0, 1.0])  # a ghost: wrong content, not a colour shift
    mask = np.ones((240, 320), np.float32)
    mask[70:170, 90:210] = 0
    good = np.ones((240, 320), bool)
    good[60:180, 80:220] = False
    with_mask = match_colors(src_bad, ref, mask).image
    without = match_colors(src_bad, ref).image
    assert _rms(with_mask, ref, good) < 0.025
    assert _rms(with_mask, ref, good) < _rms(without, ref, good)


def test_empty_mask_falls_back_to_a_global_fit():
    ref = make_toy_pair(240, 320, seed=6).aif
    src = np.clip(ref * np.float32([1.2, 1.0, 0.8]), 0, 1)
    res = match_colors(src, ref, np.zeros((240, 320), np.float32))
    assert _rms(res.image, ref) < _rms(src, ref)


def test_reference_may_have_another_size_but_not_another_shape():
    ref = make_toy_pair(240, 320, seed=4).aif
    src = _cast(ref)
    small_ref = ref[::2, ::2]
    assert _rms(match_colors(src, small_ref).image, ref) < 0.03
    import pytest

    from aifcli.errors import InputError

    with pytest.raises(InputError, match="aspect"):
        match_colors(src, ref[:, :200])


def test_colormatch_cli(tmp_path):
    ref = make_toy_pair(240, 320, seed=4).aif
    write_image(tmp_path / "ref.png", ref)
    write_image(tmp_path / "src.png", _cast(ref))
    write_gray8(tmp_path / "mask.png", np.ones((240, 320), np.float32))
    out = tmp_path / "out.png"
    r = runner.invoke(app, ["colormatch", str(tmp_path / "src.png"), str(tmp_path / "ref.png"),
                            "--mask", str(tmp_path / "mask.png"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert _rms(read_image(out).pixels, ref) < 0.025
    r = runner.invoke(app, ["colormatch", str(tmp_path / "src.png"), str(tmp_path / "ref.png"), "-o", str(out)])
    assert r.exit_code == 2 and "exists" in r.output
    r = runner.invoke(app, ["colormatch", str(tmp_path / "src.png"), str(tmp_path / "missing.png"), "-o",
                            str(tmp_path / "o2.png")])
    assert r.exit_code == 2 and "missing.png" in r.output


def test_a_defocused_reference_does_not_brighten_a_sharp_source():
    # defocus averages light: encoded for display, a blurred texture is brighter on average
    # than the sharp one (the encoding is concave). Fitted on means of light, the match of a
    # sharp source to its own defocused copy changes nothing at low frequencies; fitted on
    # display-space means it brightened the source by that bias.
    from aifcli.image import linear_to_srgb, srgb_to_linear

    rng = np.random.default_rng(3)
    # 4 px cells, 1280 px wide: the fit's 192 px grid averages ~7x7 of them (where a sharp and a defocused image
    # look alike, as the fit assumes)
    lin = np.repeat(np.repeat(rng.random((240, 320, 3)), 4, 0), 4, 1).astype(np.float32) ** 2
    sharp = linear_to_srgb(lin)
    defocused = linear_to_srgb(cv2.GaussianBlur(lin, (0, 0), 6.0))
    low = lambda x: cv2.GaussianBlur(x, (0, 0), 24.0)  # noqa: E731
    bias = float(np.mean(low(defocused) - low(sharp)))
    assert bias > 0.03
    assert float(np.abs(srgb_to_linear(sharp) - lin).max()) < 1e-5
    by_light = match_colors(sharp, defocused).image
    by_display = match_colors(sharp, defocused, linear_light=False).image
    assert _rms(low(by_light), low(sharp)) < 0.03  # 0.019; display-space means: 0.089, the bias itself
    assert _rms(low(by_display), low(sharp)) > 3 * _rms(low(by_light), low(sharp))
