"""`aif synth` outputs: layout, EXIF, discovery, presets, determinism, DNG round trip, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from aifcli.cli.app import app
from aifcli.synth.bursts import burst_files, make_burst
from aifcli.synth.pairs import make_pair_scene, pair_scene_files

runner = CliRunner()


def test_same_seed_same_bytes_and_other_seed_differs():
    a = pair_scene_files(make_pair_scene(3, "256"))
    b = pair_scene_files(make_pair_scene(3, "256"))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], k
    c = pair_scene_files(make_pair_scene(4, "256"))
    assert c["main_near.jpg"] != a["main_near.jpg"]
    # scene k is the same whether made alone or as part of a run
    d = pair_scene_files(make_pair_scene(3, "256", index=1))
    assert d["main_near.jpg"] != a["main_near.jpg"]
    b1 = burst_files(make_burst(2, "256", 4), "jpeg")
    b2 = burst_files(make_burst(2, "256", 4), "jpeg")
    assert b1 == b2


def test_dng_round_trip_through_rawpy_is_bit_exact(tmp_path):
    rawpy = pytest.importorskip("rawpy")
    b = make_burst(1, "256", 3, raw=True)
    files = burst_files(b, "dng")
    for i in range(3):
        p = tmp_path / f"frame_{i:03d}.dng"
        p.write_bytes(files[f"frame_{i:03d}.dng"])
        with rawpy.imread(str(p)) as r:
            assert np.array_equal(r.raw_image, b.raw[i])
            assert r.raw_pattern.tolist() == [[0, 1], [3, 2]]
    # and aif reads it as a linear RAW image with the camera's EXIF
    from aifcli.io import read_image
    from aifcli.io.exif import camera_summary

    im = read_image(tmp_path / "frame_001.dng")
    assert im.meta.linear and im.pixels.shape == (b.aif.shape[0], b.aif.shape[1], 3)
    s = camera_summary(im.meta.exif)
    assert s["focal_mm"] == 60.0 and s["f_number"] == 5.6 and s["time"] is not None


def test_pairs_cli_layout_exif_discovery_and_presets(tmp_path):
    from aifcli.batch import discover_pairs
    from aifcli.io.exif import camera_summary, read_exif_tags
    from aifcli.presets import match_file

    out = tmp_path / "pairs"
    r = runner.invoke(app, ["synth", "pairs", str(out), "--count", "2", "--seed", "7", "--size", "256", "-q"])
    assert r.exit_code == 0, r.output
    s0 = out / "scene_0000"
    for f in ("main_near.jpg", "main_far.jpg", "ultrawide.jpg", "gt/aif.png", "gt/depth.npy", "gt/disparity.npy",
              "gt/occlusion.png", "gt/homography.json", "gt/uw_map.npy", "gt/flow.npy", "gt/infocus_near.png",
              "gt/infocus_far.png", "gt/metadata.json"):
        assert (s0 / f).is_file(), f
    pairs = discover_pairs(out)
    assert sorted(p.name for p in pairs) == ["scene_0000/main_far", "scene_0000/main_near",
                                             "scene_0001/main_far", "scene_0001/main_near"]
    roles = {f: match_file(s0 / f) for f in ("main_near.jpg", "main_far.jpg", "ultrawide.jpg")}
    assert all(m.preset.name == "generic-phone" and m.exact for m in roles.values())
    assert roles["main_near.jpg"].role == "main" and roles["ultrawide.jpg"].role == "ultrawide"
    times = {f: camera_summary(read_exif_tags(s0 / f))["time"] for f in roles}
    assert times["ultrawide.jpg"] == times["main_near.jpg"] == times["main_far.jpg"]
    assert times["main_near.jpg"].microsecond % 1000 == 0
    H = np.array(json.loads((s0 / "gt/homography.json").read_text())["H"])
    assert H.shape == (3, 3)
    depth = np.load(s0 / "gt/depth.npy")
    flow = np.load(s0 / "gt/flow.npy")
    uw_map = np.load(s0 / "gt/uw_map.npy")
    assert depth.dtype == np.float32 and depth.shape == (192, 256) and np.isfinite(depth).all()
    assert flow.shape == uw_map.shape == (192, 256, 2)
    import cv2

    aif = cv2.imread(str(s0 / "gt/aif.png"), cv2.IMREAD_UNCHANGED)
    assert aif.dtype == np.uint16 and aif.shape == (192, 256, 3)
    meta = json.loads((s0 / "gt/metadata.json").read_text())
    assert meta["seed"] == 7 and meta["preset"] == "generic-phone" and meta["main"]["focus_near_m"] < 0.5
    # refuses to overwrite; --overwrite and --skip-existing work
    r = runner.invoke(app, ["synth", "pairs", str(out), "--count", "1", "--seed", "7", "--size", "256", "-q"])
    assert r.exit_code == 2 and "exists" in r.output
    before = (s0 / "main_near.jpg").read_bytes()
    r = runner.invoke(app, ["synth", "pairs", str(out), "--count", "1", "--seed", "7", "--size", "256", "-q",
                            "--overwrite"])
    assert r.exit_code == 0 and (s0 / "main_near.jpg").read_bytes() == before


@pytest.mark.parametrize("fmt,ext", [("jpeg", "jpg"), ("tiff", "tif")])
def test_bursts_cli_layout_discovery_and_exif(tmp_path, fmt, ext):
    from aifcli.batch import discover_bursts
    from aifcli.io.exif import camera_summary, read_exif_tags
    from aifcli.presets import match_file

    out = tmp_path / "b"
    r = runner.invoke(app, ["synth", "bursts", str(out), "--count", "1", "--frames", "5", "--size", "256",
                            "--format", fmt, "-q"])
    assert r.exit_code == 0, r.output
    bursts = discover_bursts(out)
    assert [(b.name, len(b.frames)) for b in bursts] == [("burst_0000", 5)]
    frames = bursts[0].frames
    assert [f.name for f in frames] == [f"frame_{i:03d}.{ext}" for i in range(5)]
    times = [camera_summary(read_exif_tags(f))["time"] for f in frames]
    assert all(t1 > t0 for t0, t1 in zip(times, times[1:]))
    m = match_file(frames[0])
    assert m.preset.name == "generic-camera" and m.exact and m.f_number == 5.6
    gt = out / "burst_0000" / "gt"
    meta = json.loads((gt / "metadata.json").read_text())
    assert meta["reference_index"] == 2 and len(meta["focus_m"]) == 5
    assert meta["focus_m"] == sorted(meta["focus_m"])  # near -> far
    fi = np.load(gt / "focus_index.npy")
    assert fi.min() >= 0 and fi.max() <= 4 and fi.dtype == np.float32


def test_burst_focus_index_matches_depth():
    b = make_burst(4, "256", 6, noise=0.0)
    d = np.array(b.metadata["focus_diopters"])
    inv = 1.0 / b.depth
    i = np.clip(np.round(b.focus_index).astype(int), 0, 5)
    inside = (inv <= d[0]) & (inv >= d[-1])
    assert inside.mean() > 0.3
    # the frame named by focus_index is the one whose diopter is nearest the pixel's
    nearest = np.abs(inv[..., None] - d[None, None, :]).argmin(axis=-1)
    assert (i[inside] == nearest[inside]).mean() > 0.95
    # breathing: frames focused nearer are magnified more
    sc = b.metadata["scale"]
    assert sc[0] > 1.0 > sc[-1]


@pytest.mark.parametrize("args,msg", [
    (["pairs", "{out}", "--size", "huge"], "--size"),
    (["pairs", "{out}", "--size", "9000"], "outside"),
    (["pairs", "{out}", "--preset", "generic-camera"], "ultra-wide"),
    (["pairs", "{out}", "--preset", "nokia-3310"], "unknown preset"),
    (["bursts", "{out}", "--format", "gif"], "--format"),
])
def test_bad_parameters_give_one_line_errors(tmp_path, args, msg):
    out = tmp_path / "o"
    r = runner.invoke(app, ["synth"] + [a.format(out=out) for a in args])
    assert r.exit_code == 2
    assert msg in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_from_rgbd_scene_geometry_and_cli(tmp_path):
    """A near square in front of a far textured backdrop: parallax, occlusion and focus."""
    from aifcli.batch import discover_pairs
    from aifcli.synth.rgbd import inverse_depth_from_map, make_rgbd_scene

    rng = np.random.default_rng(0)
    h, w = 160, 240
    img = np.clip(0.5 + 0.2 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)
    depth = np.full((h, w), 5.0, np.float32)
    depth[50:110, 80:160] = 0.25
    img[50:110, 80:160] = [0.9, 0.1, 0.1]
    inv = inverse_depth_from_map(depth, "depth", 0.1, 10)
    ps = make_rgbd_scene(img, inv, seed=1, noise=0.0, layers=8)
    assert np.allclose(ps.depth[80, 120], 0.25, rtol=0.05) and np.allclose(ps.depth[10, 10], 5.0, rtol=0.05)
    b = ps.metadata["baseline_mm"] / 1000
    f = ps.metadata["main"]["focal_px"]
    assert np.allclose(ps.disparity[80, 120], b * f / ps.depth[80, 120], rtol=1e-4)
    # near focus on the square: the square is sharp in main_near, the backdrop in main_far
    assert ps.infocus_near[80, 120] and not ps.infocus_near[10, 10]
    assert ps.infocus_far[10, 10] and not ps.infocus_far[80, 120]
    # the ultra-wide sees the red square where uw_map says it is
    import cv2

    warped = cv2.remap(ps.ultrawide, ps.uw_map[..., 0], ps.uw_map[..., 1], cv2.INTER_LINEAR)
    sq = warped[60:100, 90:150]
    assert sq[..., 0].mean() > sq[..., 1].mean() + 0.3
    # occluded pixels lie beside the square, on the side the ultra-wide cannot see
    assert ps.occlusion[60:100, :].any() and not ps.occlusion[80, 120]

    np.save(tmp_path / "d.npy", depth)
    cv2.imwrite(str(tmp_path / "im.png"), cv2.cvtColor((img * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    r = runner.invoke(app, ["synth", "from-rgbd", str(tmp_path / "im.png"), str(tmp_path / "d.npy"), str(out),
                            "--kind", "depth", "--layers", "8", "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in discover_pairs(out)) == ["im/main_far", "im/main_near"]
    r = runner.invoke(app, ["synth", "from-rgbd", str(tmp_path / "im.png"), str(tmp_path / "d.npy"), str(out),
                            "--kind", "depth", "-q"])
    assert r.exit_code == 2 and "exists" in r.output
