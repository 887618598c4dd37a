"""``aif refocus``: move the focal plane, change the aperture, tilt-shift or mask, after the shot.

A thin layer over ``aifcli.refocus``: it reads the inputs (an all-in-focus image plus a
disparity map, a main + ultra-wide pair, or a bracket folder), builds the target
defocus map from the controls and renders it with ``render_defocus``.
"""
from __future__ import annotations

import json as _json
import math
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer

from ..errors import InputError, UsageError
from .app import app
from .common import (DebugDirOpt, DebugOpt, JsonOpt, OutputOpt, OverwriteOpt, PresetOpt, QualityOpt, QuietOpt, UI,
                     VerboseOpt, handle_errors)

HELP = (
    "Refocus after the shot: move the focal plane, open or close the aperture, deblur, tilt-shift, "
    "or keep a masked subject sharp (DC²-style defocus control).\n\n"
    "Inputs: IMAGE --disparity MAP (an all-in-focus image and its disparity: 16-bit PNG, TIFF or .npy, "
    "larger = nearer unless --disparity-unit says depth); MAIN ULTRAWIDE (a phone pair: fused to "
    "all-in-focus first, disparity from the parallax); or a FOLDER holding a focus bracket (stacked first, "
    "disparity from the depth map).\n\n"
    "Blur: the circle of confusion is c = K |d - d_focus| (DC² eq. 1 written in disparity). --blur K gives K "
    "directly as the CoC diameter in pixels between the nearest and farthest parts of the scene; "
    "--aperture f/N computes it from the preset's focal length and pixel pitch. Rendering scatters light "
    "in linear light with a disc (or --blades N polygon) kernel, depth layer by depth layer, back to front: "
    "blurred backgrounds never bleed over a sharp subject, blurred foregrounds spread over what is behind "
    "them.\n\n"
    "Examples:\n\n"
    "aif refocus aif.png -d disp.png --focus-at 1200,800 --blur 60 -o out.jpg\n\n"
    "aif refocus main.jpg ultrawide.jpg --focus-at 0.5,0.7 --aperture f/1.4 -o out.jpg\n\n"
    "aif refocus bracket/ --tilt 30 --blur 50 -o mini.jpg\n\n"
    "aif refocus aif.png -d d.npy --sweep 24 -o pull.jpg  (pull_000.jpg .. pull_023.jpg, pull.gif)"
)


