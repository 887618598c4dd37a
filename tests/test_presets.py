"""Presets: files parse, EXIF matching (JPEG 'EXIF ...' and TIFF/DNG 'Image ...' keys), roles, fallback."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from aifcli.errors import UsageError
from aifcli.presets import get_preset, load_presets, match_file, match_tags

REQUIRED = ["huawei-mate30pro", "iphone-13", "pixel-6-pro", "iphone-11-pro", "iphone-12", "iphone-14-pro",
            "iphone-15-pro", "pixel-7-pro", "pixel-8-pro", "samsung-galaxy-s22", "samsung-galaxy-s23",
            "generic-phone", "generic-camera", "panasonic-gx9"]


def test_all_required_presets_exist_and_are_sane():
    ps = load_presets()
    for name in REQUIRED:
        p = ps[name]
        assert "main" in p.cameras
        for c in p.cameras.values():
            assert 0.5 < c.focal_mm < 300 and 1 <= c.f_number <= 32 and 0.5 < c.pixel_pitch_um < 10
            # the 35 mm equivalent must agree with focal length and pixel pitch within 25%
            diag_mm = np.hypot(c.width, c.height) * c.pixel_pitch_um / 1000
            crop = 43.27 / diag_mm
            assert abs(c.focal_mm * crop / c.focal_35mm - 1) < 0.25, (name, c)
        if p.kind == "phone":
            assert "ultrawide" in p.cameras and p.baseline_mm and 5 <= p.baseline_mm <= 30
            assert p.cameras["ultrawide"].focal_35mm < p.cameras["main"].focal_35mm


def test_coc_formula_dc2_eq1():
    c = get_preset("iphone-13").camera("main")
    assert c.coc_px(1.0, 1.0) == 0.0  # in focus
    f, a = 5.1e-3, 5.1e-3 / 1.6
    expected = a * abs(0.3 - 1.0) / 0.3 * f / (1.0 - f) / 1.7e-6
    assert c.coc_px(0.3, 1.0) == pytest.approx(expected)
    assert c.coc_px(100.0, 1.0) < c.coc_px(0.3, 1.0)


def test_unknown_preset_name_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown preset"):
        get_preset("iphone-99")


def test_match_jpeg_style_and_tiff_style_keys():
    jpeg_tags = {"Image Make": "Apple", "Image Model": "iPhone 13", "EXIF FocalLength": "51/10",
                 "EXIF FocalLengthIn35mmFilm": "26", "EXIF FNumber": "8/5"}
    m = match_tags(jpeg_tags)
    assert m.preset.name == "iphone-13" and m.role == "main" and m.exact
    tiff_tags = {"Image Make": "Apple", "Image Model": "iPhone 13", "Image FocalLength": "77/50",
                 "Image FocalLengthIn35mmFilm": "13", "Image FNumber": "12/5"}
    m = match_tags(tiff_tags)
    assert m.preset.name == "iphone-13" and m.role == "ultrawide"


@pytest.mark.parametrize("make,model,preset", [("samsung", "SM-S901B", "samsung-galaxy-s22"),
                                               ("HUAWEI", "LIO-L29", "huawei-mate30pro"),
                                               ("Google", "Pixel 6 Pro", "pixel-6-pro"),
                                               ("Panasonic", "DC-GX9", "panasonic-gx9")])
def test_make_model_patterns(make, model, preset):
    assert match_tags({"Image Make": make, "Image Model": model}).preset.name == preset


def test_unknown_camera_falls_back_with_warning():
    m = match_tags({"Image Make": "Acme", "Image Model": "Phone X", "EXIF FocalLength": "6",
                    "EXIF FocalLengthIn35mmFilm": "24", "EXIF FNumber": "2"})
    assert not m.exact and m.warning and "Acme" in m.warning
    assert m.preset.generic and m.preset.camera(m.role).focal_mm == 6.0
    m = match_tags({"Image Make": "NIKON CORPORATION", "Image Model": "NIKON D3300"})
    assert m.preset.kind == "camera" and m.role == "main"


def test_missing_exif_falls_back(tmp_path):
    p = tmp_path / "plain.png"
    PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(p)
    m = match_file(p)
    assert m.preset.name == "generic-phone" and "no EXIF" in m.warning


def test_real_iphone_pair(shared_data):
    files = sorted((shared_data / "pairs" / "iphone11pro-wide-tele").glob("*.jpg"))
    roles = {f.name: match_file(f) for f in files}
    assert {m.preset.name for m in roles.values()} == {"iphone-11-pro"}
    assert {m.role for m in roles.values()} == {"main", "tele"}
    assert all(m.orientation == 3 for m in roles.values())
