"""Callbacks driven directly with a fake trainer and scripted metric sequences."""

from __future__ import annotations

import csv
import math
from types import SimpleNamespace

import numpy as np
import pytest

from barenet.checkpoint import load_model_file
from barenet.fileio import load_json
from barenet.nn import Linear
from barenet.train.callbacks import (
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
    resolve_mode,
)


def fake_trainer(seed=0):
    model = Linear(2, 2, rng=np.random.default_rng(seed))
    return SimpleNamespace(
        model=model, stop_training=False, stop_reason=None, epochs=10, steps_per_epoch=5
    )


def drive(cb, values, key="val_loss", trainer=None, on_epoch=None):
    """Run the epoch hooks over a metric sequence as fit would; return the last epoch run."""
    trainer = trainer or fake_trainer()
    cb.on_train_begin(trainer)
    epoch = 0
    for epoch, v in enumerate(values, start=1):
        cb.on_epoch_begin(trainer, epoch)
        if on_epoch is not None:
            on_epoch(trainer, epoch)
        cb.on_epoch_end(trainer, epoch, {"epoch": epoch, key: v})
        if trainer.stop_training:
            break
    cb.on_train_end(trainer, {})
    return epoch, trainer


# -- EarlyStopping ----------------------------------------------------------------
def test_early_stopping_stops_after_patience():
    es = EarlyStopping(patience=3)
    last, trainer = drive(es, [1.0, 0.8, 0.9, 0.85, 0.81, 0.7, 0.6])
    assert last == 5 and es.stopped_epoch == 5
    assert trainer.stop_training
    assert es.best == 0.8 and es.best_epoch == 2
    assert "val_loss" in trainer.stop_reason and "epoch 5" in trainer.stop_reason


def test_early_stopping_counter_resets_on_improvement():
    # Two bad epochs, an improvement, then three bad: a counter that never resets
    # would stop at epoch 5; Keras semantics stop at epoch 7.
    es = EarlyStopping(patience=3)
    last, _ = drive(es, [1.0, 1.1, 1.2, 0.9, 1.0, 1.1, 1.2, 0.1])
    assert last == 7 and es.best_epoch == 4


def test_early_stopping_min_delta():
    values = [1.0, 0.95, 0.9, 0.85, 0.8]
    last, _ = drive(EarlyStopping(patience=2), values)
    assert last == 5  # every epoch improves a little
    es = EarlyStopping(patience=2, min_delta=0.1)
    last, _ = drive(es, values)
    assert last == 3 and es.best_epoch == 1  # 0.95 and 0.9 are not < 1.0 - 0.1
    es = EarlyStopping(patience=2, min_delta=0.1)
    last, _ = drive(es, [1.0, 0.95, 0.89, 0.85, 0.84, 0.83])
    assert es.best_epoch == 3 and last == 5


def test_early_stopping_max_mode_and_auto():
    assert resolve_mode("val_accuracy", "auto") == "max"
    assert resolve_mode("val_loss", "auto") == "min"
    es = EarlyStopping(monitor="val_accuracy", patience=1)
    assert es.mode == "max"
    last, _ = drive(es, [0.5, 0.6, 0.55, 0.9], key="val_accuracy")
    assert last == 3 and es.best == 0.6
    with pytest.raises(ValueError):
        EarlyStopping(mode="up")


def test_early_stopping_nan_never_improves():
    es = EarlyStopping(patience=2)
    last, _ = drive(es, [1.0, math.nan, math.nan, 0.5])
    assert last == 3 and es.best == 1.0


@pytest.mark.parametrize("stops_early", [True, False])
def test_early_stopping_restores_best_weights(stops_early):
    values = [0.5, 0.3, 0.4, 0.6, 0.7] if stops_early else [0.5, 0.3, 0.4]

    def set_weights(trainer, epoch):
        trainer.model.weight.data.fill(epoch)  # "training" changes the weights each epoch

    es = EarlyStopping(patience=2)
    last, trainer = drive(es, values, on_epoch=set_weights)
    assert trainer.stop_training is stops_early
    assert last == (4 if stops_early else 3)
    assert np.all(trainer.model.weight.data == 2)  # epoch 2 was best

    es = EarlyStopping(patience=2, restore_best_weights=False)
    last, trainer = drive(es, values, on_epoch=set_weights)
    assert np.all(trainer.model.weight.data == last)


def test_early_stopping_reused_across_fits():
    es = EarlyStopping(patience=1)
    drive(es, [1.0, 2.0])
    last, _ = drive(es, [5.0, 4.0, 3.0])  # state reset by on_train_begin
    assert last == 3 and es.best == 3.0 and es.stopped_epoch == 0


