"""``aif fuse``: all-in-focus photos from a main + ultra-wide pair, or a folder of pairs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError, UsageError
from .app import app
from .common import (DebugDirOpt, DebugOpt, DryRunOpt, JobsOpt, JsonOpt, LogOpt, OutputOpt, OverwriteOpt, PresetOpt,
                     QualityOpt, QuietOpt, SchedulerOpt, SkipExistingOpt, UI, VerboseOpt, handle_errors)

RatioOpt = Annotated[Optional[float], typer.Option(
    "--ratio", help="35 mm focal length of the main divided by the ultra-wide's (2 for 26/13 mm); "
                    "default from EXIF, else the preset.", min=0.1, max=20.0)]
NoSwapOpt = Annotated[bool, typer.Option("--no-swap", help="Trust the argument order even when EXIF or the "
                                                           "geometry say the roles are swapped.")]


@app.command("fuse", epilog=(
    "Examples:\n\n"
    "  aif fuse IMG_main.jpg IMG_uw.jpg -o aif.jpg\n\n"
    "  aif fuse IMG_main.jpg IMG_uw.jpg -o aif.jpg --debug-dir dbg/   (every intermediate, like EasyAIF Fig. 9)\n\n"
    "  aif fuse IMG_main.jpg IMG_uw.jpg -o aif.jpg --engine net   (learned masks: fuse-net)\n\n"
    "  aif fuse pairs/ -o fused/ --jobs 2 --skip-existing   (one subfolder per scene, or X_main.jpg + "
    "X_ultrawide.jpg, or --manifest pairs.csv; outputs fused/<pair name, '/' -> '_'>.jpg)"))
@handle_errors
def fuse_cmd(
    main: Annotated[Path, typer.Argument(help="Main (wide) camera image, or a folder of pairs.")],
    output: OutputOpt,
    ultrawide: Annotated[Optional[Path], typer.Argument(help="Ultra-wide image of the same moment (omit for a folder).")] = None,
    preset: PresetOpt = None,
    ratio: RatioOpt = None,
    no_swap: NoSwapOpt = False,
    no_confidence: Annotated[bool, typer.Option("--no-confidence", help="Ablation: trust the flow everywhere "
                                                                          "(ghosts at occlusions).")] = False,
    no_content_check: Annotated[bool, typer.Option("--no-content-check", help="Also take the ultra-wide where it "
                                                                                "shows other content than the main "
                                                                                "(by default, objects that moved "
                                                                                "between the two exposures keep the "
                                                                                "main).")] = False,
    main_bias: Annotated[float, typer.Option("--main-bias", help="The main keeps a region while its fine detail is at "
                                                                 "least this fraction of the ultra-wide's.",
                                             min=0.01, max=10.0)] = 0.7,
    min_confidence: Annotated[float, typer.Option("--min-confidence", help="Where the alignment is not confident "
                                                                           "(its forward-backward check failed), "
                                                                           "this share of a defocused pixel still "
                                                                           "comes from the ultra-wide, the rest from "
                                                                           "the refined main (0: none; classical "
                                                                           "engine).", min=0.0, max=1.0)] = 0.25,
    fuse_scale: Annotated[Optional[float], typer.Option("--fuse-scale", help="Scale of the main grid the blend runs "
                                                                             "on (default: the ultra-wide's pixel "
                                                                             "density, 0.5-1).", min=0.1, max=1.0)] = None,
    engine: Annotated[str, typer.Option("--engine", help="Colour and fusion masks from the [bold]classical[/bold] "
                                                         "rules, or from the trained networks [bold]net[/bold] "
                                                         "(color-net + fuse-net, after EasyAIF's WDC-Net and "
                                                         "OAS-Net; see `aif train`). The networks were trained "
                                                         "on images up to 1280 px wide: on 12 MP photos net is "
                                                         "2.4 dB below classical.")] = "classical",
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Weights for --engine net (default: the "
                                                                      "shipped weights/fuse-net.pt).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Output format for a folder: jpg, png or tif.")] = "jpg",
    manifest: Annotated[Optional[Path], typer.Option("--manifest", help="CSV name,main,ultrawide listing the pairs "
                                                                         "(folder mode).")] = None,
    main_pattern: Annotated[str, typer.Option("--main-pattern", help="File name pattern of main images in a flat folder.")] = "*_main.*",
    uw_pattern: Annotated[str, typer.Option("--uw-pattern", help="File name pattern of ultra-wide images in a flat folder.")] = "*_ultrawide.*",
    quality: QualityOpt = 95,
    jobs: JobsOpt = 0,
    scheduler: SchedulerOpt = None,
    skip_existing: SkipExistingOpt = False,
    overwrite: OverwriteOpt = False,
    debug_dir: DebugDirOpt = None,
    dry_run: DryRunOpt = False,
    log: LogOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Fuse a main + ultra-wide pair into one all-in-focus photo at the main's resolution.

    The ultra-wide is aligned (focal-ratio guess, SIFT + MAGSAC homography, DIS flow both
    ways), colour-matched to the main (local affine on low frequencies), and blended in
    across scales with three masks summing to one: the main where it is sharp, the ultra-wide
    where the main is defocused and the alignment is confident, a refined main (denoised,
    its mid bands raised) at occlusions, where the flow is unreliable and where the
    ultra-wide shows other content (something moved between the exposures). The main's
    colours stay; where it is defocused its brightness is corrected for the bias defocus
    gives textures in display values (they come out brighter than in focus). Roles come from EXIF focal lengths
    (or the geometry) and are swapped with a warning when the arguments are the other way
    round. With --engine net the colour transform comes from color-net and the masks, a small
    re-alignment of the ultra-wide and the refined main from fuse-net, networks trained on
    `aif synth` pairs (weights/*.md are their model cards). Exit codes: 0 done, 1 some pairs of a folder failed, 2 usage or input error.
    """
    from ..fuse.files import debug_paths, fuse_files

    ui = UI(quiet, verbose, json, debug)
    params = dict(preset=preset, ratio=ratio, overwrite=overwrite, quality=quality, detect_swap=not no_swap,
                  use_confidence=not no_confidence, main_bias=main_bias, fuse_scale=fuse_scale, engine=engine,
                  weights=str(weights) if weights else None, content_check=not no_content_check,
                  min_confidence=min_confidence)
    if engine not in ("classical", "net"):
        raise UsageError(f"unknown --engine {engine!r}", hint="use classical or net")
    if engine == "net":
        if no_confidence:
            raise UsageError("--no-confidence is an ablation of the classical engine", hint="drop it or use --engine classical")
        from ..nets.fuse_net import load

        load(str(weights) if weights else None)  # one clear error before any work
    if not main.exists() and manifest is None:
        raise InputError("no such file or folder", main, "check the path")
    if main.is_dir() or manifest is not None:
        if ultrawide is not None:
            raise UsageError("give either a folder (or --manifest) or two image files, not both", ultrawide)
        _batch(ui, main, output, manifest, main_pattern, uw_pattern, fmt, params, debug_dir, jobs, scheduler,
               skip_existing, dry_run, log, debug)
        return
    if ultrawide is None:
        raise UsageError("missing the ultra-wide image", main, "usage: aif fuse MAIN ULTRAWIDE -o OUT, or aif fuse DIR -o OUTDIR")
    for p in (main, ultrawide):
        if not p.exists():
            raise InputError("no such file", p, "check the path")
    if dry_run:
        from .batchui import show_plan

        outs = [output] + (debug_paths(debug_dir, output.stem) if debug_dir else [])
        show_plan(ui, "fuse plan", ["main", "ultrawide", "outputs"], [[main, ultrawide, ", ".join(map(str, outs))]])
        return
    if skip_existing and output.exists():
        ui.info(f"{output} exists; skipped (--skip-existing)")
        return
    info = fuse_files(main, ultrawide, output, debug_dir=debug_dir, **params)
    for n in info["pair"]["notes"]:
        ui.warn(n)
    if json:
        ui.emit_json(info)
        return
    tm = info["timings"]
    al = info.get("alignment", {})
    ui.info(f"wrote {output}  ({tm['total']:.2f} s; {al.get('inliers')} inliers, "
            f"main {info['mask_means']['main']:.0%} / ultra-wide {info['mask_means']['ultrawide']:.0%} / "
            f"refined {info['mask_means']['refined']:.0%})")
    # not a warning: wrong but consistent flow also trips the check (0.16 % of the frame on
    # the synthetic benchmark, where nothing moves; the bus on the real iPhone pair: 0.03 %)
    ui.detail(f"content check: {info.get('content_rejected_fraction', 0):.2%} of the frame kept the main where the "
              "ultra-wide shows other content (--no-content-check takes it anyway)")
    ui.detail("timings: " + ", ".join(f"{k} {v:.3f}s" for k, v in tm.items()))
    if debug_dir:
        ui.info(f"intermediates in {debug_dir}/")


