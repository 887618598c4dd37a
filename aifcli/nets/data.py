"""Training data for the pair networks: ``aif synth pairs`` scenes, from disk or rendered on the fly.

Each scene gives two training items (main focused near, main focused far). An item holds,
on the fuse grid the classical pipeline uses (the main's resolution for inputs up to
2 MP), float16 HxWxC arrays:

- ``main``: the main image; ``uwf``: the ultra-wide warped into the main view by aif's own
  alignment (homography + flow, *estimated*, not the ground truth: the networks learn to
  live with its errors); ``conf``/``infield``: its confidence and field masks;
  ``iwc``: ``uwf`` after the classical colour match;
- ground truth: ``gt`` (all-in-focus image), ``occ`` (not visible in the ultra-wide),
  ``infocus`` (the main's CoC < 1.5 px), ``coc`` (the main's CoC in px).

The validation split is fixed: every scene whose index is a multiple of ``VAL_EVERY``.
Training presets exclude ``HELD_OUT_PRESETS``, which the benchmark uses with seed 0.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from ..errors import InputError, UsageError

HELD_OUT_PRESETS = ("generic-phone", "iphone-13", "huawei-mate30pro")
TRAIN_PRESETS = ("iphone-11-pro", "iphone-12", "iphone-14-pro", "iphone-15-pro", "pixel-6-pro", "pixel-7-pro",
                 "pixel-8-pro", "samsung-galaxy-s22", "samsung-galaxy-s23")
TRAIN_SIZES = (768, 1024, 1280)
VAL_EVERY = 8


@dataclass
class DataSource:
    """Either a folder written by ``aif synth pairs`` (``data``) or ``generate`` scenes on the fly."""

    data: Path | None = None
    generate: int = 0
    seed: int = 1000
    sizes: tuple[int, ...] = TRAIN_SIZES
    presets: tuple[str, ...] = TRAIN_PRESETS
    limit: int = 0  # use at most this many scenes from ``data`` (0 = all)
    cache: Path | None = None  # prepared items are kept here (one .npz per scene) and reused
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.data is not None:
            return f"`aif synth pairs` folder {self.data}" + (f" (first {self.limit} scenes)" if self.limit else "")
        return (f"{self.generate} scenes rendered on the fly by aifcli.synth.pairs.make_pair_scene, seed {self.seed}, "
                f"index 0..{self.generate - 1}, main width cycling {'/'.join(map(str, self.sizes))} px, presets cycling "
                f"{', '.join(self.presets)} (held out for the benchmark: {', '.join(HELD_OUT_PRESETS)})")

    def check(self) -> None:
        if self.data is None and self.generate <= 0:
            raise UsageError("give --data DIR (an `aif synth pairs` folder) or --generate N")
        if self.data is not None and not self.data.is_dir():
            raise InputError("not a folder", self.data, "give a folder written by `aif synth pairs ... --size 1024`")


@dataclass
class RawScene:
    name: str
    index: int
    main: dict[str, np.ndarray]  # "near"/"far" -> image
    ultrawide: np.ndarray
    aif: np.ndarray
    occlusion: np.ndarray
    infocus: dict[str, np.ndarray]
    coc: dict[str, np.ndarray]
    ratio: float


def _ratio(meta: dict[str, Any]) -> float:
    fm = meta["main"]["focal_px"] / meta["main"]["width"]
    fu = meta["ultrawide"]["focal_px"] / meta["ultrawide"]["width"]
    return float(fm / fu)


def _read_disk_scene(d: Path, index: int) -> RawScene:
    from ..io import read_gray, read_image

    gt = d / "gt"
    need = [d / "main_near.jpg", d / "main_far.jpg", d / "ultrawide.jpg", gt / "aif.png", gt / "occlusion.png",
            gt / "infocus_near.png", gt / "infocus_far.png", gt / "metadata.json", gt / "depth.npy"]
    for p in need:
        if not p.exists():
            raise InputError("missing training file", p, "generate the folder with `aif synth pairs DIR --count N`")
    meta = json.loads((gt / "metadata.json").read_text())
    depth = np.load(gt / "depth.npy")
    cm = meta["main"]
    coc = {f: (np.abs(float(cm[f"focus_{f}_m"]) / depth - 1.0) * float(cm[f"coc_scale_{f}_px"])).astype(np.float32)
           for f in ("near", "far")}
    return RawScene(d.name, index, {f: read_image(d / f"main_{f}.jpg").pixels for f in ("near", "far")},
                    read_image(d / "ultrawide.jpg").pixels, read_image(gt / "aif.png").pixels,
                    read_gray(gt / "occlusion.png") > 0.5,
                    {f: read_gray(gt / f"infocus_{f}.png") > 0.5 for f in ("near", "far")}, coc, _ratio(meta))


def iter_scenes(src: DataSource) -> Iterator[RawScene]:
    for _, _, load in iter_scene_loaders(src):
        yield load()


def iter_scene_loaders(src: DataSource) -> Iterator[tuple[str, int, Callable[[], RawScene]]]:
    """(name, index, loader) per scene: the name is known before any rendering or decoding."""
    src.check()
    if src.data is not None:
        dirs = sorted(p for p in src.data.iterdir() if p.is_dir() and (p / "gt").is_dir())
        if not dirs:
            raise InputError("no scene folders with gt/ inside", src.data,
                             "generate one with `aif synth pairs DIR --count N`")
        if src.limit:
            dirs = dirs[:src.limit]
        for i, d in enumerate(dirs):
            yield d.name, i, (lambda d=d, i=i: _read_disk_scene(d, i))
        return
    from ..synth.pairs import make_pair_scene

    def render(i: int, size: int, preset: str, name: str) -> RawScene:
        ps = make_pair_scene(src.seed, size=str(size), preset=preset, index=i)
        return RawScene(name, i, {"near": ps.main_near, "far": ps.main_far}, ps.ultrawide, ps.aif, ps.occlusion,
                        {"near": ps.infocus_near, "far": ps.infocus_far}, {"near": ps.coc_near, "far": ps.coc_far},
                        _ratio(ps.metadata))

    for i in range(src.generate):
        size = src.sizes[i % len(src.sizes)]
        preset = src.presets[i % len(src.presets)]
        name = f"seed{src.seed}_scene{i:04d}_{preset}_{size}"
        yield name, i, (lambda i=i, size=size, preset=preset, name=name: render(i, size, preset, name))


def _area(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if a.shape[:2] == shape:
        return a
    return cv2.resize(a, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def classical_inputs(main: np.ndarray, ultrawide: np.ndarray, ratio: float | None) -> dict[str, np.ndarray]:
    """What the classical pipeline has before its fusion step, on its fuse grid (float32)."""
    from ..align.pair import _resize, align_pair
    from ..color.local_affine import match_colors
    from ..fuse.pair import choose_fuse_scale

    al = align_pair(main, ultrawide, ratio=ratio)
    t = choose_fuse_scale(al, main.shape[:2])
    main_t = _resize(main, t)
    shape = main_t.shape[:2]
    uwf = al.warp(ultrawide, shape)
    conf = al.confidence_at(shape)
    infield = al.infield_at(shape)
    iwc = match_colors(uwf, main_t, mask=conf).image
    return {"main": main_t, "uwf": uwf, "iwc": iwc, "conf": conf, "infield": infield,
            "scale_uw": np.float32(al.scale / t)}


def cached_scene_items(src: DataSource, scenes: Any, make: Callable[[str, int, Any], list[dict[str, Any]] | None], *,
                       prefix: str = "", cache: Path | None = None,
                       progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The training items of every scene in ``scenes`` ((name, index, loader) triples): read
    from ``<cache>/<prefix><name>.npz`` when there (the scene is not rendered or decoded),
    else ``make(name, index, loader)`` and written there (``save_cached``). ``make`` returns
    None to skip a scene without caching it. ``cache`` defaults to ``src.cache``. The one
    preparation loop of the fuse, colour and refocus networks. Raises ``InputError`` when no
    scene gives an item."""
    import time

    say = progress or (lambda _m: None)
    cache = cache if cache is not None else getattr(src, "cache", None)
    items: list[dict[str, Any]] = []
    for name, index, load in scenes:
        path = Path(cache) / f"{prefix}{name}.npz" if cache is not None else None
        if path is not None and path.exists():
            items += load_cached(path)
            say(f"cached {name}")
            continue
        t0 = time.perf_counter()
        new = make(name, index, load)
        if new is None:
            continue
        if path is not None:
            save_cached(path, new)
        items += new
        say(f"prepared {name} in {time.perf_counter() - t0:.1f} s")
    if not items:
        raise InputError("no usable training pairs", Path(src.data or "."), "check the data folder")
    return items


