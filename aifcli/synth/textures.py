"""Textures for synthetic scenes: real photographs from scikit-image's wheel and procedural noise.

Every texture is float32 HxWx3 **linear** RGB in [0, 1] (photos are sRGB-decoded), plus the
OpenCV border mode that tiles it without seams: procedural textures are periodic (made in the
Fourier domain) and tile with ``BORDER_WRAP``; photographs tile mirrored (``BORDER_REFLECT_101``).
Photographs are read from the files scikit-image ships inside its wheel (no download).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..image import srgb_to_linear

# (file in skimage/data, is colour): photographs with natural image statistics
PHOTOS = {
    "astronaut": ("astronaut.png", True),
    "coffee": ("coffee.png", True),
    "chelsea": ("chelsea.png", True),
    "rocket": ("rocket.jpg", True),
    "motorcycle": ("motorcycle_left.png", True),
    "brick": ("brick.png", False),
    "gravel": ("gravel.png", False),
    "grass": ("grass.png", False),
}
PROCEDURAL = ("fractal", "fractal-fine", "stripes", "blobs")


@dataclass
class Texture:
    name: str
    pixels: np.ndarray  # float32 HxWx3 linear RGB [0,1]
    border: int  # cv2 border mode that tiles it


def skimage_data_dir() -> str | None:
    try:
        import skimage
    except ImportError:  # pragma: no cover - a dependency
        return None
    d = os.path.join(os.path.dirname(skimage.__file__), "data")
    return d if os.path.isdir(d) else None


@lru_cache(maxsize=16)
def _photo(name: str) -> np.ndarray | None:
    d = skimage_data_dir()
    if d is None:
        return None
    fname, _ = PHOTOS[name]
    a = cv2.imread(os.path.join(d, fname), cv2.IMREAD_COLOR)
    if a is None:
        return None
    rgb = cv2.cvtColor(a, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return srgb_to_linear(rgb)


def available_photos() -> list[str]:
    return [n for n in PHOTOS if _photo(n) is not None]


def fractal_noise(rng: np.random.Generator, size: int = 512, beta: float = 2.0, colour: bool = True) -> np.ndarray:
    """Periodic 1/f^beta noise (natural images have beta ~ 2), float32 HxWx3 in [0,1], linear."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    chans = []
    base = None
    for c in range(3):
        ph = rng.uniform(0, 2 * np.pi, amp.shape)
        n = np.fft.irfft2(amp * np.exp(1j * ph), s=(size, size))
        n = (n - n.mean()) / (n.std() + 1e-12)
        if base is None:
            base = n
        # channels share most of their structure, as in real scenes
        chans.append(n if c == 0 or not colour else 0.75 * base + 0.66 * n)
        if not colour:
            chans = [n, n, n]
            break
    a = np.stack(chans, axis=-1).astype(np.float32)
    tint = rng.uniform(0.15, 0.6, 3).astype(np.float32)
    contrast = np.float32(rng.uniform(0.25, 0.5))
    out = tint * np.exp(contrast * a)  # log-normal reflectance
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _stripes(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """Two-colour bars with soft edges; an integer number of periods keeps the tile periodic."""
    k = int(rng.integers(6, 24))
    x = np.arange(size, dtype=np.float32)
    s = np.clip(0.5 + 2.0 * np.sin(2 * np.pi * k * x / size), 0.0, 1.0)
    c1, c2 = rng.uniform(0.03, 0.8, 3), rng.uniform(0.03, 0.8, 3)
    row = s[:, None] * c1 + (1 - s[:, None]) * c2
    return np.ascontiguousarray(np.broadcast_to(row[None, :, :], (size, size, 3))).astype(np.float32)


def _blobs(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    base = fractal_noise(rng, size, beta=1.6, colour=True)
    lum = base.mean(axis=2)
    th = np.quantile(lum, 0.5)
    c1, c2 = rng.uniform(0.03, 0.8, 3), rng.uniform(0.03, 0.8, 3)
    m = (lum > th).astype(np.float32)[..., None]
    return (m * c1 + (1 - m) * c2).astype(np.float32) * (0.8 + 0.4 * base / (base.mean() + 1e-6)).clip(0.5, 1.5)


def make_texture(name: str, rng: np.random.Generator) -> Texture:
    """A texture by name (``astronaut``, ``brick``, ``fractal``, ...), randomised by ``rng``."""
    if name in PHOTOS:
        a = _photo(name)
        if a is not None:
            if not PHOTOS[name][1]:  # a grey texture photo: give it a colour
                tint = rng.uniform(0.4, 1.0, 3).astype(np.float32)
                a = (a * tint / tint.max()).astype(np.float32)
            return Texture(name, a, cv2.BORDER_REFLECT_101)
        name = "fractal"  # scikit-image missing: fall back to procedural
    if name == "flat":  # uniform white (tests; colour it with the layer's gain)
        return Texture(name, np.ones((8, 8, 3), np.float32), cv2.BORDER_WRAP)
    if name == "fractal":
        return Texture(name, fractal_noise(rng, 512, beta=rng.uniform(1.6, 2.2)), cv2.BORDER_WRAP)
    if name == "fractal-fine":
        return Texture(name, fractal_noise(rng, 256, beta=rng.uniform(1.0, 1.6)), cv2.BORDER_WRAP)
    if name == "stripes":
        return Texture(name, np.clip(_stripes(rng), 0, 1), cv2.BORDER_WRAP)
    if name == "blobs":
        return Texture(name, np.clip(_blobs(rng), 0, 1).astype(np.float32), cv2.BORDER_WRAP)
    raise ValueError(f"unknown texture {name!r}")


TILEABLE_PHOTOS = ("brick", "gravel", "grass")


def random_texture_name(rng: np.random.Generator, photo_share: float = 0.6, tileable: bool = False) -> str:
    """A texture name: a photograph with probability ``photo_share``, else procedural.
    ``tileable``: only texture photographs (brick, gravel, grass) that repeat without
    looking mirrored, for large planes (walls, floors)."""
    photos = [p for p in available_photos() if not tileable or p in TILEABLE_PHOTOS]
    if photos and rng.random() < photo_share:
        return str(photos[int(rng.integers(len(photos)))])
    return str(PROCEDURAL[int(rng.integers(len(PROCEDURAL)))])
