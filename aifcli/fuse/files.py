"""File side of ``aif fuse``: one pair from disk to disk (also the batch item function)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..align.pair_io import align_files, load_pair
from ..batch.malloc import tune_malloc_for
from ..batch.runner import WorkItem
from ..io import check_output, write_bytes_atomic, write_gray8, write_image

DEBUG_IMAGES = ("homography_warped", "flow_warped", "color_matched", "refined_main")
DEBUG_MASKS = ("confidence", "mask_main", "mask_ultrawide", "mask_refined")


def debug_paths(debug_dir: Path, stem: str) -> list[Path]:
    return ([debug_dir / f"{stem}.{k}.png" for k in DEBUG_IMAGES + DEBUG_MASKS]
            + [debug_dir / f"{stem}.fuse.json"])


def fuse_files(main_path: str | Path, uw_path: str | Path, out_path: str | Path, *, preset: str | None = None,
               ratio: float | None = None, overwrite: bool = False, debug_dir: str | Path | None = None,
               quality: int = 95, detect_swap: bool = True, use_confidence: bool = True, main_bias: float = 0.7,
               fuse_scale: float | None = None, work_width: int = 1024, engine: str = "classical",
               weights: str | None = None, content_check: bool = True, min_confidence: float = 0.25) -> dict[str, Any]:
    """Read, align, colour-match, fuse, write. Returns a JSON-able summary."""
    from .pair import fuse_pair

    T0 = time.perf_counter()
    out_path = Path(out_path)
    main_path, uw_path = Path(main_path), Path(uw_path)
    check_output(out_path, overwrite, inputs=(main_path, uw_path))
    if engine == "net":  # missing or corrupt weights fail before any pixel work
        from ..nets.fuse_net import load

        load(weights)
    stem = out_path.stem
    if debug_dir is not None:
        debug_dir = Path(debug_dir)
        for d in debug_paths(debug_dir, stem):
            check_output(d, overwrite, inputs=(main_path, uw_path))
    tune_malloc_for(main_path, uw_path)
    t0 = time.perf_counter()
    p = load_pair(main_path, uw_path, preset, ratio, detect_swap)
    t_read = time.perf_counter() - t0
    p, al = align_files(p, detect_swap, work_width=work_width)
    res = fuse_pair(p.main.pixels, p.ultrawide.pixels, alignment=al, use_confidence=use_confidence,
                    main_bias=main_bias, fuse_scale=fuse_scale, keep_intermediates=debug_dir is not None,
                    engine=engine, weights=weights, content_check=content_check, min_confidence=min_confidence)
    res.timings["align"] = sum(v for k, v in al.timings.items() if k == "total")
    t0 = time.perf_counter()
    write_image(out_path, res.image, meta=p.main.meta, linear=p.main.meta.linear, quality=quality, overwrite=overwrite)
    t_write = time.perf_counter() - t0
    summary: dict[str, Any] = {"output": str(out_path), "pair": p.to_dict(), **res.summary()}
    if engine == "net":
        from ..nets.fuse_net import size_warning

        note = size_warning(p.main.shape)
        if note:
            summary["pair"]["notes"] = [*summary["pair"]["notes"], note]
    summary["timings"] = {"read": round(t_read, 4), **summary["timings"], "write": round(t_write, 4)}
    outputs = [str(out_path)]
    if debug_dir is not None:
        debug_dir.mkdir(parents=True, exist_ok=True)
        for k in DEBUG_IMAGES:
            outputs.append(str(write_image(debug_dir / f"{stem}.{k}.png", np.clip(res.intermediates[k], 0, 1),
                                           meta=p.main.meta, linear=p.main.meta.linear, overwrite=overwrite)))
        for k in DEBUG_MASKS:
            outputs.append(str(write_gray8(debug_dir / f"{stem}.{k}.png", res.intermediates[k], overwrite=overwrite)))
        dbg = {**summary, "alignment_full": al.to_dict(),
               "note": f"intermediates are at the fuse scale {res.fuse_scale:g} of the main image"}
        outputs.append(str(write_bytes_atomic(debug_dir / f"{stem}.fuse.json",
                                              (json.dumps(dbg, indent=2) + "\n").encode(), overwrite=overwrite)))
    summary["timings"]["total"] = round(time.perf_counter() - T0, 4)
    summary["outputs"] = outputs
    return summary


def fuse_item(item: WorkItem) -> dict[str, Any]:
    """Batch item: ``item.inputs = [main, ultrawide]``, ``item.outputs[0]`` the fused image."""
    p = dict(item.params)
    info = fuse_files(item.inputs[0], item.inputs[1], item.outputs[0], **p)
    return {"outputs": info.pop("outputs"), "swapped": info["pair"]["swapped"],
            "inliers": info.get("alignment", {}).get("inliers"), "seconds_total": info["timings"]["total"],
            "notes": info["pair"]["notes"]}
