"""Focus measure: noise-aware local energy of band-passed luminance.

The measure is the local mean of the squared Laplacian-of-Gaussian response of the
luminance (Pertuz et al. 2013 call it "energy of Laplacian", LAP2 family), computed on
a perceptually encoded luminance so dark and bright regions count alike. Sensor noise
also has Laplacian energy; ``noise_floor`` estimates it per frame from the median
absolute LoG response (robust MAD estimator: most of a defocused frame is smooth), and
``focus_energy`` subtracts it, so a noisy frame's grain is not mistaken for focus.
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


def noise_floor(response: np.ndarray) -> float:
    """Expected squared LoG response of noise alone: (1.4826 * MAD)^2, on a subsample."""
    sub = response[::4, ::4]
    mad = float(np.median(np.abs(sub - np.median(sub))))
    return (1.4826 * mad) ** 2


def focus_energy(rgb: np.ndarray, *, linear: bool = False, sigma: float = 1.0, window: float = 2.0,
                 noise_aware: bool = True) -> tuple[np.ndarray, float]:
    """Per-pixel focus energy (HxW float32, >= 0) and the noise floor that was removed.

    ``sigma``: LoG scale in px; ``window``: Gaussian sigma of the local averaging in px.
    """
    r = log_response(luminance(rgb, linear), sigma)
    floor = noise_floor(r) if noise_aware else 0.0
    e = cv2.GaussianBlur(cv2.multiply(r, r), (0, 0), window)
    if floor > 0:
        # soft subtraction keeps ordering among textured pixels and sends grain to ~0
        e = cv2.max(cv2.subtract(e, 1.5 * floor), 0.0)
    return e, floor
