"""EXIF that a real phone or camera would write, for synthetic JPEG / TIFF / DNG files.

``exif_bytes`` builds a TIFF-structured EXIF blob with Pillow (for JPEG, via
``aifcli.io.write_image(meta=ImageMeta(exif_bytes=...))``); ``tiff_tags`` gives the same
values as (code, type, count, value) tuples for tifffile / pidng, placed in IFD0 where
exifread reports them as ``Image ...`` keys (``aifcli.io.exif.get_tag`` looks in both).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from ..presets import Preset


@dataclass
class ShotInfo:
    make: str
    model: str
    focal_mm: float
    focal_35mm: float
    f_number: float
    time: datetime
    width: int
    height: int
    exposure_s: float = 1 / 100
    iso: int = 100
    lens_model: str = ""

    @property
    def datetime_str(self) -> str:
        return self.time.strftime("%Y:%m:%d %H:%M:%S")

    @property
    def subsec_str(self) -> str:
        return f"{self.time.microsecond // 1000:03d}"


def make_and_model(preset: Preset) -> tuple[str, str]:
    """What the preset's device writes as Make/Model (first match pattern, wildcards removed)."""
    make = next((m for m in preset.make if m.strip("*?")), "") or "aif synth"
    model = next((m for m in preset.model if m.strip("*?")), "") or preset.name
    return make.replace("*", "").strip(), model.replace("*", "").strip()


def shot_for(preset: Preset, role: str, time: datetime, width: int, height: int, **kw: object) -> ShotInfo:
    make, model = make_and_model(preset)
    cam = preset.camera(role)
    lens = f"{model} {'back' if preset.kind == 'phone' else ''} camera {cam.focal_mm:g}mm f/{cam.f_number:g}".replace("  ", " ")
    return ShotInfo(make, model, cam.focal_mm, cam.focal_35mm, float(kw.pop("f_number", cam.f_number)), time,  # type: ignore[arg-type]
                    width, height, lens_model=lens, **kw)  # type: ignore[arg-type]


def _ratio(x: float, den: int = 1000) -> tuple[int, int]:
    f = Fraction(x).limit_denominator(den)
    return f.numerator, f.denominator


def exif_bytes(s: ShotInfo) -> bytes:
    """EXIF blob (with the ``Exif\\0\\0`` header) for a JPEG."""
    from PIL import Image as PILImage
    from PIL import TiffImagePlugin

    def R(x: float, den: int = 1000) -> TiffImagePlugin.IFDRational:
        n, d = _ratio(x, den)
        return TiffImagePlugin.IFDRational(n, d)

    ex = PILImage.Exif()
    ex[0x010F] = s.make
    ex[0x0110] = s.model
    ex[0x0112] = 1
    ex[0x0131] = "aif synth"
    ex[0x0132] = s.datetime_str
    ifd = ex.get_ifd(0x8769)
    ifd[0x829A] = R(s.exposure_s, 100000)
    ifd[0x829D] = R(s.f_number, 100)
    ifd[0x8827] = int(s.iso)
    ifd[0x9000] = b"0232"
    ifd[0x9003] = s.datetime_str
    ifd[0x9004] = s.datetime_str
    ifd[0x9291] = s.subsec_str
    ifd[0x9290] = s.subsec_str
    ifd[0x920A] = R(s.focal_mm, 1000)
    ifd[0xA405] = int(round(s.focal_35mm))
    ifd[0xA002] = int(s.width)
    ifd[0xA003] = int(s.height)
    if s.lens_model:
        ifd[0xA433] = s.make
        ifd[0xA434] = s.lens_model
    return ex.tobytes()


def tiff_tags(s: ShotInfo) -> list[tuple[int, int, int, object]]:
    """(code, TIFF type, count, value) for tifffile's ``extratags`` (IFD0)."""
    fn, fd = _ratio(s.f_number, 100)
    ln, ld = _ratio(s.focal_mm, 1000)
    en, ed = _ratio(s.exposure_s, 100000)
    return [
        (271, 2, 0, s.make), (272, 2, 0, s.model), (306, 2, 0, s.datetime_str),
        (33434, 5, 1, (en, ed)), (33437, 5, 1, (fn, fd)), (34855, 3, 1, int(s.iso)),
        (36867, 2, 0, s.datetime_str), (37521, 2, 0, s.subsec_str), (37386, 5, 1, (ln, ld)),
        (41989, 3, 1, int(round(s.focal_35mm))),
    ]


def times(start: datetime, n: int, step_s: float) -> list[datetime]:
    return [start + timedelta(seconds=step_s * i) for i in range(n)]
