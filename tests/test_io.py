"""Image I/O: formats, bit depths, orientation, metadata carry-over, atomic writes, bad files."""
from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from aifcli.errors import InputError, OutputError, OutputExistsError
from aifcli.image import Image, linear_to_srgb, srgb_to_linear
from aifcli.io import get_tag, read_image, write_image
from aifcli.io.atomic import check_output


def _exif_bytes(orientation: int = 1, make: str = "Apple", model: str = "iPhone 13") -> bytes:
    ex = PILImage.Exif()
    ex[0x010F] = make
    ex[0x0110] = model
    ex[0x0112] = orientation
    sub = ex.get_ifd(0x8769)
    sub[0x920A] = 5.1  # FocalLength
    sub[0xA405] = 26  # FocalLengthIn35mmFilm
    sub[0x829D] = 1.6  # FNumber
    sub[0x9003] = "2026:01:02 03:04:05"
    return ex.tobytes()


def _pattern(h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a[:8, :8] = (255, 0, 0)  # a red marker top-left, to see where it goes
    return a


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    a = _pattern()
    p = tmp_path / f"o{orientation}.png"  # lossless, so pixels compare exactly
    PILImage.fromarray(a).save(p, exif=_exif_bytes(orientation))
    img = read_image(p)
    with PILImage.open(p) as im:
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert img.meta.orientation == orientation
    assert img.pixels.shape[:2] == ref.shape[:2]
    np.testing.assert_array_equal(np.round(img.pixels * 255).astype(np.uint8), ref)


@pytest.mark.parametrize("name,bits,tol", [("a.png", 8, 0.5 / 255 + 1e-6), ("a.png", 16, 0.5 / 65535 + 1e-7),
                                            ("a.tif", 16, 0.5 / 65535 + 1e-7), ("a.tif", 8, 0.5 / 255 + 1e-6),
                                            ("a.jpg", 8, 0.12)])
def test_roundtrip_formats_and_bit_depth(tmp_path, name, bits, tol):
    rng = np.random.default_rng(1)
    x = rng.random((40, 56, 3), dtype=np.float32)
    x = (x + np.roll(x, 1, 0) + np.roll(x, 1, 1)) / 3  # smoother: JPEG-friendly
    p = write_image(tmp_path / name, x, bit_depth=bits)
    y = read_image(p)
    assert y.pixels.dtype == np.float32 and y.pixels.shape == x.shape
    assert y.meta.bit_depth == bits
    assert np.abs(y.pixels - x).max() <= tol


def test_exif_and_icc_carried_with_orientation_reset(tmp_path):
    a = _pattern()
    icc = b"\x00\x00\x02\x0c" + b"fake-icc-profile" * 8  # opaque bytes: carried, not interpreted
    src = tmp_path / "src.jpg"
    PILImage.fromarray(a).save(src, exif=_exif_bytes(6), icc_profile=icc, quality=95)
    img = read_image(src)
    assert img.meta.orientation == 6 and img.pixels.shape[:2] == (64, 48)
    for name in ("out.jpg", "out.png", "out16.png"):
        out = write_image(tmp_path / name, img, bit_depth=16 if "16" in name else None)
        back = read_image(out)
        assert back.meta.orientation == 1, name
        assert back.pixels.shape == img.pixels.shape, name
        assert get_tag(back.meta.exif, "Model") == "iPhone 13", name
        assert back.meta.icc == icc, name
    tif = read_image(write_image(tmp_path / "out.tif", img))
    assert tif.meta.bit_depth == 16 and get_tag(tif.meta.exif, "Model") == "iPhone 13" and tif.meta.icc == icc


def test_heic_reads(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    yy, xx = np.mgrid[0:32, 0:48]
    a = np.stack([xx * 5, yy * 7, 255 - xx * 5], axis=2).astype(np.uint8)  # smooth: HEIC-friendly
    p = tmp_path / "x.heic"
    try:
        PILImage.fromarray(a).save(p, quality=95)
    except Exception as e:  # encoder missing in this build of libheif
        pytest.skip(f"no HEIC encoder available: {e}")
    img = read_image(p)
    assert img.meta.format == "heic" and img.pixels.shape == (32, 48, 3)
    assert np.abs(img.pixels * 255 - a).mean() < 6


def test_srgb_roundtrip():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(x)) - x).max() < 1e-5


