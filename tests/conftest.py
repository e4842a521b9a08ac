"""Shared fixtures: tiny trained runs (made once per session) for the CLI, plot and search tests."""

from __future__ import annotations

import os

import pytest

from barenet.config import load_config
from barenet.runner import train_run

TINY_MLP = ["data.subset=0.05", "train.epochs=2", "model.sizes=[784, 32, 10]", "name=tiny-mlp"]
TINY_CNN = [
    "data.subset=0.05",
    "train.epochs=2",
    "model.type=cnn",
    "model.blocks=[{channels: 4, kernel: 5, pool: 2}, {channels: 6, kernel: 3, pool: 2}]",
    "model.dense=[16, 10]",
    "name=tiny-cnn",
]


@pytest.fixture(scope="session")
def data_dir() -> str:
    return os.environ["BARENET_DATA"]


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("runs") / "mlp"
    train_run(load_config(None, TINY_MLP), out, progress=False)
    return out


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("runs") / "cnn"
    train_run(load_config(None, TINY_CNN), out, progress=False)
    return out
