"""The self-contained HTML page of ``aif evaluate --html DIR``.

One file (``DIR/index.html``) with every image embedded as a JPEG data URI: a summary
table (per group and total), the conventions, then one card per image, worst first,
with thumbnails of the prediction, the ground truth and the error heat map, and zoomed
crops where the error is largest. Visuals are made in the workers (``make_visuals``) so
that only a few tens of kilobytes per image travel back, never pixels.
"""
from __future__ import annotations

import base64
import html
import math
from typing import Any

import cv2
import numpy as np

THUMB = 480  # longest side of a thumbnail
ERR_MAX = 0.1  # heat map: mean absolute error per pixel of 0.1 (10 % of the range) and up is white-hot
CROP_VIEW = 240  # shown size of a zoomed crop


def _jpeg_b64(rgb: np.ndarray, quality: int = 85) -> str:
    a = np.clip(np.asarray(rgb, np.float32), 0, 1)
    q = (a * 255 + 0.5).astype(np.uint8)
    if q.ndim == 3:
        q = cv2.cvtColor(q, cv2.COLOR_RGB2BGR)
    ok, enc = cv2.imencode(".jpg", q, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return base64.b64encode(enc.tobytes()).decode("ascii") if ok else ""


def error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean absolute error over channels, HxW float32."""
    return np.mean(np.abs(np.asarray(pred, np.float32) - np.asarray(gt, np.float32)), axis=2)


def heat(err: np.ndarray, mask: np.ndarray | None = None, err_max: float = ERR_MAX) -> np.ndarray:
    """Inferno colour map of ``err`` in [0, err_max] as RGB float; masked-out pixels grey."""
    u8 = (np.clip(err / err_max, 0, 1) * 255 + 0.5).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    if mask is not None:
        rgb[mask <= 0.5] = 0.5
    return rgb


def _thumb(a: np.ndarray, side: int = THUMB) -> np.ndarray:
    h, w = a.shape[:2]
    f = min(1.0, side / max(h, w))
    if f >= 1.0:
        return a
    return cv2.resize(a, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def worst_windows(err: np.ndarray, mask: np.ndarray | None, size: int, count: int = 2) -> list[tuple[int, int]]:
    """Top-left corners of up to ``count`` non-overlapping ``size`` windows with the highest mean error."""
    h, w = err.shape
    e = err.astype(np.float32).copy()
    if mask is not None:
        e[mask <= 0.5] = 0
    k = max(1, max(h, w) // 1024)  # search on a reduced grid: a 12 MP map in milliseconds
    small = cv2.resize(e, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA) if k > 1 else e
    s = max(1, size // k)
    score = cv2.boxFilter(small, -1, (s, s), normalize=True, borderType=cv2.BORDER_CONSTANT)
    out: list[tuple[int, int]] = []
    for _ in range(count):
        idx = int(np.argmax(score))
        if score.flat[idx] <= 0:
            break
        cy, cx = divmod(idx, score.shape[1])
        y0 = int(np.clip(cy * k - size // 2, 0, max(0, h - size)))
        x0 = int(np.clip(cx * k - size // 2, 0, max(0, w - size)))
        out.append((y0, x0))
        score[max(0, cy - s):cy + s + 1, max(0, cx - s):cx + s + 1] = -1  # next one elsewhere
    return out


def make_visuals(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None, opts: Any = None) -> dict[str, Any]:
    """Thumbnails and worst-error crops as base64 JPEGs (small: safe to return from a worker)."""
    err = error_map(pred, gt)
    hm = heat(err, mask)
    h, w = err.shape
    size = int(np.clip(min(h, w) // 6, 32, 256))
    crops = []
    for y0, x0 in worst_windows(err, mask, size):
        sl = (slice(y0, y0 + size), slice(x0, x0 + size))
        z = CROP_VIEW / size

        def zoom(a: np.ndarray) -> np.ndarray:
            return cv2.resize(a, None, fx=z, fy=z, interpolation=cv2.INTER_NEAREST if z >= 1 else cv2.INTER_AREA)

        crops.append({"x": x0, "y": y0, "size": size, "mae": float(err[sl].mean()),
                      "pred": _jpeg_b64(zoom(pred[sl]), 92), "gt": _jpeg_b64(zoom(gt[sl]), 92),
                      "err": _jpeg_b64(zoom(hm[sl]), 92)})
    return {"pred": _jpeg_b64(_thumb(pred)), "gt": _jpeg_b64(_thumb(gt)), "err": _jpeg_b64(_thumb(hm)),
            "mae": float(err.mean()), "crops": crops}


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#eee}td.l,th.l{text-align:left}.card{background:#fff;border:1px solid #ddd;border-radius:6px;
padding:.8em;margin:1em 0}.row{display:flex;gap:.6em;flex-wrap:wrap;align-items:flex-start}
figure{margin:0}figcaption{font-size:.8em;color:#555}img{display:block;max-width:100%}
.bad{color:#b00}.note{font-size:.85em;color:#555;max-width:70em}.crop img{image-rendering:pixelated}
"""


def _fmt(v: Any, nd: int) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{nd}f}"


