"""The evaluation report: per image, per group and total (EasyAIF Table I style), and its
CSV / JSON / Markdown renderings. Pure data in, text out; the CLI writes the files.
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from .evaluate import CONVENTIONS, mean_of

METRICS = ("psnr", "ssim", "lpips")
GROUP_ORDER = {"near": 0, "far": 1, "all": 9}


def summarize(images: list[dict[str, Any]], group: str) -> dict[str, Any]:
    done = [r for r in images if r["status"] == "done"]
    out: dict[str, Any] = {"group": group, "n": len(done), "failed": sum(r["status"] != "done" for r in images)}
    for m in METRICS:
        out[m] = mean_of([r.get(m) for r in done])
        out[f"{m}_n"] = sum(r.get(m) is not None for r in done)
    return out


def build_report(images: list[dict[str, Any]], *, pred: str, gt: str, pairing: str, options: dict[str, Any],
                 lpips_info: dict[str, Any] | None, lpips_reason: str | None,
                 ignored: list[tuple[str, str]] | None = None, seconds: float = 0.0) -> dict[str, Any]:
    names = sorted({r["group"] for r in images}, key=lambda g: (GROUP_ORDER.get(g, 5), g))
    groups = [summarize([r for r in images if r["group"] == g], g) for g in names] if names != ["all"] else []
    return {"aif_evaluate": 1, "pred": pred, "gt": gt, "pairing": pairing, "conventions": CONVENTIONS,
            "options": options, "lpips_available": lpips_info is not None, "lpips_info": lpips_info,
            "lpips_reason": lpips_reason, "groups": groups, "total": summarize(images, "total"),
            "images": images, "ignored": [{"file": f, "reason": why} for f, why in (ignored or [])],
            "seconds": round(seconds, 3)}


def _num(v: Any) -> Any:
    """JSON-safe number: inf -> the string "inf" (identical images), NaN -> null."""
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return None
    return v


def _clean(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items() if k != "visuals"}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return _num(o)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(_clean(report), indent=2, default=str) + "\n"


def fmt(v: Any, nd: int) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4}


def to_csv(report: dict[str, Any]) -> str:
    """One row per image, then one per group and the total (``kind`` says which)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kind", "name", "group", "n", "psnr_db", "ssim", "lpips", "status", "error", "prediction",
                "ground_truth", "mask", "width", "height"])
    for r in report["images"]:
        w.writerow(["image", r["name"], r["group"], 1 if r["status"] == "done" else 0,
                    fmt(r.get("psnr"), 6), fmt(r.get("ssim"), 6), fmt(r.get("lpips"), 6), r["status"],
                    r.get("error") or "", r.get("pred") or "", r.get("gt") or "", r.get("mask") or "",
                    r.get("width", ""), r.get("height", "")])
    for g in report["groups"] + [report["total"]]:
        w.writerow(["group" if g is not report["total"] else "total", g["group"], g["group"], g["n"],
                    fmt(g["psnr"], 6), fmt(g["ssim"], 6), fmt(g["lpips"], 6), "", "", "", "", "", "", ""])
    return buf.getvalue()


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def to_markdown(report: dict[str, Any]) -> str:
    lp = report["lpips_available"]
    head = ["group", "images", "PSNR (dB) ↑", "SSIM ↑"] + (["LPIPS ↓"] if lp else [])
    lines = ["# aif evaluate", "", f"Predictions `{report['pred']}` against ground truth `{report['gt']}` "
             f"(pairing: {report['pairing']}).", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for g in report["groups"] + [report["total"]]:
        cells = [g["group"], str(g["n"]), fmt(g["psnr"], 2), fmt(g["ssim"], 4)] + ([fmt(g["lpips"], 4)] if lp else [])
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Conventions: {CONVENTIONS}"]
    if lp:
        i = report["lpips_info"]
        lines.append(f"LPIPS network: {i['net']} (v0.1 heads).")
    else:
        lines.append(f"LPIPS unavailable: {report['lpips_reason']}.")
    opts = report.get("options") or {}
    if opts:
        lines.append("Options: " + ", ".join(f"{k}={v}" for k, v in opts.items()) + ".")
    lines += ["", "## Per image", "", "| image | group | PSNR (dB) | SSIM |" + (" LPIPS |" if lp else "") + " status |",
              "|---|---|---:|---:|" + ("---:|" if lp else "") + "---|"]
    for r in report["images"]:
        st = "ok" if r["status"] == "done" else _md_escape(r.get("error") or r["status"])
        cells = [_md_escape(r["name"]), r["group"], fmt(r.get("psnr"), 2), fmt(r.get("ssim"), 4)] + \
                ([fmt(r.get("lpips"), 4)] if lp else []) + [st]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
