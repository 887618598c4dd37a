"""Batch engine: discovery of bursts and pairs, and runs with local processes and on dask."""
from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path

import cloudpickle
import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from aifcli.batch import WorkItem, discover_bursts, discover_pairs, run_batch
from aifcli.errors import InputError
from aifcli.io import read_image, write_image

# Workers (loky, dask) must be able to unpickle this test module's item function.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _jpeg(path: Path, seed: int, when: datetime | None = None, make="Acme", model="Cam 1",
          focal: float | None = None, focal35: int | None = None, size=(48, 64)) -> Path:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    ex = PILImage.Exif()
    ex[0x010F], ex[0x0110] = make, model
    sub = ex.get_ifd(0x8769)
    if when is not None:
        sub[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
        sub[0x9291] = f"{when.microsecond // 1000:03d}"
    if focal:
        sub[0x920A] = focal
    if focal35:
        sub[0xA405] = focal35
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(a).save(path, exif=ex.tobytes(), quality=92)
    return path


T0 = datetime(2026, 5, 1, 12, 0, 0)


def test_bursts_one_subfolder_each(tmp_path):
    for b, n in (("a", 3), ("b", 5)):
        for i in range(n):
            _jpeg(tmp_path / b / f"f_{i:03d}.jpg", i)
    (tmp_path / "a" / "gt").mkdir()
    _jpeg(tmp_path / "a" / "gt" / "aif.jpg", 99)  # ground truth is never a frame
    bursts = discover_bursts(tmp_path)
    assert [(b.name, len(b.frames)) for b in bursts] == [("a", 3), ("b", 5)]


def test_flat_folder_split_by_capture_time(tmp_path):
    files = []
    for i in range(4):
        files.append(_jpeg(tmp_path / f"IMG_{i:04d}.jpg", i, T0 + timedelta(seconds=2 * i)))
    for i in range(4, 9):  # same camera and numbering, ten minutes later
        files.append(_jpeg(tmp_path / f"IMG_{i:04d}.jpg", i, T0 + timedelta(minutes=10, seconds=i)))
    bursts = discover_bursts(tmp_path)
    assert [len(b.frames) for b in bursts] == [4, 5]
    assert bursts[0].frames == files[:4]


def test_flat_folder_split_by_name_and_camera(tmp_path):
    for i in range(3):
        _jpeg(tmp_path / f"pcb_{i:03d}.jpg", i, make="A", model="1")
        _jpeg(tmp_path / f"DSC_{i + 10:04d}.jpg", i, make="B", model="2")
    bursts = discover_bursts(tmp_path)
    assert sorted(len(b.frames) for b in bursts) == [3, 3]
    for b in bursts:
        assert len({f.name[:3] for f in b.frames}) == 1


def test_real_stacks_mixed_flat_folder(shared_data, tmp_path):
    stacks = shared_data / "stacks"
    planned = {b.name: len(b.frames) for b in discover_bursts(stacks)}
    assert planned == {"dsc28": 28, "pcb10": 10, "pcb7": 7}
    for name in ("pcb7", "dsc28"):
        for f in (stacks / name).iterdir():
            shutil.copy(f, tmp_path / f.name)
    bursts = discover_bursts(tmp_path)
    got = sorted((len(b.frames), sorted(f.name for f in b.frames)) for b in bursts)
    assert got == sorted((len(list((stacks / n).iterdir())), sorted(f.name for f in (stacks / n).iterdir()))
                         for n in ("pcb7", "dsc28"))


def test_empty_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no images"):
        discover_bursts(tmp_path)
    with pytest.raises(InputError, match="no main"):
        discover_pairs(tmp_path)


def test_pairs_scene_folders_patterns_time_and_manifest(tmp_path):
    # scene folders, synth style: two mains share one ultra-wide
    s = tmp_path / "scenes"
    for k in range(2):
        for n in ("main_near", "main_far", "ultrawide"):
            _jpeg(s / f"scene_{k:04d}" / f"{n}.jpg", k)
    pairs = discover_pairs(s)
    assert sorted(p.name for p in pairs) == ["scene_0000/main_far", "scene_0000/main_near",
                                             "scene_0001/main_far", "scene_0001/main_near"]
    assert all(p.ultrawide.name == "ultrawide.jpg" for p in pairs)
    # name patterns in a flat folder
    f = tmp_path / "flat"
    for k in ("x", "y"):
        _jpeg(f / f"{k}_main.jpg", 1)
        _jpeg(f / f"{k}_ultrawide.jpg", 2)
    assert sorted((p.name, p.main.name, p.ultrawide.name) for p in discover_pairs(f)) == [
        ("x", "x_main.jpg", "x_ultrawide.jpg"), ("y", "y_main.jpg", "y_ultrawide.jpg")]
    # phone files paired by capture time and EXIF roles
    t = tmp_path / "phone"
    for k in range(2):
        when = T0 + timedelta(minutes=k)
        _jpeg(t / f"IMG_{2 * k:04d}.jpg", k, when, "Apple", "iPhone 13", 5.1, 26)
        _jpeg(t / f"IMG_{2 * k + 1:04d}.jpg", k, when + timedelta(milliseconds=30), "Apple", "iPhone 13", 1.54, 13)
    pairs = discover_pairs(t)
    assert [(p.main.name, p.ultrawide.name) for p in pairs] == [("IMG_0000.jpg", "IMG_0001.jpg"),
                                                                ("IMG_0002.jpg", "IMG_0003.jpg")]
    # manifest
    m = tmp_path / "pairs.csv"
    m.write_text("name,main,ultrawide\nq,flat/x_main.jpg,flat/x_ultrawide.jpg\n")
    (p,) = discover_pairs(tmp_path, manifest=m)
    assert p.name == "q" and p.main == tmp_path / "flat" / "x_main.jpg"


# --- the runner -------------------------------------------------------------------------
def halve(item: WorkItem) -> dict:
    """A real item function: read, downscale 2x, write (what a worker on a cluster would do)."""
    img = read_image(item.inputs[0])
    small = cv2.resize(img.pixels, (img.width // 2, img.height // 2), interpolation=cv2.INTER_AREA)
    write_image(item.outputs[0], small, meta=img.meta, bit_depth=16, overwrite=item.params.get("overwrite", False))
    return {"size": [img.height, img.width]}


def _make_batch(tmp_path: Path, n: int = 5, corrupt: int = 2) -> tuple[list[WorkItem], Path]:
    src, out = tmp_path / "in", tmp_path / "out"
    items = []
    for i in range(n):
        p = _jpeg(src / f"im{i}.jpg", i, size=(40, 60))
        if i == corrupt:
            p.write_bytes(p.read_bytes()[:200])  # truncated
        items.append(WorkItem(f"im{i}", [str(p)], [str(out / f"im{i}.png")]))
    return items, out


def _check(items, report, corrupt=2):
    assert report.exit_code == 1
    assert [r.status for r in report.results] == ["failed" if i == corrupt else "done" for i in range(len(items))]
    bad = report.results[corrupt]
    assert "im2.jpg" in bad.error and "truncated" in bad.error
    for i, it in enumerate(items):
        out = Path(it.outputs[0])
        if i == corrupt:
            assert not out.exists()
            continue
        got = read_image(out).pixels
        src = read_image(it.inputs[0]).pixels
        ref = cv2.resize(src, (30, 20), interpolation=cv2.INTER_AREA)
        assert got.shape == (20, 30, 3) and np.abs(got - ref).max() < 1e-4


def test_runner_local_processes_with_a_corrupt_item(tmp_path):
    items, out = _make_batch(tmp_path)
    log = out / "aif-log.json"
    report = run_batch(items, halve, jobs=2, progress=False, log_path=log, command="test")
    assert report.backend.startswith("joblib")
    _check(items, report)
    data = json.loads(log.read_text())
    assert data["failed"] == 1 and data["done"] == 4 and len(data["items"]) == 5
    assert all(r["seconds"] >= 0 for r in data["items"])
    # resume: only the missing item runs again (and fails again), the others are skipped
    again = run_batch(items, halve, jobs=2, progress=False, skip_existing=True)
    assert [r.status for r in again.results] == ["skipped", "skipped", "failed", "skipped", "skipped"]


def test_runner_in_process(tmp_path):
    items, _ = _make_batch(tmp_path)
    report = run_batch(items, halve, jobs=1, progress=False)
    _check(items, report)


def test_runner_on_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    items, _ = _make_batch(tmp_path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        report = run_batch(items, halve, scheduler=cluster.scheduler_address, progress=False)
    assert report.backend.startswith("dask")
    _check(items, report)


# --- a real subcommand's batch, locally and on a dask cluster ---------------------------------
def _aif(*args: str) -> "subprocess.CompletedProcess":
    import subprocess

    return subprocess.run([sys.executable, "-m", "aifcli", *args], capture_output=True, text=True, timeout=600)


def test_stack_batch_locally_and_on_dask_with_a_corrupt_bracket(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    src = tmp_path / "brackets"
    r = _aif("synth", "bursts", str(src), "--count", "3", "--frames", "3", "--size", "160", "--seed", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    for f in (src / "burst_0001").glob("frame_*"):
        f.write_bytes(f.read_bytes()[:300])  # every frame of one bracket truncated
    local, remote = tmp_path / "local", tmp_path / "remote"
    r = _aif("stack", str(src), "-o", str(local), "--jobs", "2", "--format", "png", "--json")
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    assert summary["failed"] == 1 and summary["done"] == 2
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        r = _aif("stack", str(src), "-o", str(remote), "--scheduler", cluster.scheduler_address, "--format", "png")
    assert r.returncode == 1, r.stderr
    assert "burst_0001" in r.stderr and "Traceback" not in r.stderr
    for name in ("burst_0000", "burst_0002"):
        a, b = read_image(local / f"{name}.png").pixels, read_image(remote / f"{name}.png").pixels
        gt = read_image(src / name / "gt" / "aif.png").pixels
        assert a.shape == gt.shape and np.array_equal(a, b)  # same result wherever it ran
        assert float(np.mean(np.abs(a - gt))) < 0.05  # and it is the scene, not garbage
    assert not list(local.glob("burst_0001.*")) and not list(remote.glob("burst_0001.*"))
    log = json.loads((remote / "aif-log.json").read_text())
    assert log["backend"].startswith("dask") and log["failed"] == 1