@app.command("refocus", help=HELP)
@handle_errors
def refocus_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="IMAGE (with --disparity), MAIN ULTRAWIDE, or a bracket FOLDER.",
                                                 show_default=False)],
    output: OutputOpt,
    disparity: Annotated[Optional[Path], typer.Option("--disparity", "-d", help="Disparity map for IMAGE: 16-bit PNG, TIFF or .npy, same aspect ratio as the image.")] = None,
    disparity_unit: Annotated[str, typer.Option("--disparity-unit", help="What the map holds: relative (disparity, any scale, larger = nearer), inv-m (1/m), depth-m (metres), depth-relative (larger = farther).")] = "relative",
    focus_at: Annotated[Optional[str], typer.Option("--focus-at", help="Focus on the subject at X,Y (pixels, or fractions like 0.5,0.4). Default: the image centre, or the mask's subject.")] = None,
    focus_distance: Annotated[Optional[float], typer.Option("--focus-distance", help="Focus distance in metres (metric maps; relative maps assume 0 = infinity and 1 = --near-distance).")] = None,
    aperture: Annotated[Optional[str], typer.Option("--aperture", "-a", help="Simulated f-number, e.g. f/1.4 (DC² eq. 1 with the preset's focal length and pixel pitch).")] = None,
    blur: Annotated[Optional[float], typer.Option("--blur", "-b", help="Blur strength K: CoC diameter in px between the nearest and farthest parts of the scene. Default: 1.5% of the image diagonal.", min=0)] = None,
    blades: Annotated[int, typer.Option("--blades", help="Aperture blades: 0 = round disc, 5-9 = polygonal bokeh.", min=0, max=16)] = 0,
    blade_rotation: Annotated[float, typer.Option("--blade-rotation", help="Rotation of the polygon aperture, degrees.")] = 0.0,
    tilt: Annotated[Optional[str], typer.Option("--tilt", help="Tilt the focal plane: ANGLE[,AXIS] degrees. The sharp band runs at AXIS deg from horizontal (default 0) through the focus point; tan(ANGLE) = change of focus (in scene-depth ranges) per half diagonal. Tilt-shift miniature: --tilt 40 with a strong --blur.")] = None,
    mask: Annotated[Optional[Path], typer.Option("--mask", help="Keep the masked subject sharp (white = sharp), blur the rest. PNG/TIFF/.npy, same aspect ratio.")] = None,
    deblur: Annotated[bool, typer.Option("--deblur", help="Target defocus zero everywhere: write the all-in-focus image (for pair and bracket inputs).")] = False,
    sweep: Annotated[int, typer.Option("--sweep", help="Write a focus pull of N frames from near to far (OUT_000.ext ...) and an animated OUT.gif preview.", min=0)] = 0,
    near_distance: Annotated[float, typer.Option("--near-distance", help="For relative maps with --aperture/--focus-distance: the distance (m) of disparity 1; disparity 0 is infinity.", min=0.01)] = 0.5,
    near: Annotated[str, typer.Option("--near", help="Bracket input: which end of the bracket is focused near, first or last.")] = "first",
    flip_disparity: Annotated[bool, typer.Option("--flip-disparity", help="Pair input: swap near and far when the automatic sign (the long tail of the parallax is near) is wrong.")] = False,
    refine: Annotated[Optional[bool], typer.Option("--refine/--no-refine", help="Edge-aware refinement of the disparity against the image (default: on for pairs and brackets, off for a given map).")] = None,
    highlights: Annotated[float, typer.Option("--highlights", help="Highlight boost: a clipped white becomes this much brighter in linear light before blurring (1 = off).", min=1.0, max=32.0)] = 3.0,
    max_coc: Annotated[float, typer.Option("--max-coc", help="Cap on the CoC diameter in px.", min=1.0)] = 400.0,
    engine: Annotated[str, typer.Option("--engine", help="[bold]classical[/bold]: render the fused all-in-focus image (default); [bold]net[/bold]: the learned DFNet-style engine (MAIN ULTRAWIDE pairs only) blends the classical render, the main re-blurred toward the target and the fused image with learned masks plus a residual (weights/refocus-net.pt, see its model card).")] = "classical",
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Weights for --engine net (default: the shipped weights/refocus-net.pt).")] = None,
    preset: PresetOpt = None,
    bit_depth: Annotated[Optional[int], typer.Option("--bit-depth", help="8 or 16 (PNG/TIFF). Default: 8 for JPEG/PNG, 16 for TIFF.")] = None,
    quality: QualityOpt = 95,
    overwrite: OverwriteOpt = False,
    debug_dir: DebugDirOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    from ..io import check_output, read_gray, write_image
    from ..refocus import controls as C
    from ..refocus.coc import parse_aperture
    from ..refocus.render import Aperture, RenderOptions, render_defocus

    ui = UI(quiet, verbose, json, debug)
    T0 = time.perf_counter()
    timings: dict[str, float] = {}
    kind = _input_kind(inputs, disparity)
    if aperture is not None and blur is not None:
        raise UsageError("give either --aperture or --blur, not both")
    if focus_at is not None and focus_distance is not None:
        raise UsageError("give either --focus-at or --focus-distance, not both")
    if deblur and (sweep or tilt or mask):
        raise UsageError("--deblur cannot be combined with --sweep, --tilt or --mask")
    if engine not in ("classical", "net"):
        raise UsageError(f"unknown --engine {engine!r}", hint="use classical or net")
    if weights is not None and engine != "net":
        raise UsageError("--weights is for --engine net", hint="add --engine net or drop --weights")
    net_model = None
    if engine == "net":
        if kind != "pair":
            raise UsageError(f"--engine net needs a MAIN ULTRAWIDE pair (got {'a bracket folder' if kind == 'bracket' else 'an IMAGE with --disparity'})",
                             hint="give two files, or use --engine classical")
        from ..nets.refocus_net import load as load_refocus_net

        net_model, net_info = load_refocus_net(weights)  # one clear error before any work
        ui.detail(f"refocus net: {net_info['path']} ({net_info.get('arch')})")
    f_number = parse_aperture(aperture) if aperture is not None else None
    tilt_v = C.parse_tilt(tilt) if tilt else None
    if bit_depth not in (None, 8, 16):
        raise UsageError(f"--bit-depth {bit_depth} must be 8 or 16")
    outs = _outputs(output, sweep)
    srcs = tuple(p for p in [*inputs, disparity, mask] if p is not None)
    for o in outs:
        check_output(o, overwrite, inputs=srcs)

    # --- all-in-focus image and disparity ---------------------------------------------
    t0 = time.perf_counter()
    meta, aif, disp, extra = _load(kind, inputs, disparity, disparity_unit, preset, near, flip_disparity, ui)
    timings["inputs"] = time.perf_counter() - t0
    h, w = aif.shape[:2]
    do_refine = refine if refine is not None else kind != "image"
    if do_refine and kind == "image":
        from ..refocus.disparity import refine as refine_fn

        t0 = time.perf_counter()
        disp.disparity = refine_fn(disp.disparity, aif)
        timings["refine"] = time.perf_counter() - t0
    d = disp.disparity
    m = None
    if mask is not None:
        m = read_gray(mask).astype(np.float32)
        if m.ndim != 2:
            raise InputError("mask must be a single-channel image", mask)
        if abs(m.shape[1] / m.shape[0] - w / h) > 0.02 * w / h:
            raise InputError(f"mask is {m.shape[1]}x{m.shape[0]} but the image is {w}x{h}", mask,
                             "give a mask with the image's aspect ratio")
        if m.shape != (h, w):
            import cv2

            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        if m.max() > 1.0:
            m = m / float(m.max())

    # --- focus and blur strength ------------------------------------------------------
    if focus_at is not None:
        x, y = C.parse_point(focus_at, (h, w))
        fd, centre = C.focus_at(d, x, y), (x, y)
    elif focus_distance is not None:
        fd, centre = C.focus_disparity_for_distance(focus_distance, disp.unit, near_distance), None
    elif m is not None:
        fd, centre = C.focus_from_mask(d, m), None
    else:
        x, y = (w - 1) / 2, (h - 1) / 2
        fd, centre = C.focus_at(d, x, y), (x, y)

    def model_for(fdisp: float) -> Any:
        if f_number is not None:
            cam = _camera(preset, meta, ui)
            if disp.unit != "inv-m":
                ui.warn(f"relative disparity with --aperture: assuming disparity 1 is {near_distance:g} m and 0 is "
                        "infinity (--near-distance)")
            return C.optics_model(cam, f_number, w, fdisp, disp.unit, near_distance)
        k = blur if blur is not None else 0.015 * math.hypot(h, w)
        return C.blur_model(k, d, disp.unit)

    opts = RenderOptions(aperture=Aperture(blades, blade_rotation), highlight_gain=highlights)
    linear = bool(meta.linear)
    focus_list = C.sweep_focus(d, sweep) if sweep else [fd]
    results = []
    frames_small = []
    for i, (fdi, out) in enumerate(zip(focus_list, outs)):
        t0 = time.perf_counter()
        model = model_for(fdi)
        plan = C.defocus_map(d, model, fdi, tilt=tilt_v, centre=centre, mask=m, deblur=deblur, max_coc=max_coc)
        res = render_defocus(aif, plan.order, plan.coc, linear=linear, focus=fdi if plan.plane else None, options=opts)
        image, net_summary = res.image, None
        if net_model is not None:
            from ..nets.refocus_net import refocus_pair_net

            image, net_summary = refocus_pair_net(extra["main"], aif, d, plan.order, plan.coc,
                                                  focus=fdi if plan.plane else None, classical=res.image,
                                                  model=net_model, options=opts, linear=linear)
        dt = time.perf_counter() - t0
        write_image(out, image, meta=meta, linear=linear, bit_depth=bit_depth, quality=quality,
                    overwrite=overwrite)
        results.append({"output": str(out), "seconds": round(dt, 3), "coc_model": model.to_dict(),
                        **plan.summary(), "render": res.to_dict(), "engine": engine,
                        **({"net": net_summary} if net_summary else {})})
        if sweep:
            frames_small.append(_small(image, linear))
            ui.detail(f"frame {i + 1}/{len(focus_list)}: focus disparity {fdi:.3f}, {dt:.2f} s")
        if debug_dir is not None and i == 0:
            _write_debug(debug_dir, aif, d, plan.coc, extra, disp.to_dict(), meta, linear, overwrite)
    if sweep:
        _write_gif(outs[-1], frames_small, overwrite)
    timings["total"] = time.perf_counter() - T0
    summary = {"input_kind": kind, "inputs": [str(p) for p in inputs], "size": [w, h], "disparity": disp.to_dict(),
               "aperture_shape": opts.aperture.describe(), "frames": results,
               "timings": {k: round(v, 3) for k, v in timings.items()}}
    if json:
        ui.emit_json(summary)
    else:
        r0 = results[0]
        what = "deblurred (all-in-focus)" if deblur else (
            f"focus disparity {r0['focus_disparity']:.3f}, max CoC {r0['max_coc_px']:.1f} px")
        if sweep:
            ui.info(f"wrote {sweep} frames {outs[0].name} .. {outs[sweep - 1].name} and {outs[-1].name} "
                    f"in {timings['total']:.1f} s")
        else:
            ui.info(f"wrote {outs[0]} ({w}x{h}, {what}) in {timings['total']:.1f} s")
        ui.detail(_json.dumps({k: v for k, v in summary.items() if k != "frames"}, default=str))


