"""Reading any supported file into the aif image convention (see ``aifcli.image``).

Pixels are decoded by OpenCV (JPEG, PNG, TIFF: fast, 16-bit aware), pillow-heif
(HEIC/HEIF) or rawpy (camera RAW); metadata (EXIF blob, ICC profile) comes from
Pillow's lazy open, which never decodes pixels, and EXIF tags from exifread.
EXIF Orientation is applied here and nowhere else.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..image import Image, ImageMeta
from . import exif as exif_mod
from .formats import READ_EXT, kind_of

def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Return ``a`` (HxW[xC]) turned upright for the given EXIF Orientation 1..8 (EXIF 2.32, 0x0112)."""
    o = orientation
    if a.dtype in (np.uint8, np.uint16, np.float32) and (a.ndim == 2 or a.shape[2] <= 4):
        # OpenCV's flips and rotations are several times faster than numpy views + copy
        if o == 2:
            return cv2.flip(a, 1)
        if o == 3:
            return cv2.rotate(a, cv2.ROTATE_180)
        if o == 4:
            return cv2.flip(a, 0)
        if o == 5:
            return cv2.transpose(a)
        if o == 6:
            return cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)
        if o == 7:
            return cv2.rotate(cv2.transpose(a), cv2.ROTATE_180)
        if o == 8:
            return cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)
        return a
    if o == 2:
        a = a[:, ::-1]
    elif o == 3:
        a = a[::-1, ::-1]
    elif o == 4:
        a = a[::-1, :]
    elif o == 5:
        a = np.swapaxes(a, 0, 1)
    elif o == 6:
        a = np.rot90(a, k=-1)
    elif o == 7:
        a = np.swapaxes(a, 0, 1)[::-1, ::-1]
    elif o == 8:
        a = np.rot90(a, k=1)
    return np.ascontiguousarray(a)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("no such file", path, "check the path")
    if path.is_dir():
        raise InputError("is a folder, expected an image file", path)
    if path.suffix.lower() not in READ_EXT:
        raise InputError(
            f"not a supported image type '{path.suffix or '(none)'}'",
            path,
            "aif reads JPEG, PNG, TIFF, HEIC/HEIF and camera RAW (DNG, CR2, CR3, NEF, ARW, RW2, ORF, ...)",
        )
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"cannot access: {e.strerror}", path) from None
    if size == 0:
        raise InputError("file is empty", path, "re-copy it from the camera")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise InputError("permission denied", path, "check the file's permissions") from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from None


def _to_float_rgb(a: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    """OpenCV array (BGR[A] / gray, uint8/uint16/float) -> float32 RGB [0,1], bit depth."""
    if a.dtype == np.uint8:
        depth, scale = 8, 1 / 255.0
    elif a.dtype == np.uint16:
        depth, scale = 16, 1 / 65535.0
    elif a.dtype in (np.float32, np.float64):
        depth, scale = 32, 1.0
    else:
        raise InputError(f"unsupported sample type {a.dtype}", path, "convert it to 8/16-bit")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    if a.shape[2] != 3:
        raise InputError(f"unsupported channel count {a.shape[2]}", path)
    rgb = cv2.cvtColor(a, cv2.COLOR_BGR2RGB)
    out = np.empty(rgb.shape, np.float32)
    np.multiply(rgb, np.float32(scale), out=out, dtype=np.float32)
    if depth == 32:
        np.clip(out, 0.0, 1.0, out=out)
    return out, depth


def _pillow_meta(data: bytes) -> tuple[bytes | None, bytes | None]:
    """(EXIF blob without the 'Exif\\0\\0' header, ICC profile) via a lazy Pillow open."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data)) as im:
            icc = im.info.get("icc_profile") or None
            ex = im.getexif()
            blob = ex.tobytes() if len(ex) else None
            return blob, icc
    except Exception:
        return None, None


def _looks_truncated(kind: str, data: bytes) -> bool:
    if kind == "jpeg":
        # A complete JPEG ends its last scan with an EOI marker; a cut file has a
        # start-of-scan with no EOI after it (libjpeg then pads with grey silently).
        if not data.startswith(b"\xff\xd8"):
            return False  # not a JPEG at all: let the decoder say so
        sos = data.rfind(b"\xff\xda")
        return sos < 0 or data.rfind(b"\xff\xd9") < sos
    if kind == "png":
        return data.startswith(b"\x89PNG") and b"IEND" not in data[-64:]
    return False


def _read_standard(path: Path, kind: str, data: bytes) -> Image:
    if _looks_truncated(kind, data):
        raise InputError("file is truncated", path, "re-copy it; the end of the image data is missing")
    buf = np.frombuffer(data, dtype=np.uint8)
    a = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if a is None or a.size == 0:
        raise InputError(f"cannot decode as {kind.upper()} (corrupt or not an image)", path,
                         "open it in an image viewer or re-export it")
    tags = exif_mod.read_exif_tags(data)
    blob, icc = _pillow_meta(data)
    o = exif_mod.orientation(tags)
    a = apply_orientation(a, o)  # on the integer array: 4x less memory traffic
    rgb, depth = _to_float_rgb(a, path)
    meta = ImageMeta(path=path, format=kind, bit_depth=depth, linear=False, exif=tags,
                     exif_bytes=blob, icc=icc, orientation=o)
    return Image(rgb, meta)


def _read_heic(path: Path, data: bytes) -> Image:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a dependency
        raise InputError("HEIC support needs pillow-heif", path, "pip install pillow-heif") from None
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
        a = np.asarray(heif)
        info = heif.info
    except Exception as e:
        raise InputError(f"cannot decode as HEIC ({e.__class__.__name__})", path,
                         "open it in an image viewer or re-export it") from None
    if a.dtype == np.uint16:
        # pillow-heif returns 10/12-bit data scaled to the 16-bit range
        depth, rgb = 16, a.astype(np.float32) / 65535.0
    else:
        depth, rgb = 8, a.astype(np.float32) / 255.0
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    rgb = np.ascontiguousarray(rgb[:, :, :3])
    blob = info.get("exif")
    if blob and blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    tags = exif_mod.read_exif_tags(data)
    # libheif applies the container's rotation/mirror (irot/imir) while decoding,
    # which is what iPhones use; the EXIF Orientation then only describes it.
    o = exif_mod.orientation(tags)
    meta = ImageMeta(path=path, format="heic", bit_depth=depth, linear=False, exif=tags,
                     exif_bytes=blob or None, icc=info.get("icc_profile") or None, orientation=o)
    return Image(rgb.astype(np.float32), meta)


def raw_white_balance(path: str | Path) -> tuple[float, float, float, float]:
    """The camera's as-shot white balance multipliers of a RAW file (daylight if none)."""
    import rawpy

    path = Path(path)
    try:
        with rawpy.imread(str(path)) as raw:
            wb = [float(x) for x in raw.camera_whitebalance]
            if not any(wb):
                wb = [float(x) for x in raw.daylight_whitebalance]
    except Exception as e:
        raise InputError(f"cannot decode RAW ({e.__class__.__name__})", path, "is it truncated?") from None
    if not any(wb):
        wb = [1.0, 1.0, 1.0, 1.0]
    if wb[3] == 0:
        wb[3] = wb[1]
    return (wb[0], wb[1], wb[2], wb[3])


def _read_raw(path: Path, wb: Sequence[float] | None) -> Image:
    import rawpy

    tags = exif_mod.read_exif_tags(path)
    try:
        with rawpy.imread(str(path)) as raw:
            if wb is None:
                cam = [float(x) for x in raw.camera_whitebalance]
                if not any(cam):
                    cam = [float(x) for x in raw.daylight_whitebalance]
                if not any(cam):
                    cam = [1.0, 1.0, 1.0, 1.0]
                if cam[3] == 0:
                    cam[3] = cam[1]
                wb = cam
            # Exactly linear: no auto brightness, gamma 1, and adjust_maximum_thr=0
            # (without it LibRaw rescales by ~1.11; measured, DESIGN.md §2 Bursts).
            rgb16 = raw.postprocess(user_wb=list(wb), no_auto_bright=True, output_bps=16,
                                    gamma=(1, 1), adjust_maximum_thr=0.0,
                                    output_color=rawpy.ColorSpace.sRGB, use_camera_wb=False)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"cannot decode RAW ({e.__class__.__name__}: {e})", path,
                         "is it truncated or from an unsupported camera?") from None
    rgb = rgb16.astype(np.float32) / 65535.0
    # LibRaw already turned the pixels upright from the RAW's own flip flag.
    meta = ImageMeta(path=path, format="raw", bit_depth=16, linear=True, exif=tags, exif_bytes=None,
                     icc=None, orientation=exif_mod.orientation(tags), raw_wb=tuple(float(x) for x in wb))
    return Image(rgb, meta)


