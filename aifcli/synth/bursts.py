"""Focus brackets: N frames sweeping focus near -> far, with ground truth.

``make_burst(seed, size, frames, preset)`` renders one bracket in memory and returns a
``BurstScene``; ``burst_files(b, fmt)`` encodes it into the on-disk layout
(``frame_000.jpg`` ..., ``gt/aif.png``, ``gt/depth.npy``, ``gt/focus_index.npy``,
``gt/metadata.json``; see docs/SYNTH.md).

Physics per frame i: focus distance S_i (uniform steps in diopters, so every depth in the
range is within about one pixel of CoC of some frame); focus breathing: the thin lens's
image distance v_i = f S_i / (S_i - f) scales the image by v_i / v_ref (times
``breathing``, 1 = a unit-focusing lens); camera shake: a small random rotation (a few
pixels of shift, a little roll), which moves every depth alike; exposure flicker; noise.
Ground truth is in the geometry of the reference frame F // 2 (what a stacker aligned
to the middle frame should output); ``homographies[i]`` maps reference pixels to frame i.
"""
from __future__ import annotations

import io
from datetime import timedelta
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import UsageError
from ..presets import Preset, get_preset
from .camera import develop, lateral_ca, random_look
from .exif import ShotInfo, shot_for
from .optics import breathing_scale
from .pairs import _json_default, _npy, _random_time, module_lens, out_scale, png16
from .render import Focus, composite, front_depth
from .scene import Scene, View, random_scene, render_layer, rot_xyz

FORMATS = ("jpeg", "tiff", "dng")
EXT = {"jpeg": "jpg", "tiff": "tif", "dng": "dng"}
STEP_COC_PX = 2.0  # CoC difference between neighbouring frames' focus, at the output size


@dataclass
class BurstScene:
    frames: list[np.ndarray]  # display-encoded float32 HxWx3 (what JPEG/TIFF frames hold)
    raw: list[np.ndarray] | None  # uint16 RGGB mosaics (DNG), when asked for
    aif: np.ndarray  # reference geometry, no noise, no flicker
    depth: np.ndarray  # float32 HxW metres, reference geometry
    focus_index: np.ndarray  # float32 HxW fractional frame index in focus at each pixel
    focus_m: list[float]
    homographies: list[np.ndarray]  # reference pixel -> frame i pixel
    shots: list[ShotInfo] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    scene: Scene | None = None
    reference: int = 0


def _even(n: int) -> int:
    return n - (n % 2)


def focus_span_diopters(preset: Preset, size: str | int, frames: int) -> float:
    """Diopters swept by ``frames`` frames whose neighbours' CoC differs by STEP_COC_PX;
    raises UsageError when the lens cannot focus over that range (too many frames for
    the size: the CoC per diopter shrinks with the output size)."""
    lens, _, _ = module_lens(preset, "main", out_scale(preset, size))
    px_per_diopter = (lens.focal_mm / 1000.0) ** 2 / lens.f_number / (lens.pixel_pitch_um * 1e-6)
    span = frames * STEP_COC_PX / px_per_diopter
    f_m = lens.focal_mm / 1000.0
    if span > 1.0 / (2 * f_m) - 0.05:
        most = int((1.0 / (2 * f_m) - 0.05) * px_per_diopter / STEP_COC_PX)
        raise UsageError(f"{frames} frames at --size {size} would need focus from {2 * f_m * 100:.0f} cm to beyond "
                         f"infinity with the preset '{preset.name}'",
                         hint=f"use at most {most} frames at this size, or a larger --size")
    return span


