"""Trainer.fit / evaluate / predict on a small synthetic blob problem."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from barenet.checkpoint import load_into, load_model_file
from barenet.data import DataLoader
from barenet.nn import CrossEntropyLoss, Dropout, Linear, Module, ReLU, Sequential, softmax
from barenet.optim import SGD, ReduceLROnPlateau, StepLR, grad_norm
from barenet.train import (
    CSVLogger,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
    ProgressBar,
    Trainer,
    TrainingDiverged,
)

C, D = 3, 6


def blobs(n, seed):
    """n points in C well-separated Gaussian clusters in D dims (float32)."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(1234).standard_normal((C, D)) * 4.0
    y = rng.integers(0, C, n)
    x = (centers[y] + rng.standard_normal((n, D))).astype(np.float32)
    return x, y


def make_model(seed=0, dropout=0.0):
    rng = np.random.default_rng(seed)
    layers = [Linear(D, 16, rng=rng), ReLU()]
    if dropout:
        layers.append(Dropout(dropout, rng=rng))
    layers.append(Linear(16, C, rng=rng))
    return Sequential(*layers)


def make_loaders(seed=0, n_train=480, n_val=150, batch_size=32):
    xtr, ytr = blobs(n_train, seed)
    xva, yva = blobs(n_val, seed + 100)
    train = DataLoader(xtr, ytr, batch_size, shuffle=True, rng=np.random.default_rng(seed))
    val = DataLoader(xva, yva, 64)
    return train, val


def make_trainer(seed=0, lr=0.05, **kw):
    model = make_model(seed, kw.pop("dropout", 0.0))
    opt = SGD(model.parameters(), lr=lr, momentum=0.9)
    kw.setdefault("progress", False)
    return Trainer(model, CrossEntropyLoss(), opt, **kw)


KEYS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "grad_norm", "time"]


def test_learns_separable_problem_and_history_columns():
    trainer = make_trainer()
    train, val = make_loaders()
    seen = []
    trainer.callbacks.append(LambdaCallback(on_epoch_end=lambda t, e, logs: seen.append(logs)))
    history = trainer.fit(train, val, epochs=4)
    assert history is trainer.history and len(history) == 4
    assert history.epochs == seen
    cols = history.as_columns()
    assert list(cols) == KEYS
    assert all(len(v) == 4 for v in cols.values())
    assert cols["epoch"] == [1, 2, 3, 4]
    assert cols["val_accuracy"][-1] == 1.0
    assert cols["accuracy"][-1] >= 0.99
    assert cols["loss"][-1] < 0.5 * cols["loss"][0]
    assert all(t > 0 for t in cols["time"]) and all(g > 0 for g in cols["grad_norm"])
    assert cols["lr"] == [0.05] * 4
    assert trainer.stop_reason is None and not trainer.stop_training
    # The epoch's val metrics are evaluate()'s on the final weights.
    ev = trainer.evaluate(val)
    assert ev["loss"] == pytest.approx(cols["val_loss"][-1], rel=1e-12)
    assert trainer.model.training  # back in train mode after validation


def test_train_metrics_are_sample_weighted_means():
    # 100 samples in batches of 32: the short last batch (4) must count for 4 samples.
    x, y = blobs(100, 5)
    losses, sizes, correct = [], [], []

    def record(t, batch, logs):
        losses.append(logs["batch_loss"])
        sizes.append(logs["size"])

    class Loss(CrossEntropyLoss):  # sees each batch's training-mode logits
        def forward(self, logits, labels):
            correct.append(int((logits.argmax(1) == labels).sum()))
            return super().forward(logits, labels)

    model = make_model(1)
    cb = LambdaCallback(on_batch_end=record)
    trainer = Trainer(
        model, Loss(), SGD(model.parameters(), lr=0.01), callbacks=[cb], progress=False
    )
    logs = trainer.fit(DataLoader(x, y, 32), epochs=1).epochs[0]
    assert sizes == [32, 32, 32, 4]
    assert logs["loss"] == pytest.approx(np.dot(losses, sizes) / 100, rel=1e-12)
    assert logs["accuracy"] == pytest.approx(sum(correct) / 100, rel=1e-12)


def test_lr_logged_follows_iteration_schedule():
    trainer = make_trainer(lr=0.1)
    train, val = make_loaders()
    steps = len(train)
    sched = StepLR(trainer.optimizer, step_size=steps, gamma=0.5)
    trainer.schedule = sched
    hist = trainer.fit(train, val, epochs=3)
    assert sched.last_step == 3 * steps  # stepped once per batch
    assert hist["lr"] == [sched.lr_at(e * steps) for e in range(3)]
    assert hist["lr"] == pytest.approx([0.1, 0.05, 0.025])


