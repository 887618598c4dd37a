"""``aif align``: warp an ultra-wide image into the main camera's view."""
from __future__ import annotations

import json as jsonlib
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..errors import InputError
from .app import app
from .common import (DebugOpt, JsonOpt, OutputOpt, OverwriteOpt, PresetOpt, QualityOpt, QuietOpt, UI, VerboseOpt,
                     handle_errors)
from .fuse_cmd import NoSwapOpt, RatioOpt


def align_outputs(out: Path) -> dict[str, Path]:
    """OUT plus the names derived from it: OUT-stem.confidence.png, .flow.npy, .homography.json."""
    base = out.with_suffix("")
    return {"image": out, "confidence": Path(f"{base}.confidence.png"), "flow": Path(f"{base}.flow.npy"),
            "homography": Path(f"{base}.homography.json")}


@app.command("align", epilog=(
    "Example:\n\n  aif align IMG_main.jpg IMG_uw.jpg -o uw_in_main.jpg\n\n"
    "writes uw_in_main.jpg, uw_in_main.confidence.png (255 = reliable, 0 = occluded, inconsistent or outside the "
    "ultra-wide's field), uw_in_main.flow.npy (float32 HxWx2 residual flow after the homography, main pixels: "
    "the ultra-wide pixel of main pixel p is H(p + flow(p))) and uw_in_main.homography.json (H: main px -> "
    "ultra-wide px, inliers, residual)."))
@handle_errors
def align_cmd(
    main: Annotated[Path, typer.Argument(help="Main (wide) camera image: the view to warp into.")],
    ultrawide: Annotated[Path, typer.Argument(help="Ultra-wide (or any wider) image of the same moment.")],
    output: OutputOpt,
    preset: PresetOpt = None,
    ratio: RatioOpt = None,
    no_swap: NoSwapOpt = False,
    homography_only: Annotated[bool, typer.Option("--homography-only", help="Warp with the homography alone "
                                                                            "(no parallax flow).")] = False,
    quality: QualityOpt = 95,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Warp ULTRAWIDE into MAIN's view at MAIN's resolution, with a confidence map, the flow and the homography.

    Initial guess from the focal-length ratio (EXIF, --preset or --ratio); homography from
    SIFT on downscaled CLAHE luminance with USAC-MAGSAC; DIS optical flow both ways on
    blur-matched 1/4-scale images for the parallax, run again where the main is defocused
    against the ultra-wide blurred to the main's local sharpness; forward-backward
    consistency for the confidence, with flow from 2x and 4x coarser grids filling
    inconsistent pixels of a defocused background when it agrees with the consistent flow
    around them. The cameras sit side by side, so the parallax runs along one direction:
    consistent vectors take their component across it from a smooth fitted field plus a
    small share of their own parallax (a fitted homography is not exact, so the parallax
    bends a little), fitted robustly (RANSAC, then trimmed least squares; the homography
    JSON's "epipolar" entry gives the direction and fit, or why it was skipped). A near object the main shows as a featureless blur gets one parallax,
    matched from its blurred outline along that direction (the entry's "objects" list
    each such region with its parallax and scores, and how many pixels it set). Last, the
    consistent flow is corrected by shifts matched on 32 px tiles against the warped
    ultra-wide blurred like the main there (the JSON's "tile_refinement": tiles used and
    their shifts). Where the final flow ramps steeply over a wide region (faster than 0.4
    px per px: DIS spreading a near object's parallax over the background beside it, the
    same both ways) it counts as inconsistent (the JSON's "flow_ramp_fraction"). Pairs
    that do not overlap fail with a message (exit 2).
    """
    from ..align.pair_io import align_files, load_pair
    from ..io import check_output, write_bytes_atomic, write_gray8, write_image

    ui = UI(quiet, verbose, json, debug)
    outs = align_outputs(output)
    for p in (main, ultrawide):
        if not p.exists():
            raise InputError("no such file", p, "check the path")
    for o in outs.values():
        check_output(o, overwrite, inputs=(main, ultrawide))
    t0 = time.perf_counter()
    pin = load_pair(main, ultrawide, preset, ratio, not no_swap)
    pin, al = align_files(pin, not no_swap)
    for n in pin.notes:
        ui.warn(n)
    shape = pin.main.pixels.shape[:2]
    warped = al.warp(pin.ultrawide.pixels, shape, use_flow=not homography_only)
    conf = al.confidence_at(shape) if not homography_only else al.infield_at(shape)
    write_image(outs["image"], warped, meta=pin.main.meta, linear=pin.ultrawide.meta.linear, quality=quality,
                overwrite=overwrite)
    write_gray8(outs["confidence"], conf, overwrite=overwrite)
    flow = al.flow_at(shape).astype(np.float32) if not homography_only else np.zeros(shape + (2,), np.float32)
    import io as _io

    buf = _io.BytesIO()
    np.save(buf, flow)
    write_bytes_atomic(outs["flow"], buf.getvalue(), overwrite=overwrite)
    info = {**al.to_dict(), "pair": pin.to_dict(), "outputs": {k: str(v) for k, v in outs.items()},
            "seconds": round(time.perf_counter() - t0, 3)}
    write_bytes_atomic(outs["homography"], (jsonlib.dumps(info, indent=2) + "\n").encode(), overwrite=overwrite)
    if json:
        ui.emit_json(info)
        return
    ui.info(f"wrote {outs['image']} (+ .confidence.png, .flow.npy, .homography.json) in {info['seconds']:.2f} s: "
            f"{al.inliers}/{al.matches} inliers, residual {al.residual_px:.2f} px, "
            f"{info['confident_fraction']:.0%} confident, {info['infield_fraction']:.0%} inside the ultra-wide's field")
    epi = al.epipolar
    if "skipped" in epi:
        ui.detail(f"epipolar projection skipped: {epi['skipped']}")
    else:
        coef = epi.get("cross_coef", [])
        bend = f", bend {coef[6]:+.3f} px per px of parallax" if len(coef) > 6 else ", no bend (fit without it)"
        ui.detail(f"epipolar projection: parallax direction ({epi['direction'][0]:+.3f}, {epi['direction'][1]:+.3f}){bend}, "
                  f"cross-field MAD {epi['mad']:.2f} work px ({epi.get('inliers', 1.0):.0%} of the consistent vectors "
                  f"within 0.5 px of the RANSAC fit), "
                  f"{epi['projected']:.0%} of the vectors projected")
        objs = epi.get("objects", [])
        used = [o for o in objs if "replaced" in o]
        ui.detail(f"defocused objects: {len(objs)} found, {len(used)} given one parallax"
                  + "".join(f"; {o['parallax']:.1f} work px over {o['replaced']} px" for o in used))
    ref = al.refine
    if "skipped" in ref:
        ui.detail(f"tile refinement skipped: {ref['skipped']}")
    elif ref:
        ui.detail(f"tile refinement: {ref['tiles']} of {ref['of']} tiles"
                  + (f", shifts median {ref['median_shift_px']:.2f} / 90th percentile {ref['p90_shift_px']:.2f} work px"
                     if ref["tiles"] else ""))
    ui.detail(f"flow ramps: {al.ramp_fraction:.1%} of the work grid taken out of the confidence")
