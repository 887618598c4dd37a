"""The ``aif`` command: a typer app; each subcommand lives in its own module."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import __version__

app = typer.Typer(
    name="aif",
    help=(
        "All-in-focus photography: fuse a phone's main + ultra-wide pair, stack focus brackets, "
        "refocus after the shot, and score results against ground truth.\n\n"
        "Exit codes: 0 all done, 1 some items of a batch failed, 2 usage or input error."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aif {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """All-in-focus photography from the command line."""


# Subcommands register themselves on import, listed in `aif --help` in this order
# (the pipeline's; command groups such as `synth` and `presets` come after).
from . import fuse_cmd, align_cmd, colormatch_cmd  # noqa: E402,F401
from . import stack_cmd  # noqa: E402,F401
from . import refocus_cmd  # noqa: E402,F401
from . import evaluate_cmd  # noqa: E402,F401
from . import train_cmd  # noqa: E402,F401
from . import synth_cmd  # noqa: E402,F401
from . import presets_cmd  # noqa: E402,F401
from .common import reflow_commands  # noqa: E402

reflow_commands(app)

def main() -> None:
    app()


if __name__ == "__main__":
    main()
