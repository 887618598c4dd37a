"""Building blocks shared by aif's networks, in plain torch (torchvision does not import here).

- ``haar_dwt`` / ``haar_idwt``: the orthonormal one-level 2-D Haar transform as a stride-2
  reshuffle (exact inverse), the wavelet down/up-sampling of WDC-Net and OAS-Net.
- ``ConvBlock``: conv 3x3 + LeakyReLU, optionally residual.
- ``ASPP``: atrous spatial pyramid pooling without the global-pool branch (a global pool
  would make tiled inference differ from whole-image inference), as in DC²'s DFNet.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def haar_dwt(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NxCxHxW (H, W even) -> (LL NxCxH/2xW/2, highs Nx3CxH/2xW/2 as [LH, HL, HH] per channel block)."""
    a = x[..., 0::2, 0::2]
    b = x[..., 0::2, 1::2]
    c = x[..., 1::2, 0::2]
    d = x[..., 1::2, 1::2]
    ll = (a + b + c + d) * 0.5
    lh = (a - b + c - d) * 0.5
    hl = (a + b - c - d) * 0.5
    hh = (a - b - c + d) * 0.5
    return ll, torch.cat([lh, hl, hh], 1)


def haar_idwt(ll: torch.Tensor, highs: torch.Tensor) -> torch.Tensor:
    """Exact inverse of ``haar_dwt``."""
    c = ll.shape[1]
    lh, hl, hh = highs[:, :c], highs[:, c:2 * c], highs[:, 2 * c:]
    a = (ll + lh + hl + hh) * 0.5
    b = (ll - lh + hl - hh) * 0.5
    cc = (ll + lh - hl - hh) * 0.5
    d = (ll - lh - hl + hh) * 0.5
    n, _, h, w = ll.shape
    out = ll.new_empty((n, c, 2 * h, 2 * w))
    out[..., 0::2, 0::2] = a
    out[..., 0::2, 1::2] = b
    out[..., 1::2, 0::2] = cc
    out[..., 1::2, 1::2] = d
    return out


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, dilation: int = 1, residual: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, padding_mode="replicate")
        self.residual = residual and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv(x), 0.1)
        return x + y if self.residual else y


class ASPP(nn.Module):
    """Parallel dilated 3x3 convolutions (rates ``rates``) + 1x1, concatenated and projected."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...] = (1, 2, 4)):
        super().__init__()
        self.branches = nn.ModuleList([nn.Conv2d(cin, cout, 1)] + [
            nn.Conv2d(cin, cout, 3, padding=r, dilation=r, padding_mode="replicate") for r in rates])
        self.project = nn.Conv2d(cout * (len(rates) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.project(torch.cat([F.leaky_relu(b(x), 0.1) for b in self.branches], 1)), 0.1)


def n_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
