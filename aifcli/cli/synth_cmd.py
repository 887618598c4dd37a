"""``aif synth``: physically based synthetic phone pairs and focus brackets with ground truth."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..batch import WorkItem, run_batch
from ..errors import InputError, UsageError
from .app import app
from .batchui import finish_batch, show_plan
from .common import (DebugOpt, DryRunOpt, JobsOpt, JsonOpt, OverwriteOpt, QualityOpt, QuietOpt, SchedulerOpt,
                     SkipExistingOpt, UI, VerboseOpt, handle_errors)

synth_app = typer.Typer(
    help=("Synthetic data with exact ground truth: phone pairs (main focused near and far + ultra-wide) and "
          "focus brackets, rendered with thin-lens optics (DC² eq. 1) and layered defocus. "
          "Deterministic: the same seed gives the same bytes."),
    no_args_is_help=True)
app.add_typer(synth_app, name="synth")

CountOpt = Annotated[int, typer.Option("--count", "-n", help="Number of scenes (pairs) or brackets (bursts).",
                                       min=1, max=100000)]
SeedOpt = Annotated[int, typer.Option("--seed", "-s", help="Random seed; scene k of seed S is always the same "
                                                           "(and equals scene k of a longer run).", min=0)]
SizeOpt = Annotated[str, typer.Option("--size", help="Output width of the main image in pixels: 512, 1024, full "
                                                     "(the preset's native width, e.g. 4032) or any width "
                                                     "64..native. Pixel pitch grows as the size shrinks, so blur "
                                                     "in pixels scales with the image.")]
NoiseOpt = Annotated[float, typer.Option("--noise", help="Sensor noise scale: 0 = none, 1 = a phone indoors "
                                                         "(Poisson-Gaussian, variance a*x + b in linear light).",
                                         min=0.0, max=20.0)]
BladesOpt = Annotated[int, typer.Option("--blades", help="Aperture shape: 0 = disc PSF, 5-9 = polygonal "
                                                         "aperture with that many blades.", min=0, max=16)]
AberrationOpt = Annotated[float, typer.Option("--aberration", help="Lateral chromatic aberration: red/blue "
                                                                 "displacement from green at the image corners, "
                                                                 "in pixels at the preset's full resolution "
                                                                 "(pairs: the ultra-wide; the main gets a third). "
                                                                 "Ground truth stays aberration-free.",
                                              min=0.0, max=20.0)]
SphericalOpt = Annotated[float, typer.Option("--spherical", help="Spherical aberration of the defocus PSF, "
                                                               "-1..1: > 0 (under-corrected, most lenses) "
                                                               "gives soft bokeh behind the focal plane and "
                                                               "bright-rimmed bokeh in front; 0 = uniform disc.",
                                             min=-1.0, max=1.0)]
StartOpt = Annotated[int, typer.Option("--start", help="Index of the first scene (to extend a data set).", min=0)]


def _size(size: str) -> str:
    s = size.strip().lower()
    if s != "full":
        try:
            int(s)
        except ValueError:
            raise UsageError(f"--size {size!r} is not 512, 1024, full or a width in pixels") from None
    return s


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is not a folder", out, "give a folder for the scenes")


def _existing(items: list[WorkItem], overwrite: bool, skip_existing: bool) -> None:
    if overwrite or skip_existing:
        return
    for it in items:
        for o in it.outputs:
            if Path(o).exists():
                raise UsageError(f"{o}: output exists", hint="pass --overwrite to replace it, --skip-existing to "
                                                              "keep it, or choose another OUT")


def _write_all(folder: Path, files: dict[str, bytes], overwrite: bool) -> list[str]:
    from ..io import write_bytes_atomic

    out = []
    for rel, data in files.items():
        p = folder / rel
        write_bytes_atomic(p, data, overwrite=overwrite)
        out.append(str(p))
    return out


PAIR_FILES = ("main_near.jpg", "main_far.jpg", "ultrawide.jpg", "gt/aif.png", "gt/depth.npy", "gt/disparity.npy",
              "gt/occlusion.png", "gt/homography.json", "gt/uw_map.npy", "gt/flow.npy", "gt/infocus_near.png",
              "gt/infocus_far.png", "gt/metadata.json")


def _pair_item(item: WorkItem) -> dict[str, Any]:
    from ..synth.pairs import make_pair_scene, pair_scene_files

    p = item.params
    ps = make_pair_scene(p["seed"], p["size"], p["preset"], p["noise"], index=p["index"], blades=p["blades"],
                         aberration=p["aberration"], spherical=p["spherical"])
    files = pair_scene_files(ps, quality=p["quality"])
    outs = _write_all(Path(p["folder"]), files, p["overwrite"])
    m = ps.metadata
    return {"outputs": outs, "focus_near_m": round(m["main"]["focus_near_m"], 4),
            "focus_far_m": round(m["main"]["focus_far_m"], 3), "occluded": round(m["occluded_fraction"], 4)}


PAIRS_CMD_HELP = (
    'Render phone pairs: a main camera focused near and far, and an ultra-wide, with ground truth.\n\n'
    "Scenes are textured planes (photographs shipped with scikit-image and procedural noise): a back wall 3-40 m away, often a floor, and 3-6 cut-out cards from 10-35 cm outward, some slanted. The main camera (preset focal length, f-number, pixel pitch) is focused on the nearest card (main_near) and on the far field (main_far); the ultra-wide sits the preset's baseline away, slightly rotated, focused at its hyperfocal distance, with its own white balance, tone curve, vignetting and noise. Defocus is thin-lens (DC² eq. 1), rendered layer by layer back to front."
)


@synth_app.command("pairs", help=PAIRS_CMD_HELP, epilog=(
    "Example:\n\n  aif synth pairs data/pairs --count 20 --seed 1 --size 1024\n\n"
    "writes data/pairs/scene_0000/{main_near,main_far,ultrawide}.jpg with phone EXIF and gt/ with aif.png "
    "(16-bit, main view and colour, no noise), depth.npy (m), disparity.npy (main px), occlusion.png, "
    "homography.json, uw_map.npy, flow.npy, infocus_near/far.png and metadata.json. See docs/SYNTH.md."))
@handle_errors
def pairs_cmd(
    out: Annotated[Path, typer.Argument(help="Output folder; one scene_NNNN subfolder per scene.")],
    count: CountOpt = 4,
    seed: SeedOpt = 0,
    size: SizeOpt = "512",
    preset: Annotated[str, typer.Option("--preset", help="Phone preset with main + ultra-wide cameras "
                                                         "(see `aif presets list`).")] = "generic-phone",
    noise: NoiseOpt = 1.0,
    blades: BladesOpt = 0,
    aberration: AberrationOpt = 0.0,
    spherical: SphericalOpt = 0.0,
    start: StartOpt = 0,
    quality: QualityOpt = 95,
    jobs: JobsOpt = 0,
    scheduler: SchedulerOpt = None,
    overwrite: OverwriteOpt = False,
    skip_existing: SkipExistingOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Render phone pairs: a main camera focused near and far, and an ultra-wide, with ground truth.

    Scenes are textured planes (photographs shipped with scikit-image and procedural
    noise): a back wall 3-40 m away, often a floor, and 3-6 cut-out cards from 10-35 cm
    outward, some slanted. The main camera (preset focal length, f-number, pixel pitch)
    is focused on the nearest card (main_near) and on the far field (main_far); the
    ultra-wide sits the preset's baseline away, slightly rotated, focused at its
    hyperfocal distance, with its own white balance, tone curve, vignetting and noise.
    Defocus is thin-lens (DC² eq. 1), rendered layer by layer back to front.
    """
    from ..presets import get_preset
    from ..synth.pairs import out_scale

    ui = UI(quiet, verbose, json, debug)
    size = _size(size)
    pr = get_preset(preset)
    if "ultrawide" not in pr.cameras:
        raise UsageError(f"preset '{pr.name}' has no ultra-wide camera", pr.source,
                         "choose a phone preset, e.g. --preset generic-phone")
    out_scale(pr, size)  # validates --size
    _check_out(out)
    items = []
    for k in range(start, start + count):
        folder = out / f"scene_{k:04d}"
        items.append(WorkItem(folder.name, [], [str(folder / f) for f in PAIR_FILES],
                              {"seed": seed, "index": k, "size": size, "preset": preset, "noise": noise, "blades": blades, "aberration": aberration, "spherical": spherical, "quality": quality,
                               "folder": str(folder), "overwrite": overwrite}))
    if dry_run:
        show_plan(ui, "synth pairs plan", ["scene", "seed", "size", "preset", "folder"],
                  [(it.name, seed, size, pr.name, it.params["folder"]) for it in items])
        return
    _existing(items, overwrite, skip_existing)
    log = out / "aif-synth-log.json"
    report = run_batch(items, _pair_item, jobs=jobs, scheduler=scheduler, skip_existing=skip_existing,
                       progress=not (quiet or json), description="synth pairs", debug=debug, log_path=log,
                       command="aif synth pairs",
                       params={"count": count, "seed": seed, "size": size, "preset": pr.name, "noise": noise})
    finish_batch(ui, report, log, what="scene")


