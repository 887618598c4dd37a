"""File-name extensions aif reads and writes."""
from __future__ import annotations

from pathlib import Path

JPEG_EXT = {".jpg", ".jpeg", ".jpe"}
PNG_EXT = {".png"}
TIFF_EXT = {".tif", ".tiff"}
HEIC_EXT = {".heic", ".heif", ".hif"}
RAW_EXT = {".dng", ".cr2", ".cr3", ".nef", ".arw", ".rw2", ".orf", ".raf", ".pef", ".srw", ".nrw"}
READ_EXT = JPEG_EXT | PNG_EXT | TIFF_EXT | HEIC_EXT | RAW_EXT
WRITE_EXT = JPEG_EXT | PNG_EXT | TIFF_EXT


def kind_of(path: str | Path) -> str | None:
    ext = Path(path).suffix.lower()
    for name, exts in (("jpeg", JPEG_EXT), ("png", PNG_EXT), ("tiff", TIFF_EXT), ("heic", HEIC_EXT), ("raw", RAW_EXT)):
        if ext in exts:
            return name
    return None


def is_image_file(path: str | Path) -> bool:
    p = Path(path)
    return p.suffix.lower() in READ_EXT and not p.name.startswith(".")
