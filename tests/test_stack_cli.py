"""aif stack on files: plan (--dry-run), one bracket, batches, bad brackets, RAW DNG, align-only."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from aifcli.cli.app import app
from aifcli.stack.synthetic import make_bracket

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["stack", *map(str, args)])


def write_bracket(folder: Path, n: int = 6, seed: int = 0, prefix: str = "f", size=(120, 160), ext=".png") -> object:
    b = make_bracket(size[0], size[1], n, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(b.frames):
        q = (np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8)
        cv2.imwrite(str(folder / f"{prefix}_{i:03d}{ext}"), cv2.cvtColor(q, cv2.COLOR_RGB2BGR))
    return b


def test_dry_run_plans_the_real_brackets(shared_data):
    r = runner.invoke(app, ["stack", "--dry-run", "--json", str(shared_data / "stacks")])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)["plan"]
    assert sorted(p["frames"] for p in plan) == [7, 10, 28]
    assert {p["name"] for p in plan} == {"pcb7", "pcb10", "dsc28"}


def test_dry_run_splits_a_flat_folder_of_mixed_brackets(shared_data, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for d in ("pcb7", "dsc28"):
        for f in (shared_data / "stacks" / d).iterdir():
            shutil.copy(f, flat / f.name)
    r = runner.invoke(app, ["stack", "--dry-run", "--json", str(flat)])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)["plan"]
    groups = sorted((p["frames"], {Path(i).name[:3] for i in p["inputs"]}) for p in plan)
    assert groups == [(7, {"pcb"}), (28, {"DSC"})]


def test_one_bracket_end_to_end(tmp_path):
    b = write_bracket(tmp_path / "br")
    out = tmp_path / "out" / "stacked.tif"
    r = run(tmp_path / "br", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["frames_used"] == 6 and info["reference"] == "f_003.png"
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16 and img.shape == (120, 160, 3)
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 65535
    c = (slice(12, -12), slice(12, -12))
    mse = float(((rgb[c] - b.aif[c]) ** 2).mean())
    assert 10 * np.log10(1 / mse) > 28
    depth = cv2.imread(str(tmp_path / "out" / "stacked_depth.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (120, 160)
    # near (frame 0) is dark, far (last frame) is bright
    assert depth[b.focus_index == 0].mean() < depth[b.focus_index == 5].mean()
    for suffix in ("_confidence.png", "_coverage.png"):
        assert (tmp_path / "out" / f"stacked{suffix}").is_file()
    # outputs exist: refuse without --overwrite (exit 2, one line naming the file)
    r2 = run(tmp_path / "br", "-o", out)
    assert r2.exit_code == 2 and "stacked.tif" in r2.output and "Traceback" not in r2.output
    assert run(tmp_path / "br", "-o", out, "--overwrite", "--quiet").exit_code == 0


def test_batch_with_a_bad_bracket_exits_1_and_logs(tmp_path):
    root = tmp_path / "brackets"
    write_bracket(root / "good", seed=1)
    write_bracket(root / "also_good", seed=2, n=4)
    (root / "single").mkdir()
    shutil.copy(root / "good" / "f_000.png", root / "single" / "only.png")
    out = tmp_path / "out"
    r = run(root, "-o", out, "--jobs", "1", "--format", "png")
    assert r.exit_code == 1, r.output
    log = json.loads((out / "aif-log.json").read_text())
    status = {i["name"]: i["status"] for i in log["items"]}
    assert status == {"good": "done", "also_good": "done", "single": "failed"}
    err = next(i["error"] for i in log["items"] if i["name"] == "single")
    assert "only 1 frame" in err
    assert (out / "good.png").is_file() and (out / "also_good_depth.png").is_file()
    cov = next(i["info"]["coverage"] for i in log["items"] if i["name"] == "good")
    assert set(cov["contribution"]) == {str(k) for k in range(6)}
    # resume: nothing left to do for the good ones
    r2 = run(root, "-o", out, "--format", "png", "--skip-existing", "--json")
    d = json.loads(r2.stdout)
    assert d["skipped"] == 2 and d["failed"] == 1


def test_corrupt_and_odd_size_frames_are_left_out(tmp_path):
    br = tmp_path / "br"
    write_bracket(br, n=6)
    (br / "f_002.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    cv2.imwrite(str(br / "f_004.png"), np.zeros((50, 70, 3), np.uint8))
    r = run(br, "-o", tmp_path / "o.png", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["frames_used"] == 4
    assert set(info["left_out"]) == {"f_002.png", "f_004.png"}
    assert "size" in info["left_out"]["f_004.png"]


def test_single_frame_and_missing_input_are_usage_errors(tmp_path):
    br = tmp_path / "one"
    br.mkdir()
    cv2.imwrite(str(br / "a.png"), np.zeros((20, 20, 3), np.uint8))
    r = run(br, "-o", tmp_path / "x.tif")
    assert r.exit_code == 2 and "needs 2 or more" in r.output and "Traceback" not in r.output
    r = run(tmp_path / "nope", "-o", tmp_path / "x.tif")
    assert r.exit_code == 2 and "nope" in r.output
    r = run(br, "-o", tmp_path / "x.tif", "--prefer", "middle")
    assert r.exit_code == 2


def test_files_and_align_only(tmp_path):
    b = write_bracket(tmp_path / "br", n=4)
    files = sorted((tmp_path / "br").glob("*.png"))
    r = run(*files, "-o", tmp_path / "al", "--align-only", "--json")
    assert r.exit_code == 0, r.output
    aligned = sorted((tmp_path / "al" / "br").glob("aligned_*.tif"))
    assert len(aligned) == 4
    assert cv2.imread(str(aligned[0]), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    frames = json.loads(r.stdout)["alignment"]["frames"]
    for f, M in zip(frames, b.transforms):
        assert f["ok"] and f["magnification"] == pytest.approx(1 / M[0, 0], abs=3e-3)  # 0.2 px at 160 px


def _write_dng(path: Path, rgb: np.ndarray) -> None:
    from pidng.core import RAW2DNG
    from pidng.defs import CFAPattern, DNGVersion, Orientation, PhotometricInterpretation
    from pidng.dng import DNGTags, Tag

    h, w = rgb.shape[:2]
    bayer = np.zeros((h, w), np.uint16)  # RGGB mosaic of linear values, 12-bit
    v = np.clip(rgb, 0, 1) * 4000 + 64
    bayer[0::2, 0::2] = v[0::2, 0::2, 0]
    bayer[0::2, 1::2] = v[0::2, 1::2, 1]
    bayer[1::2, 0::2] = v[1::2, 0::2, 1]
    bayer[1::2, 1::2] = v[1::2, 1::2, 2]
    t = DNGTags()
    for tag, val in ((Tag.ImageWidth, w), (Tag.ImageLength, h), (Tag.TileWidth, w), (Tag.TileLength, h),
                     (Tag.Orientation, Orientation.Horizontal),
                     (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
                     (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 12), (Tag.CFARepeatPatternDim, [2, 2]),
                     (Tag.CFAPattern, CFAPattern.RGGB), (Tag.BlackLevel, 64), (Tag.WhiteLevel, 4095),
                     (Tag.ColorMatrix1, [[10000, 10000], [0, 10000], [0, 10000], [0, 10000], [10000, 10000],
                                         [0, 10000], [0, 10000], [0, 10000], [10000, 10000]]),
                     (Tag.CalibrationIlluminant1, 21), (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
                     (Tag.Make, "aif"), (Tag.Model, "test raw"), (Tag.DNGVersion, DNGVersion.V1_4),
                     (Tag.DNGBackwardVersion, DNGVersion.V1_2)):
        t.set(tag, val)
    r = RAW2DNG()
    r.options(t, path=str(path.parent), compress=False)
    r.convert(bayer, filename=path.stem)


def test_raw_dng_bracket_gives_16_bit_tiff(tmp_path):
    pytest.importorskip("pidng")
    b = make_bracket(96, 128, 4, breathing=0.0, shake=0.0, flicker=0.0, seed=6)
    br = tmp_path / "raw"
    br.mkdir()
    for i, f in enumerate(b.frames):
        _write_dng(br / f"shot_{i:02d}.dng", f ** 2.2)  # linear light
    assert len(list(br.glob("*.dng"))) == 4
    r = run(br, "-o", tmp_path / "raw.tif", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["frames_used"] == 4
    img = cv2.imread(str(tmp_path / "raw.tif"), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16 and img.shape[:2] == (96, 128)
    assert len(np.unique(img)) > 256  # genuinely more than 8 bits of levels
    # sharper than every single decoded frame: the fused output has more fine detail
    from aifcli.io import read_image

    lap = lambda x: float(np.abs(cv2.Laplacian(x, cv2.CV_32F)).mean())  # noqa: E731
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32) / 65535
    singles = []
    for p in sorted(br.glob("*.dng")):
        fr = read_image(p).pixels
        singles.append(lap(cv2.cvtColor(fr ** (1 / 2.2), cv2.COLOR_RGB2GRAY)))
    assert lap(g) > max(singles)
