"""``aif train``: train one of aif's networks on ``aif synth`` data and write checksummed weights."""
from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .app import app
from .common import DebugOpt, JsonOpt, OverwriteOpt, QuietOpt, UI, VerboseOpt, handle_errors


@app.command("train", epilog=(
    "Examples:\n\n"
    "  aif train fuse --generate 64 --cache /tmp/aif-cache -o weights/fuse-net.pt --threads 1   (the shipped "
    "fusion weights: 26 min + 4 min data on one CPU thread)\n\n"
    "  aif synth pairs data/ --count 64 --size 1024 --seed 1000\n\n"
    "  aif train color --data data/ -o my-color.pt --steps 2000\n\n"
    "  aif train fuse --generate 64 --cache /tmp/aif-cache -o weights/fuse-net.pt --resume   (continue after "
    "Ctrl-C or --max-minutes)\n\n"
    "Use the result with e.g. `aif fuse MAIN UW -o OUT --engine net --weights my-fuse.pt`."))
@handle_errors
def train_cmd(
    model: Annotated[str, typer.Argument(help="Which network: [bold]fuse[/bold] (occlusion-aware fusion, OAS-Net "
                                              "style), [bold]color[/bold] (colour alignment, WDC-Net style) or "
                                              "[bold]refocus[/bold] (defocus control, DFNet style).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Weights file to write (NAME.pt; NAME.sha256 "
                                                                "and the model card NAME.md are written beside it).")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Folder written by `aif synth pairs` (scene "
                                                                "folders with gt/).")] = None,
    generate: Annotated[int, typer.Option("--generate", help="Render this many scenes on the fly instead of "
                                                             "--data (sizes and presets cycle; see the model card).",
                                          min=0)] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Scene seed for --generate (the benchmark holds out seed 0 "
                                                     "and its presets).")] = 1000,
    limit: Annotated[int, typer.Option("--limit", help="Use at most this many scenes of --data (0 = all).",
                                       min=0)] = 0,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a model config entry, KEY=VALUE "
                                                                     "(repeatable; e.g. --set c2=32). The card "
                                                                     "records the config.")] = None,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Keep the prepared training items here (one .npz "
                                                                  "per scene) and reuse them on the next run.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps.", min=1)] = 3000,
    batch: Annotated[int, typer.Option("--batch", help="Crops per step.", min=1)] = 8,
    crop: Annotated[int, typer.Option("--crop", help="Crop size in pixels (multiple of 16).", min=32,
                                      max=1024)] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (5 % linear warm-up, then cosine decay).", min=1e-6)] = 2e-3,
    train_seed: Annotated[int, typer.Option("--train-seed", help="Seed of initialisation and crop sampling.")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUTPUT's checkpoint (NAME.ckpt).")] = False,
    device: Annotated[str, typer.Option("--device", help="auto (a CUDA GPU when present), cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for torch (0 = torch's default).",
                                         min=0)] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.",
                                                  min=1)] = 250,
    max_minutes: Annotated[float, typer.Option("--max-minutes", help="Stop after this much training time "
                                                                     "(0 = no limit); weights are still written.",
                                               min=0)] = 0.0,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Train one of aif's networks on [bold]aif synth[/bold] pairs and write its weights and model card.

    Data comes from a folder written by `aif synth pairs` (--data) or is rendered on the fly
    (--generate N). Scenes whose index is a multiple of 8 form the fixed validation split.
    Each scene is aligned by aif's classical pipeline first (the networks learn to work with
    its estimates, not with ground-truth geometry). Losses follow the seeds: L1 + SSIM +
    mask cross-entropy for fusion (EasyAIF eq. 3-4), L1 on low frequencies for colour, L1 +
    SSIM + gradient for refocus (DC²). A checkpoint (NAME.ckpt) is written every
    --checkpoint-every steps and on Ctrl-C; --resume continues from it. --device auto (the
    default) trains on a CUDA GPU when one is present, else on the CPU; the model card
    records the hardware, the command, the data recipe and the validation metrics.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..nets import get_task
    from ..nets.data import DataSource
    from ..nets.train import TrainOptions, train

    ui = UI(quiet, verbose, json, debug)
    task = get_task(model)
    if data is not None and generate:
        raise UsageError("give either --data or --generate, not both")
    src = DataSource(data=data, generate=generate, seed=seed, limit=limit, cache=cache)
    src.check()
    opts = TrainOptions(steps=steps, batch=batch, crop=crop, lr=lr, seed=train_seed, resume=resume, device=device,
                        threads=threads, checkpoint_every=checkpoint_every, max_minutes=max_minutes,
                        overwrite=overwrite)

    progress = Progress(TextColumn("[bold]train " + model), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=ui.err, disable=quiet, transient=False)

    def factory(total: int, completed: int):
        progress.start()
        tid = progress.add_task("train", total=total, completed=completed, loss="-")

        def update(step, loss, parts):
            if step is None:
                progress.stop()
                return
            progress.update(tid, completed=step, loss=f"{loss:.4f}")
        return update

    config: dict = {}
    for kv in set_ or []:
        if "=" not in kv:
            raise UsageError(f"--set {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        if k not in task.default_config():
            raise UsageError(f"--set {k}: {model} has no such config entry (it has {', '.join(task.default_config())})")
        try:
            config[k] = type(task.default_config()[k])(v)
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(type(task.default_config()[k]), "a value")
            raise UsageError(f"--set {kv!r}: {k} needs {kind}") from None
    res = train(task, src, output, opts, log=(lambda m: ui.detail(m)) if not verbose else ui.info,
                progress_factory=factory, config=config)
    if json:
        res = {k: v for k, v in res.items() if k != "history"}
        ui.emit_json(res)
        return
    ui.info(f"wrote {res['output']} ({res['parameters']} parameters, {res['steps']} steps, "
            f"{res['train_s'] / 60:.1f} min) with {Path(res['output']).with_suffix('.md').name}; validation: "
            + jsonlib.dumps({k: round(v, 4) for k, v in res["validation"].items()}))