def _input_kind(inputs: list[Path], disparity: Path | None) -> str:
    for p in inputs:
        if not p.exists():
            raise InputError("no such file or folder", p, "check the path")
    if len(inputs) == 1 and inputs[0].is_dir():
        if disparity is not None:
            raise UsageError("--disparity is for a single IMAGE; a bracket folder gets its disparity from stacking")
        return "bracket"
    if len(inputs) == 1:
        if disparity is None:
            raise UsageError("a single IMAGE needs --disparity MAP", inputs[0],
                             "give a disparity map, or a main + ultra-wide pair, or a bracket folder")
        if not disparity.exists():
            raise InputError("no such file", disparity, "check the --disparity path")
        return "image"
    if len(inputs) == 2:
        if disparity is not None:
            raise UsageError("--disparity is for a single IMAGE; a pair gets its disparity from the parallax")
        for p in inputs:
            if p.is_dir():
                raise UsageError("a pair is two image files", p)
        return "pair"
    raise UsageError(f"give one IMAGE, a MAIN ULTRAWIDE pair or one bracket FOLDER (got {len(inputs)} inputs)")


def _outputs(output: Path, sweep: int) -> list[Path]:
    if not sweep:
        return [output]
    stem = output.with_suffix("")
    ext = output.suffix or ".jpg"
    return [Path(f"{stem}_{i:03d}{ext}") for i in range(sweep)] + [stem.with_suffix(".gif")]


