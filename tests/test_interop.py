"""barenet.interop: to_torch / from_torch for every shipped config's architecture and every
supported layer (1e-5 in float32, both ways), and model.safetensors in torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_export_onnx import CONFIGS, every_layer_model, warm_batch_norm

from barenet import nn
from barenet.builders import build_model
from barenet.config import load_config
from barenet.interop import InteropError, from_torch, to_torch
from barenet.rundir import MODEL_FILE
from barenet.runner import load_run, load_split

# float32 on both sides, summed in different orders: ~1e-6 relative per layer
ATOL, RTOL = 1e-5, 1e-5
SRC = Path(__file__).resolve().parents[1] / "src" / "barenet"


def torch_out(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()


@pytest.fixture(scope="module")
def test_images(data_dir):
    """512 real test images per preprocessing, shaped (N, 1, 28, 28)."""
    cache = {}

    def get(cfg):
        key = (cfg.data.dataset, cfg.data.preprocess)
        if key not in cache:
            cache[key] = load_split(cfg, "test", data_dir).x[:512]
        x = cache[key]
        return x.reshape(len(x), -1) if cfg.model.type == "mlp" else x.reshape(len(x), 1, 28, 28)

    return get


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_both_ways(config, batch_norm, test_images):
    over = []
    if batch_norm:  # the same architecture with batch norm in every block and dense layer
        cfg0 = load_config(config, [])
        over = ["model.batch_norm=true"]
        if cfg0.model.type == "cnn":
            blocks = [{**b.model_dump(), "batch_norm": True} for b in cfg0.model.blocks]
            over.append(f"model.blocks={blocks}")
    cfg = load_config(config, over)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(cfg.model, rng, cfg.train.dtype)
    warm_batch_norm(model, rng)
    model.eval()
    x = test_images(cfg)
    ours = np.asarray(model(x))

    module = to_torch(model)
    assert isinstance(module, torch.nn.Sequential) and not module.training
    np.testing.assert_allclose(torch_out(module, x), ours, rtol=RTOL, atol=ATOL)
    assert sorted(module.state_dict()) == sorted(model.state_dict())

    back = from_torch(module)
    assert not back.training
    np.testing.assert_allclose(np.asarray(back(x)), ours, rtol=RTOL, atol=ATOL)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)


def torch_cnn_trained_a_little() -> torch.nn.Sequential:
    """A torch CNN with batch norm, a few optimizer steps in (so weights and running stats
    are torch's own, not barenet's)."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2, bias=False),
        torch.nn.BatchNorm2d(6),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 8, 3, stride=2),
        torch.nn.BatchNorm2d(8),
        torch.nn.LeakyReLU(0.1),
        torch.nn.AvgPool2d(2),
        torch.nn.Dropout2d(0.2),
        torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 20),
        torch.nn.BatchNorm1d(20),
        torch.nn.Tanh(),
        torch.nn.Dropout(0.3),
        torch.nn.Linear(20, 12),
        torch.nn.Sigmoid(),
        torch.nn.Identity(),
        torch.nn.Linear(12, 10),
    )
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    for _ in range(5):
        x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
        loss = torch.nn.functional.cross_entropy(module(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval()


def test_from_torch_cnn_eval_and_train_mode():
    module = torch_cnn_trained_a_little()
    model = from_torch(module)
    x = np.random.default_rng(0).standard_normal((32, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x)), torch_out(module, x), rtol=RTOL, atol=ATOL)
    # train mode: batch statistics (dropout off, so both sides compute the same thing)
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout | torch.nn.Dropout2d):
            m.p = 0.0
    module.train()
    model = from_torch(module)
    assert model.training
    got = np.asarray(model(x))
    np.testing.assert_allclose(got, torch_out(module, x), rtol=RTOL, atol=ATOL)


