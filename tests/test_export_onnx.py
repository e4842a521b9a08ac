"""ONNX export: every shipped config's architecture and every exportable layer, run in
onnxruntime against barenet's eval-mode forward on the real test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from barenet import nn
from barenet.builders import build_model, input_shape
from barenet.cli import main
from barenet.config import load_config
from barenet.export import MIN_OPSET
from barenet.export.onnx import ExportError, to_onnx
from barenet.runner import load_run, load_split

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
ATOL = 1e-4


def session(proto: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def batched(model: nn.Module, x: np.ndarray, size: int = 1000) -> np.ndarray:
    return np.concatenate(
        [np.asarray(model.forward(x[i : i + size])) for i in range(0, len(x), size)]
    )


def run_onnx(sess: ort.InferenceSession, x: np.ndarray, size: int = 1000) -> np.ndarray:
    return np.concatenate(
        [sess.run(None, {"input": x[i : i + size]})[0] for i in range(0, len(x), size)]
    )


def warm_batch_norm(model: nn.Module, rng: np.random.Generator) -> None:
    """Running statistics and affine parameters away from their defaults (1, 0), so
    BatchNormalization's inputs are really tested."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            n = m.num_features
            m._buffers["running_mean"][...] = rng.normal(0, 0.5, n)
            m._buffers["running_var"][...] = rng.uniform(0.5, 2.0, n)
            m.weight.data[...] = rng.uniform(0.5, 1.5, n)
            m.bias.data[...] = rng.normal(0, 0.3, n)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_on_the_real_test_set(config, data_dir):
    cfg = load_config(config, [])
    model = build_model(cfg.model, np.random.default_rng(cfg.seed), cfg.train.dtype).eval()
    test = load_split(cfg, "test", data_dir)
    proto = to_onnx(model, input_shape(cfg.model))
    inp = proto.graph.input[0].type.tensor_type.shape.dim
    assert inp[0].dim_param == "batch" and [d.dim_value for d in inp[1:]] == list(
        input_shape(cfg.model)
    )
    ours, theirs = batched(model, test.x), run_onnx(session(proto), test.x)
    assert theirs.shape == ours.shape == (10000, 10)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(theirs.argmax(1), ours.argmax(1))


def every_layer_model() -> nn.Sequential:
    """Conv (with and without bias, stride, dilation, padding), BatchNorm2d/1d, every
    activation, max/avg/adaptive pooling, dropout, flatten."""
    rng = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False, rng=rng),
        nn.BatchNorm2d(4),
        nn.Tanh(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(4, 6, 3, stride=1, dilation=2, rng=rng),
        nn.LeakyReLU(0.2),
        nn.Dropout2d(0.3, rng=rng),
        nn.AvgPool2d(2, padding=1),
        nn.AdaptiveAvgPool2d((3, 2)),  # 6x6 -> 3x2
        nn.Sigmoid(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 16, rng=rng),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Dropout(0.5, rng=rng),
        nn.Identity(),
        nn.Linear(16, 10, bias=False, rng=rng),
    )
    warm_batch_norm(model, rng)
    return model.eval()


def test_every_layer_and_symbolic_batch():
    model = every_layer_model()
    sess = session(to_onnx(model, (1, 28, 28)))
    rng = np.random.default_rng(0)
    for n in (1, 7, 64):
        x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"input": x})[0], model(x), rtol=0, atol=1e-5)


def test_non_divisible_adaptive_pool():
    rng = np.random.default_rng(1)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 5, rng=rng),
        nn.AdaptiveAvgPool2d((5, 7)),
        nn.Flatten(),
        nn.Linear(105, 4, rng=rng),
    ).eval()
    x = rng.standard_normal((5, 1, 28, 28)).astype(np.float32)
    out = session(to_onnx(model, (1, 28, 28))).run(None, {"input": x})[0]
    np.testing.assert_allclose(out, model(x), atol=1e-5)


