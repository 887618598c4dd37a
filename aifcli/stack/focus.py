"""Focus measure: noise-aware local energy of band-passed luminance.

The measure is the local mean of the squared Laplacian-of-Gaussian response of the
luminance (Pertuz et al. 2013 call it "energy of Laplacian", LAP2 family), computed on
a perceptually encoded luminance so dark and bright regions count alike. Sensor noise
also has Laplacian energy; ``noise_floor`` estimates it per frame (Immerkaer's noise
estimator times the operator's measured noise gain) and ``focus_energy`` subtracts it,
so a noisy frame's grain is not mistaken for focus.
"""
from __future__ import annotations

import cv2
import numpy as np

LUMA = np.array([[0.2126, 0.7152, 0.0722]], np.float32)


def luminance(rgb: np.ndarray, linear: bool = False) -> np.ndarray:
    """Rec. 709 luminance, HxW float32; linear input is square-root encoded first."""
    y = cv2.transform(rgb, LUMA)
    if y.ndim == 3:
        y = y[..., 0]
    if linear:
        y = cv2.sqrt(cv2.max(y, 0.0))
    return y


def log_response(y: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Laplacian of Gaussian of a luminance image (float32)."""
    g = cv2.GaussianBlur(y, (0, 0), sigma) if sigma > 0 else y
    return cv2.Laplacian(g, cv2.CV_32F, ksize=3)


_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_GAINS: dict[tuple[float, bool], float] = {}


def noise_sigma(y: np.ndarray) -> float:
    """Standard deviation of white noise in a luminance image (Immerkaer 1996, with a median
    instead of the mean so texture and edges weigh less): the 3x3 kernel cancels planes and
    gradients, and has a noise gain of sqrt(36) = 6."""
    r = cv2.filter2D(y, cv2.CV_32F, _IMMERKAER)[1:-1:2, 1:-1:2]
    return float(1.4826 * np.median(np.abs(r)) / 6.0)


def _noise_gain(sigma: float, half: bool) -> float:
    """Mean squared LoG response (this module's operator) of unit white noise, measured once."""
    key = (sigma, half)
    if key not in _GAINS:
        n = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
        if half:
            n = cv2.pyrDown(n)
        r = log_response(n, sigma)[8:-8, 8:-8]
        _GAINS[key] = float(np.mean(r * r))
    return _GAINS[key]


def noise_floor(y: np.ndarray, sigma: float = 1.0, half: bool = False) -> float:
    """Expected local LoG energy of the image's noise alone (same operator as ``focus_energy``)."""
    return noise_sigma(y) ** 2 * _noise_gain(sigma, half)


def focus_energy(rgb: np.ndarray, *, linear: bool = False, sigma: float = 1.0, window: float = 2.0,
                 noise_aware: bool = True, y: np.ndarray | None = None, color: bool = True) -> tuple[np.ndarray, float]:
    """Per-pixel focus energy (HxW float32, >= 0) and the noise floor that was removed.

    ``sigma``: LoG scale in px; ``window``: Gaussian sigma of the local averaging in px;
    ``y``: the luminance if already computed.
    """
    if color:
        # all three channels: isoluminant detail (red on green, pink on teal) has no
        # luminance edges, yet it is as much in or out of focus as anything else
        c = cv2.sqrt(cv2.max(rgb, 0.0)) if linear else rgb
        r3 = log_response(c, sigma)
        e = cv2.transform(cv2.multiply(r3, r3, dst=r3), np.array([[1.0, 1.0, 1.0]], np.float32))
        e = e[..., 0] if e.ndim == 3 else e
        floor = sum(noise_floor(np.ascontiguousarray(c[::2, ::2, k]), sigma) for k in range(3)) if noise_aware else 0.0
        e = cv2.GaussianBlur(e, (0, 0), window)
    else:
        y = luminance(rgb, linear) if y is None else y
        r = log_response(y, sigma)
        floor = noise_floor(y, sigma) if noise_aware else 0.0
        e = cv2.GaussianBlur(cv2.multiply(r, r), (0, 0), window)
    if floor > 0:
        # soft subtraction keeps ordering among textured pixels and sends grain to ~0
        e = cv2.max(cv2.subtract(e, 1.5 * floor), 0.0)
    return e, floor

