"""``aif colormatch``: give an aligned image the colours of a reference."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError, UsageError
from .app import app
from .common import DebugOpt, JsonOpt, OutputOpt, OverwriteOpt, QualityOpt, QuietOpt, UI, VerboseOpt, handle_errors


@app.command("colormatch", epilog=(
    "Examples:\n\n  aif colormatch uw_in_main.jpg IMG_main.jpg --mask uw_in_main.confidence.png -o uw_matched.jpg\n\n"
    "  aif colormatch phone_b.jpg phone_a.jpg -o b_like_a.jpg\n\n"
    "  aif colormatch uw_in_main.jpg IMG_main.jpg --mask conf.png -o matched.jpg --engine classical\n\n"
    "  aif colormatch uw_in_main.jpg IMG_main.jpg -o matched.jpg --weights my-color.pt   # from `aif train color`"))
@handle_errors
def colormatch_cmd(
    source: Annotated[Path, typer.Argument(help="Image whose colours change (e.g. the output of `aif align`).")],
    reference: Annotated[Path, typer.Argument(help="Image with the wanted colours, roughly aligned with SOURCE "
                                                   "(same aspect ratio; any size).")],
    output: OutputOpt,
    mask: Annotated[Optional[Path], typer.Option("--mask", help="Grey image or .npy of weights (white = trust this "
                                                               "pixel), e.g. a confidence map from `aif align`.")] = None,
    radius: Annotated[Optional[float], typer.Option("--radius", help="Classical engine: fitting window half-size as "
                                                                     "a fraction of the image width (default 0.12; "
                                                                     "larger = closer to one global transform).",
                                                    min=0.02, max=2.0, show_default=False)] = None,
    global_only: Annotated[bool, typer.Option("--global", help="Classical engine: one affine colour transform for "
                                                               "the whole image.")] = False,
    engine: Annotated[Optional[str], typer.Option("--engine", help="[bold]net[/bold] (default): the learned "
                                                                   "WDC-Net-style network, which corrects the "
                                                                   "classical fit on the wavelet low band "
                                                                   "(weights/color-net.pt; on held-out synthetic "
                                                                   "pairs mean CIEDE2000 1.49 vs 1.56 classical, "
                                                                   "see docs/BENCHMARKS.md); [bold]classical[/bold]: "
                                                                   "the least-squares local affine fit alone (chosen "
                                                                   "automatically with --radius or --global). Both "
                                                                   "give a smooth 3x3 matrix + offset per pixel, "
                                                                   "applied at full resolution.",
                                                  show_default=False)] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Weights for --engine net (default: the "
                                                                      "shipped weights/color-net.pt; train your own "
                                                                      "with `aif train color`).")] = None,
    quality: QualityOpt = 95,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Match SOURCE's colours to REFERENCE with a locally varying affine colour transform.

    Each region gets its own 3x3 matrix + offset, fitted on low frequencies (both images
    shrunk as means of light, i.e. sRGB-decoded before averaging, and equally blurred, so
    a defocused reference and a sharp source compare fairly: defocus keeps the mean of
    light, not the mean of display values), weighted by --mask and pulled towards one
    global fit where little is reliable.
    By default a small learned network (after EasyAIF's WDC-Net, trained on `aif synth`
    pairs, weights/color-net.pt) then corrects that fit on the wavelet low band; --engine
    classical keeps the plain fit. The transform is smooth, so SOURCE's detail is kept at
    its full resolution.
    """
    from ..color.local_affine import match_colors
    from ..io import check_output, read_gray, read_image, write_image

    ui = UI(quiet, verbose, json, debug)
    classical_opts = [o for o, given in (("--radius", radius is not None), ("--global", global_only)) if given]
    if engine is None:
        engine = "classical" if classical_opts else "net"
    if engine not in ("classical", "net"):
        raise UsageError(f"unknown --engine {engine!r}", hint="use net or classical")
    if weights is not None and engine != "net":
        raise UsageError("--weights is for --engine net", hint="drop --weights, or --radius/--global (classical)")
    if engine == "net" and classical_opts:
        raise UsageError(f"{' and '.join(classical_opts)} belong to the classical engine",
                         hint="drop them or use --engine classical")
    if radius is None:
        radius = 0.12
    for p in (source, reference) + ((mask,) if mask else ()):
        if not p.exists():
            raise InputError("no such file", p, "check the path")
    check_output(output, overwrite, inputs=(source, reference) + ((mask,) if mask else ()))
    net_model = None
    if engine == "net":
        from ..nets.color_net import load

        net_model, _ = load(weights)  # one clear error before any work
    t0 = time.perf_counter()
    src = read_image(source)
    ref = read_image(reference)
    m = read_gray(mask) if mask else None
    if src.meta.linear != ref.meta.linear:
        ui.warn("one image is linear (RAW) and the other display-encoded; the transform absorbs the tone curve only approximately")
    if net_model is not None:
        from ..nets.color_net import match_colors_net

        res = match_colors_net(src.pixels, ref.pixels, m, model=net_model, source_path=source)
    else:
        res = match_colors(src.pixels, ref.pixels, m, radius=10.0 if global_only else radius, source_path=source)
    write_image(output, res.image, meta=src.meta, linear=src.meta.linear, quality=quality, overwrite=overwrite)
    info = {"output": str(output), "engine": engine, **res.to_dict(), "seconds": round(time.perf_counter() - t0, 3)}
    if json:
        ui.emit_json(info)
        return
    ui.info(f"wrote {output} in {info['seconds']:.2f} s ({engine} engine): low-frequency colour error "
            f"{res.residual_before:.4f} -> {res.residual_after:.4f} (RMS, 0-1 scale)"
            + ("" if res.local else "; global fit only (too little reliable overlap)"))