def _img(b64: str, cap: str, cls: str = "") -> str:
    return (f'<figure class="{cls}"><img src="data:image/jpeg;base64,{b64}" alt="{html.escape(cap)}">'
            f"<figcaption>{html.escape(cap)}</figcaption></figure>")


def render(report: dict[str, Any], sort_by: str = "psnr") -> str:
    """The page for a report dict as ``aifcli.metrics.report.build_report`` makes it."""
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>aif evaluate</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>aif evaluate</h1><p class='note'>predictions: {e(report['pred'])}<br>ground truth: "
             f"{e(report['gt'])}<br>pairing: {e(report['pairing'])}</p>"]
    lp = report.get("lpips_info") or {}
    cols = ["PSNR (dB) &uarr;", "SSIM &uarr;"] + (["LPIPS &darr;"] if report.get("lpips_available") else [])
    parts.append("<h2>Summary</h2><table><tr><th class='l'>group</th><th>images</th>"
                 + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
    for g in report["groups"] + [report["total"]]:
        cells = [_fmt(g["psnr"], 2), _fmt(g["ssim"], 4)] + ([_fmt(g.get("lpips"), 4)] if report.get("lpips_available") else [])
        parts.append(f"<tr><td class='l'>{e(g['group'])}</td><td>{g['n']}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    parts.append(f"<p class='note'>{e(report['conventions'])}</p>")
    if report.get("lpips_available"):
        parts.append(f"<p class='note'>LPIPS {e(str(lp.get('net')))} v0.1; backbone {e(str(lp.get('backbone')))}; "
                     f"heads {e(str(lp.get('heads')))}</p>")
    else:
        parts.append(f"<p class='note bad'>LPIPS unavailable: {e(str(report.get('lpips_reason') or 'not requested'))}</p>")
    opts = report.get("options", {})
    parts.append(f"<p class='note'>options: {e(', '.join(f'{k}={v}' for k, v in opts.items()))}. Heat map: mean absolute "
                 f"error per pixel, black 0 to white-hot {ERR_MAX:g} and above; grey = outside the mask.</p>")
    bad = [r for r in report["images"] if r["status"] != "done"]
    if bad:
        parts.append("<h2 class='bad'>Not scored</h2><ul>")
        for r in bad:
            parts.append(f"<li><b>{e(r['name'])}</b>: {e(r.get('error') or '')}</li>")
        parts.append("</ul>")
    done = [r for r in report["images"] if r["status"] == "done" and r.get("visuals")]
    key = {"psnr": lambda r: r["psnr"], "ssim": lambda r: r["ssim"],
           "lpips": lambda r: -(r.get("lpips") if r.get("lpips") is not None else 0.0)}[sort_by]
    done.sort(key=key)
    parts.append(f"<h2>Images, worst first (by {e(sort_by.upper())})</h2>")
    for r in done:
        v = r["visuals"]
        lps = f" &middot; LPIPS {_fmt(r.get('lpips'), 4)}" if r.get("lpips") is not None else ""
        parts.append(f"<div class='card'><h3>{e(r['name'])} <small>[{e(r['group'])}]</small></h3>"
                     f"<p>PSNR {_fmt(r['psnr'], 2)} dB &middot; SSIM {_fmt(r['ssim'], 4)}{lps} &middot; "
                     f"{r.get('width')}x{r.get('height')}</p><p class='note'>{e(str(r.get('pred')))}<br>{e(str(r.get('gt')))}</p>"
                     "<div class='row'>" + _img(v["pred"], "prediction") + _img(v["gt"], "ground truth")
                     + _img(v["err"], f"error (mean |diff| {v['mae']:.4f})") + "</div>")
        for c in v.get("crops", []):
            cap = f"x {c['x']}, y {c['y']}, {c['size']} px, mean |diff| {c['mae']:.4f}"
            parts.append("<div class='row'>" + _img(c["pred"], "prediction " + cap, "crop") + _img(c["gt"], "ground truth", "crop")
                         + _img(c["err"], "error", "crop") + "</div>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
