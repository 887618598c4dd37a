"""EXIF access that hides where a tag lives.

exifread names a tag by its IFD: JPEG files put camera settings under ``EXIF ...``
keys, while TIFF and DNG files often carry the same tags under ``Image ...``. Every
lookup here tries both, so callers ask for ``"FocalLength"`` and get it from either.
"""
from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import exifread

# exifread logs "File format not recognized" / "PNG file does not have exif data" as warnings
# for every file without EXIF, which is normal here (callers decide what they need).
logging.getLogger("exifread").setLevel(logging.ERROR)

_PREFIXES = ("EXIF ", "Image ", "MakerNote ", "")


def read_exif_tags(source: str | Path | bytes) -> dict[str, str]:
    """All EXIF tags of a file (or its bytes) as ``{"EXIF FNumber": "9/5", ...}``.

    Returns an empty dict when the file has no EXIF or exifread cannot parse it: a
    missing EXIF is never an error by itself (callers decide what they need).
    """
    try:
        if isinstance(source, (bytes, bytearray)):
            fh: Any = io.BytesIO(source)
        else:
            fh = open(source, "rb")
        with fh:
            tags = exifread.process_file(fh, details=False, extract_thumbnail=False)
    except Exception:  # exifread raises many kinds on odd files; EXIF is optional
        return {}
    out: dict[str, str] = {}
    for k, v in tags.items():
        if k.startswith("Thumbnail") or k in ("JPEGThumbnail", "TIFFThumbnail"):
            continue
        try:
            out[k] = str(v.printable if hasattr(v, "printable") else v).strip()
        except Exception:
            continue
    return out


def get_tag(tags: dict[str, str], name: str) -> str | None:
    """Look up a tag by bare name under any IFD prefix (``EXIF``, ``Image``, ...)."""
    for p in _PREFIXES:
        v = tags.get(p + name)
        if v not in (None, "", "[]"):
            return v
    return None


def _to_float(v: str | None) -> float | None:
    if v is None:
        return None
    s = v.strip().strip("[]").split(",")[0].strip()
    try:
        return float(Fraction(s))
    except (ValueError, ZeroDivisionError):
        try:
            return float(s)
        except ValueError:
            return None


def get_float(tags: dict[str, str], name: str) -> float | None:
    """A numeric tag as float; None when absent, unparsable or 0 (EXIF's "unknown")."""
    v = _to_float(get_tag(tags, name))
    return v if v else None


_ORIENT_WORDS = {
    "Horizontal (normal)": 1,
    "Mirrored horizontal": 2,
    "Rotated 180": 3,
    "Mirrored vertical": 4,
    "Mirrored horizontal then rotated 90 CCW": 5,
    "Rotated 90 CW": 6,
    "Rotated 90 CCW": 8,
    "Mirrored horizontal then rotated 90 CW": 7,
}


def orientation(tags: dict[str, str]) -> int:
    """EXIF Orientation as its number 1..8 (1 when absent or unreadable)."""
    v = tags.get("Image Orientation") or get_tag(tags, "Orientation")
    if v is None:
        return 1
    if v in _ORIENT_WORDS:
        return _ORIENT_WORDS[v]
    try:
        n = int(v)
        return n if 1 <= n <= 8 else 1
    except ValueError:
        return 1


def capture_time(tags: dict[str, str]) -> datetime | None:
    """DateTimeOriginal (+ SubSecTimeOriginal) as a naive datetime, or None."""
    v = get_tag(tags, "DateTimeOriginal") or get_tag(tags, "DateTime")
    if not v:
        return None
    try:
        t = datetime.strptime(v.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    sub = get_tag(tags, "SubSecTimeOriginal") or get_tag(tags, "SubSecTime")
    if sub and sub.strip().isdigit():
        s = sub.strip()
        t += timedelta(seconds=int(s) / (10 ** len(s)))
    return t


def camera_summary(tags: dict[str, str]) -> dict[str, Any]:
    """The tags the pipeline uses, parsed: make, model, focal lengths, f-number, time."""
    return {
        "make": (get_tag(tags, "Make") or "").strip(),
        "model": (get_tag(tags, "Model") or "").strip(),
        "lens_model": (get_tag(tags, "LensModel") or "").strip(),
        "focal_mm": get_float(tags, "FocalLength"),
        "focal_35mm": get_float(tags, "FocalLengthIn35mmFilm"),
        "f_number": get_float(tags, "FNumber"),
        "width": get_float(tags, "ExifImageWidth") or get_float(tags, "ImageWidth"),
        "height": get_float(tags, "ExifImageLength") or get_float(tags, "ImageLength"),
        "time": capture_time(tags),
        "orientation": orientation(tags),
    }