def _load(kind: str, inputs: list[Path], disparity: Path | None, unit: str, preset: str | None, near: str,
          flip: bool, ui: UI) -> tuple[Any, np.ndarray, Any, dict[str, np.ndarray]]:
    from ..io import read_image
    from ..refocus.disparity import bracket_disparity, load_disparity, parallax_from_alignment

    if kind == "image":
        img = read_image(inputs[0])
        assert disparity is not None
        disp = load_disparity(disparity, img.pixels.shape[:2], unit)
        return img.meta, img.pixels, disp, {}
    if kind == "pair":
        from ..fuse import fuse_pair
        from ..presets import resolve_preset

        main, uw = read_image(inputs[0]), read_image(inputs[1])
        pr, warn = resolve_preset(preset, main.meta.exif)
        if warn:
            ui.warn(warn)
        res = fuse_pair(main.pixels, uw.pixels, pr, main_path=inputs[0], uw_path=inputs[1])
        disp = parallax_from_alignment(res.alignment, res.image.shape[:2], res.image, flip=flip)
        ui.detail(f"fused pair: {res.summary()}")
        return main.meta, res.image, disp, {"aif": res.image, "main": main.pixels}
    # bracket
    from ..io import is_image_file
    from ..stack import stack_frames
    from .stack_cmd import FrameSource

    paths = sorted(p for p in inputs[0].iterdir() if p.is_file() and is_image_file(p))
    if len(paths) < 2:
        raise InputError(f"folder holds {len(paths)} image(s); a bracket needs at least 2", inputs[0])
    src = FrameSource(paths)
    try:
        res = stack_frames(src, near=near)
    except ValueError as e:
        raise InputError(f"cannot stack the bracket: {e}", inputs[0]) from None
    if src.linear:
        from ..image import linear_to_srgb

        image = linear_to_srgb(res.image)
    else:
        image = res.image
    disp = bracket_disparity(res.depth, res.n_frames, res.confidence, image, near=near)
    meta = src.meta.copy(linear=False) if src.meta is not None else None
    from ..image import ImageMeta

    return meta or ImageMeta(), image, disp, {"aif": image}


