"""The rocket teacher and the cnn-small student: ONNX export with onnxruntime parity, the per-window
shape channel computed inside the graph, state dicts that rebuild the model, honest parameter counts."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgekit.export.onnx import export_torch
from edgekit.models.registry import ModelSpec, build_model, count_params
from edgekit.models.rocket import dilations
from edgekit.models.sensor import SeriesInput


def _series(n=40, w=64, seed=0):
    """Synthetic two-class series: class 1 carries a faster oscillation (named synthetic, for unit tests)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.linspace(0, 1, w)
    x = np.sin(2 * np.pi * (3 + 5 * y[:, None]) * t) + 0.3 * rng.normal(size=(n, w))
    return torch.from_numpy(x[:, :, None].astype(np.float32)), torch.from_numpy(y)


def _ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def rocket():
    x, y = _series()
    labelled = torch.zeros(len(y), dtype=torch.bool)
    labelled[:10] = True  # 5 labels per class; thresholds and scaler use all 40
    m = build_model(ModelSpec("rocket", {"channels": 1, "window": 64, "out_dim": 2}))
    return m.fit(x, y, labelled, seed=0), x, y


def test_rocket_learns_from_few_labels(rocket):
    m, x, y = rocket
    with torch.no_grad():
        acc = (m(x[10:]).argmax(1) == y[10:]).float().mean()
    assert acc > 0.9


def test_rocket_exports_to_onnx_with_parity(rocket, tmp_path):
    m, x, _y = rocket
    path = export_torch(m, x[:2], tmp_path / "rocket.onnx", opset=17)
    got = _ort(path, x.numpy())
    with torch.no_grad():
        want = m(x).numpy()
    # a conv output within float error of a threshold may flip one time step's comparison: 1/64 of a
    # feature, far below the class margin
    assert (
        np.abs(
            torch.softmax(torch.from_numpy(got), 1).numpy() - torch.softmax(torch.from_numpy(want), 1).numpy()
        ).max()
        < 1e-3
    )
    assert (got.argmax(1) == want.argmax(1)).all()
    # the dynamic batch axis works (one window at a time, as a device feeds it)
    assert _ort(path, x[:1].numpy()).shape == (1, 2)


def test_rocket_state_dict_rebuilds_and_params_are_counted_honestly(rocket, tmp_path):
    m, x, _y = rocket
    torch.save(m.state_dict(), tmp_path / "t.pt")
    again = build_model(ModelSpec("rocket", {"channels": 1, "window": 64, "out_dim": 2}))
    again.load_state_dict(torch.load(tmp_path / "t.pt", weights_only=True))
    with torch.no_grad():
        assert torch.equal(again.eval()(x), m(x))
    n_feat = 84 * len(dilations(64)) * 12 * 2  # two input channels: amplitude and per-window shape
    assert m.n_features == n_feat
    # kernels (84 x 9, once) + thresholds + head weights and biases; the scaler is folded into the head
    assert count_params(m) == 84 * 9 + n_feat + n_feat * 2 + 2
    assert count_params(m) > sum(p.numel() for p in m.parameters())


def test_shape_channel_is_inside_the_model():
    # the device feeds raw windows [B, W, C]; the second channel is the window z-normalised in the graph
    x = torch.randn(3, 50, 1) * 5 + 2
    z = SeriesInput(shape_channel=True)(x)
    assert z.shape == (3, 2, 50)
    ref = (x[:, :, 0] - x[:, :, 0].mean(1, keepdim=True)) / x[:, :, 0].std(1, unbiased=False, keepdim=True)
    assert torch.allclose(z[:, 1], ref, atol=1e-4) and torch.equal(z[:, 0], x[:, :, 0])


def test_cnn_small_exports_with_parity_and_is_small(tmp_path):
    torch.manual_seed(0)
    m = build_model(ModelSpec("cnn-small", {"channels": 1, "out_dim": 11, "shape_channel": True})).eval()
    assert 6000 < count_params(m) < 7000  # the recipe's 6.4k-parameter student at two input channels
    x = torch.randn(5, 256, 1)
    path = export_torch(m, x[:2], tmp_path / "s.onnx", opset=17)
    with torch.no_grad():
        assert np.allclose(_ort(path, x.numpy()), m(x).numpy(), atol=1e-4)