def _batch(ui: UI, root: Path, outdir: Path, manifest: Optional[Path], main_pattern: str, uw_pattern: str, fmt: str,
           params: dict, debug_dir: Optional[Path], jobs: int, scheduler: Optional[str], skip_existing: bool,
           dry_run: bool, log: Optional[Path], debug: bool) -> None:
    from ..batch import WorkItem, discover_pairs, run_batch
    from ..fuse.files import debug_paths, fuse_item
    from .batchui import finish_batch, show_plan

    fmt = fmt.lower().lstrip(".")
    if fmt not in ("jpg", "jpeg", "png", "tif", "tiff"):
        raise UsageError(f"unknown --format '{fmt}'", hint="use jpg, png or tif")
    if outdir.exists() and not outdir.is_dir():
        raise UsageError("for a folder of pairs, -o must be a folder", outdir)
    pairs = discover_pairs(root, main_pattern, uw_pattern, manifest=manifest)
    items = []
    for pr in pairs:
        safe = pr.name.replace("/", "_").replace("\\", "_")
        out = outdir / f"{safe}.{fmt}"
        outs = [str(out)]
        p = dict(params)
        if debug_dir is not None:
            p["debug_dir"] = str(debug_dir / safe)
            outs += [str(d) for d in debug_paths(debug_dir / safe, out.stem)]
        items.append(WorkItem(pr.name, [str(pr.main), str(pr.ultrawide)], outs, p))
    if dry_run:
        show_plan(ui, "fuse plan", ["pair", "main", "ultrawide", "output"],
                  [[it.name, it.inputs[0], it.inputs[1], it.outputs[0]] for it in items],
                  payload=[{"name": it.name, "inputs": it.inputs, "outputs": it.outputs} for it in items])
        return
    outdir.mkdir(parents=True, exist_ok=True)
    log_path = log or outdir / "aif-log.json"
    report = run_batch(items, fuse_item, jobs=jobs, scheduler=scheduler, skip_existing=skip_existing,
                       progress=not (ui.quiet or ui.json_mode), description="fusing pairs", debug=debug,
                       log_path=log_path, command="fuse", params={k: v for k, v in params.items()})
    for r in report.results:
        for n in (r.info or {}).get("notes", []) or []:
            ui.warn(f"{r.name}: {n}")
    finish_batch(ui, report, log_path, what="pair")
