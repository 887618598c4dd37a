"""The learned engine's shared parts and fuse-net: weights (good, missing, corrupt), tiling, training, CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from aifcli.cli.app import app
from aifcli.errors import InputError, UsageError
from aifcli.nets import fuse_net, get_task
from aifcli.nets.layers import haar_dwt, haar_idwt
from aifcli.nets.tiling import tiled_forward
from aifcli.nets.train import TrainOptions, train
from aifcli.nets.weights import card_markdown, load_weights, resolve, save_weights

runner = CliRunner()
SHIPPED = resolve("fuse-net")


def _perturbed_model(seed: int = 0):
    torch.manual_seed(seed)
    m = fuse_net.TASK.build({})
    with torch.no_grad():  # the heads start near zero: make every path matter
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m.eval()


def _save(tmp_path: Path, name: str = "m.pt", config: dict | None = None) -> Path:
    m = fuse_net.TASK.build(config or {})
    p = tmp_path / name
    save_weights(p, arch=fuse_net.ARCH, config={**fuse_net.TASK.default_config(), **(config or {})},
                 state_dict=m.state_dict(), card={"parameters": 1}, card_markdown=card_markdown("t", {"a": 1}))
    return p


def test_haar_roundtrip_is_exact():
    x = torch.rand(2, 3, 8, 12)
    ll, hi = haar_dwt(x)
    assert ll.shape == (2, 3, 4, 6) and hi.shape == (2, 9, 4, 6)
    assert torch.allclose(haar_idwt(ll, hi), x, atol=1e-6)


def test_weights_good_missing_corrupt_wrong_arch(tmp_path):
    p = _save(tmp_path)
    assert p.with_suffix(".sha256").exists() and p.with_suffix(".md").exists()
    m, info = load_weights(p, arch=fuse_net.ARCH, task="fuse", build=fuse_net.TASK.build)
    assert info["arch"] == fuse_net.ARCH and not m.training
    # missing: names the file and the fix
    with pytest.raises(InputError, match=r"not found.*aif train fuse"):
        load_weights(tmp_path / "nope.pt", arch=fuse_net.ARCH, task="fuse", build=fuse_net.TASK.build)
    # corrupt: one flipped byte fails the checksum
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(data))
    bad.with_suffix(".sha256").write_text(p.with_suffix(".sha256").read_text())
    with pytest.raises(InputError, match="checksum mismatch"):
        load_weights(bad, arch=fuse_net.ARCH, task="fuse", build=fuse_net.TASK.build)
    # truncated with a matching checksum (e.g. re-hashed by hand): unreadable, still one clear error
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(InputError, match="not a readable aif weights file"):
        load_weights(trunc, arch=fuse_net.ARCH, task="fuse", build=fuse_net.TASK.build, verify=False)
    # no checksum beside it
    lone = tmp_path / "lone.pt"
    lone.write_bytes(p.read_bytes())
    with pytest.raises(InputError, match="no checksum file"):
        load_weights(lone, arch=fuse_net.ARCH, task="fuse", build=fuse_net.TASK.build)
    # another architecture
    with pytest.raises(InputError, match="expected 'aif-other'"):
        load_weights(p, arch="aif-other", task="fuse", build=fuse_net.TASK.build)
    # tensors that do not fit the architecture built from the config
    p2 = _save(tmp_path, "wide.pt", {"c1": 12})
    with pytest.raises(InputError, match="tensors do not fit"):
        load_weights(p2, arch=fuse_net.ARCH, task="fuse", build=lambda cfg: fuse_net.TASK.build({}))


def test_tiled_inference_equals_untiled():
    m = _perturbed_model()
    x = torch.rand(1, 8, 208, 240)
    fn = lambda t: torch.cat(m(t[:, 0:3], t[:, 3:6], t[:, 6:7], t[:, 7:8])[:3], 1)  # noqa: E731
    with torch.no_grad():
        whole = tiled_forward(fn, x, tile=4096, halo=0)
        tiles = tiled_forward(fn, x, tile=32, halo=fuse_net.RECEPTIVE_RADIUS)
        # the halo really matters: without it the tiles differ
        no_halo = tiled_forward(fn, x, tile=32, halo=0)
    assert (whole - tiles).abs().max().item() < 1e-4
    assert (whole - no_halo).abs().max().item() > 1e-3


def test_run_net_masks_sum_to_one_and_are_deterministic():
    m = _perturbed_model(1)
    rng = np.random.default_rng(0)
    a = lambda *s: rng.random(s).astype(np.float32)  # noqa: E731
    main, iwc, conf, inf = a(70, 90, 3), a(70, 90, 3), a(70, 90), np.ones((70, 90), np.float32)
    r1 = fuse_net.run_net(m, main, iwc, conf, inf)
    r2 = fuse_net.run_net(m, main, iwc, conf, inf)
    assert r1["image"].shape == (70, 90, 3)
    assert np.allclose(r1["masks"].sum(-1), 1.0, atol=1e-5)
    assert np.array_equal(r1["image"], r2["image"])


class _TinyFuseTask(fuse_net.FuseTask):
    """fuse-net on toy items made in memory (no rendering): a defocused main, a shifted sharp ultra-wide."""

    def prepare(self, src, progress):
        import cv2

        rng = np.random.default_rng(3)
        items = []
        for i in range(3):
            gt = cv2.resize(rng.random((24, 32, 3)).astype(np.float32), (128, 96), interpolation=cv2.INTER_CUBIC)
            gt = np.clip(gt, 0, 1)
            main = cv2.GaussianBlur(gt, (0, 0), 2.5)
            iwc = np.roll(gt, 1, axis=1) * 0.97 + 0.01
            one = np.ones((96, 128, 1), np.float32)
            items.append({"main": main, "iwc": iwc, "conf": one, "infield": one, "gt": gt, "occ": one * 0,
                          "infocus": one * 0, "val": i == 0, "name": f"toy{i}"})
        return items


def test_short_training_lowers_the_loss_and_resumes(tmp_path):
    from aifcli.nets.data import DataSource

    out = tmp_path / "tiny.pt"
    opts = TrainOptions(steps=40, batch=4, crop=64, lr=3e-3, seed=0, checkpoint_every=20, threads=1)
    res = train(_TinyFuseTask(), DataSource(generate=1), out, opts, log=lambda m: None)
    hist = [v for _, v in res["history"]]
    assert hist[-1] < hist[0] * 0.8, hist
    assert out.exists() and out.with_suffix(".ckpt").exists()
    card = out.with_suffix(".md").read_text()
    assert "parameters" in card and res["sha256"] in card and "hardware" in card
    load_weights(out, arch=fuse_net.ARCH, task="fuse", build=fuse_net.TASK.build)
    # the same output again needs --overwrite or --resume
    with pytest.raises(InputError, match="exists"):
        train(_TinyFuseTask(), DataSource(generate=1), out, opts, log=lambda m: None)
    opts2 = TrainOptions(steps=50, batch=4, crop=64, lr=3e-3, seed=0, resume=True, threads=1)
    res2 = train(_TinyFuseTask(), DataSource(generate=1), out, opts2, log=lambda m: None)
    assert res2["steps"] == 50 and res2["history"][0] == res["history"][0]


def test_train_cli_bad_arguments(tmp_path):
    r = runner.invoke(app, ["train", "fuse", "-o", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "--data DIR" in r.output
    r = runner.invoke(app, ["train", "fuse", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "not a folder" in r.output
    r = runner.invoke(app, ["train", "nosuch", "--generate", "1", "-o", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "unknown model" in r.output
    r = runner.invoke(app, ["train", "fuse", "--generate", "1", "--set", "nope=1", "-o", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "no such config entry" in r.output
    r = runner.invoke(app, ["train", "fuse", "--generate", "1", "--set", "c1=wide", "-o", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "needs an integer" in r.output
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(UsageError):
        get_task("nosuch")


def _pair_files(tmp_path: Path):
    from aifcli.fuse.toy import make_toy_pair
    from aifcli.io import write_image

    tp = make_toy_pair(192, 256, seed=4)
    m, u = tmp_path / "main.png", tmp_path / "uw.png"
    write_image(m, tp.main_near)
    write_image(u, tp.ultrawide)
    return tp, m, u


def test_fuse_engine_net_missing_weights_is_one_line(tmp_path):
    _, m, u = _pair_files(tmp_path)
    r = runner.invoke(app, ["fuse", str(m), str(u), "-o", str(tmp_path / "o.png"), "--ratio", "2",
                            "--engine", "net", "--weights", str(tmp_path / "missing.pt")])
    assert r.exit_code == 2
    assert "missing.pt" in r.output and "aif train fuse" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.png").exists()
    r = runner.invoke(app, ["fuse", str(m), str(u), "-o", str(tmp_path / "o.png"), "--engine", "magic"])
    assert r.exit_code == 2 and "--engine" in r.output


@pytest.mark.skipif(not SHIPPED.exists(), reason="weights/fuse-net.pt not shipped in this checkout")
def test_fuse_engine_net_end_to_end_with_shipped_weights(tmp_path):
    from aifcli.io import read_image

    tp, m, u = _pair_files(tmp_path)
    out = tmp_path / "o.png"
    r = runner.invoke(app, ["fuse", str(m), str(u), "-o", str(out), "--ratio", "2", "--engine", "net",
                            "--debug-dir", str(tmp_path / "dbg")])
    assert r.exit_code == 0, r.output
    img = read_image(out).pixels
    assert img.shape == tp.main_near.shape
    err = lambda a: float(np.mean((a - tp.aif) ** 2))  # noqa: E731
    assert err(img) < err(tp.main_near)  # the defocused background gains detail
    assert (tmp_path / "dbg" / "o.mask_main.png").exists()
    assert "trained on images up to 1280 px" not in r.output  # 256 px: inside its training sizes


@pytest.mark.skipif(not SHIPPED.exists(), reason="weights/fuse-net.pt not shipped in this checkout")
def test_fuse_engine_net_warns_above_its_training_size(tmp_path, monkeypatch):
    assert fuse_net.size_warning((768, 1024)) is None and fuse_net.size_warning((960, 1280)) is None
    assert "--engine classical" in fuse_net.size_warning((3024, 4032))
    _, m, u = _pair_files(tmp_path)
    monkeypatch.setattr(fuse_net, "TRAINED_MAX_PIXELS", 192 * 256 - 1)  # this toy pair counts as too large
    r = runner.invoke(app, ["fuse", str(m), str(u), "-o", str(tmp_path / "o.png"), "--ratio", "2", "--engine", "net",
                            "--json"])
    assert r.exit_code == 0, r.output
    assert "trained on images up to 1280 px" in r.output and "256x192" in r.output
    r = runner.invoke(app, ["fuse", str(m), str(u), "-o", str(tmp_path / "c.png"), "--ratio", "2", "--json"])
    assert r.exit_code == 0 and "trained on images up to 1280 px" not in r.output  # classical: no note


def test_training_item_cache_round_trips(tmp_path):
    from aifcli.nets.data import load_cached, save_cached

    items = [{"x": np.arange(6, dtype=np.float16).reshape(2, 3), "val": True, "name": "scene-0", "k": 3},
             {"x": np.zeros((2, 3), np.float16), "val": False, "name": "scene-0b", "k": 4}]
    p = tmp_path / "sub" / "fuse-0.npz"
    save_cached(p, items)
    assert [f.name for f in p.parent.iterdir()] == ["fuse-0.npz"]  # written atomically, no temporary left
    back = load_cached(p)
    assert [b["name"] for b in back] == ["scene-0", "scene-0b"] and back[0]["val"] is True and back[1]["val"] is False
    assert back[0]["x"].dtype == np.float16 and np.array_equal(back[0]["x"], items[0]["x"]) and back[1]["k"] == 4
