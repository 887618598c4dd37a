#!/usr/bin/env python3
"""Benchmark `aif stack` against align_image_stack + enfuse on synthetic brackets with ground truth.

For every bracket (``aifcli.synth.bursts.make_burst``, written as JPEG frames like a camera
would) it runs, each as its own process, timed wall clock end to end with peak RSS:
  * ``aif stack DIR -o OUT.tif``
  * ``align_image_stack -m -a al_ REF OTHERS...`` + ``enfuse --hard-mask --contrast-weight=1
    --exposure-weight=0 --saturation-weight=0 --contrast-window-size=5`` (the usual
    hugin/enfuse focus-stacking recipe; the reference frame N//2 is given first so both
    outputs share the ground truth's geometry). Marked unavailable when not installed.
and scores against the ground truth on one common mask (the peer's alpha, a 16 px border
removed): PSNR, SSIM (Wang 2004), LPIPS (when weights are found), halo-band error (RMSE in
a band of +-5 px around depth discontinuities of more than one frame), depth-map error in
frames (all pixels, and regions sharp only in the first or last frame), plus two reference
rows computed with the *true* alignment: the best single frame, and an oracle that picks
per 5x5 patch the frame closest to the ground truth (the ceiling of pure selection).

Memory mode (``--memory``) stacks a ping-pong sequence of one rendered bracket, upscaled to
the requested size, with 10 and 100 frames and reports the peak RSS of each.

    nice python bench/bench_stack.py --size 1024 --frames 10 --seeds 1 2 3
    nice python bench/bench_stack.py --size 1024 --frames 10 --seeds 1 2 --noise 4
    nice python bench/bench_stack.py --memory --mp 24 --memory-frames 10 100
    nice python bench/bench_stack.py --real          # wall time on ../shared/data/stacks
Prints a Markdown table; ``--md FILE`` also writes it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


CPU: list[float] = []  # CPU seconds (user + system) of every run_measured child, in order


def run_measured(cmd: list[str], cwd: str | None = None) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS in MB, exit code, stderr tail) of one child process.

    Peak RSS comes from GNU time when present: Linux keeps a process's maximum RSS across
    fork + exec, so measuring a child forked from this (large) process directly would
    report this process's size instead."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    full = [gnu_time, "-f", "AIFTIME %e %M %U %S", *cmd] if gnu_time else cmd
    t0 = time.perf_counter()
    p = subprocess.run(full, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    err = p.stderr.decode(errors="replace")
    rss = float("nan")
    for line in err.splitlines()[::-1]:
        if line.startswith("AIFTIME "):
            _, w, m, u, s_ = line.split()
            wall, rss = float(w), float(m) / 1024.0
            CPU.append(float(u) + float(s_))  # user + system seconds: less sensitive to a busy machine
            break
    return wall, rss, p.returncode, err[-400:]


def peer_available() -> bool:
    return bool(shutil.which("align_image_stack") and shutil.which("enfuse"))


def read_rgb(path: Path) -> tuple[np.ndarray, np.ndarray]:
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise RuntimeError(f"cannot read {path}")
    scale = 65535.0 if a.dtype == np.uint16 else 255.0
    alpha = (a[..., 3] > 0) if a.shape[2] == 4 else np.ones(a.shape[:2], bool)
    rgb = cv2.cvtColor(a[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32) / scale
    return rgb, alpha


def halo_band(focus_index: np.ndarray, radius: int = 5) -> np.ndarray:
    k = np.ones((3, 3), np.uint8)
    jump = (cv2.dilate(focus_index, k) - cv2.erode(focus_index, k)) > 1.0
    return cv2.dilate(jump.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0


def true_aligned(b) -> list[np.ndarray]:
    h, w = b.aif.shape[:2]
    return [cv2.warpPerspective(f, H, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT) for f, H in zip(b.frames, b.homographies)]


def oracle(aligned: list[np.ndarray], gt: np.ndarray, patch: int = 5) -> np.ndarray:
    best, out = None, None
    for f in aligned:
        e = cv2.boxFilter(((f - gt) ** 2).sum(axis=2), -1, (patch, patch))
        if best is None:
            best, out = e, f.copy()
        else:
            m = e < best
            best = np.where(m, e, best)
            out[m] = f[m]
    return out


def score(img: np.ndarray, gt: np.ndarray, mask: np.ndarray, band: np.ndarray, lp) -> dict:
    from aifcli.metrics import psnr, ssim

    d = {"psnr": psnr(img, gt, mask=mask), "ssim": ssim(img, gt, mask=mask)}
    bm = band & mask
    d["halo_rmse"] = float(np.sqrt(((img - gt) ** 2)[bm].mean())) if bm.any() else float("nan")
    if lp is not None:
        try:
            d["lpips"] = float(lp.distance(img, gt, mask=mask))
        except Exception as e:  # LPIPS is optional; never fail the benchmark for it
            d["lpips_error"] = str(e)
    return d


def get_lpips():
    try:
        from aifcli.metrics.lpips import get_lpips as g

        return g("alex"), ""
    except Exception as e:
        return None, f"{e.__class__.__name__}: {e}"


def bench_quality(args) -> list[dict]:
    from aifcli.synth.bursts import burst_files, make_burst

    lp, why = get_lpips()
    if lp is None:
        print(f"LPIPS unavailable: {why}", file=sys.stderr)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bench_stack_"))
    try:
        for seed in args.seeds:
            t0 = time.perf_counter()
            b = make_burst(seed, size=args.size, frames=args.frames, noise=args.noise)
            d = work / f"s{seed}"
            for name, data in burst_files(b, "jpeg").items():
                (d / name).parent.mkdir(parents=True, exist_ok=True)
                (d / name).write_bytes(data)
            frames = sorted(d.glob("frame_*.jpg"))
            h, w = b.aif.shape[:2]
            n = len(frames)
            print(f"seed {seed}: {w}x{h}, {n} frames, rendered in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            band = halo_band(b.focus_index)
            res: dict = {"seed": seed, "size": f"{w}x{h}", "frames": n, "noise": args.noise}
            out = work / f"ours_{seed}.tif"
            CPU.clear()
            wall, rss, rc, err = run_measured([sys.executable, "-m", "aifcli", "stack", str(d), "-o", str(out),
                                               "--overwrite", "--quiet"])
            if rc != 0:
                raise RuntimeError(f"aif stack failed: {err}")
            ours, _ = read_rgb(out)
            mask = np.zeros((h, w), bool)
            mask[16:-16, 16:-16] = True
            peer = None
            if args.peer and peer_available():
                ref = n // 2
                order = [frames[ref]] + [f for i, f in enumerate(frames) if i != ref]
                pw = work / f"peer_{seed}"
                pw.mkdir()
                w1, r1, rc1, e1 = run_measured(["align_image_stack", "-m", "-a", "al_", *map(str, order)], cwd=str(pw))
                als = sorted(pw.glob("al_*.tif"))
                w2, r2, rc2, e2 = run_measured(["enfuse", "--exposure-weight=0", "--saturation-weight=0",
                                                "--contrast-weight=1", "--hard-mask", "--contrast-window-size=5",
                                                "-o", "enfuse.tif", *map(str, als)], cwd=str(pw))
                if rc1 == 0 and rc2 == 0:
                    peer, alpha = read_rgb(pw / "enfuse.tif")
                    mask &= alpha
                    res["peer_seconds"], res["peer_rss_mb"] = w1 + w2, max(r1, r2)
                else:
                    res["peer_error"] = (e1 or "") + (e2 or "")
            res["ours_seconds"], res["ours_rss_mb"] = wall, rss
            if CPU:
                res["ours_cpu"] = CPU[0]
                res["peer_cpu"] = sum(CPU[1:3]) if len(CPU) >= 3 else float("nan")
            CPU.clear()
            res["ours"] = score(ours, b.aif, mask, band, lp)
            if peer is not None:
                res["enfuse"] = score(peer, b.aif, mask, band, lp)
            # reference rows see what the stackers see: the decoded JPEG frames, warped with
            # the true transforms
            from aifcli.io import read_image

            b.frames = [read_image(f).pixels for f in frames]
            al = true_aligned(b)
            if args.peer and peer_available():
                # the same enfuse on frames aligned with the *true* transforms: separates the
                # peer's fusion from align_image_stack's registration
                import tifffile

                tw = work / f"true_{seed}"
                tw.mkdir()
                for i, f in enumerate(al):
                    q = (np.clip(f, 0, 1) * 65535 + 0.5).astype(np.uint16)
                    tifffile.imwrite(tw / f"t_{i:03d}.tif", q, photometric="rgb")
                w3, r3, rc3, _ = run_measured(["enfuse", "--exposure-weight=0", "--saturation-weight=0",
                                                "--contrast-weight=1", "--hard-mask", "--contrast-window-size=5",
                                                "-o", "enfuse.tif", *map(str, sorted(tw.glob("t_*.tif")))], cwd=str(tw))
                if rc3 == 0:
                    res["enfuse_true"] = score(read_rgb(tw / "enfuse.tif")[0], b.aif, mask, band, lp)
            singles = [score(f, b.aif, mask, band, None) for f in al]
            res["best_single"] = max(singles, key=lambda s: s["psnr"])
            res["oracle_5x5"] = score(oracle(al, b.aif), b.aif, mask, band, None)
            # depth map of ours, against the fractional focus index
            dep = cv2.imread(str(out.with_name(out.stem + "_depth.png")), cv2.IMREAD_UNCHANGED).astype(np.float32)
            dep = dep / 65535.0 * (n - 1)
            err = np.abs(dep - b.focus_index)[mask]
            ends = ((b.focus_index < 0.5) | (b.focus_index > n - 1.5))[mask]
            res["depth_mae"] = float(err.mean())
            res["depth_mae_ends"] = float(err[ends].mean()) if ends.any() else float("nan")
            rows.append(res)
            print(json.dumps(res, default=float), file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)
    return rows


def quality_table(rows: list[dict], peer_note: str) -> str:
    def f(x, k, fmt="{:.2f}"):
        v = x.get(k) if x else None
        return fmt.format(v) if isinstance(v, (int, float)) and v == v else "-"

    lines = ["| seed | size | frames | noise | method | PSNR dB | SSIM | LPIPS | halo-band RMSE | wall s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name, key, sec, rss in (("aif stack", "ours", "ours_seconds", "ours_rss_mb"),
                                    ("align_image_stack + enfuse", "enfuse", "peer_seconds", "peer_rss_mb"),
                                    ("enfuse on truly aligned frames", "enfuse_true", None, None),
                                    ("best single frame (true alignment)", "best_single", None, None),
                                    ("oracle 5x5 selection (ceiling)", "oracle_5x5", None, None)):
            s = r.get(key)
            if s is None:
                if key == "enfuse_true":
                    continue
                if key == "enfuse":
                    lines.append(f"| {r['seed']} | {r['size']} | {r['frames']} | {r['noise']} | {name} | "
                                 f"unavailable ({peer_note or r.get('peer_error', '')[:60]}) | | | | | |")
                continue
            lines.append(f"| {r['seed']} | {r['size']} | {r['frames']} | {r['noise']} | {name} | {f(s, 'psnr')} | "
                         f"{f(s, 'ssim', '{:.4f}')} | {f(s, 'lpips', '{:.4f}')} | {f(s, 'halo_rmse', '{:.4f}')} | "
                         f"{f(r, sec) if sec else ''} | {f(r, rss, '{:.0f}') if rss else ''} |")
    out = "\n".join(lines)
    ours = [r["ours"] for r in rows]
    summ = [f"\nMeans over {len(rows)} bracket(s): aif stack PSNR {np.mean([o['psnr'] for o in ours]):.2f} dB, "
            f"depth MAE {np.mean([r['depth_mae'] for r in rows]):.3f} frames "
            f"(first/last-frame regions {np.nanmean([r['depth_mae_ends'] for r in rows]):.3f})."]
    peers = [r for r in rows if "enfuse" in r]
    if peers:
        dp = [r["ours"]["psnr"] - r["enfuse"]["psnr"] for r in peers]
        halo = [1 - (r["ours"]["halo_rmse"] / r["enfuse"]["halo_rmse"]) ** 2 for r in peers]
        sp = [r["peer_seconds"] / r["ours_seconds"] for r in peers]
        summ.append(f"vs enfuse: PSNR {np.mean(dp):+.2f} dB mean (min {min(dp):+.2f}), halo-band squared error "
                    f"{-100 * np.mean(halo):+.0f}% (negative = lower), speed {np.mean(sp):.2f}x enfuse's wall time ratio "
                    f"(enfuse s / aif s).")
        cp = [r for r in peers if "ours_cpu" in r]
        if cp:
            summ.append("CPU seconds (user + system): " + "; ".join(
                f"seed {r['seed']}: aif {r['ours_cpu']:.1f} vs peer {r['peer_cpu']:.1f} "
                f"({r['peer_cpu'] / r['ours_cpu']:.2f}x)" for r in cp) + ".")
        tr = [r for r in peers if "enfuse_true" in r]
        if tr:
            dt = [r["ours"]["psnr"] - r["enfuse_true"]["psnr"] for r in tr]
            ht = [1 - (r["ours"]["halo_rmse"] / r["enfuse_true"]["halo_rmse"]) ** 2 for r in tr]
            summ.append(f"vs enfuse on truly aligned frames: PSNR {np.mean(dt):+.2f} dB mean (min {min(dt):+.2f}), "
                        f"halo-band squared error {-100 * np.mean(ht):+.0f}%.")
        if all("lpips" in r["ours"] and "lpips" in r["enfuse"] for r in peers):
            summ.append(f"LPIPS: aif {np.mean([r['ours']['lpips'] for r in peers]):.4f} vs enfuse "
                        f"{np.mean([r['enfuse']['lpips'] for r in peers]):.4f}.")
    return out + "\n" + "\n".join(summ)


def bench_memory(args) -> str:
    from aifcli.synth.bursts import make_burst
    from aifcli.io import encode_image

    b = make_burst(args.seeds[0], size=1024, frames=10, noise=1.0)
    w = int(round(np.sqrt(args.mp * 1e6 * 1.5)))
    h = int(round(w / 1.5))
    work = Path(tempfile.mkdtemp(prefix="bench_stack_mem_"))
    lines = ["| frames | size | wall s | peak RSS MB |", "|---|---|---|---|"]
    try:
        big = work / "big"
        big.mkdir()
        for i, f in enumerate(b.frames):
            up = cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC)
            (big / f"u_{i:02d}.jpg").write_bytes(encode_image(np.clip(up, 0, 1), "jpeg", quality=92))
        src = sorted(big.glob("u_*.jpg"))
        pingpong = src + src[::-1]
        rss = {}
        for n in args.memory_frames:
            d = work / f"n{n}"
            d.mkdir()
            for k in range(n):
                os.link(pingpong[k % len(pingpong)], d / f"f_{k:04d}.jpg")
            wall, peak, rc, err = run_measured([sys.executable, "-m", "aifcli", "stack", str(d), "-o",
                                                str(work / f"out{n}.tif"), "--quiet"])
            if rc != 0:
                raise RuntimeError(f"aif stack failed: {err}")
            rss[n] = peak
            lines.append(f"| {n} | {w}x{h} ({args.mp} MP) | {wall:.1f} | {peak:.0f} |")
            print(lines[-1], file=sys.stderr)
        ns = sorted(rss)
        lines.append(f"\nPeak RSS ratio {ns[-1]} vs {ns[0]} frames: {rss[ns[-1]] / rss[ns[0]]:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "\n".join(lines)


def bench_real(args) -> str:
    """Wall time and peak RSS on the real brackets, aif stack vs align_image_stack + enfuse."""
    stacks = ROOT.parent / "shared" / "data" / "stacks"
    if not stacks.is_dir():
        return f"real brackets not found at {stacks}"
    from aifcli.io import is_image_file

    work = Path(tempfile.mkdtemp(prefix="bench_stack_real_"))
    lines = ["| bracket | frames | aif stack s | aif RSS MB | align_image_stack + enfuse s | peer RSS MB | speed ratio |",
             "|---|---|---|---|---|---|---|"]
    try:
        for d in sorted(p for p in stacks.iterdir() if p.is_dir()):
            frames = sorted(f for f in d.iterdir() if is_image_file(f))
            n = len(frames)
            wall, rss, rc, err = run_measured([sys.executable, "-m", "aifcli", "stack", str(d), "-o",
                                               str(work / f"{d.name}.tif"), "--quiet"])
            if rc != 0:
                raise RuntimeError(f"aif stack failed on {d}: {err}")
            peer = "unavailable (not installed)"
            pr = ratio = ""
            if args.peer and peer_available():
                pw = work / f"peer_{d.name}"
                pw.mkdir()
                order = [frames[n // 2]] + [f for i, f in enumerate(frames) if i != n // 2]
                w1, r1, rc1, _ = run_measured(["align_image_stack", "-m", "-a", "al_", *map(str, order)], cwd=str(pw))
                w2, r2, rc2, _ = run_measured(["enfuse", "--exposure-weight=0", "--saturation-weight=0",
                                                "--contrast-weight=1", "--hard-mask", "--contrast-window-size=5",
                                                "-o", "enfuse.tif", *map(str, sorted(pw.glob("al_*.tif")))], cwd=str(pw))
                if rc1 == 0 and rc2 == 0:
                    peer, pr, ratio = f"{w1 + w2:.1f}", f"{max(r1, r2):.0f}", f"{(w1 + w2) / wall:.2f}x"
                else:
                    peer = "failed"
            lines.append(f"| {d.name} | {n} | {wall:.1f} | {rss:.0f} | {peer} | {pr} | {ratio} |")
            print(lines[-1], file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1024", help="synthetic width: 512, 1024, ... or full (the preset's 24 MP)")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--noise", type=float, default=1.0, help="sensor noise scale of aif synth (1 = normal ISO)")
    ap.add_argument("--no-peer", dest="peer", action="store_false", help="skip align_image_stack + enfuse")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--memory", action="store_true", help="memory mode (see the module doc)")
    ap.add_argument("--mp", type=float, default=24.0, help="megapixels in memory mode")
    ap.add_argument("--memory-frames", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--real", action="store_true", help="speed/memory on ../shared/data/stacks vs the peer")
    ap.add_argument("--md", type=Path, help="also write the Markdown table here")
    args = ap.parse_args()
    import platform

    head = (f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; "
            f"command: {' '.join(sys.argv)}")
    if args.memory:
        text = head + "\n\n" + bench_memory(args)
    elif args.real:
        text = head + "\n\n" + bench_real(args)
    else:
        note = "" if peer_available() else "align_image_stack/enfuse not installed"
        rows = bench_quality(args)
        text = head + "\n\n" + quality_table(rows, note)
    print(text)
    if args.md:
        args.md.write_text(text + "\n")


if __name__ == "__main__":
    main()