def test_missing_monitor_warns_and_ignores():
    es = EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="val_loss"):
        last, trainer = drive(es, [1.0, 2.0, 3.0], key="loss")
    assert last == 3 and not trainer.stop_training


# -- ModelCheckpoint ----------------------------------------------------------------
def recorder():
    calls = []

    def save_fn(path, model, metadata):
        calls.append((str(path), metadata))

    return calls, save_fn


def test_model_checkpoint_saves_only_on_improvement(tmp_path):
    calls, save_fn = recorder()
    mc = ModelCheckpoint(tmp_path / "best.safetensors", save_fn=save_fn)
    assert mc.mode == "max"
    drive(mc, [0.5, 0.7, 0.6, 0.7, 0.8], key="val_accuracy")
    assert [m["epoch"] for _, m in calls] == [1, 2, 5]
    assert [m["monitor_value"] for _, m in calls] == [0.5, 0.7, 0.8]
    assert all(m["monitor"] == "val_accuracy" for _, m in calls)
    assert calls[-1][1]["logs"] == {"epoch": 5, "val_accuracy": 0.8}
    assert mc.best_epoch == 5 and mc.last_saved == tmp_path / "best.safetensors"


def test_model_checkpoint_every_epoch_with_template(tmp_path):
    calls, save_fn = recorder()
    mc = ModelCheckpoint(
        tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.safetensors",
        monitor="val_loss",
        save_best_only=False,
        save_fn=save_fn,
        extra_metadata={"config": {"lr": 0.1}},
    )
    drive(mc, [0.5, 0.7, 0.25])
    names = [p.rsplit("/", 1)[1] for p, _ in calls]
    assert names == [
        "ckpt-01-0.50.safetensors",
        "ckpt-02-0.70.safetensors",
        "ckpt-03-0.25.safetensors",
    ]
    assert all(m["config"] == {"lr": 0.1} for _, m in calls)


def test_model_checkpoint_default_writes_loadable_file(tmp_path):
    path = tmp_path / "run" / "best.safetensors"
    mc = ModelCheckpoint(path, monitor="val_loss")

    def perturb(trainer, epoch):
        trainer.model.weight.data += 1.0

    _, trainer = drive(mc, [0.9, 0.5, 0.6], on_epoch=perturb)
    state, meta = load_model_file(path)
    assert meta["epoch"] == 2 and meta["monitor_value"] == 0.5
    # The file holds epoch-2 weights: the model has moved on by one more +1.
    np.testing.assert_allclose(state["weight"] + 1.0, trainer.model.weight.data)


# -- loggers ----------------------------------------------------------------
ROWS = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.5, "lr": 0.1, "time": 1.25},
    {"epoch": 2, "loss": 0.123456789012345, "accuracy": 0.75, "lr": 0.05, "time": 1.0},
    {"epoch": 3, "loss": 0.1, "accuracy": 0.8, "lr": 0.05, "time": 1.0, "val_loss": 0.2},
]


def run_rows(cb, trainer=None, after_each=None):
    trainer = trainer or fake_trainer()
    cb.on_train_begin(trainer)
    for row in ROWS:
        cb.on_epoch_end(trainer, row["epoch"], dict(row))
        if after_each:
            after_each(row)
    trainer.stop_reason = "early stopping at epoch 3"
    cb.on_train_end(trainer, ROWS[-1])


def test_csv_logger(tmp_path):
    path = tmp_path / "history.csv"
    seen = []

    def check(row):  # the file is complete after every epoch
        with open(path, newline="") as f:
            seen.append(len(list(csv.DictReader(f))))

    run_rows(CSVLogger(path), after_each=check)
    assert seen == [1, 2, 3]
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["epoch", "loss", "accuracy", "lr", "time", "val_loss"]
    for got, want in zip(rows, ROWS, strict=True):
        for k in reader.fieldnames:
            if k in want:
                assert float(got[k]) == want[k]  # full precision survives
            else:
                assert got[k] == ""
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]


def test_json_logger(tmp_path):
    path = tmp_path / "history.json"
    counts = []
    run_rows(JSONLogger(path), after_each=lambda row: counts.append(len(load_json(path)["epochs"])))
    assert counts == [1, 2, 3]
    data = load_json(path)
    assert data["epochs"] == ROWS
    assert data["stop_reason"] == "early stopping at epoch 3"


def test_lambda_callback():
    events = []
    cb = LambdaCallback(
        on_train_begin=lambda t: events.append("begin"),
        on_epoch_end=lambda t, e, logs: events.append((e, logs["val_loss"])),
        on_train_end=lambda t, logs: events.append("end"),
    )
    drive(cb, [0.3, 0.2])
    assert events == ["begin", (1, 0.3), (2, 0.2), "end"]
    assert "on_batch_end" not in vars(cb)  # absent hooks stay the base no-ops
