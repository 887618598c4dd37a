"""``aif presets``: list, show and match camera presets."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import InputError
from ..presets import ROLE_LABELS, get_preset, load_presets, match_file, preset_dirs
from .app import app
from .common import DebugOpt, JsonOpt, QuietOpt, UI, VerboseOpt, handle_errors

presets_app = typer.Typer(help="Camera presets: optics per device, matched from EXIF.", no_args_is_help=True)
app.add_typer(presets_app, name="presets")


@presets_app.command("list")
@handle_errors
def list_cmd(json: JsonOpt = False, quiet: QuietOpt = False, verbose: VerboseOpt = False, debug: DebugOpt = False) -> None:
    """List the presets and where they come from."""
    ui = UI(quiet, verbose, json, debug)
    presets = load_presets()
    if json:
        ui.emit_json([p.to_dict() for p in presets.values()])
        return
    t = Table(title=f"presets ({', '.join(str(d) for d in preset_dirs())})")
    for c in ("name", "device", "kind", "cameras (35 mm eq.)", "baseline"):
        t.add_column(c)
    for p in presets.values():
        cams = ", ".join(f"{r} {c.focal_35mm:g} mm f/{c.f_number:g}" for r, c in p.cameras.items())
        t.add_row(p.name, p.display, p.kind, cams, f"{p.baseline_mm:g} mm" if p.baseline_mm else "-")
    ui.table(t)


@presets_app.command("show")
@handle_errors
def show_cmd(name: Annotated[str, typer.Argument(help="Preset name or path to a .toml file.")],
             json: JsonOpt = False, quiet: QuietOpt = False, verbose: VerboseOpt = False,
             debug: DebugOpt = False) -> None:
    """Show every value of one preset."""
    ui = UI(quiet, verbose, json, debug)
    p = get_preset(name)
    if json:
        ui.emit_json(p.to_dict())
        return
    t = Table(title=escape(f"{p.display} [{p.name}] from {p.source}"))
    for c in ("camera", "focal mm", "35 mm eq.", "f-number", "aperture mm", "pixel pitch um", "resolution"):
        t.add_column(c)
    for r, c in p.cameras.items():
        t.add_row(ROLE_LABELS[r], f"{c.focal_mm:g}", f"{c.focal_35mm:g}", f"{c.f_number:g}",
                  f"{c.aperture_mm:.3f}", f"{c.pixel_pitch_um:g}", f"{c.width}x{c.height}")
    ui.table(t)
    ui.info(f"kind: {p.kind}   baseline main-ultrawide: {p.baseline_mm if p.baseline_mm else '-'} mm")
    ui.info(f"matches Make {list(p.make)} / Model {list(p.model)}")
    if p.defaults:
        ui.info("defaults: " + ", ".join(f"{k}={v}" for k, v in p.defaults.items()))


@presets_app.command("match")
@handle_errors
def match_cmd(files: Annotated[list[Path], typer.Argument(help="Image files to identify.")],
              json: JsonOpt = False, quiet: QuietOpt = False, verbose: VerboseOpt = False,
              debug: DebugOpt = False) -> None:
    """Identify the device, preset and camera role (wide, ultra-wide, tele) of each file from EXIF,
    and the EXIF orientation that reading it applies."""
    ui = UI(quiet, verbose, json, debug)
    rows, failed = [], 0
    for f in files:
        try:
            m = match_file(f)
            rows.append((f, m, None))
        except InputError as e:
            rows.append((f, None, e.one_line()))
            failed += 1
    if json:
        ui.emit_json([{"file": str(f), **(m.to_dict() if m else {}), "error": err} for f, m, err in rows])
    else:
        t = Table()
        for c in ("file", "device", "preset", "role", "focal (35 mm eq.)", "f-number", "orientation applied"):
            t.add_column(c)
        for f, m, err in rows:
            if m is None:
                continue
            foc = f"{m.focal_mm:g} mm" if m.focal_mm else "?"
            if m.focal_35mm:
                foc += f" ({m.focal_35mm:g} mm)"
            t.add_row(str(f), f"{m.make} {m.model}".strip() or "?", m.preset.name + ("" if m.exact else " (fallback)"),
                      ROLE_LABELS.get(m.role or "", "?"), foc, f"f/{m.f_number:g}" if m.f_number else "?",
                      _orientation_words(m.orientation))
        if len(rows) > failed:
            ui.table(t)
        for f, m, err in rows:
            if m is not None and m.warning:
                ui.warn(escape(f"{f}: {m.warning}"))
            if err:
                ui.error(escape(err))
    if failed:
        raise typer.Exit(2 if failed == len(files) else 1)


_ORIENT = {1: "1 (none)", 2: "2 (mirror left-right)", 3: "3 (rotate 180)", 4: "4 (mirror top-bottom)",
           5: "5 (transpose)", 6: "6 (rotate 90 CW)", 7: "7 (transverse)", 8: "8 (rotate 90 CCW)"}


def _orientation_words(o: int) -> str:
    return _ORIENT.get(o, str(o))
