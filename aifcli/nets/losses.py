"""Training losses of the seeds: L1, SSIM, mask BCE (EasyAIF eq. 3-4), gradient (DC²)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _gauss(window: int = 7, sigma: float = 1.5, device=None, dtype=torch.float32) -> torch.Tensor:
    x = torch.arange(window, dtype=dtype, device=device) - (window - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """SSIM (Wang 2004 constants for [0,1] data) per valid window, mean over channels: Nx1xH'xW'."""
    g = _gauss(window, sigma, x.device, x.dtype)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx * mx
    syy = _blur(y * y, g) - my * my
    sxy = _blur(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean(1, keepdim=True)


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 1.0 - ssim_map(x, y).mean()


def l1(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    d = (x - y).abs()
    if weight is None:
        return d.mean()
    w = weight.expand_as(d)
    return (d * w).sum() / w.sum().clamp_min(1e-6)


def gradient_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences (DC²'s gradient term)."""
    gx = lambda a: a[..., :, 1:] - a[..., :, :-1]  # noqa: E731
    gy = lambda a: a[..., 1:, :] - a[..., :-1, :]  # noqa: E731
    return (gx(x) - gx(y)).abs().mean() + (gy(x) - gy(y)).abs().mean()


def mask_bce(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between softmax masks (NxKxHxW, summing to one) and soft targets."""
    return -(target * torch.log(probs.clamp_min(1e-6))).sum(1).mean()