class SpyPlateau(ReduceLROnPlateau):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = []

    def step(self, metric):
        self.seen.append(metric)
        return super().step(metric)


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy"])
def test_plateau_stepped_per_epoch_with_monitored_metric(monitor):
    trainer = make_trainer(lr=0.1, plateau_monitor=monitor)
    sched = SpyPlateau(
        trainer.optimizer, patience=0, factor=0.5, threshold=1e9, threshold_mode="abs"
    )
    trainer.schedule = sched
    train, val = make_loaders()
    hist = trainer.fit(train, val, epochs=3)
    assert sched.seen == hist[monitor]
    # Only epoch 1 counts as an improvement: the lr is halved after epochs 2, 3, ...
    assert hist["lr"] == pytest.approx([0.1, 0.1, 0.05])


def test_plateau_without_val_loader_falls_back_to_train_loss():
    trainer = make_trainer()
    trainer.schedule = sched = SpyPlateau(trainer.optimizer)
    train, _ = make_loaders()
    with pytest.warns(UserWarning, match="'loss'"):
        hist = trainer.fit(train, epochs=2)
    assert sched.seen == hist["loss"]
    assert "val_loss" not in hist.keys()


def test_grad_clipping_applied():
    max_norm = 0.05
    trainer = make_trainer(clip_grad_norm=max_norm)
    applied = []
    real_step = trainer.optimizer.step

    def step():  # the gradient the optimizer actually uses
        applied.append(grad_norm(trainer.model.parameters()))
        real_step()

    trainer.optimizer.step = step
    train, _ = make_loaders()
    hist = trainer.fit(train, epochs=2)
    assert len(applied) == 2 * len(train)
    assert max(applied) <= max_norm * (1 + 1e-5)
    assert min(hist["grad_norm"]) > max_norm  # logged norm is pre-clipping
    with pytest.raises(ValueError):
        make_trainer(clip_grad_norm=0.0)


class PoisonLoader:
    """Wraps a loader; puts a NaN into one batch at (epoch, batch), both 1-based."""

    def __init__(self, base, epoch, batch):
        self.base, self.at, self.epoch = base, (epoch, batch), 0

    def __len__(self):
        return len(self.base)

    def __iter__(self):
        self.epoch += 1
        for b, (xb, yb) in enumerate(self.base, start=1):
            if (self.epoch, b) == self.at:
                xb = xb.copy()
                xb[0, 0] = np.nan
            yield xb, yb


def test_nan_guard_raises_after_callbacks_and_keeps_last_good(tmp_path):
    trainer = make_trainer()
    train, val = make_loaders()
    snapshots, ended = {}, []

    def snap(t, batch, logs):
        snapshots[batch] = t.model.state_dict()

    ckpt = tmp_path / "best.safetensors"
    trainer.callbacks += [
        ModelCheckpoint(ckpt, monitor="val_loss"),
        CSVLogger(tmp_path / "history.csv"),
        JSONLogger(tmp_path / "history.json"),
        LambdaCallback(
            on_epoch_begin=lambda t, e: snapshots.clear(),
            on_batch_end=snap,
            on_train_end=lambda t, logs: ended.append((len(t.history), logs.get("epoch"))),
        ),
    ]
    msg = "loss became nan at epoch 3, batch 5; try a lower learning rate"
    with pytest.raises(TrainingDiverged, match=msg):
        trainer.fit(PoisonLoader(train, 3, 5), val, epochs=6)
    assert isinstance(TrainingDiverged("x"), RuntimeError)
    assert trainer.stop_reason.startswith(msg) and trainer.stop_training
    assert ended == [(2, 2)]  # on_train_end ran, with the two complete epochs
    assert trainer.history["epoch"] == [1, 2]
    # The poisoned batch's update was not applied: weights are those after batch 4.
    for k, v in trainer.model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[4][k])
        assert np.isfinite(v).all()
    state, meta = load_model_file(ckpt)
    assert meta["epoch"] in (1, 2) and all(np.isfinite(a).all() for a in state.values())
    load_into(make_model(9), ckpt)
    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r["loss"])) for r in rows)


def test_huge_lr_diverges():
    trainer = make_trainer(lr=1e12)
    train, _ = make_loaders()
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="became (nan|inf)"):
        trainer.fit(train, epochs=20)
    assert len(trainer.history) < 20


class Pruned(Exception):
    pass


