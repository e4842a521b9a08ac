"""End to end on the real data: train through the library, check test accuracy and determinism."""

from __future__ import annotations

from barenet import checkpoint, fileio
from barenet.config import load_config
from barenet.runner import load_run, train_run


def test_mnist_mlp_passes_97_percent(tmp_path):
    cfg = load_config(None, ["model.sizes=[784, 256, 10]", "train.epochs=3", "name=e2e-mlp"])
    metrics = train_run(cfg, tmp_path / "run", progress=False)
    assert metrics["test_accuracy"] > 0.97, metrics["test_accuracy"]
    assert metrics["val_accuracy"] > 0.97
    # the saved run reloads to the same test accuracy
    _, model = load_run(tmp_path / "run")
    assert model.num_parameters() == 784 * 256 + 256 + 2570
    assert (
        fileio.load_json(tmp_path / "run" / "metrics.json")["test_accuracy"]
        == (metrics["test_accuracy"])
    )


def test_same_seed_same_bits(tmp_path):
    overrides = [
        "data.subset=0.05",
        "train.epochs=2",
        "model.sizes=[784, 32, 10]",
        "model.dropout=0.2",
        "data.augment.enabled=true",
    ]
    cfg = load_config(None, overrides)
    a = train_run(cfg, tmp_path / "a", progress=False, evaluate_test=False)
    b = train_run(cfg, tmp_path / "b", progress=False, evaluate_test=False)
    assert (tmp_path / "a" / "history.csv").read_text().split("\n")[1].split(",")[:6] == (
        (tmp_path / "b" / "history.csv").read_text().split("\n")[1].split(",")[:6]
    )
    wa, _ = checkpoint.load_model_file(tmp_path / "a" / "model.safetensors")
    wb, _ = checkpoint.load_model_file(tmp_path / "b" / "model.safetensors")
    assert all((wa[k] == wb[k]).all() for k in wa)
    assert a["val_accuracy"] == b["val_accuracy"]
    c = train_run(
        load_config(None, [*overrides, "seed=1"]),
        tmp_path / "c",
        progress=False,
        evaluate_test=False,
    )
    wc, _ = checkpoint.load_model_file(tmp_path / "c" / "model.safetensors")
    assert not all((wa[k] == wc[k]).all() for k in wa)
    assert c["val_accuracy"] != a["val_accuracy"] or c["train_loss"] != a["train_loss"]


def test_mnist_small_cnn_passes_98_percent(tmp_path):
    cfg = load_config(
        None,
        [
            "model.type=cnn",
            "model.blocks=[{channels: 8, kernel: 5, pool: 2}, {channels: 16, kernel: 5, pool: 2}]",
            "model.dense=[10]",
            "optim.lr=0.05",
            "train.epochs=2",
            "name=e2e-cnn",
        ],
    )
    metrics = train_run(cfg, tmp_path / "run", progress=False)
    assert metrics["test_accuracy"] > 0.98, metrics["test_accuracy"]