def _camera(preset: str | None, meta: Any, ui: UI) -> Any:
    from ..presets import resolve_preset

    pr, warn = resolve_preset(preset, meta.exif if meta is not None else None)
    if warn:
        ui.warn(warn)
    return pr.camera("main")


def _small(img: np.ndarray, linear: bool, width: int = 480) -> np.ndarray:
    import cv2

    from ..image import linear_to_srgb

    x = linear_to_srgb(img) if linear else img
    s = min(1.0, width / x.shape[1])
    if s < 1:
        x = cv2.resize(x, (round(x.shape[1] * s), round(x.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _write_gif(path: Path, frames: list[np.ndarray], overwrite: bool) -> None:
    import io

    from PIL import Image as PILImage

    from ..io import write_bytes_atomic

    ims = [PILImage.fromarray(f).convert("P", palette=PILImage.Palette.ADAPTIVE, colors=255) for f in frames]
    seq = ims + ims[-2:0:-1]  # ping-pong
    buf = io.BytesIO()
    seq[0].save(buf, "GIF", save_all=True, append_images=seq[1:], duration=80, loop=0)
    write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


def _write_debug(folder: Path, aif: np.ndarray, d: np.ndarray, coc: np.ndarray, extra: dict[str, np.ndarray],
                 info: dict[str, Any], meta: Any, linear: bool, overwrite: bool) -> None:
    from ..io import write_bytes_atomic, write_gray8, write_gray16, write_image

    folder.mkdir(parents=True, exist_ok=True)
    lo, hi = float(d.min()), float(d.max())
    write_gray16(folder / "disparity.png", (d - lo) / max(hi - lo, 1e-9), overwrite=True)
    buf = __import__("io").BytesIO()
    np.save(buf, d.astype(np.float32))
    write_bytes_atomic(folder / "disparity.npy", buf.getvalue(), overwrite=True)
    write_gray8(folder / "coc.png", coc / max(float(coc.max()), 1e-6), overwrite=True)
    if "aif" in extra:
        write_image(folder / "aif.png", extra["aif"], meta=meta, linear=linear, overwrite=True)
    info = {**info, "disparity_png_range": [lo, hi], "coc_png_max_px": float(coc.max())}
    write_bytes_atomic(folder / "refocus.json", _json.dumps(info, indent=2, default=str).encode(), overwrite=True)