BURST_FMT = {"jpeg": "jpeg", "jpg": "jpeg", "tiff": "tiff", "tif": "tiff", "dng": "dng"}


def _burst_item(item: WorkItem) -> dict[str, Any]:
    from ..synth.bursts import burst_files, make_burst

    p = item.params
    b = make_burst(p["seed"], p["size"], p["frames"], p["preset"], p["noise"], index=p["index"],
                   raw=p["format"] == "dng", breathing=p["breathing"], shake_px=p["shake"],
                   flicker=p["flicker"], blades=p["blades"], aberration=p["aberration"],
                   spherical=p["spherical"])
    files = burst_files(b, p["format"], quality=p["quality"])
    outs = _write_all(Path(p["folder"]), files, p["overwrite"])
    return {"outputs": outs, "focus_m": [round(b.focus_m[0], 4), round(b.focus_m[-1], 4)]}


BURSTS_CMD_HELP = (
    'Render focus brackets: frames sweeping focus near to far, with breathing, shake, flicker and noise.\n\n'
    "The depth range is sized so that neighbouring frames' focus differs by 2 px of circle of confusion at the output size: every depth in the scene is sharp in some frame. Ground truth (all-in-focus image, depth, in-focus frame index) is in the geometry of the middle frame."
)


@synth_app.command("bursts", help=BURSTS_CMD_HELP, epilog=(
    "Example:\n\n  aif synth bursts data/brackets --count 5 --frames 30 --raw\n\n"
    "writes data/brackets/burst_0000/frame_000.dng ... frame_029.dng and gt/ with aif.png (16-bit, geometry "
    "of the reference frame F//2), depth.npy (m), focus_index.npy (fractional frame index in focus per "
    "pixel) and metadata.json (focus distance, scale, shake, exposure gain and homography per frame)."))
