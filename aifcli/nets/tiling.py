"""Tiled inference with overlap: bounded memory for 12 MP inputs, the same result as one pass.

Written by hand because no library does exactly this for plain torch: each output tile
(``tile`` px, origins on a ``multiple`` grid so Haar/stride-2 stages see the same phase as
in a whole-image pass) is computed from an input window grown by ``halo`` px on every
side (rounded out to the grid and clipped to the image), and only the tile's core is
kept. With ``halo`` at least the network's receptive-field radius the tiled output equals
the untiled one up to float rounding. The image end is padded to ``multiple`` by edge
replication in both modes alike, so borders agree too.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, h, w


def run_padded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``fn`` on ``x`` padded at the bottom/right to a multiple of ``multiple``, cropped back."""
    xp, h, w = _pad_to(x, multiple)
    return fn(xp)[..., :h, :w]


def tiled_forward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int = 512, halo: int = 64,
                  multiple: int = 16) -> torch.Tensor:
    """``fn`` (NxCxHxW -> NxC'xHxW, fully convolutional) over ``x`` in overlapping tiles."""
    if tile % multiple or tile <= 0:
        raise ValueError(f"tile {tile} must be a positive multiple of {multiple}")
    n, _, h, w = x.shape
    halo = -(-halo // multiple) * multiple
    if h <= tile + 2 * halo and w <= tile + 2 * halo:
        return run_padded(fn, x, multiple)
    out: torch.Tensor | None = None
    for y0 in range(0, h, tile):
        y1 = min(h, y0 + tile)
        wy0, wy1 = max(0, y0 - halo), min(h, y1 + halo)
        for x0 in range(0, w, tile):
            x1 = min(w, x0 + tile)
            wx0, wx1 = max(0, x0 - halo), min(w, x1 + halo)
            # interior window ends stay on the grid (no padding needed there); the image
            # end is padded exactly as in the whole-image pass
            if wy1 < h:
                wy1 = min(h, -(-wy1 // multiple) * multiple)
            if wx1 < w:
                wx1 = min(w, -(-wx1 // multiple) * multiple)
            y = run_padded(fn, x[..., wy0:wy1, wx0:wx1], multiple)
            if out is None:
                out = torch.empty((n, y.shape[1], h, w), dtype=y.dtype, device=y.device)
            out[..., y0:y1, x0:x1] = y[..., y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
    assert out is not None
    return out
