"""The CLI frame: help, version, exit codes, one-line errors without tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parents[1]


def aif(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aifcli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def _commands() -> list[list[str]]:
    """Every leaf command of the app, e.g. ['stack'], ['presets', 'match']."""
    import typer

    from aifcli.cli.app import app

    try:
        import typer._click as click  # type: ignore
    except ImportError:  # pragma: no cover
        import click  # type: ignore
    root = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        if hasattr(cmd, "list_commands"):
            ctx = click.Context(cmd)
            for n in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, n), path + [n])
        else:
            out.append(path)

    walk(root, [])
    return out


def test_version_and_help():
    r = aif("--version")
    assert r.returncode == 0 and r.stdout.strip().startswith("aif ")
    r = aif("--help")
    assert r.returncode == 0 and "Exit codes" in r.stdout


@pytest.mark.parametrize("cmd", _commands(), ids=lambda c: " ".join(c))
def test_every_command_has_help(cmd):
    r = aif(*cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout


def test_help_paragraphs_are_reflowed():
    """Docstrings wrapped in the source must not carry their breaks into --help (typer's
    rich help keeps every newline: ragged lines on an 80-column terminal)."""
    import inspect

    from aifcli.cli.app import app
    from aifcli.cli.common import reflow_help

    text = "First line\nsame sentence.\n\nExamples:\n  aif x a b\n  aif y\n- item one\n- item two\nend"
    assert reflow_help(text) == "First line same sentence.\n\nExamples:\n  aif x a b\n  aif y\n- item one\n- item two end"
    seen = 0
    stack = [app]
    while stack:
        t = stack.pop()
        stack += [g.typer_instance for g in t.registered_groups]
        for c in t.registered_commands:
            doc = c.help or inspect.getdoc(c.callback)
            for para in doc.split("\n\n"):
                lines = para.split("\n")
                assert all(ln[:1].isspace() or ln.startswith(("- ", "* ")) for ln in lines[1:]), (c.name, para[:60])
            seen += 1
    assert seen >= 10


NO_INPUT = (["presets", "list"], ["synth", "pairs"], ["synth", "bursts"])  # these take only an output folder


@pytest.mark.parametrize("cmd", [c for c in _commands() if c not in NO_INPUT], ids=lambda c: " ".join(c))
def test_missing_input_is_one_line_exit_2(cmd, tmp_path):
    """Every command that takes inputs names a missing one in one line, exit 2, no traceback."""
    missing = tmp_path / "does-not-exist.jpg"
    args = [*cmd, str(missing)]
    if cmd == ["presets", "show"]:
        args = [*cmd, "no-such-preset"]
    # try argument shapes until the parser accepts one: (IN, IN, -o OUT), (IN, -o OUT), (IN, IN), (IN)
    out = ["-o", str(tmp_path / "out.png")]
    shapes = [[str(missing), *out], out, [str(missing), str(tmp_path / "outdir")], [str(missing)], []]
    for extra in shapes:
        r = aif(*args, *extra)
        parse_problem = any(m in r.stderr for m in ("No such option", "unexpected extra argument", "Missing argument",
                                                     "Missing option"))
        if not parse_problem:
            break
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert "does-not-exist" in r.stderr or "no-such-preset" in r.stderr or "Invalid value" in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_presets_match_real_pair_json(shared_data):
    files = sorted(str(p) for p in (shared_data / "pairs" / "iphone11pro-wide-tele").glob("*.jpg"))
    r = aif("presets", "match", "--json", *files)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {row["preset"] for row in rows} == {"iphone-11-pro"}
    assert sorted(row["role_label"] for row in rows) == ["tele", "wide (main)"]
    assert all(row["orientation"] == 3 for row in rows)
    r = aif("presets", "match", *files)
    assert "iPhone 11 Pro" in r.stdout and "rotate 180" in r.stdout


def test_presets_match_unreadable_and_unknown(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    good = tmp_path / "plain.png"
    PILImage.fromarray(np.zeros((4, 4, 3), np.uint8)).save(good)
    r = aif("presets", "match", str(good), str(bad))
    assert r.returncode == 1  # one of two failed
    assert "no EXIF" in r.stderr
    r = aif("presets", "match", str(tmp_path / "missing.jpg"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_debug_shows_traceback(tmp_path):
    r = aif("presets", "show", "no-such-preset", "--debug")
    assert r.returncode == 2 and "Traceback" in r.stderr
