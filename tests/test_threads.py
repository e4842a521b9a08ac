"""barenet's threads: bits independent of the thread count, the auto policy, the API, and
a search trial's config.yaml retrained with `barenet train` giving the trial's weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

import barenet
from barenet import nn, optim, threads
from barenet.checkpoint import load_model_file
from barenet.cli import main
from barenet.nn import parallel

DATA = os.environ["BARENET_DATA"]


@pytest.fixture(autouse=True)
def restore_threads():
    yield
    threads.cap(None)
    barenet.set_num_threads("auto")


def train_steps(model: nn.Sequential, shape: tuple[int, ...], steps: int = 4) -> dict:
    rng = np.random.default_rng(0)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    for _ in range(steps):
        x = rng.standard_normal((64, *shape)).astype(np.float32)
        y = rng.integers(0, 10, 64)
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
        opt.zero_grad()
    return model.state_dict()


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 256, rng=1), nn.ReLU(), nn.Linear(256, 10, rng=2))


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, rng=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, rng=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 6 * 6, 10, rng=3),
    )  # fmt: skip


@pytest.mark.parametrize("build,shape", [(mlp, (784,)), (cnn, (1, 28, 28))], ids=["mlp", "cnn"])
def test_weights_bit_identical_for_any_thread_count(build, shape, monkeypatch) -> None:
    # small tasks, so these small layers really are split and shared between threads
    monkeypatch.setattr(parallel, "SERIAL_MNK", 1 << 12)
    monkeypatch.setattr(parallel, "TASK_MNK", 1 << 14)
    monkeypatch.setattr(nn.conv, "BLOCK_BYTES", 1 << 14)
    monkeypatch.setattr(nn.conv, "DX_ROWS", 1)
    monkeypatch.setattr(parallel, "ELEMENTWISE_MIN", 1 << 8)  # ReLU, pooling split too
    monkeypatch.setattr(optim.optimizer, "PARTS_FROM", 1 << 6)  # optimizer steps in parts
    states = []
    for n in (1, 2, 3):
        barenet.set_num_threads(n)
        assert barenet.get_num_threads() == n
        model = build()
        model.input_grad = True  # the whole backward, conv dx included
        states.append(train_steps(model, shape))
    for other in states[1:]:
        for name, value in states[0].items():
            np.testing.assert_array_equal(other[name], value, err_msg=name)


def test_tasks_split_and_errors_reach_the_caller() -> None:
    barenet.set_num_threads(2)
    seen = []

    def boom() -> None:
        raise RuntimeError("task failed")

    with pytest.raises(RuntimeError, match="task failed"):
        parallel.run([lambda: seen.append(1), boom, lambda: seen.append(3)])
    assert sorted(seen) == [1, 3]  # the other tasks still ran
    assert parallel.split(10, 3) == [(0, 4), (4, 8), (8, 10)]
    assert parallel.split(100, 3, align=16) == [(0, 48), (48, 96), (96, 100)]
    assert parallel.n_tasks(parallel.SERIAL_MNK - 1) == 1
    assert parallel.n_tasks(parallel.SERIAL_MNK) == 2
    assert parallel.n_tasks(10**12) == parallel.MAX_TASKS
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 500))
    np.testing.assert_allclose(parallel.matmul(a, b), a @ b, rtol=1e-12)
    np.testing.assert_allclose(parallel.matmul(b.T, a.T), b.T @ a.T, rtol=1e-12)
    v, acc = rng.standard_normal(500), rng.standard_normal((300, 500))
    np.testing.assert_allclose(parallel.matmul(a, b, bias=v), a @ b + v, rtol=1e-12)
    want = acc + a @ b
    assert parallel.matmul(a, b, acc=acc) is acc
    np.testing.assert_allclose(acc, want, rtol=1e-12)
    assert parallel.n_tasks(3 * parallel.TASK_MNK) == 4  # even: two threads share equally


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
        lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-2, amsgrad=True),
        lambda ps: optim.AdamW(ps, lr=1e-2),
        lambda ps: optim.RMSprop(ps, lr=1e-2, momentum=0.5, centered=True, weight_decay=1e-2),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop"],
)
def test_optimizer_steps_in_parts_give_the_whole_update_bits(make, monkeypatch) -> None:
    monkeypatch.setattr(optim.optimizer, "PARTS_FROM", 1 << 6)
    results = []
    for n in (1, 2, 3):
        barenet.set_num_threads(n)
        rng = np.random.default_rng(7)
        params = [nn.Parameter(rng.standard_normal((37, 29)).astype(np.float32)),
                  nn.Parameter(rng.standard_normal(5).astype(np.float32))]  # fmt: skip
        opt = make(params)
        for _ in range(4):
            for p in params:
                p.grad[...] = rng.standard_normal(p.shape)
            opt.step()
        sd = opt.state_dict()
        results.append(([p.data.copy() for p in params], sd["state"]))
    for data, state in results[1:]:
        for got, want in zip(data, results[0][0], strict=True):
            np.testing.assert_array_equal(got, want)
        for i, entry in results[0][1].items():
            for key, want in entry.items():
                np.testing.assert_array_equal(state[i][key], want, err_msg=f"{i} {key}")
    assert results[0][1][0].get("step", 4) == 4  # counters advance once per step


def test_set_num_threads_validation_and_cap() -> None:
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(ValueError):
            barenet.set_num_threads(bad)
    barenet.set_num_threads(3)
    assert barenet.get_num_threads() == 3 and threads.get_setting() == 3
    threads.cap(1)  # a worker process: never more than one
    assert barenet.get_num_threads() == 1
    barenet.set_num_threads(4)
    assert barenet.get_num_threads() == 1
    barenet.set_num_threads("auto")
    assert barenet.get_num_threads() == 1 and threads.get_setting() == "auto"


def test_auto_keeps_the_fastest_and_rechecks_when_slower(monkeypatch) -> None:
    """Fake step times: 2 threads 10 ms, 1 thread 20 ms, then 2 threads collapse to 60 ms."""
    cost = {2: 0.010, 1: 0.020}
    auto = threads.AutoThreads([2, 1])
    now = 0.0

    def steps(k: int) -> None:
        nonlocal now
        for _ in range(k):
            now += cost[parallel.get_threads()]
            auto.tick(now)

    steps(2 * (threads.TRIAL_STEPS + 2))
    assert parallel.get_threads() == 2 and auto.best_time == pytest.approx(0.010)
    steps(threads.WINDOW)
    assert parallel.get_threads() == 2
    cost[2] = 0.060  # another process took a core
    steps(threads.WINDOW + 2 * (threads.TRIAL_STEPS + 2))
    assert parallel.get_threads() == 1
    assert auto.used[1] > 0 and auto.used[2] > 0


def test_auto_is_the_default_and_optimizer_steps_drive_it() -> None:
    assert threads.get_setting() == "auto"
    barenet.set_num_threads("auto")
    train_steps(mlp(), (784,), steps=3)
    assert sum(threads.usage().values()) == 3


def test_search_trial_config_retrained_with_barenet_train_gives_the_same_weights(
    tmp_path: Path,
) -> None:
    """Trials run in spawned workers capped at one thread; `barenet train` on a trial's own
    config.yaml (threads: auto, here 1 or 2) reproduces its weights bit for bit."""
    base = {
        "seed": 5,
        "model": {
            "type": "cnn",
            "blocks": [{"channels": 4, "kernel": 3, "pool": 2}, {"channels": 8, "kernel": 3}],
            "dense": [16, 10],
        },
        "optim": {"weight_decay": 1e-4},
        "train": {"epochs": 1, "batch_size": 64},
    }
    search = {
        "base_config": base,
        "subset": 0.02,
        "epochs": 1,
        "sampler": "grid",
        "space": {"optim.lr": [0.05, 0.02]},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(search))
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out), "--data-dir", DATA, "--workers", "2"]) == 0
    trial = out / "trials" / "trial_0001"
    metrics = yaml.safe_load((trial / "metrics.json").read_text())
    assert metrics["threads_used"] == {"1": metrics["epochs_run"] * metrics["steps_per_epoch"]}
    again = tmp_path / "again"
    args = ["train", str(trial / "config.yaml"), "--out", str(again), "--data-dir", DATA]
    assert main(args) == 0
    ours, _ = load_model_file(again / "model.safetensors")
    theirs, _ = load_model_file(trial / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    retrained = yaml.safe_load((again / "metrics.json").read_text())
    assert retrained["threads"] == "auto"