@pytest.mark.parametrize("head", [nn.LogSoftmax, nn.Softmax])
def test_official_mnist_example_head_exports(head):
    """The README ports the official MNIST example with its LogSoftmax(dim=1) head (with
    NLLLoss): to_onnx refused it, 'layer 5 (LogSoftmax) has no ONNX converter'."""
    rng = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, rng=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(4 * 7 * 6, 5, rng=rng), head(dim=1),
    ).eval()  # fmt: skip
    sess = session(to_onnx(model, (3, 16, 14)))
    for n in (1, 7):
        x = rng.standard_normal((n, 3, 16, 14)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"input": x})[0], model(x), rtol=0, atol=1e-5)
    with pytest.raises(ExportError, match="needs an explicit dim"):
        to_onnx(nn.Sequential(nn.Linear(4, 2, rng=0), head()), (4,))


def test_float64_model_exports_double():
    # (onnxruntime's CPU provider has no double Conv, so an MLP is what it can run)
    rng = np.random.default_rng(2)
    model = nn.Sequential(
        nn.Linear(784, 32, rng=rng), nn.BatchNorm1d(32), nn.Tanh(), nn.Linear(32, 10, rng=rng)
    )
    warm_batch_norm(model, rng)
    model.to(np.float64).eval()
    proto = to_onnx(model, (784,))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    x = rng.standard_normal((5, 784))
    np.testing.assert_allclose(session(proto).run(None, {"input": x})[0], model(x), atol=1e-10)


@pytest.mark.parametrize("opset", [MIN_OPSET, onnx.defs.onnx_opset_version()])
def test_opset_range(opset):
    model = every_layer_model()
    proto = to_onnx(model, (1, 28, 28), opset=opset)
    assert proto.opset_import[0].version == opset
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(session(proto).run(None, {"input": x})[0], model(x), atol=1e-5)


def test_refusals():
    class Odd(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ExportError, match="layer 1 \\(Odd\\) has no ONNX converter"):
        to_onnx(nn.Sequential(nn.Linear(4, 2, rng=0), Odd()), (4,))
    with pytest.raises(ExportError, match="opset 5 not supported"):
        to_onnx(nn.Sequential(nn.Linear(4, 2, rng=0)), (4,), opset=5)


# -- trained runs through the command ---------------------------------------------------
@pytest.mark.parametrize("run", ["mlp_run", "cnn_run"])
def test_cli_export_trained_run(run, request, tmp_path, capsys, data_dir):
    run_dir = request.getfixturevalue(run)
    out = tmp_path / "model.onnx"
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["dataset"] == "mnist" and '"9"' in meta["classes"]
    cfg, model = load_run(run_dir)
    test = load_split(cfg, "test", data_dir)
    ours, theirs = batched(model, test.x), run_onnx(session(proto), test.x)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(theirs.argmax(1), ours.argmax(1))
    assert (theirs.argmax(1) == test.y).mean() > 0.6  # a trained model (tiny: ~74-90%), not noise


def test_cli_export_errors(tmp_path, mlp_run, capsys):
    assert main(["export", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "run folder not found" in err
    assert main(["export", str(mlp_run), "--opset", "3", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "opset 3 not supported" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_flatten_other_dims_refused(tmp_path: Path) -> None:
    from barenet.export.onnx import ExportError, to_onnx

    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.Flatten(0, -1))
    with pytest.raises(ExportError, match="layer 1: only Flatten"):
        to_onnx(model, (1, 8, 8))


def test_float64_cnn_exported_as_float32_runs_in_onnxruntime():
    """A float64 CNN in float64 ONNX would not load in onnxruntime (no double Conv on its
    CPU); dtype=np.float32 casts it, as `barenet export` always does."""
    model = every_layer_model()
    model.to(np.float64).eval()
    proto = to_onnx(model, (1, 28, 28), dtype=np.float32)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    out = session(proto).run(None, {"input": x.astype(np.float32)})[0]
    np.testing.assert_allclose(out, model(x), atol=1e-4)
