"""Bayer RAW as DNG (via pidng), with EXIF, readable bit-exact by rawpy/LibRaw.

The synthetic sensor's native colour space is linear sRGB divided by the white-balance
gains (so a grey card reads (1/g_r, 1, 1/g_b), like a real sensor where green is
strongest). ``AsShotNeutral`` = 1/g, and ``ColorMatrix1`` (XYZ -> camera) =
diag(1/g) * M(XYZ -> linear sRGB), so a DNG reader's colour pipeline returns the scene's
linear sRGB. Samples are 16-bit words holding 14-bit data: black level 512, white 16383.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .exif import ShotInfo

BLACK = 512
WHITE = 16383
# IEC 61966-2-1: XYZ (D65) -> linear sRGB
XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])


def mosaic_rggb(lin: np.ndarray) -> np.ndarray:
    """HxWx3 -> HxW RGGB Bayer samples (H and W even)."""
    h, w = lin.shape[:2]
    out = np.empty((h, w), np.float32)
    out[0::2, 0::2] = lin[0::2, 0::2, 0]
    out[0::2, 1::2] = lin[0::2, 1::2, 1]
    out[1::2, 0::2] = lin[1::2, 0::2, 1]
    out[1::2, 1::2] = lin[1::2, 1::2, 2]
    return out


def to_dn(raw_lin: np.ndarray) -> np.ndarray:
    """Linear sensor values (1.0 = clipping) -> uint16 digital numbers with black level."""
    dn = np.clip(raw_lin, 0.0, None) * np.float32(WHITE - BLACK) + np.float32(BLACK + 0.5)
    return np.clip(dn, 0, WHITE).astype(np.uint16)


def _rat(x: float, den: int = 10000) -> list[int]:
    f = Fraction(float(x)).limit_denominator(den)
    return [f.numerator, f.denominator]


def dng_bytes(bayer: np.ndarray, shot: ShotInfo, wb_gains: tuple[float, float, float]) -> bytes:
    """An uncompressed DNG of an RGGB uint16 mosaic with camera EXIF."""
    from pidng.core import RAW2DNG
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation
    from pidng.dng import DNGTags, Tag

    h, w = bayer.shape
    g = np.asarray(wb_gains, np.float64)
    cm = np.diag(1.0 / g) @ XYZ_TO_SRGB
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, 1)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevelRepeatDim, [2, 2])
    t.set(Tag.BlackLevel, [BLACK] * 4)
    t.set(Tag.WhiteLevel, WHITE)
    t.set(Tag.ColorMatrix1, [_rat(v) for v in cm.ravel()])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [_rat(1.0 / v) for v in g])
    t.set(Tag.BaselineExposure, [[0, 1]])
    t.set(Tag.Make, shot.make)
    t.set(Tag.Model, shot.model)
    t.set(Tag.UniqueCameraModel, f"{shot.make} {shot.model}")
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    t.set(Tag.FNumber, [_rat(shot.f_number, 100)])
    t.set(Tag.FocalLength, [_rat(shot.focal_mm, 1000)])
    t.set(Tag.FocalLengthIn35mmFilm, [int(round(shot.focal_35mm))])
    t.set(Tag.ExposureTime, [_rat(shot.exposure_s, 100000)])
    t.set(Tag.PhotographicSensitivity, [int(shot.iso)])
    t.set(Tag.DateTimeOriginal, shot.datetime_str)
    t.set(Tag.DateTime, shot.datetime_str)
    t.set(Tag.SubsecTimeOriginal, shot.subsec_str)
    if shot.lens_model:
        t.set(Tag.EXIFPhotoLensModel, shot.lens_model)
    conv = RAW2DNG()
    conv.options(t, path="", compress=False)
    return bytes(conv.convert(np.ascontiguousarray(bayer, dtype=np.uint16)))
