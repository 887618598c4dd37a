"""The learned colour network (aif colormatch --engine net, aifcli/nets/color_net.py)."""
from __future__ import annotations

import shutil

import numpy as np
import torch
from typer.testing import CliRunner

from aifcli.cli.app import app
from aifcli.color import match_colors
from aifcli.fuse.toy import make_toy_pair
from aifcli.io import read_image, write_image
from aifcli.nets import color_net
from aifcli.nets.color_net import TASK, match_colors_net
from aifcli.nets.layers import n_params
from aifcli.nets.weights import resolve
from test_color import _cast  # another camera: channel mixing, gains, tone curve, vignetting

runner = CliRunner()




def _rms(a, b):
    return float(np.sqrt(((a - b) ** 2).mean()))


def test_untrained_model_is_identity_and_small():
    model = TASK.build(TASK.default_config()).eval()
    assert n_params(model) < 60_000
    ref = make_toy_pair(120, 160, seed=2).aif
    src = _cast(ref)
    res = match_colors_net(src, ref, model=model)
    assert np.abs(res.image - np.clip(src, 0, 1)).max() < 1e-5
    assert res.image.shape == src.shape and res.image.dtype == np.float32


def test_shipped_weights_remove_a_cast_deterministically():
    ref = make_toy_pair(240, 320, seed=4).aif
    src = _cast(ref)
    res = match_colors_net(src, ref)
    assert _rms(src, ref) > 0.05
    assert _rms(res.image, ref) < _rms(src, ref) / 2.5
    assert res.residual_after < res.residual_before / 2
    again = match_colors_net(src, ref)
    assert np.array_equal(res.image, again.image)
    # a mask of any size is accepted
    m = np.zeros((60, 80), np.float32)
    m[10:50, 10:70] = 1
    assert _rms(match_colors_net(src, ref, m).image, ref) < _rms(src, ref) / 2


def test_training_loss_and_validation_run(tmp_path):
    rng = np.random.default_rng(0)
    ref = make_toy_pair(192, 256, seed=1).aif
    it = {"src": _cast(ref), "ref": ref, "conf": np.ones((192, 256, 1), np.float32), "gt": ref,
          "valid": np.ones((192, 256, 1), np.float32), "iwc_lo": ref[::2, ::2].copy(), "name": "toy", "val": True}
    model = TASK.build(TASK.default_config())
    b = {k: torch.from_numpy(v) for k, v in TASK.batch([it], rng, 2, 128).items()}
    loss, parts = TASK.loss(model, b)
    loss.backward()
    assert model.mix.grad is not None and float(loss.detach()) > 0
    with torch.no_grad():
        v = TASK.validate(model.eval(), [it])
    assert v["deltaE2000 net"] > v["deltaE2000 classical"]  # untrained = identity, classical = the truth here


def _files(tmp_path):
    ref = make_toy_pair(96, 128, seed=5).aif
    write_image(tmp_path / "ref.png", ref)
    write_image(tmp_path / "src.png", _cast(ref))
    return ref


def test_cli_engine_net(tmp_path):
    ref = _files(tmp_path)
    src, refp = str(tmp_path / "src.png"), str(tmp_path / "ref.png")
    r = runner.invoke(app, ["colormatch", src, refp, "-o", str(tmp_path / "out.png"), "--engine", "net", "--json"])
    assert r.exit_code == 0, r.output
    assert '"engine": "net"' in r.output
    out = read_image(tmp_path / "out.png").pixels
    assert _rms(out, ref) < _rms(_cast(ref), ref) / 2
    # net is the default; --radius / --global choose the classical engine
    r = runner.invoke(app, ["colormatch", src, refp, "-o", str(tmp_path / "d.png"), "--json"])
    assert r.exit_code == 0 and '"engine": "net"' in r.output
    r = runner.invoke(app, ["colormatch", src, refp, "-o", str(tmp_path / "g.png"), "--global", "--json"])
    assert r.exit_code == 0 and '"engine": "classical"' in r.output
    r = runner.invoke(app, ["colormatch", src, refp, "-o", str(tmp_path / "o2.png"), "--engine", "classical",
                            "--weights", str(resolve("color-net"))])
    assert r.exit_code == 2 and "--weights is for --engine net" in r.output
    r = runner.invoke(app, ["colormatch", src, refp, "-o", str(tmp_path / "o3.png"), "--engine", "net",
                            "--radius", "0.2"])
    assert r.exit_code == 2 and "--radius" in r.output and "classical" in r.output


def test_cli_missing_and_corrupt_weights(tmp_path):
    _files(tmp_path)
    args = ["colormatch", str(tmp_path / "src.png"), str(tmp_path / "ref.png"), "-o", str(tmp_path / "out.png"),
            "--engine", "net", "--weights"]
    missing = tmp_path / "nope.pt"
    r = runner.invoke(app, args + [str(missing)])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "nope.pt" in lines[0] and "not found" in lines[0]
    shipped = resolve("color-net")
    bad = tmp_path / "bad.pt"
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    shutil.copy(shipped.with_suffix(".sha256"), tmp_path / "bad.sha256")
    r = runner.invoke(app, args + [str(bad)])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.pt" in lines[0] and "checksum" in lines[0]
    assert not (tmp_path / "out.png").exists()


def test_classical_engine_unchanged(tmp_path):
    ref = _files(tmp_path)
    r = runner.invoke(app, ["colormatch", str(tmp_path / "src.png"), str(tmp_path / "ref.png"),
                            "-o", str(tmp_path / "out.png"), "--engine", "classical"])
    assert r.exit_code == 0, r.output
    want = match_colors(read_image(tmp_path / "src.png").pixels, read_image(tmp_path / "ref.png").pixels).image
    got = read_image(tmp_path / "out.png").pixels
    assert np.abs(got - want).max() < 2 / 255 + 1e-6
    assert color_net.ARCH == "aif-colornet-v1"
