"""Shared fixtures: tiny trained runs (made once per session) for the CLI, plot and search tests.

The tests train on the real MNIST / Fashion-MNIST files in ``$BARENET_DATA``; without them the
session ends at once with one line saying so (pytest's usage-error exit code, 4).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from barenet.config import load_config
from barenet.runner import train_run

DATASETS = ("mnist", "fashion-mnist")


def data_problem() -> str | None:
    """Why the real data cannot be used, or None."""
    root = os.environ.get("BARENET_DATA")
    if not root:
        return "BARENET_DATA is not set"
    missing = [d for d in DATASETS if not (Path(root) / d).is_dir()]
    if missing:
        return f"BARENET_DATA={root} has no {' or '.join(d + '/' for d in missing)}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    problem = data_problem()
    if problem:
        pytest.exit(
            f"barenet tests need the MNIST and Fashion-MNIST files: {problem}; "
            "run BARENET_DATA=/path/to/folder-with-mnist-and-fashion-mnist python -m pytest -q",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    # Ctrl-C as at a terminal. A session started as a background job of a non-interactive
    # shell (`pytest &` in a script) inherits SIGINT ignored and hands that on to every
    # `barenet` it starts, which then rightly ignores the SIGINT the interruption tests send:
    # they failed every time so started. A handler here is reset to the default at exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