def read_image(path: str | Path, *, raw_wb: Sequence[float] | None = None) -> Image:
    """Read an image file into float32 HxWx3 RGB [0,1] with metadata.

    ``raw_wb``: white balance multipliers (R, G, B, G2) for RAW files; pass the same
    value for every frame of a burst (see ``raw_white_balance``). Ignored otherwise.
    Raises ``InputError`` naming the file for anything unreadable.
    """
    path = Path(path)
    _check_file(path)
    kind = kind_of(path)
    if kind == "raw":
        return _read_raw(path, raw_wb)
    data = _read_bytes(path)
    if kind == "heic":
        return _read_heic(path, data)
    return _read_standard(path, kind or "", data)


_MAGIC = {
    "jpeg": (b"\xff\xd8",),
    "png": (b"\x89PNG",),
    "tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
}


def sniff(path: Path) -> None:
    """Cheap check that a file's first bytes fit its extension (no pixel decoding)."""
    kind = kind_of(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from None
    if kind in _MAGIC and not head.startswith(_MAGIC[kind]):
        raise InputError(f"not a {kind.upper()} file (corrupt or misnamed)", path, "open it in an image viewer or re-export it")
    if kind == "heic" and head[4:8] != b"ftyp":
        raise InputError("not a HEIC/HEIF file (corrupt or misnamed)", path)


def read_metadata(path: str | Path) -> ImageMeta:
    """EXIF tags and orientation of a file without decoding its pixels."""
    path = Path(path)
    _check_file(path)
    sniff(path)
    tags = exif_mod.read_exif_tags(path)
    return ImageMeta(path=path, format=kind_of(path) or "", exif=tags, orientation=exif_mod.orientation(tags))


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) after orientation, read from the header where possible."""
    path = Path(path)
    _check_file(path)
    kind = kind_of(path)
    try:
        if kind == "raw":
            import rawpy

            with rawpy.imread(str(path)) as raw:
                h, w = raw.sizes.height, raw.sizes.width
                if raw.sizes.flip in (5, 6):
                    h, w = w, h
                return int(h), int(w)
        if kind == "heic":
            import pillow_heif

            hf = pillow_heif.open_heif(str(path))
            w, h = hf.size
            return int(h), int(w)
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            w, h = im.size
    except Exception:
        img = read_image(path)
        return img.shape
    tags = exif_mod.read_exif_tags(path)
    if exif_mod.orientation(tags) in (5, 6, 7, 8):
        h, w = w, h
    return int(h), int(w)