def test_linear_image_is_encoded_on_write(tmp_path):
    lin = np.full((8, 8, 3), 0.2, np.float32)
    p = write_image(tmp_path / "l.png", Image(lin), linear=True, bit_depth=16)
    assert abs(read_image(p).pixels.mean() - float(linear_to_srgb(np.float32(0.2)))) < 1e-4


# --- bad files ------------------------------------------------------------------------
def test_truncated_jpeg_is_an_input_error(tmp_path):
    buf = io.BytesIO()
    PILImage.fromarray(_pattern(200, 200)).save(buf, "JPEG", quality=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="truncated") as e:
        read_image(p)
    assert "cut.jpg" in str(e.value)


def test_truncated_png_is_an_input_error(tmp_path):
    buf = io.BytesIO()
    PILImage.fromarray(_pattern(100, 100)).save(buf, "PNG")
    p = tmp_path / "cut.png"
    p.write_bytes(buf.getvalue()[:-40])
    with pytest.raises(InputError):
        read_image(p)


@pytest.mark.parametrize("name,content,match", [
    ("empty.jpg", b"", "empty"),
    ("text.jpg", b"this is not a picture\n" * 20, "cannot decode"),
    ("notes.txt", b"hello", "not a supported image type"),
    ("junk.dng", b"II*\x00" + b"\x00" * 100, "cannot decode RAW"),
])
def test_unreadable_files(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as e:
        read_image(p)
    assert name in str(e.value)


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)


# --- outputs --------------------------------------------------------------------------
def test_existing_output_needs_overwrite(tmp_path):
    p = write_image(tmp_path / "o.png", np.zeros((4, 4, 3), np.float32))
    before = p.read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_image(p, np.ones((4, 4, 3), np.float32))
    assert p.read_bytes() == before
    write_image(p, np.ones((4, 4, 3), np.float32), overwrite=True)
    assert read_image(p).pixels.min() == 1.0
    assert [f.name for f in tmp_path.iterdir()] == ["o.png"]  # no temporary files left


def test_output_may_not_be_an_input(tmp_path):
    p = write_image(tmp_path / "in.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(OutputError, match="overwrite an input"):
        check_output(p, overwrite=True, inputs=(p,))


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody (root included) can write: chmod for users, the immutable flag for root."""
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(stat.S_IRUSR | stat.S_IXUSR)
        yield d
        d.chmod(stat.S_IRWXU)
        return
    r = subprocess.run(["chattr", "+i", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"running as root and cannot make a folder immutable: {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["chattr", "-i", str(d)], capture_output=True)


def test_read_only_output_folder(read_only_dir):
    with pytest.raises(OutputError) as e:
        write_image(read_only_dir / "x.png", np.zeros((4, 4, 3), np.float32))
    assert "ro" in str(e.value)
    assert list(read_only_dir.iterdir()) == []


def test_heic_rotation_is_applied_once(tmp_path):
    """pillow-heif stores EXIF Orientation as the container's rotation; reading applies it once."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    a = np.zeros((32, 48, 3), np.uint8)
    a[:8, :8] = (255, 0, 0)
    p = tmp_path / "o6.heic"
    try:
        PILImage.fromarray(a).save(p, exif=_exif_bytes(6), quality=95)
    except Exception as e:
        pytest.skip(f"no HEIC encoder available: {e}")
    img = read_image(p)
    assert img.pixels.shape[:2] == (48, 32)  # portrait after rotating 90 degrees clockwise
    ys, xs = np.nonzero(img.pixels[..., 0] > 0.5)
    assert ys.mean() < 12 and xs.mean() > 20  # the top-left marker is now top-right
