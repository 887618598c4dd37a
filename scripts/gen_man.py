#!/usr/bin/env python3
"""Generate man/aif.1 and man/aif-<command>.1 from the CLI definitions (click/typer).

Run after changing any command or option; tests/test_man.py fails when man/ is stale.
Output is deterministic (no dates) so the staleness check is exact.

    python scripts/gen_man.py            # write man/
    python scripts/gen_man.py --check    # exit 1 if man/ differs
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import typer

try:  # typer >= 0.2x vendors click as typer._click
    import typer._click as click  # type: ignore
except ImportError:  # pragma: no cover
    import click  # type: ignore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aifcli import __version__  # noqa: E402
from aifcli.cli.app import app  # noqa: E402

EXIT_STATUS = """.SH EXIT STATUS
.TP
.B 0
all done
.TP
.B 1
some items of a batch failed (the others' outputs are complete; see the summary and the JSON log)
.TP
.B 2
usage or input error (bad option, unreadable or unsuitable input, output exists without \\-\\-overwrite)
"""


def esc(s: str) -> str:
    s = s.replace("\\", "\\\\").replace("-", "\\-")
    lines = []
    for line in s.splitlines():
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def clean_help(text: str | None) -> str:
    if not text:
        return ""
    text = text.replace("\b", "")
    # drop rich markup tags like [bold] ... [/bold]
    import re

    text = re.sub(r"\[/?[a-z ]+\]", "", text)
    return text.strip()


def _is_arg(p: object) -> bool:
    return getattr(p, "param_type_name", "") == "argument"


def param_block(p: object, cmd: object = None) -> str:
    """One .TP entry from the parameter's own help record (names, metavar, help, default)."""
    if getattr(p, "hidden", False):
        return ""
    ctx = click.Context(cmd if cmd is not None else click.Command("x"))
    rec = p.get_help_record(ctx)  # type: ignore[attr-defined]
    if rec is None:
        name = (getattr(p, "name", "") or "").upper()
        return f".TP\n.I {esc(name)}\n{esc(clean_help(getattr(p, 'help', '') or ''))}\n"
    names, help_text = rec
    style = ".I" if _is_arg(p) else ".B"
    return f".TP\n{style} {esc(names)}\n{esc(clean_help(help_text))}\n"


def usage(cmd: click.Command, path: str) -> str:
    ctx = click.Context(cmd, info_name=path)
    pieces = cmd.collect_usage_pieces(ctx)
    return f"{path} {' '.join(pieces)}"


def page(cmd: click.Command, path: str, sub: list[tuple[str, click.Command]] | None = None) -> str:
    title = path.replace(" ", "-").upper()
    short = clean_help(cmd.short_help or (cmd.help or "").split("\n")[0])
    out = [f'.TH {title} 1 "" "aif {__version__}" "aif manual"',
           ".SH NAME", f"{esc(path.replace(' ', '-'))} \\- {esc(short)}",
           ".SH SYNOPSIS", f".B {esc(usage(cmd, path))}", ".SH DESCRIPTION", esc(clean_help(cmd.help)) + "\n"]
    params = [p for p in cmd.params if not getattr(p, "hidden", False)]
    args = [p for p in params if _is_arg(p)]
    opts = [p for p in params if not _is_arg(p)]
    if args:
        out.append(".SH ARGUMENTS")
        out += [param_block(p, cmd) for p in args]
    if opts:
        out.append(".SH OPTIONS")
        out += [param_block(p, cmd) for p in opts]
    if sub:
        out.append(".SH COMMANDS")
        for name, c in sub:
            out.append(f".TP\n.B {esc(path + ' ' + name)}\n{esc(clean_help(c.short_help or (c.help or '').split(chr(10))[0]))}")
            sc_params = [p for p in c.params if not getattr(p, "hidden", False)]
            if sc_params:
                out.append(".RS")
                out.append(f"Usage: {esc(usage(c, path + ' ' + name))}")
                for p in sc_params:
                    out.append(param_block(p, c))
                out.append(".RE")
    out.append(EXIT_STATUS)
    out.append(".SH SEE ALSO\n" + ("aif(1)" if path != "aif" else "aif-<command>(1) for each command; README.md and docs/ in the source tree"))
    return "\n".join(x.rstrip("\n") for x in out if x) + "\n"


def generate() -> dict[str, str]:
    root = typer.main.get_command(app)
    pages: dict[str, str] = {}
    ctx = click.Context(root)
    cmds = [(n, root.get_command(ctx, n)) for n in root.list_commands(ctx)]
    pages["aif.1"] = page(root, "aif", cmds)
    for name, c in cmds:
        sub = None
        if hasattr(c, "list_commands"):
            cctx = click.Context(c)
            sub = [(n, c.get_command(cctx, n)) for n in c.list_commands(cctx)]
        pages[f"aif-{name}.1"] = page(c, f"aif {name}", sub)
    return pages


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="exit 1 if man/ is stale")
    ap.add_argument("--out", type=Path, default=ROOT / "man")
    a = ap.parse_args()
    pages = generate()
    existing = {p.name: p.read_text() for p in a.out.glob("*.1")} if a.out.is_dir() else {}
    if a.check:
        stale = sorted(set(pages) ^ set(existing) | {n for n in pages if existing.get(n) != pages[n]})
        if stale:
            print("stale man pages: " + ", ".join(stale) + " (run python scripts/gen_man.py)")
            return 1
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    for name in set(existing) - set(pages):
        (a.out / name).unlink()
    for name, text in pages.items():
        (a.out / name).write_text(text)
    print(f"wrote {len(pages)} pages to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