def test_to_torch_every_layer_matches():
    model = every_layer_model()
    x = np.random.default_rng(1).standard_normal((16, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(torch_out(to_torch(model), x), model(x), rtol=RTOL, atol=ATOL)


def test_float64_round_trip():
    model = build_model(load_config(None, ["model.sizes=[784, 64, 10]"]).model, 0, "float64")
    module = to_torch(model.eval())
    assert module[0].weight.dtype == torch.float64
    back = from_torch(module)
    assert back.parameters()[0].dtype == np.float64
    x = np.random.default_rng(0).standard_normal((4, 784))
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(model(x)), atol=1e-12)


def test_refusals():
    with pytest.raises(InteropError, match="GELU has no barenet counterpart"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU()))
    with pytest.raises(InteropError, match="groups"):
        from_torch(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, groups=2)))
    with pytest.raises(InteropError, match="ceil_mode"):
        from_torch(torch.nn.Sequential(torch.nn.MaxPool2d(2, ceil_mode=True)))
    with pytest.raises(InteropError, match="torch.nn.Sequential"):
        from_torch(torch.nn.Linear(2, 2))

    class Odd(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(InteropError, match="Odd has no torch counterpart"):
        to_torch(nn.Sequential(nn.Linear(2, 2, rng=0), Odd()))


@pytest.mark.parametrize("run", ["mlp_run", "cnn_run"])
def test_model_safetensors_loads_with_safetensors_torch(run, request, test_images):
    """A run's weights file is a torch state dict of the matching torch model."""
    run_dir = request.getfixturevalue(run)
    cfg, model = load_run(run_dir)
    state = load_file(str(run_dir / MODEL_FILE))
    if cfg.model.type == "mlp":  # written by hand, as a torch user would: 784-32-10
        module = torch.nn.Sequential(
            torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )
    else:  # the same architecture with other weights, then the file's
        module = to_torch(build_model(cfg.model, 123))
    module.load_state_dict(state, strict=True)
    module.eval()
    x = test_images(cfg)
    np.testing.assert_allclose(torch_out(module, x), np.asarray(model(x)), rtol=RTOL, atol=ATOL)


def test_torch_is_imported_only_by_interop():
    users = [
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if any(
            line.strip().startswith(("import torch", "from torch"))
            for line in p.read_text().splitlines()
        )
    ]
    # interop converts models; gradcheck's optional "vs torch" column builds the twin layer
    assert sorted(users) == ["diagnose/torch_ref.py", "interop.py"]


def test_flatten_dims_both_ways():
    """Flatten(start_dim, end_dim) crosses over with its dims (it used to be refused)."""
    ref = torch.nn.Sequential(torch.nn.Flatten(2, 3), torch.nn.Flatten(0, 1))
    ours = from_torch(ref)
    assert [(m.start_dim, m.end_dim) for m in ours] == [(2, 3), (0, 1)]
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(ours(x), ref(torch.from_numpy(x)).numpy())
    back = to_torch(ours)
    assert [(m.start_dim, m.end_dim) for m in back] == [(2, 3), (0, 1)]


def test_softmax_heads_both_ways():
    """The official MNIST example's LogSoftmax(dim=1) head (and Softmax) cross over."""
    ref = torch.nn.Sequential(
        torch.nn.Linear(6, 4), torch.nn.LogSoftmax(dim=1), torch.nn.Softmax(1)
    )
    ours = from_torch(ref)
    assert [m.dim for m in ours[1:]] == [1, 1]
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(x), ref(torch.from_numpy(x)).detach().numpy(), atol=1e-6)
    assert [m.dim for m in to_torch(ours)[1:]] == [1, 1]


def test_to_torch_of_a_single_layer_copies_its_weights():
    """to_torch takes a lone layer (not only a Sequential), as to_onnx does: its state-dict
    names ('weight') are those of position 0 of the torch Sequential ('0.weight')."""
    layer = nn.Linear(3, 2, rng=0)
    module = to_torch(layer)
    x = np.ones((4, 3), np.float32)
    np.testing.assert_allclose(torch_out(module, x), np.asarray(layer(x)), rtol=RTOL, atol=ATOL)


def test_from_torch_bfloat16_is_an_interop_error():
    module = torch.nn.Sequential(torch.nn.Linear(3, 2)).to(torch.bfloat16)
    with pytest.raises(InteropError, match=r"bfloat16.*\.float\(\)"):
        from_torch(module)


def test_without_torch_the_error_says_what_to_install(monkeypatch):
    # The light install has no torch: to_torch said only "No module named 'torch'".
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(ImportError, match=r"barenet.interop needs PyTorch .*pip install torch"):
        to_torch(nn.Sequential(nn.Linear(2, 2)))