def pair_items(src: DataSource, progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Training items (two per scene), float16 arrays on the fuse grid; see the module docstring."""
    say = progress or (lambda _m: None)

    def make(name: str, index: int, load: Callable[[], RawScene]) -> list[dict[str, Any]]:
        sc = load()
        new: list[dict[str, Any]] = []
        for focus in ("near", "far"):
            try:
                ci = classical_inputs(sc.main[focus], sc.ultrawide, sc.ratio)
            except Exception as e:  # noqa: BLE001 - a scene the classical alignment refuses teaches nothing
                say(f"skipped {sc.name} {focus}: {e}")
                continue
            shape = ci["main"].shape[:2]
            f16 = lambda a: np.ascontiguousarray(a.astype(np.float16))  # noqa: E731
            item = {k: f16(v if v.ndim == 3 else v[..., None]) for k, v in ci.items() if isinstance(v, np.ndarray)
                    and v.ndim >= 2}
            item["gt"] = f16(_area(sc.aif, shape))
            item["occ"] = f16(_area(sc.occlusion.astype(np.float32), shape)[..., None])
            item["infocus"] = f16(_area(sc.infocus[focus].astype(np.float32), shape)[..., None])
            item["coc"] = f16(_area(sc.coc[focus].astype(np.float32), shape)[..., None])
            item["name"] = f"{sc.name}_{focus}"
            item["val"] = sc.index % VAL_EVERY == 0
            item["scale_uw"] = float(ci["scale_uw"])
            new.append(item)
        return new

    return cached_scene_items(src, iter_scene_loaders(src), make, progress=progress)


def save_cached(path: Path, items: list[dict[str, Any]]) -> None:
    """Write one scene's training items (dicts of arrays and scalars) to ``path`` as an
    uncompressed .npz, atomically (temporary file, then rename); ``load_cached`` reads it.
    Shared by the fuse, colour and refocus networks' ``--cache``."""
    import io
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {}
    for j, it in enumerate(items):
        for k, v in it.items():
            arrays[f"{j}/{k}"] = np.asarray(v)
    buf = io.BytesIO()
    np.savez(buf, n=np.int32(len(items)), **arrays)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def load_cached(path: Path) -> list[dict[str, Any]]:
    """The items ``save_cached`` wrote to ``path``."""
    with np.load(path, allow_pickle=False) as z:
        out: list[dict[str, Any]] = [{} for _ in range(int(z["n"]))]
        for key in z.files:
            if key == "n":
                continue
            j, k = key.split("/", 1)
            v = z[key]
            out[int(j)][k] = v if v.ndim else v.item()
    for it in out:
        it["val"] = bool(it["val"])
        it["name"] = str(it["name"])
    return out


def random_crops(items: list[dict[str, Any]], keys: tuple[str, ...], rng: np.random.Generator, batch: int,
                 crop: int) -> dict[str, np.ndarray]:
    """``batch`` random crops (same window across ``keys``) with random flips: NxCxHxW float32."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for _ in range(batch):
        it = items[int(rng.integers(len(items)))]
        h, w = it[keys[0]].shape[:2]
        c = min(crop, h, w) // 16 * 16
        y = int(rng.integers(0, h - c + 1))
        x = int(rng.integers(0, w - c + 1))
        flip = bool(rng.integers(2))
        for k in keys:
            a = it[k][y:y + c, x:x + c]
            if flip:
                a = a[:, ::-1]
            out[k].append(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))
    # crops can differ in size only when an item is smaller than ``crop``: cut to the smallest
    m = min(a.shape[1] for a in out[keys[0]])
    return {k: np.stack([a[:, :m, :m] for a in v]) for k, v in out.items()}
