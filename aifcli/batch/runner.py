"""Running a batch: items in parallel, a progress bar, a closing summary, a JSON log.

Each item is a picklable ``WorkItem`` (paths and parameters, never pixels) handed to a
top-level function ``fn(item) -> dict``. Workers read their inputs and write their
outputs themselves, so the same batch runs in local joblib processes or on a
dask.distributed cluster (``scheduler="tcp://host:8786"``) through joblib's dask
backend. A failing item becomes a failed ``ItemResult``; the others go on.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import AifError, UsageError
from ..io.atomic import write_bytes_atomic


@dataclass
class WorkItem:
    name: str
    inputs: list[str]
    outputs: list[str]  # files the item will write; all present = done (for --skip-existing)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemResult:
    name: str
    status: str  # "done", "failed", "skipped"
    seconds: float = 0.0
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    worker: str = ""


@dataclass
class BatchReport:
    results: list[ItemResult]
    seconds: float
    jobs: int
    backend: str

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "jobs": self.jobs, "backend": self.backend,
                "done": sum(r.status == "done" for r in self.results),
                "failed": len(self.failed), "skipped": sum(r.status == "skipped" for r in self.results),
                "items": [asdict(r) for r in self.results]}


def _limit_threads(n: int) -> None:
    """Keep jobs x threads near the core count (OpenCV and torch default to all cores)."""
    try:
        import cv2

        cv2.setNumThreads(n)
    except Exception:
        pass
    try:
        import torch

        torch.set_num_threads(max(1, n))
    except Exception:
        pass


def _run_one(fn: Callable[[WorkItem], dict[str, Any] | None], item: WorkItem, threads: int,
             debug: bool) -> ItemResult:
    """Runs in the worker: never raises, returns a result record instead."""
    import socket

    if threads > 0:
        _limit_threads(threads)
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        info = fn(item) or {}
        outs = info.pop("outputs", None) or item.outputs
        return ItemResult(item.name, "done", time.perf_counter() - t0, item.inputs, [str(o) for o in outs],
                          info=info, worker=worker)
    except AifError as e:
        return ItemResult(item.name, "failed", time.perf_counter() - t0, item.inputs, [], e.one_line(),
                          traceback.format_exc() if debug else None, worker=worker)
    except MemoryError:
        return ItemResult(item.name, "failed", time.perf_counter() - t0, item.inputs, [],
                          "out of memory (try fewer --jobs)", traceback.format_exc() if debug else None,
                          worker=worker)
    except Exception as e:  # one bad item must never stop the batch
        return ItemResult(item.name, "failed", time.perf_counter() - t0, item.inputs, [],
                          f"internal error {e.__class__.__name__}: {e}", traceback.format_exc(), worker=worker)


def run_batch(items: list[WorkItem], fn: Callable[[WorkItem], dict[str, Any] | None], *, jobs: int = 0,
              scheduler: str | None = None, skip_existing: bool = False, progress: bool = True,
              description: str = "working", debug: bool = False, log_path: str | Path | None = None,
              command: str = "", params: dict[str, Any] | None = None,
              on_result: Callable[[ItemResult], None] | None = None) -> BatchReport:
    """Run ``fn`` over ``items``; returns a report with one result per item, in item order."""
    cores = os.cpu_count() or 1
    n_jobs = cores if jobs <= 0 else jobs
    t0 = time.perf_counter()
    results: dict[str, ItemResult] = {}
    todo: list[WorkItem] = []
    for it in items:
        if skip_existing and it.outputs and all(Path(o).exists() for o in it.outputs):
            results[it.name] = ItemResult(it.name, "skipped", 0.0, it.inputs, it.outputs, info={"reason": "outputs exist"})
        else:
            todo.append(it)
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        raise UsageError("two items have the same name; their outputs would collide")

    backend = "sequential"
    prog_ctx = _progress(progress, description, len(items), len(items) - len(todo))
    with prog_ctx as prog:
        def done(r: ItemResult) -> None:
            results[r.name] = r
            if on_result:
                on_result(r)
            prog.advance(r)

        if not todo:
            pass
        elif scheduler:
            backend = f"dask ({scheduler})"
            for r in _run_dask(todo, fn, scheduler, debug):
                done(r)
        elif n_jobs == 1 or len(todo) == 1:
            backend = "in-process"
            for it in todo:
                done(_run_one(fn, it, 0, debug))
        else:
            from joblib import Parallel, delayed

            workers = min(n_jobs, len(todo))
            backend = f"joblib loky x{workers}"
            threads = max(1, cores // workers)
            par = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
            for r in par(delayed(_run_one)(fn, it, threads, debug) for it in todo):
                done(r)
    report = BatchReport([results[n] for n in names], time.perf_counter() - t0, n_jobs, backend)
    if log_path is not None:
        write_log(log_path, report, command, params or {})
    return report


def _run_dask(todo: list[WorkItem], fn: Callable[[WorkItem], Any], scheduler: str, debug: bool) -> Iterable[ItemResult]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise UsageError("--scheduler needs dask.distributed", hint="pip install 'aif[cluster]'") from None
    from joblib import Parallel, delayed, parallel_config

    try:
        client = Client(scheduler, timeout=10)
    except Exception as e:
        raise UsageError(f"cannot reach dask scheduler {scheduler}: {e}", hint="is `dask scheduler` running there?") from None
    try:
        with parallel_config(backend="dask"):
            par = Parallel(return_as="generator_unordered")
            yield from par(delayed(_run_one)(fn, it, 0, debug) for it in todo)
    finally:
        client.close()


class _NoProgress:
    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *a: Any) -> None:
        return None

    def advance(self, r: ItemResult) -> None:
        return None


class _RichProgress:
    def __init__(self, description: str, total: int, already: int):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[failed]}"), TimeElapsedColumn(), TextColumn("ETA"),
                          TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.total, self.already, self.failed = total, already, 0
        self.description = description

    def __enter__(self) -> "_RichProgress":
        self.p.__enter__()
        self.task = self.p.add_task(self.description, total=self.total, completed=self.already, failed="")
        return self

    def __exit__(self, *a: Any) -> None:
        self.p.__exit__(*a)

    def advance(self, r: ItemResult) -> None:
        if r.status == "failed":
            self.failed += 1
        self.p.update(self.task, advance=1, failed=f"[red]{self.failed} failed[/red]" if self.failed else "")


def _progress(enabled: bool, description: str, total: int, already: int) -> Any:
    return _RichProgress(description, total, already) if enabled else _NoProgress()


def write_log(path: str | Path, report: BatchReport, command: str, params: dict[str, Any]) -> Path:
    """The batch's JSON log: inputs, outputs, parameters, timings and errors per item."""
    payload = {"aif_log": 1, "command": command, "finished": datetime.now(timezone.utc).isoformat(),
               "params": params, **report.to_dict()}
    data = json.dumps(payload, indent=2, default=str).encode()
    return write_bytes_atomic(path, data, overwrite=True)
