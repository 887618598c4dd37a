"""aif's learned engine: small plain-torch networks trained on ``aif synth`` data.

- ``fuse_net``: occlusion-aware fusion after EasyAIF's OAS-Net (three softmax masks, a
  refined main, wavelet encoder-decoder, ``grid_sample`` deformable re-alignment).
- ``color_net``: colour alignment after EasyAIF's WDC-Net (wavelet low band in, a
  per-pixel affine colour transform out).
- ``refocus_net``: defocus control after DC²'s DFNet (refinement paths, multi-scale ASPP
  fusion of blending masks, radial-position input, conditioned on a target defocus map).

Shared: ``weights`` (checksummed files + model cards), ``tiling`` (overlapping tiles equal
to a whole-image pass), ``layers``, ``losses``, ``data`` (training items), ``train`` (the
loop behind ``aif train``). Each network module defines ``TASK`` for the loop and an
inference function on float32 HxWxC arrays.
"""
from __future__ import annotations

import importlib
from typing import Any

TASKS = {"fuse": "fuse_net", "color": "color_net", "refocus": "refocus_net"}


def get_task(name: str) -> Any:
    """The training task of network ``name`` (fuse, color, refocus)."""
    from ..errors import UsageError

    if name not in TASKS:
        raise UsageError(f"unknown model {name!r}: choose one of {', '.join(TASKS)}")
    return importlib.import_module(f"{__name__}.{TASKS[name]}").TASK
