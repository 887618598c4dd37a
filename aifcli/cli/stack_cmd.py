"""``aif stack``: focus-stack one bracket or a folder of brackets.

A thin layer over ``aifcli.stack.stack_frames``: it finds the brackets
(``aifcli.batch.discover_bursts``), plans outputs, checks them before any work, and
runs one batch item per bracket (``_stack_item``, which reads its frames one at a time
and writes its own outputs) through ``run_batch``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from ..batch import Burst, WorkItem, discover_bursts, run_batch
from ..errors import InputError, UsageError
from ..io import check_output, is_image_file, kind_of, raw_white_balance, read_image
from .app import app
from .batchui import finish_batch, show_plan
from .common import (DebugDirOpt, DebugOpt, DryRunOpt, JobsOpt, JsonOpt, LogOpt, OverwriteOpt, PresetOpt,
                     QualityOpt, QuietOpt, SchedulerOpt, SkipExistingOpt, UI, VerboseOpt, handle_errors)

FORMATS = {"tif": ".tif", "tiff": ".tif", "png": ".png", "jpg": ".jpg", "jpeg": ".jpg"}
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}

HELP = (
    "Focus-stack brackets into all-in-focus images, depth maps and coverage reports.\n\n"
    "INPUT is a folder of frames (one bracket), a folder of bracket folders (a batch; a flat folder holding "
    "several brackets is split by file-name prefix, camera and capture-time gaps), or the frame files of one "
    "bracket. Frames may be JPEG, PNG, TIFF (8/16-bit), HEIC or camera RAW; RAW is decoded linear 16-bit with "
    "one white balance (the reference frame's) for the whole bracket. Frames are aligned to the middle frame "
    "(focus breathing, shake, exposure flicker) and read one at a time, so memory does not grow with the "
    "number of frames.\n\n"
    "Per bracket it writes NAME.tif (16-bit; --format png|jpg for others), NAME_depth.png (16-bit, "
    "0 = near .. 65535 = far, see --near), NAME_confidence.png and NAME_coverage.png (which frames "
    "contributed, frames that added nothing, focus gaps). With -o FILE.tif and one bracket the side files "
    "are FILE_depth.png etc. Frames that cannot be read, have another size, or fail to align are reported "
    "and left out.\n\n"
    "Examples:\n\n"
    "  aif stack brackets/pcb7 -o pcb7.tif\n\n"
    "  aif stack brackets/ -o out/ --jobs 2 --skip-existing\n\n"
    "  aif stack --dry-run brackets/\n\n"
    "  aif stack shots/*.CR2 -o macro.tif --prefer near"
)


@app.command("stack", help=HELP, no_args_is_help=True)
@handle_errors
def stack_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="A bracket folder, a folder of brackets, or frame files.",
                                                 show_default=False)],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Output file (one bracket) or folder.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Image format in folder mode: tif (16-bit), png (16-bit) or jpg.")] = "tif",
    motion: Annotated[str, typer.Option("--motion", help="Alignment model: translation, similarity, affine or homography.")] = "affine",
    no_align: Annotated[bool, typer.Option("--no-align", help="Frames are already aligned (tripod, no breathing).")] = False,
    align_only: Annotated[bool, typer.Option("--align-only", help="Only align: write the aligned frames (16-bit TIFF) to OUT/NAME/.")] = False,
    prefer: Annotated[str, typer.Option("--prefer", help="Bias ties to the near or far frames (see-through subjects: hair, nets, foliage): none, near or far.")] = "none",
    near: Annotated[str, typer.Option("--near", help="Which end of the bracket is near: first or last frame.")] = "first",
    halo: Annotated[bool, typer.Option("--halo/--no-halo", help="Max-filter coarse-level focus scores so the frame sharp at a high-contrast edge also supplies the coarse bands around it (experimental; off by default, see docs/STACK.md).")] = False,
    power: Annotated[float, typer.Option("--power", help="Selection sharpness: weight = focus energy ** POWER (high = hard choice, low = more noise averaging).", min=0.5, max=50)] = 3.0,
    quality: QualityOpt = 95,
    jobs: JobsOpt = 0,
    preset: PresetOpt = None,
    overwrite: OverwriteOpt = False,
    skip_existing: SkipExistingOpt = False,
    scheduler: SchedulerOpt = None,
    log: LogOpt = None,
    debug_dir: DebugDirOpt = None,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    ui = UI(quiet, verbose, json_out, debug)
    if motion not in ("translation", "similarity", "affine", "homography"):
        raise UsageError(f"--motion {motion!r} is not one of translation, similarity, affine, homography")
    if prefer not in ("none", "near", "far"):
        raise UsageError(f"--prefer {prefer!r} is not one of none, near, far")
    if near not in ("first", "last"):
        raise UsageError(f"--near {near!r} is not first or last")
    if fmt.lower() not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not tif, png or jpg")
    if preset is not None:
        from ..presets import get_preset

        get_preset(preset)  # validates the name; stacking needs no optics, only EXIF pass-through
    bursts = _find_bursts(inputs)
    file_mode = output is not None and output.suffix.lower() in IMAGE_SUFFIXES and not align_only
    if file_mode and len(bursts) != 1:
        raise UsageError(f"-o {output} is a file but {len(bursts)} brackets were found",
                         hint="give a folder as -o for a batch")
    if output is None:
        if not dry_run:
            raise UsageError("missing -o/--output", hint="e.g. -o stacked.tif for one bracket or -o out/ for a batch")
        output = Path("aif-out")
    ext = output.suffix.lower() if file_mode else FORMATS[fmt.lower()]
    items = []
    for b in bursts:
        outs = _outputs(b, output, file_mode, ext, align_only)
        params = {"motion": motion, "align": not no_align, "prefer": prefer, "near": near, "halo": halo,
                  "power": power, "quality": quality, "overwrite": overwrite, "align_only": align_only,
                  "debug_dir": str(debug_dir / b.name) if debug_dir else None}
        items.append(WorkItem(b.name, [str(f) for f in b.frames], [str(o) for o in outs], params))
    if dry_run:
        rows = [(it.name, len(it.inputs), Path(it.inputs[0]).name + " .. " + Path(it.inputs[-1]).name,
                 b.source, ", ".join(Path(o).name for o in it.outputs[:2]) + (" ..." if len(it.outputs) > 2 else ""))
                for it, b in zip(items, bursts)]
        payload = [{"name": it.name, "frames": len(it.inputs), "inputs": it.inputs, "outputs": it.outputs,
                    "source": b.source} for it, b in zip(items, bursts)]
        show_plan(ui, "aif stack plan", ["bracket", "frames", "files", "found as", "outputs"], rows, payload)
        return
    all_inputs = tuple(Path(f) for b in bursts for f in b.frames)
    for it in items:
        if skip_existing and all(Path(o).exists() for o in it.outputs):
            continue
        for o in it.outputs:
            check_output(o, overwrite, inputs=all_inputs)
    if not file_mode and len(items) > 1:
        log = log or output / "aif-log.json"
    if len(items) == 1 and not scheduler:
        # one bracket: run here so an input problem is a plain one-line error (exit 2)
        it = items[0]
        if skip_existing and all(Path(o).exists() for o in it.outputs):
            ui.info(f"{it.name}: outputs exist, skipped (--skip-existing)")
            return
        ui.detail(f"{it.name}: {len(it.inputs)} frames")
        info = _stack_item(it, progress=None if quiet or json_out else ui)
        if log:
            from ..batch.runner import BatchReport, ItemResult, write_log

            rep = BatchReport([ItemResult(it.name, "done", info.get("seconds", 0.0), it.inputs, it.outputs, info=info)],
                              info.get("seconds", 0.0), 1, "in-process")
            write_log(log, rep, "aif stack", {"inputs": [str(i) for i in inputs], **it.params})
        if json_out:
            ui.emit_json({"name": it.name, "outputs": it.outputs, **info})
        else:
            _print_summary(ui, it, info)
        return
    report = run_batch(items, _stack_item, jobs=jobs, scheduler=scheduler, skip_existing=skip_existing,
                       progress=not (quiet or json_out), description="stacking", debug=debug, log_path=log,
                       command="aif stack", params={"inputs": [str(i) for i in inputs], **items[0].params})
    if not json_out and not quiet and ui.verbose:
        for r in report.results:
            if r.status == "done":
                _print_summary(ui, WorkItem(r.name, r.inputs, r.outputs), r.info)
    finish_batch(ui, report, log, what="bracket")


def _find_bursts(inputs: list[Path]) -> list[Burst]:
    if len(inputs) == 1 and inputs[0].is_dir():
        return discover_bursts(inputs[0], min_frames=1)
    files = []
    for p in inputs:
        if p.is_dir():
            raise UsageError(f"{p} is a folder among files", hint="give one folder, or frame files")
        if not p.exists():
            raise InputError("no such file", p, "check the path")
        if not is_image_file(p):
            raise InputError(f"not a supported image type '{p.suffix or '(none)'}'", p,
                             "aif reads JPEG, PNG, TIFF, HEIC/HEIF and camera RAW")
        files.append(p)
    name = files[0].parent.name or "bracket"
    return [Burst(name, files, "files")]


def _outputs(b: Burst, output: Path, file_mode: bool, ext: str, align_only: bool) -> list[Path]:
    if align_only:
        return [output / b.name / f"aligned_{f.stem}.tif" for f in b.frames]
    main = output if file_mode else output / f"{b.name}{ext}"
    stem = main.with_suffix("")
    return [main, Path(f"{stem}_depth.png"), Path(f"{stem}_confidence.png"), Path(f"{stem}_coverage.png")]


class FrameSource:
    """The frames of one bracket, read lazily one at a time (a Sequence for ``stack_frames``).

    An unreadable frame reads as ``None`` and its one-line error is kept in ``errors``.
    RAW frames are all decoded with the white balance of the reference (middle) frame.
    """

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.errors: dict[int, str] = {}
        self.raw_wb: tuple[float, ...] | None = None
        self.meta = None  # metadata of the reference frame (EXIF for the output)
        self.linear = False
        self.bit_depth = 8
        if any(kind_of(p) == "raw" for p in paths):
            mid = len(paths) // 2
            for j in sorted(range(len(paths)), key=lambda j: abs(j - mid)):
                try:
                    self.raw_wb = raw_white_balance(paths[j])
                    break
                except InputError:
                    continue

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray | None:
        try:
            img = read_image(self.paths[i], raw_wb=self.raw_wb)
        except InputError as e:
            self.errors[i] = e.one_line()
            return None
        if self.meta is None or i == len(self.paths) // 2:
            self.meta = img.meta
        self.linear = self.linear or img.meta.linear
        self.bit_depth = max(self.bit_depth, img.meta.bit_depth)
        return img.pixels

    def registration_frame(self, i: int, min_side: int = 1000) -> tuple[np.ndarray | None, tuple[int, int] | None]:
        """Frame ``i`` for the registration pass: ``(reduced image, full (height, width))``.

        JPEGs are decoded at 1/2, 1/4 or 1/8 size by libjpeg's DCT scaling (several times
        faster than a full decode), keeping the long side >= ``min_side`` (registration works
        at ~1000 px). Anything else, or a JPEG that looks damaged, is read in full (so the
        error message is the usual one)."""
        path = self.paths[i]
        if kind_of(path) == "jpeg":
            try:
                small = _reduced_jpeg(path, min_side)
            except Exception:
                small = None
            if small is not None:
                return small
        rgb = self[i]
        return rgb, (rgb.shape[:2] if rgb is not None else None)


def _reduced_jpeg(path: Path, min_side: int) -> tuple[np.ndarray, tuple[int, int]] | None:
    import cv2

    from ..io import exif as exif_mod
    from ..io.read import _looks_truncated, apply_orientation, image_size

    h, w = image_size(path)
    k = 1
    while k < 8 and max(h, w) // (2 * k) >= min_side:
        k *= 2
    if k == 1:
        return None
    data = path.read_bytes()
    if _looks_truncated("jpeg", data):
        return None
    flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[k]
    a = cv2.imdecode(np.frombuffer(data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    if a is None or a.ndim != 3:
        return None
    a = apply_orientation(a, exif_mod.orientation(exif_mod.read_exif_tags(data)))
    if abs(a.shape[0] * k - h) >= k or abs(a.shape[1] * k - w) >= k:
        return None  # not what the header said: let the full read decide
    rgb = cv2.cvtColor(a, cv2.COLOR_BGR2RGB)
    return np.multiply(rgb, np.float32(1 / 255.0), dtype=np.float32), (h, w)


def _stack_item(item: WorkItem, progress: Any = None) -> dict[str, Any]:
    """Batch item: stack one bracket and write its outputs (runs in a worker process)."""
    import time

    from ..align.burst import register_burst, warp_frame
    from ..batch.malloc import tune_malloc_for
    from ..io import write_gray8, write_gray16, write_image
    from ..stack import stack_frames
    from ..stack.coverage import coverage_png

    t0 = time.perf_counter()
    p = item.params
    paths = [Path(f) for f in item.inputs]
    if paths:
        tune_malloc_for(paths[len(paths) // 2])
    folder = paths[0].parent
    if len(paths) < 2:
        raise InputError(f"bracket '{item.name}' has only {len(paths)} frame", paths[0] if paths else folder,
                         "focus stacking needs 2 or more frames of the same scene")
    src = FrameSource(paths)
    overwrite = bool(p.get("overwrite"))
    if p.get("align_only"):
        al = register_burst((src.registration_frame(i) for i in range(len(src))), motion=p["motion"])
        _check_good(al.good, src, paths, item.name)
        written = []
        for i, out in zip(range(len(paths)), item.outputs):
            if i not in al.transforms:
                continue
            rgb = src[i]
            warped, _ = warp_frame(rgb, al.transforms[i], al.gains[i], al.size)
            write_image(out, np.clip(warped, 0, 1), meta=src.meta, linear=src.linear, bit_depth=16,
                        overwrite=overwrite)
            written.append(out)
        return {"outputs": written, "alignment": al.to_dict(), "left_out": _left_out(al.failed, src, paths),
                "seconds": round(time.perf_counter() - t0, 3)}

    def on_frame(i: int, k: int) -> None:
        if progress is not None:
            progress.detail(f"{item.name}: fused frame {i} ({paths[i].name}), {k} so far")

    try:
        res = stack_frames(src, align=p["align"], motion=p["motion"], prefer=p["prefer"], near=p["near"],
                           linear=src.linear, halo=p["halo"], power=p["power"], on_frame=on_frame)
    except ValueError:
        res = None
    good = res.frames_used if res is not None else []
    _check_good(good, src, paths, item.name)
    assert res is not None
    main, depth_p, conf_p, cov_p = (Path(o) for o in item.outputs)
    bits = 16 if main.suffix.lower() in (".tif", ".tiff", ".png") else 8
    # the main image is encoded and written while the side files are (zlib and OpenCV's
    # encoders release the GIL); two at a time keeps the peak memory low; each write is atomic
    from concurrent.futures import ThreadPoolExecutor

    def side_files() -> None:
        write_gray16(depth_p, res.depth_normalized(p["near"]), overwrite=overwrite)
        write_gray8(conf_p, res.confidence, overwrite=overwrite)
        write_image(cov_p, coverage_png(res.coverage, res.depth_state, len(paths)), overwrite=overwrite)

    with ThreadPoolExecutor(2, thread_name_prefix="aif-write") as ex:
        jobs = [ex.submit(write_image, main, res.image, meta=src.meta, linear=src.linear, bit_depth=bits,
                          quality=int(p.get("quality", 95)), overwrite=overwrite),
                ex.submit(side_files)]
        for j in jobs:
            j.result()
    cov = res.coverage.to_dict()
    left_out = _left_out(res.coverage.failed, src, paths)
    cov["failed"] = left_out
    info = {"reference": paths[res.reference].name, "frames": len(paths), "frames_used": len(res.frames_used),
            "left_out": left_out, "coverage": cov,
            "alignment": res.alignment.to_dict() if res.alignment else None,
            "timings": {k: round(v, 3) for k, v in res.timings.items()},
            "seconds": round(time.perf_counter() - t0, 3)}
    if p.get("debug_dir"):
        _write_debug(Path(p["debug_dir"]), res, info)
    return info


def _left_out(failed: dict[int, str], src: FrameSource, paths: list[Path]) -> dict[str, str]:
    out = {}
    for i, why in sorted(failed.items()):
        out[paths[i].name] = src.errors.get(i, why)
    return out


def _check_good(good: list[int], src: FrameSource, paths: list[Path], name: str) -> None:
    if len(good) >= 2:
        return
    detail = "; ".join(src.errors.values())
    raise InputError(f"bracket '{name}': only {len(good)} of {len(paths)} frames are usable"
                     + (f" ({detail})" if detail else ""), paths[0].parent,
                     "check the frames; a bracket needs 2 or more readable frames of one size")


def _write_debug(d: Path, res: Any, info: dict[str, Any]) -> None:
    from ..io import write_bytes_atomic, write_gray16

    d.mkdir(parents=True, exist_ok=True)
    st = res.depth_state
    n = max(res.n_frames - 1, 1)
    write_gray16(d / "depth_raw.png", np.clip(st.raw_depth / n, 0, 1), overwrite=True)
    write_gray16(d / "best_frame_sharpness_ratio.png", np.clip(st.sharpness_ratio, 0, 1), overwrite=True)
    write_bytes_atomic(d / "stack.json", json.dumps(info, indent=2, default=str).encode(), overwrite=True)


def _print_summary(ui: UI, it: WorkItem, info: dict[str, Any]) -> None:
    cov = info.get("coverage") or {}
    ui.info(f"{escape(it.name)}: {info.get('frames_used')} of {info.get('frames')} frames stacked in "
            f"{info.get('seconds', 0):.1f} s -> {escape(str(it.outputs[0]))}")
    for name, why in (info.get("left_out") or {}).items():
        ui.warn(f"{escape(name)} left out: {escape(why)}")
    if cov.get("unused"):
        ui.info(f"frames that added nothing: {cov['unused']}")
    for g in cov.get("gaps", []):
        ui.warn(f"focus gap between frames {g['from']} and {g['to']}: add frames there "
                f"({g['share']:.0%} of the pixels focused in that range are soft)")
    if ui.verbose and cov.get("contribution"):
        t = Table(title=f"{escape(it.name)}: contribution per frame")
        t.add_column("frame")
        t.add_column("share of sharp pixels")
        for k, v in cov["contribution"].items():
            t.add_row(k, f"{v:.1%}")
        ui.err.print(t)
