"""The one in-memory image convention of aif.

Pixels are ``float32``, shape ``(H, W, 3)``, RGB, in ``[0, 1]``; ``meta.linear`` says
whether the values are linear light (RAW decodes) or display-encoded (JPEG, PNG,
most TIFF/HEIC, assumed sRGB-like). EXIF Orientation is applied on read, so pixels
are always upright and ``meta.orientation`` records what was applied.
Conversion happens once on read (``aifcli.io.read_image``) and once on write
(``aifcli.io.write_image``); every stage in between takes and returns arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ImageMeta:
    path: Path | None = None
    format: str = ""  # "jpeg", "png", "tiff", "heic", "raw", "array"
    bit_depth: int = 8  # source bits per sample (8, 16; RAW: 16 after decode)
    linear: bool = False  # linear light (True) or display-encoded (False)
    exif: dict[str, str] = field(default_factory=dict)  # exifread tags, as strings
    exif_bytes: bytes | None = None  # raw EXIF blob (TIFF structure), carried to outputs
    icc: bytes | None = None  # ICC profile, carried to outputs
    orientation: int = 1  # EXIF Orientation that was applied on read (1 = none)
    raw_wb: tuple[float, float, float, float] | None = None  # white balance used for RAW

    def copy(self, **changes: Any) -> "ImageMeta":
        return replace(self, **changes)


@dataclass
class Image:
    pixels: np.ndarray  # float32 HxWx3 RGB [0,1]
    meta: ImageMeta = field(default_factory=ImageMeta)

    def __post_init__(self) -> None:
        p = self.pixels
        if p.ndim != 3 or p.shape[2] != 3:
            raise ValueError(f"Image pixels must be HxWx3, got {p.shape}")
        if p.dtype != np.float32:
            self.pixels = p.astype(np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding, for display-encoded [0,1] floats."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding of linear [0,1] floats."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luma weights on whatever encoding the input is in; HxW float32."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return (0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]).astype(np.float32)