def make_burst(seed: int, size: str | int = "512", frames: int = 8, preset: str | Preset = "generic-camera",
               noise: float = 1.0, index: int = 0, raw: bool = False, breathing: float = 1.0,
               shake_px: float = 1.5, flicker: float = 0.02, blades: int = 0,
               aberration: float = 0.0, spherical: float = 0.0) -> BurstScene:
    """Render bracket ``index`` of ``seed`` (deterministic) with the preset's main camera.

    ``size``: output width (512, 1024, ``full``); ``frames``: 2..500; ``noise``: sensor
    noise scale (0 = none); ``raw``: also make Bayer mosaics for DNG; ``breathing``:
    scale of the physical focus breathing (0 = none); ``shake_px``: standard deviation of
    the camera shake in pixels; ``flicker``: standard deviation of the exposure gain;
    ``aberration``: lateral chromatic aberration, px at the corners at full resolution;
    ``spherical``: spherical aberration of the PSF (-1..1, see ``pairs.make_pair_scene``).
    """
    pr = get_preset(preset) if isinstance(preset, str) else preset
    if not 2 <= frames <= 500:
        raise UsageError(f"--frames {frames} is outside 2..500")
    if noise < 0 or noise > 20:
        raise UsageError(f"--noise {noise} is outside 0..20")
    if not 0 <= shake_px <= 100 or not 0 <= flicker <= 0.5 or not 0 <= breathing <= 20:
        raise UsageError("shake 0..100 px, flicker 0..0.5 and breathing 0..20 please")
    rng = np.random.default_rng([int(seed), int(index), 7])
    scale = out_scale(pr, size)
    lens, w, h = module_lens(pr, "main", scale)
    if raw:
        w, h = _even(w), _even(h)
    f_px = lens.focal_px
    span = focus_span_diopters(pr, size, frames)
    f_m = lens.focal_mm / 1000.0
    if pr.kind == "camera":
        zc = float(np.exp(rng.uniform(np.log(max(0.15, 6 * f_m)), np.log(max(0.6, 12 * f_m)))))
    else:
        zc = float(np.exp(rng.uniform(np.log(0.15), np.log(1.0))))
    # keep the nearest focus at >= 2 focal lengths, shifting the range outward if needed
    d_near = min(1.0 / zc + span / 2, 1.0 / (2 * f_m))
    d_far = max(d_near - span, 0.02)
    diopters = np.linspace(d_near, d_far, frames)
    focus = [float(1.0 / d) for d in diopters]
    ref = frames // 2
    near, wall = focus[0], focus[-1] * 0.999  # every card and the wall inside the swept range
    fov_x, fov_y = (w / 2) / f_px, (h / 2) / f_px
    # a bracket wants depth everywhere: a ramp (a table top seen from above, near at the
    # bottom edge, reaching the wall inside the frame)
    # and more cards than a pair scene
    scene = random_scene(rng, int(seed), fov_x, fov_y, 1.0 / f_px, near=near, far=wall, wall_depth=wall,
                         ramp=(1.05, float(rng.uniform(-0.3, 0.5))),
                         n_cards=int(rng.integers(4, 8)))
    look = random_look(rng, "main", noise)
    look = replace(look, vignetting=look.vignetting * 0.5, noise_a=look.noise_a * 0.5, noise_b=look.noise_b * 0.5)

    views, gains, scales, shakes = [], [], [], []
    for i in range(frames):
        m = breathing_scale(lens.focal_mm, focus[i], focus[ref]) ** breathing if breathing else 1.0
        sx, sy = rng.normal(0, shake_px, 2) if shake_px else (0.0, 0.0)
        roll = float(rng.normal(0, shake_px / max(w, h))) if shake_px else 0.0
        R = rot_xyz(-sy / f_px, sx / f_px, roll)
        views.append(View.make(f_px * m, w, h, R=R))
        gains.append(float(1.0 + rng.normal(0, flicker)) if flicker else 1.0)
        scales.append(m)
        shakes.append((float(sx), float(sy), roll))
    rv = views[ref]
    Hs = [v.K @ v.R @ rv.R.T @ np.linalg.inv(rv.K) for v in views]
    Hs = [H / H[2, 2] for H in Hs]
    nr = [np.random.default_rng([int(seed), int(index), 8, i]) for i in range(frames)]
    wb_raw = (float(rng.uniform(1.7, 2.3)), 1.0, float(rng.uniform(1.3, 1.9)))  # sensor-native -> WB gains

    def one(i: int) -> tuple[np.ndarray, np.ndarray | None]:
        layers = [render_layer(l, views[i]) for l in scene.layers]
        lin = lateral_ca(composite(layers, Focus(lens, focus[i], blades, spherical), w, h), aberration * scale)
        lk = replace(look, exposure=look.exposure * gains[i])
        mosaic = None
        if raw:
            from .camera import add_noise, vignette_map
            from .dng import mosaic_rggb, to_dn

            x = lin * np.float32(lk.exposure)
            if lk.vignetting:
                x *= vignette_map(h, w, lk.vignetting)[..., None]
            x /= np.asarray(wb_raw, np.float32)
            bayer = mosaic_rggb(x)
            if noise:
                add_noise(bayer, lk.noise_a, lk.noise_b, nr[i])
            mosaic = to_dn(bayer)
        img = develop(lin, lk, nr[i] if not raw else None, noise=not raw, inplace=True)
        return img, mosaic

    with ThreadPoolExecutor(max_workers=2) as ex:
        res = list(ex.map(one, range(frames)))
        ref_layers = [render_layer(l, rv) for l in scene.layers]
        aif = develop(composite(ref_layers, None, w, h), look, None, noise=False, inplace=True)
        depth = front_depth(ref_layers, w, h)
    inv = (1.0 / depth).astype(np.float32)
    # fractional frame index in focus: interpolate inverse depth over the frames' diopters
    focus_index = np.interp(inv.ravel(), diopters[::-1], np.arange(frames, dtype=np.float64)[::-1])
    focus_index = focus_index.reshape(depth.shape).astype(np.float32)

    t0 = _random_time(rng)
    step = 0.25
    shots = []
    for i in range(frames):
        t = t0 + timedelta(seconds=step * i)
        shots.append(shot_for(pr, "main", t, w, h, exposure_s=1 / 125, iso=100))
    meta = {
        "aif_synth": 1, "kind": "burst", "seed": int(seed), "index": int(index), "size": str(size),
        "preset": pr.name, "noise": float(noise), "frames": frames, "reference_index": ref,
        "psf": "disc" if blades < 3 else f"{blades}-gon", "lateral_ca_corner_px": aberration * scale, "spherical": spherical,
        "width": w, "height": h, "focal_mm": lens.focal_mm, "f_number": lens.f_number,
        "pixel_pitch_um": lens.pixel_pitch_um, "focal_px": f_px,
        "focus_m": focus, "focus_diopters": diopters.tolist(), "coc_step_px": STEP_COC_PX,
        "scale": [s / scales[ref] for s in scales], "shake_px_roll": shakes, "exposure_gain": gains,
        "breathing": breathing, "flicker": flicker, "shake_px": shake_px,
        "homographies_ref_to_frame": [H.tolist() for H in Hs],
        "look": look.to_dict(), "raw_wb_gains": list(wb_raw) if raw else None,
        "depth_range_m": [float(depth.min()), float(depth.max())],
        "capture_times": [s.time.isoformat(timespec="milliseconds") for s in shots],
        "conventions": {"focus_index": "fractional frame index whose focus distance matches each pixel's depth "
                                       "(linear in diopters); 0 = nearest focus",
                        "geometry": "gt/ arrays are in the reference frame's pixel grid"},
        "scene": scene.to_dict(),
    }
    return BurstScene([r[0] for r in res], [r[1] for r in res] if raw else None, aif, depth.astype(np.float32),
                      focus_index, focus, Hs, shots, meta, scene, ref)


