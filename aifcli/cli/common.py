"""What every subcommand shares: option definitions, messages, errors and exit codes.

Options mean the same thing in every subcommand (-o/--output, --jobs, --preset,
--overwrite, --debug-dir, --quiet/--verbose, --json, --debug). Exit codes:
0 all done, 1 some items failed, 2 usage or input error.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from ..errors import AifError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2

# --- shared options -------------------------------------------------------------------
OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="Output file, or folder for a batch.")]
OptionalOutputOpt = Annotated[Optional[Path], typer.Option("-o", "--output", help="Output file, or folder for a batch.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="Parallel worker processes for a batch (0 = all cores).", min=0)]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="Camera preset name or .toml path (default: matched from EXIF; see `aif presets list`).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (never inputs).")]
DebugDirOpt = Annotated[Optional[Path], typer.Option("--debug-dir", help="Write intermediate images and masks to this folder.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on the terminal.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="More detail: every item, timings, decisions.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary on stdout.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan (items, inputs, outputs) and exit.")]
SkipExistingOpt = Annotated[bool, typer.Option("--skip-existing", help="Skip items whose outputs all exist (resume a batch).")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="Run the batch on a dask.distributed cluster, e.g. tcp://host:8786.")]
LogOpt = Annotated[Optional[Path], typer.Option("--log", help="JSON log of the batch (default: OUTPUT/aif-log.json for folders).")]
QualityOpt = Annotated[int, typer.Option("--quality", help="JPEG quality 1-100.", min=1, max=100)]


class UI:
    """Terminal messages on stderr (so --json output on stdout stays clean)."""

    def __init__(self, quiet: bool = False, verbose: bool = False, json_mode: bool = False, debug: bool = False):
        self.quiet = quiet
        self.verbose = verbose and not quiet
        self.json_mode = json_mode
        self.debug = debug
        # Not a terminal (a pipe, a log file): wide enough that tables don't truncate paths.
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)
        self.out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)

    def info(self, msg: str) -> None:
        if not self.quiet:
            self.err.print(msg)

    def detail(self, msg: str) -> None:
        if self.verbose:
            self.err.print(f"[dim]{msg}[/dim]")

    def warn(self, msg: str) -> None:
        if not self.quiet:
            self.err.print(f"[yellow]aif: warning:[/yellow] {msg}")

    def error(self, msg: str) -> None:
        self.err.print(f"[red]aif: error:[/red] {msg}", markup=True)

    def emit_json(self, payload: Any) -> None:
        sys.stdout.write(json.dumps(payload, indent=2, default=_json_default) + "\n")
        sys.stdout.flush()

    def table(self, table: Any) -> None:
        if self.quiet:
            return
        if self.json_mode:
            self.err.print(table)
        else:
            self.out.print(table)


def reflow_help(text: str) -> str:
    """Command help with the source's line wrapping taken out, so the terminal wraps it.

    Typer's rich help keeps every newline of a docstring, so text wrapped at about 90
    columns in the source came out with a ragged break after every source line on an
    80-column terminal (and at the source's width on a wide one). Paragraphs (separated by
    blank lines) become one line each; lines that start with whitespace (example commands,
    indented lists) or a list bullet ("- ", "* ") keep their own line."""
    out = []
    for para in text.strip("\n").split("\n\n"):
        lines: list[str] = []
        for ln in para.split("\n"):
            if lines and ln.strip() and not ln[:1].isspace() and not ln.startswith(("- ", "* ")):
                lines[-1] = lines[-1].rstrip() + " " + ln.strip()
            else:
                lines.append(ln.rstrip())
        out.append("\n".join(lines))
    return "\n\n".join(out)


def reflow_commands(app: typer.Typer) -> None:
    """``reflow_help`` on the help of every command of ``app`` and its sub-apps (their
    docstring where no ``help=`` was given); called once after the commands registered."""
    import inspect

    for c in app.registered_commands:
        doc = c.help or (inspect.getdoc(c.callback) if c.callback else None)
        if doc:
            c.help = reflow_help(doc)
    for g in app.registered_groups:
        if g.typer_instance is not None:
            reflow_commands(g.typer_instance)


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one line + exit 2; --debug shows the traceback.

    The wrapped command must accept a ``debug`` keyword (the --debug option).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug", False)) or os.environ.get("AIF_DEBUG") == "1"
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except AifError as e:
            if debug:
                traceback.print_exc()
            err.print(f"[red]aif: error:[/red] {_escape(e.one_line())}")
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("[red]aif: interrupted[/red] (outputs written so far are complete; rerun with --skip-existing)")
            raise typer.Exit(130) from None
        except MemoryError:
            if debug:
                traceback.print_exc()
            err.print("[red]aif: error:[/red] out of memory (try fewer --jobs or a smaller image)")
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as e:  # an unexpected failure: still one line unless --debug
            if debug:
                traceback.print_exc()
            err.print(f"[red]aif: internal error:[/red] {_escape(e.__class__.__name__)}: {_escape(str(e))} "
                      "(rerun with --debug for the traceback and report it)")
            raise typer.Exit(EXIT_USAGE) from None

    return wrapper


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


def resolve_jobs(jobs: int) -> int:
    n = os.cpu_count() or 1
    return n if jobs <= 0 else jobs
