"""The learned refocus engine (aifcli.nets.refocus_net, `aif refocus --engine net`)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aifcli.nets import refocus_net as R  # noqa: E402


def _random_model(seed: int = 0):
    torch.manual_seed(seed)
    m = R.build(R.TASK.default_config())
    # the head starts at zero (the net starts as a fixed blend): randomise it so every layer counts
    torch.nn.init.normal_(m.head.weight, std=0.2)
    torch.nn.init.normal_(m.head.bias, std=0.2)
    return m.eval()


def test_tiled_inference_equals_untiled():
    from aifcli.nets.tiling import run_padded, tiled_forward

    m = _random_model()
    g = torch.Generator().manual_seed(1)
    x = torch.rand((1, 13, 100, 350), generator=g)  # odd sizes: the padded image end too
    with torch.no_grad():
        whole = run_padded(m, x, R.MULTIPLE)
        tiled = tiled_forward(m, x, tile=64, halo=R.HALO, multiple=R.MULTIPLE)
    assert tiled.shape == whole.shape == (1, 3, 100, 350)
    assert float((tiled - whole).abs().max()) < 1e-4


def test_net_input_and_main_coc_estimate():
    from aifcli.synth.pairs import make_pair_scene

    sc = make_pair_scene(3, "256", "pixel-7-pro", noise=0.0, index=1)
    # the main focused far, compared with the (here: true) all-in-focus image
    c, fit = R.estimate_main_coc(sc.main_far, sc.aif, sc.disparity)
    assert c.shape == sc.coc_far.shape and c.dtype == np.float32 and fit["k_px"] >= 0
    assert np.corrcoef(c.ravel(), sc.coc_far.ravel())[0, 1] > 0.8
    cands = R.candidates(sc.main_far, sc.aif, sc.disparity, sc.coc_near, c)
    inp = R.net_input(cands, sc.coc_near, c)
    assert inp.shape == sc.aif.shape[:2] + (13,) and np.isfinite(inp).all()
    pos = R.radial_position(4, 6)
    assert np.allclose(pos[..., 0].mean(), 0) and np.allclose(pos[..., 1].mean(), 0)


def aif(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aifcli", *args], capture_output=True, text=True, timeout=300,
                          env=env)


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    from aifcli.io import write_image
    from aifcli.synth.pairs import make_pair_scene

    d = tmp_path_factory.mktemp("rnet")
    sc = make_pair_scene(0, "256", "generic-phone", noise=0.5, index=2)
    write_image(d / "main.png", sc.main_near)
    write_image(d / "uw.png", sc.ultrawide)
    from aifcli.nets.weights import save_weights

    m = _random_model(3)
    save_weights(d / "rand.pt", arch=R.ARCH, config=R.TASK.default_config(), state_dict=m.state_dict(),
                 card={"summary": "test"}, card_markdown="# test\n")
    return d / "main.png", d / "uw.png", d / "rand.pt"


def test_cli_pair_engine_net_end_to_end(pair_files, tmp_path):
    main, uw, w = pair_files
    r = aif("refocus", str(main), str(uw), "--engine", "net", "--weights", str(w), "--focus-at", "0.5,0.9",
            "--blur", "12", "-o", str(tmp_path / "net.png"), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    fr = info["frames"][0]
    assert fr["engine"] == "net" and set(fr["net"]["timings"]) == {"main_coc", "candidates", "net"}
    a = cv2.imread(str(tmp_path / "net.png"))
    assert a.shape == cv2.imread(str(main)).shape


def test_shipped_weights_load_and_run():
    path = Path(__file__).resolve().parents[1] / "weights" / "refocus-net.pt"
    if not path.exists():
        pytest.skip("weights/refocus-net.pt not trained yet")
    model, info = R.load()
    assert info["arch"] == R.ARCH
    from aifcli.synth.pairs import make_pair_scene

    sc = make_pair_scene(0, "256", "iphone-13", noise=0.0, index=4)
    out, meta = R.refocus_pair_net(sc.main_near, sc.aif, sc.disparity, sc.disparity, sc.coc_far, model=model)
    assert out.shape == sc.aif.shape and np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    # deterministic: the same call gives the same image, tiled or not
    again, _ = R.refocus_pair_net(sc.main_near, sc.aif, sc.disparity, sc.disparity, sc.coc_far, model=model, tile=64)
    assert np.abs(again - out).max() < 1e-4


def test_cli_engine_net_errors(pair_files, tmp_path):
    main, uw, _ = pair_files
    # missing weights: one line, exit 2, naming the file and the fix
    r = aif("refocus", str(main), str(uw), "--engine", "net", "--weights", str(tmp_path / "nope.pt"),
            "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "nope.pt" in r.stderr and "aif train refocus" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    # not a pair: a clear one-line error
    np.save(tmp_path / "d.npy", np.zeros((192, 256), np.float32))
    r = aif("refocus", str(main), "-d", str(tmp_path / "d.npy"), "--engine", "net", "-o", str(tmp_path / "y.png"))
    assert r.returncode == 2 and "MAIN ULTRAWIDE" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = aif("refocus", str(main), str(uw), "--engine", "magic", "-o", str(tmp_path / "z.png"))
    assert r.returncode == 2 and "--engine" in r.stderr
    r = aif("refocus", str(main), str(uw), "--weights", str(tmp_path / "w.pt"), "-o", str(tmp_path / "z.png"))
    assert r.returncode == 2 and "--engine net" in r.stderr
