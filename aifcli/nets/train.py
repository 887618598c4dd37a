"""The training loop behind ``aif train``: one loop for every network, a ``Task`` per network.

A task (``aifcli/nets/<model>.py``) says how to build its model from a config, how to
prepare items from a ``DataSource``, how to draw a batch, its loss and its validation
metrics. The loop adds what every training run needs: seeding, a fixed validation split
(the task's), Adam with warm-up and a cosine schedule, a rich progress bar with the running loss,
checkpoints (model, optimiser, step, RNG state) written atomically every
``checkpoint_every`` steps to ``OUT.ckpt`` and ``--resume`` from them, a wall-time cap,
and at the end the weights with their checksum and model card (``weights.save_weights``).
"""
from __future__ import annotations

import io
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from ..errors import InputError, UsageError
from .data import DataSource


class Task(Protocol):
    name: str
    arch: str
    title: str
    summary: str

    def default_config(self) -> dict[str, Any]: ...
    def build(self, config: dict[str, Any]) -> Any: ...
    def prepare(self, src: DataSource, progress: Callable[[str], None]) -> list[dict[str, Any]]: ...
    def batch(self, items: list[dict[str, Any]], rng: np.random.Generator, batch: int, crop: int) -> dict[str, Any]: ...
    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]: ...
    def validate(self, model: Any, items: list[dict[str, Any]]) -> dict[str, float]: ...


@dataclass
class TrainOptions:
    steps: int = 3000
    batch: int = 8
    crop: int = 128
    lr: float = 2e-3
    seed: int = 0
    resume: bool = False
    device: str = "auto"
    threads: int = 0
    checkpoint_every: int = 250
    max_minutes: float = 0.0
    overwrite: bool = False


def hardware(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads (CPU), torch {torch.__version__}"


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA GPU here (use --device cpu)")
    if device != "cpu" and not device.startswith("cuda"):
        raise UsageError(f"--device {device!r} is not auto, cpu or cuda")
    return device


def _to(batch: dict[str, Any], device: str) -> dict[str, Any]:
    import torch

    return {k: (torch.from_numpy(v).to(device) if isinstance(v, np.ndarray) else v) for k, v in batch.items()}


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def train(task: Task, src: DataSource, output: Path, opts: TrainOptions,
          log: Callable[[str], None] = print, progress_factory: Callable[..., Any] | None = None,
          config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``task`` and write ``output`` (+ .sha256, .md). Returns a summary dict."""
    import torch

    from .layers import n_params
    from .weights import card_markdown, save_weights

    output = Path(output)
    if output.suffix != ".pt":
        raise UsageError(f"-o {output}: weights files end in .pt")
    ckpt_path = output.with_suffix(".ckpt")
    if output.exists() and not (opts.overwrite or opts.resume):
        raise InputError("weights file exists", output, "pass --overwrite to replace it, or --resume to continue")
    if opts.steps < 1 or opts.batch < 1 or not 32 <= opts.crop <= 1024 or opts.lr <= 0:
        raise UsageError("need --steps >= 1, --batch >= 1, --crop in 32..1024 and --lr > 0")
    device = _pick_device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    cfg = {**task.default_config(), **(config or {})}

    state: dict[str, Any] | None = None
    if opts.resume:
        if not ckpt_path.exists():
            raise InputError("no checkpoint to resume from", ckpt_path, "start without --resume")
        state = torch.load(str(ckpt_path), map_location="cpu", weights_only=False)
        if state.get("arch") != task.arch:
            raise InputError(f"checkpoint is for {state.get('arch')!r}, not {task.arch!r}", ckpt_path,
                             "start without --resume or pick another -o")
        cfg = state["config"]

    output.parent.mkdir(parents=True, exist_ok=True)
    t_prep = time.perf_counter()
    items = task.prepare(src, log)
    val = [it for it in items if it.get("val")]
    tr = [it for it in items if not it.get("val")] or items
    t_prep = time.perf_counter() - t_prep
    log(f"{len(tr)} training and {len(val)} validation items prepared in {t_prep:.0f} s")

    model = task.build(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=opts.lr)
    warm = max(1, opts.steps // 20)

    def lr_at(i: int) -> float:  # linear warm-up, then cosine down to 2 % of the peak
        if i < warm:
            return (i + 1) / warm
        return 0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(1.0, (i - warm) / max(1, opts.steps - warm))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    step = 0
    history: list[tuple[int, float]] = []
    train_s = 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        history = list(state.get("history", []))
        train_s = float(state.get("train_s", 0.0))
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed {ckpt_path} at step {step}")

    def checkpoint() -> None:
        _atomic_torch_save({"arch": task.arch, "config": cfg, "model": model.state_dict(),
                            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
                            "history": history, "train_s": train_s, "rng": rng.bit_generator.state,
                            "torch_rng": torch.get_rng_state()}, ckpt_path)

    model.train()
    ema = None
    t_start = time.perf_counter()
    stopped_early = False
    bar = progress_factory(total=opts.steps, completed=step) if progress_factory else None
    try:
        while step < opts.steps:
            b = _to(task.batch(tr, rng, opts.batch, opts.crop), device)
            loss, parts = task.loss(model, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            lv = float(loss.detach())
            ema = lv if ema is None else 0.98 * ema + 0.02 * lv
            if step % 10 == 0 or step == 1:
                history.append((step, round(ema, 6)))
            if bar:
                bar(step, ema, parts)
            if step % opts.checkpoint_every == 0:
                train_s_now = train_s + time.perf_counter() - t_start
                train_s, t_start = train_s_now, time.perf_counter()
                checkpoint()
            if opts.max_minutes and (train_s + time.perf_counter() - t_start) > opts.max_minutes * 60:
                stopped_early = True
                break
    finally:
        train_s += time.perf_counter() - t_start
        t_start = time.perf_counter()
        checkpoint()
        if bar:
            bar(None, None, None)
    model.eval()
    t_val = time.perf_counter()
    with torch.no_grad():
        metrics = task.validate(model.cpu(), val or tr[:2])
    log(f"validation in {time.perf_counter() - t_val:.0f} s: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    card = {
        "summary": task.summary,
        "architecture": task.arch,
        "config": cfg,
        "parameters": n_params(model),
        "training data": src.describe(),
        "items": f"{len(tr)} training, {len(val)} validation (fixed split: scene index % 8 == 0)",
        "command": f"aif train {task.name} " + (f"--data {src.data}" if src.data else
                                                 f"--generate {src.generate} --seed {src.seed}") +
                   f" --steps {opts.steps} --batch {opts.batch} --crop {opts.crop} --lr {opts.lr} --train-seed {opts.seed}"
                   + "".join(f" --set {k}={v}" for k, v in (config or {}).items()),
        "steps": step if not stopped_early else f"{step} of {opts.steps} (stopped by --max-minutes)",
        "training time": f"{train_s / 60:.1f} min (+ {t_prep / 60:.1f} min data preparation)",
        "hardware": hardware(device),
        "final training loss (EMA)": round(ema or float("nan"), 5),
        "date": time.strftime("%Y-%m-%d"),
        "validation": metrics,
        "notes": getattr(task, "notes", ""),
    }
    sd = model.state_dict()
    digest = save_weights(output, arch=task.arch, config=cfg, state_dict=sd,
                          card={k: v for k, v in card.items() if k != "notes"},
                          card_markdown=card_markdown(task.title, card))
    return {"output": str(output), "sha256": digest, "steps": step, "train_s": round(train_s, 1),
            "prep_s": round(t_prep, 1), "validation": metrics, "history": history, "parameters": card["parameters"]}
