"""Terminal side of batches, shared by every batch subcommand: plan tables, closing summary.

Usage in a command::

    if dry_run:
        show_plan(ui, "stack plan", ["burst", "frames", "output"], rows); return
    report = run_batch(items, fn, jobs=jobs, ..., progress=not (quiet or json))
    finish_batch(ui, report, log_path)   # summary table, JSON, exit code 0/1
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import typer
from rich.markup import escape
from rich.table import Table

from ..batch.runner import BatchReport
from .common import UI


def show_plan(ui: UI, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
              payload: Any = None) -> None:
    """--dry-run: the plan as a table (or JSON with --json)."""
    if ui.json_mode:
        ui.emit_json({"plan": payload if payload is not None else [dict(zip(columns, map(str, r))) for r in rows]})
        return
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[escape(str(x)) for x in r])
    ui.out.print(t)
    ui.info(f"{len(rows)} item(s) planned; nothing was written (--dry-run).")


def finish_batch(ui: UI, report: BatchReport, log_path: Path | None = None, what: str = "item") -> None:
    """Closing summary: counts, failures (always), every item (--verbose); exit 1 if any failed."""
    d = report.to_dict()
    if ui.json_mode:
        ui.emit_json({**d, "log": str(log_path) if log_path else None})
    else:
        failed = report.failed
        if failed or ui.verbose:
            t = Table(title="failed" if not ui.verbose else "items")
            for c in (what, "status", "seconds", "detail"):
                t.add_column(c)
            for r in report.results:
                if r.status != "failed" and not ui.verbose:
                    continue
                detail = r.error or ", ".join(Path(o).name for o in r.outputs[:3])
                style = "red" if r.status == "failed" else ("dim" if r.status == "skipped" else "")
                t.add_row(escape(r.name), f"[{style}]{r.status}[/{style}]" if style else r.status,
                          f"{r.seconds:.2f}", escape(detail or ""))
            ui.err.print(t)
        msg = (f"{d['done']} done, {d['failed']} failed, {d['skipped']} skipped "
               f"in {d['seconds']:.1f} s ({report.backend})")
        if log_path:
            msg += f"; log: {log_path}"
        if failed:
            ui.err.print(f"[red]{escape(msg)}[/red]")
        else:
            ui.info(escape(msg))
    if report.exit_code:
        raise typer.Exit(report.exit_code)