@handle_errors
def bursts_cmd(
    out: Annotated[Path, typer.Argument(help="Output folder; one burst_NNNN subfolder per bracket.")],
    count: CountOpt = 2,
    frames: Annotated[int, typer.Option("--frames", "-f", help="Frames per bracket (2-500), focus swept near -> "
                                                               "far in equal diopter steps.", min=2, max=500)] = 8,
    seed: SeedOpt = 0,
    size: SizeOpt = "512",
    preset: Annotated[str, typer.Option("--preset", help="Camera preset; its main camera takes the bracket "
                                                         "(see `aif presets list`).")] = "generic-camera",
    fmt: Annotated[str, typer.Option("--format", help="Frame files: jpeg (8-bit, EXIF), tiff (16-bit, "
                                                      "display-encoded, EXIF tags in IFD0) or dng (Bayer RGGB "
                                                      "RAW, 14-bit in 16, linear).")] = "jpeg",
    raw: Annotated[bool, typer.Option("--raw", help="Same as --format dng.")] = False,
    noise: NoiseOpt = 1.0,
    breathing: Annotated[float, typer.Option("--breathing", help="Focus breathing scale: 1 = a unit-focusing "
                                                                 "thin lens (magnification follows the image "
                                                                 "distance), 0 = none.", min=0.0, max=20.0)] = 1.0,
    shake: Annotated[float, typer.Option("--shake", help="Camera shake per frame, standard deviation in "
                                                         "pixels (a small rotation).", min=0.0, max=100.0)] = 1.5,
    flicker: Annotated[float, typer.Option("--flicker", help="Exposure flicker, standard deviation of the "
                                                             "per-frame gain (0.02 = 2 %).", min=0.0, max=0.5)] = 0.02,
    blades: BladesOpt = 0,
    aberration: AberrationOpt = 0.0,
    spherical: SphericalOpt = 0.0,
    start: StartOpt = 0,
    quality: QualityOpt = 95,
    jobs: JobsOpt = 0,
    scheduler: SchedulerOpt = None,
    overwrite: OverwriteOpt = False,
    skip_existing: SkipExistingOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Render focus brackets: frames sweeping focus near to far, with breathing, shake, flicker and noise.

    The depth range is sized so that neighbouring frames' focus differs by 2 px of
    circle of confusion at the output size: every depth in the scene is sharp in some
    frame. Ground truth (all-in-focus image, depth, in-focus frame index) is in the
    geometry of the middle frame.
    """
    from ..presets import get_preset
    from ..synth.pairs import out_scale

    ui = UI(quiet, verbose, json, debug)
    size = _size(size)
    f = "dng" if raw else BURST_FMT.get(fmt.strip().lower())
    if f is None:
        raise UsageError(f"--format {fmt!r} is not jpeg, tiff or dng")
    if raw and fmt.strip().lower() not in ("jpeg", "dng"):
        raise UsageError("--raw means --format dng; do not combine it with another --format")
    pr = get_preset(preset)
    out_scale(pr, size)
    from ..synth.bursts import EXT, focus_span_diopters

    focus_span_diopters(pr, size, frames)  # fails early (exit 2) when the lens cannot cover it
    _check_out(out)

    digits = max(3, len(str(frames - 1)))
    items = []
    for k in range(start, start + count):
        folder = out / f"burst_{k:04d}"
        outs = [str(folder / f"frame_{i:0{digits}d}.{EXT[f]}") for i in range(frames)]
        outs += [str(folder / "gt" / n) for n in ("aif.png", "depth.npy", "focus_index.npy", "metadata.json")]
        items.append(WorkItem(folder.name, [], outs, {
            "seed": seed, "index": k, "size": size, "frames": frames, "preset": preset, "noise": noise,
            "format": f, "breathing": breathing, "shake": shake, "flicker": flicker, "blades": blades, "aberration": aberration, "spherical": spherical,
            "quality": quality, "folder": str(folder), "overwrite": overwrite}))
    if dry_run:
        show_plan(ui, "synth bursts plan", ["burst", "frames", "format", "size", "folder"],
                  [(it.name, frames, f, size, it.params["folder"]) for it in items])
        return
    _existing(items, overwrite, skip_existing)
    log = out / "aif-synth-log.json"
    report = run_batch(items, _burst_item, jobs=jobs, scheduler=scheduler, skip_existing=skip_existing,
                       progress=not (quiet or json), description="synth bursts", debug=debug, log_path=log,
                       command="aif synth bursts",
                       params={"count": count, "frames": frames, "seed": seed, "size": size, "preset": pr.name,
                               "format": f, "noise": noise})
    finish_batch(ui, report, log, what="burst")


FROM_RGBD_CMD_HELP = (
    'Turn an RGB image plus a depth or disparity map into a phone-pair scene with ground truth.\n\n'
    "The depth is cut into slabs at their depths; the main camera renders them focused near and far, the ultra-wide from the preset's baseline. Regions the image never saw (behind foreground objects, beyond its edges) are filled from neighbouring colours: fine for training alignment and fusion, not photographs of those regions."
)


@synth_app.command("from-rgbd", help=FROM_RGBD_CMD_HELP, epilog=(
    "Example (scikit-image ships a stereo image with ground-truth disparity):\n\n"
    "  aif synth from-rgbd motorcycle_left.png motorcycle_disp.npz data/rgbd --kind disparity --near 0.5 --far 6\n\n"
    "writes data/rgbd/motorcycle_left/{main_near,main_far,ultrawide}.jpg and gt/ exactly as `aif synth pairs` "
    "does for one scene."))
@handle_errors
def from_rgbd_cmd(
    image: Annotated[Path, typer.Argument(help="RGB image (JPEG, PNG, TIFF, ...): becomes the main camera's "
                                               "all-in-focus view.")],
    depth: Annotated[Path, typer.Argument(help="Depth or disparity map of the same scene: .npy, .npz (first "
                                               "array), .pfm or a 16-bit PNG/TIFF; non-finite or <= 0 values "
                                               "are filled from their neighbours.")],
    out: Annotated[Path, typer.Argument(help="Output folder; the scene goes to OUT/<image stem>/.")],
    kind: Annotated[str, typer.Option("--kind", help="What DEPTH holds: 'depth' (metres x --depth-scale) or "
                                                     "'disparity' (any units; mapped linearly in inverse depth "
                                                     "onto --near..--far).")] = "disparity",
    near: Annotated[float, typer.Option("--near", help="Depth in metres of the largest disparity.",
                                        min=0.01)] = 0.5,
    far: Annotated[float, typer.Option("--far", help="Depth in metres of the smallest disparity.",
                                       min=0.02)] = 10.0,
    depth_scale: Annotated[float, typer.Option("--depth-scale", help="Metres per unit of a depth map "
                                                                     "(0.001 for millimetre PNGs).",
                                               min=1e-9)] = 1.0,
    preset: Annotated[str, typer.Option("--preset", help="Phone preset; the image's width plays its main "
                                                         "camera's full width.")] = "generic-phone",
    layers: Annotated[int, typer.Option("--layers", help="Depth slabs (equal steps in inverse depth).",
                                        min=2, max=256)] = 24,
    focus_near: Annotated[float, typer.Option("--focus-near", help="Near focus distance in metres (default: "
                                                                   "3rd percentile of depth).", min=0.0)] = 0.0,
    focus_far: Annotated[float, typer.Option("--focus-far", help="Far focus distance in metres (default: 97th "
                                                                 "percentile of depth).", min=0.0)] = 0.0,
    seed: SeedOpt = 0,
    noise: NoiseOpt = 1.0,
    blades: BladesOpt = 0,
    quality: QualityOpt = 95,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Turn an RGB image plus a depth or disparity map into a phone-pair scene with ground truth.

    The depth is cut into slabs at their depths; the main camera renders them focused
    near and far, the ultra-wide from the preset's baseline. Regions the image never saw
    (behind foreground objects, beyond its edges) are filled from neighbouring colours:
    fine for training alignment and fusion, not photographs of those regions.
    """
    from ..io import read_image
    from ..synth.pairs import pair_scene_files
    from ..synth.rgbd import inverse_depth_from_map, make_rgbd_scene, read_depth_file

    ui = UI(quiet, verbose, json, debug)
    if kind not in ("depth", "disparity"):
        raise UsageError(f"--kind {kind!r} is not depth or disparity")
    if far <= near:
        raise UsageError(f"--far {far} must be larger than --near {near}")
    _check_out(out)
    folder = out / image.stem
    for f in PAIR_FILES:
        p = folder / f
        if p.exists() and not overwrite:
            raise UsageError(f"{p}: output exists", hint="pass --overwrite to replace it, or choose another OUT")
        if p.resolve() in (image.resolve(), depth.resolve()):
            raise UsageError(f"{p}: output would overwrite an input", hint="choose another OUT")
    img = read_image(image)
    m = read_depth_file(depth)
    if m.shape != img.shape:
        ah, aw = img.shape
        if abs(m.shape[1] / m.shape[0] - aw / ah) > 0.02:
            raise InputError(f"map is {m.shape[1]}x{m.shape[0]} but the image is {aw}x{ah}", depth,
                             "give the depth/disparity map of this image")
    inv = inverse_depth_from_map(m, kind, near, far, depth_scale, depth)
    pixels = img.pixels
    if img.meta.linear:
        from ..image import linear_to_srgb

        pixels = linear_to_srgb(pixels)
    ps = make_rgbd_scene(pixels, inv, preset, seed=seed, noise=noise, layers=layers,
                         focus_near=focus_near or None, focus_far=focus_far or None, blades=blades,
                         name=image.name)
    files = pair_scene_files(ps, quality=quality)
    outs = _write_all(folder, files, overwrite)
    summary = {"folder": str(folder), "outputs": outs, "focus_near_m": ps.metadata["main"]["focus_near_m"],
               "focus_far_m": ps.metadata["main"]["focus_far_m"], "occluded": ps.metadata["occluded_fraction"]}
    if json:
        ui.emit_json(summary)
    else:
        ui.info(f"wrote {len(outs)} files to {folder} (focus near {summary['focus_near_m']:.3g} m, far "
                f"{summary['focus_far_m']:.3g} m)")