def test_callback_exception_propagates_after_on_train_end(tmp_path):
    def prune(t, epoch, logs):
        if epoch == 2:
            raise Pruned("trial pruned")

    ended = []
    trainer = make_trainer(
        callbacks=[
            JSONLogger(tmp_path / "h.json"),
            LambdaCallback(on_epoch_end=prune),
            LambdaCallback(on_train_end=lambda t, logs: ended.append(logs["epoch"])),
        ]
    )
    train, val = make_loaders()
    with pytest.raises(Pruned):
        trainer.fit(train, val, epochs=5)
    assert ended == [2] and len(trainer.history) == 2
    assert "Pruned" in trainer.stop_reason
    from barenet.fileio import load_json

    assert load_json(tmp_path / "h.json")["stop_reason"] == trainer.stop_reason


def test_a_fit_ended_before_its_first_epoch_keeps_the_earlier_json_history(tmp_path):
    """JSONLogger wrote at train end whatever it had: a fit stopped before its first epoch
    (a callback raising, a bad resume) replaced an earlier history.json with no epochs."""
    from barenet.fileio import load_json

    path = tmp_path / "h.json"
    train, val = make_loaders()
    make_trainer(callbacks=[JSONLogger(path)]).fit(train, val, epochs=2)
    before = path.read_bytes()

    def refuse(t, epoch):
        raise Pruned("stopped before training")

    trainer = make_trainer(callbacks=[JSONLogger(path), LambdaCallback(on_epoch_begin=refuse)])
    with pytest.raises(Pruned):
        trainer.fit(train, val, epochs=2)
    assert path.read_bytes() == before and len(load_json(path)["epochs"]) == 2


def test_callback_can_stop_training():
    def stop(t, epoch, logs):
        if epoch == 2:
            t.stop_training = True

    trainer = make_trainer(callbacks=[LambdaCallback(on_epoch_end=stop)])
    train, _ = make_loaders()
    hist = trainer.fit(train, epochs=5)
    assert hist["epoch"] == [1, 2]
    assert "epoch 2" in trainer.stop_reason
    # A second fit starts afresh.
    trainer.callbacks = []
    assert len(trainer.fit(train, epochs=3)) == 3 and trainer.stop_reason is None


def test_progress_flag():
    assert not any(isinstance(c, ProgressBar) for c in make_trainer(progress=False).callbacks)
    t = make_trainer(progress=True)
    assert sum(isinstance(c, ProgressBar) for c in t.callbacks) == 1


class ModeSpy(Module):
    """Records (batch size, training flag) of every forward call."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, x):
        self.calls.append((len(x), self.training))
        return self.inner.forward(x)

    def backward(self, g):
        return self.inner.backward(g)


@pytest.mark.parametrize("start_training", [True, False])
def test_evaluate_matches_brute_force(start_training):
    model = ModeSpy(make_model(3, dropout=0.5))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), progress=False)
    x, y = blobs(150, 7)
    model.train(start_training)
    ev = trainer.evaluate(DataLoader(x, y, 64))
    assert model.training is start_training  # mode restored
    assert model.calls == [(64, False), (64, False), (22, False)]  # batched, eval mode
    model.eval()
    logits = model.inner.forward(x)  # whole set at once, as the reference
    pred = logits.argmax(1)
    brute = np.zeros((C, C), dtype=int)
    for t, p in zip(y, pred, strict=True):
        brute[t, p] += 1
    np.testing.assert_array_equal(ev["confusion_matrix"], brute)
    assert ev["n"] == 150
    assert ev["accuracy"] == pytest.approx(np.mean(pred == y))
    ref_loss = -np.mean(np.log(softmax(logits.astype(np.float64))[np.arange(150), y]))
    assert ev["loss"] == pytest.approx(ref_loss, rel=1e-5)
    per_class = [brute[c, c] / brute[c].sum() for c in range(C)]
    assert ev["per_class_accuracy"] == pytest.approx(per_class)


def test_predict_concatenates_batches():
    trainer = make_trainer(seed=4)
    x, y = blobs(70, 2)
    logits, labels = trainer.predict(DataLoader(x, y, 32))
    trainer.model.eval()
    np.testing.assert_allclose(logits, trainer.model.forward(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, y)
    probs, _ = trainer.predict(DataLoader(x, y, 32), probs=True)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert probs.shape == (70, C)


def test_same_seed_bit_identical_history():
    def run():
        trainer = make_trainer(seed=11, dropout=0.2)
        train, val = make_loaders(seed=11)
        hist = trainer.fit(train, val, epochs=3)
        return hist, trainer.model.state_dict()

    (h1, w1), (h2, w2) = run(), run()
    for key in KEYS:
        if key != "time":
            assert h1[key] == h2[key], key
    for k in w1:
        assert w1[k].tobytes() == w2[k].tobytes()
    # And a different seed does differ (the comparison above can fail).
    trainer = make_trainer(seed=12, dropout=0.2)
    train, val = make_loaders(seed=11)
    assert trainer.fit(train, val, epochs=1)["loss"] != h1["loss"][:1]