def burst_files(b: BurstScene, fmt: str = "jpeg", quality: int = 95) -> dict[str, bytes]:
    """Encode a bracket: {relative path: bytes} in the documented layout."""
    from ..image import ImageMeta
    from ..io.write import encode_image
    from .exif import exif_bytes, tiff_tags

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    files: dict[str, bytes] = {}
    n = len(b.frames)
    digits = max(3, len(str(n - 1)))
    for i in range(n):
        name = f"frame_{i:0{digits}d}.{EXT[fmt]}"
        if fmt == "jpeg":
            files[name] = encode_image(b.frames[i], "jpeg", quality=quality,
                                       meta=ImageMeta(exif_bytes=exif_bytes(b.shots[i])))
        elif fmt == "tiff":
            files[name] = _tiff16(b.frames[i], tiff_tags(b.shots[i]))
        else:
            if b.raw is None:
                raise UsageError("this bracket was made without raw=True; cannot write DNG")
            from .dng import dng_bytes

            files[name] = dng_bytes(b.raw[i], b.shots[i], tuple(b.metadata["raw_wb_gains"]))
    files["gt/aif.png"] = png16(b.aif)
    files["gt/depth.npy"] = _npy(b.depth)
    files["gt/focus_index.npy"] = _npy(b.focus_index)
    meta = dict(b.metadata)
    meta["format"] = fmt
    meta["files"] = [k for k in files if not k.startswith("gt/")]
    files["gt/metadata.json"] = json.dumps(meta, indent=1, default=_json_default).encode()
    return files


def _tiff16(img: np.ndarray, tags: list[tuple[int, int, int, object]]) -> bytes:
    import tifffile

    q = (np.clip(img, 0, 1) * 65535.0 + 0.5).astype(np.uint16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, q, photometric="rgb", compression="zlib", software="aif synth",
                     extratags=[(c, t, n, v, True) for c, t, n, v in tags], metadata=None)
    return buf.getvalue()
