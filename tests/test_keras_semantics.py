"""The Keras-style parts behave as Keras 3's for the same arguments.

``keras_early_stopping`` transcribes Keras 3.15's ``EarlyStopping.on_epoch_end`` /
``on_train_end`` (keras/src/callbacks/early_stopping.py, monitor_callback.py): both are
driven on the same metric sequences and must stop at the same epoch and keep the same
weights. Keras counts epochs from 0, barenet from 1 (as its logs and files show them).
"""

from __future__ import annotations

import csv
import itertools
import random

import pytest
from test_callbacks import drive, recorder
from test_trainer import make_loaders, make_trainer

from barenet.train import Callback, CSVLogger, EarlyStopping, LambdaCallback, ModelCheckpoint


def keras_early_stopping(values, patience=0, min_delta=0.0, mode="min", baseline=None,
                         restore_best_weights=False, start_from_epoch=0):  # fmt: skip
    """(epochs run, epoch whose weights the model ends with) under Keras 3's rule; the
    weights of epoch e are e, so the second number says which epoch's were kept."""
    delta = abs(min_delta) * (-1 if mode == "min" else 1)

    def is_improvement(value, reference):
        if reference is None:
            return True
        return value - delta < reference if mode == "min" else value - delta > reference

    wait, best, best_weights, weights, ran = 0, None, None, None, 0
    for epoch, current in enumerate(values):  # 0-based, as Keras
        weights, ran = epoch + 1, epoch + 1
        if epoch < start_from_epoch:
            continue
        if restore_best_weights and best_weights is None:
            best_weights = weights
        wait += 1
        if is_improvement(current, best):
            best = current
            if restore_best_weights:
                best_weights = weights
            if baseline is None or is_improvement(current, baseline):
                wait = 0
            continue
        if wait >= patience and epoch > 0:
            break
    if restore_best_weights and best_weights is not None:
        weights = best_weights
    return ran, weights


def barenet_early_stopping(values, **kw):
    kw.setdefault("restore_best_weights", False)
    kw.setdefault("patience", 0)

    def set_weights(trainer, epoch):
        trainer.model.weight.data.fill(epoch)  # "training" writes the epoch into the weights

    last, trainer = drive(EarlyStopping(**kw), values, on_epoch=set_weights)
    return last, int(trainer.model.weight.data.flat[0])


SETTINGS = dict(
    patience=[0, 1, 3],
    min_delta=[0.0, 0.05, -0.05],
    mode=["min", "max"],
    restore_best_weights=[True, False],
    baseline=[None, 0.5, 0.2],
    start_from_epoch=[0, 1, 3],
)


def test_early_stopping_matches_keras():
    rng = random.Random(0)
    for combo in itertools.product(*SETTINGS.values()):
        kw = dict(zip(SETTINGS, combo, strict=True))
        for _ in range(20):
            values = [rng.uniform(0, 1) for _ in range(rng.randint(1, 9))]
            want = keras_early_stopping(values, **kw)
            assert barenet_early_stopping(values, **kw) == want, (kw, values)


def test_baseline_keeps_counting_until_beaten():
    # Improving epochs that stay above the baseline do not reset the wait (Keras).
    values = [0.9, 0.8, 0.85, 0.3]
    assert barenet_early_stopping(values, patience=2, baseline=0.5) == (3, 3)
    assert barenet_early_stopping(values, patience=2) == (4, 4)


def test_start_from_epoch_ignores_the_first_epochs():
    values = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert barenet_early_stopping(values, patience=1, start_from_epoch=2) == (4, 4)
    assert barenet_early_stopping(values, patience=1) == (2, 2)


def test_never_stops_at_the_first_epoch():
    # A first value that is not an improvement (NaN) does not stop training at epoch 1.
    assert barenet_early_stopping([float("nan"), 0.5, 0.4], patience=0) == (3, 3)


def test_restores_the_first_monitored_epoch_when_nothing_improves():
    values = [float("nan")] * 4
    assert barenet_early_stopping(values, patience=2, restore_best_weights=True) == (2, 1)


def test_verbose_prints_what_keras_prints(capsys):
    barenet_early_stopping([0.5, 0.3, 0.4, 0.6], patience=2, restore_best_weights=True, verbose=1)
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 4: early stopping",
        "Restoring model weights from the end of the best epoch: 2.",
    ]


# -- ModelCheckpoint ---------------------------------------------------------------------
def test_model_checkpoint_initial_value_threshold(tmp_path):
    calls, save_fn = recorder()
    mc = ModelCheckpoint(tmp_path / "m.safetensors", save_fn=save_fn, initial_value_threshold=0.65)
    drive(mc, [0.5, 0.7, 0.6, 0.8], key="val_accuracy")
    assert [m["epoch"] for _, m in calls] == [2, 4]


def test_model_checkpoint_save_freq_counts_batches_across_epochs(tmp_path):
    calls, save_fn = recorder()
    mc = ModelCheckpoint(
        tmp_path / "e{epoch}-b{batch}.safetensors",
        save_best_only=False,
        save_fn=save_fn,
        save_freq=3,
    )
    trainer = make_trainer(callbacks=[mc])
    train, val = make_loaders(n_train=128)  # 4 batches of 32 per epoch
    trainer.fit(train, val, epochs=2)
    assert [p.rsplit("/", 1)[1] for p, _ in calls] == ["e1-b3.safetensors", "e2-b2.safetensors"]
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "x", save_freq="batch")


@pytest.mark.parametrize("path", ["b{batch}.st", "{}.st", "{0}.st", "e{epoch.st"])
def test_checkpoint_path_that_can_never_be_filled_is_refused_before_training(tmp_path, path):
    # {batch} with save_freq="epoch" was a KeyError after the first epoch's training
    with pytest.raises(ValueError, match="ModelCheckpoint path"):
        ModelCheckpoint(str(tmp_path / path), save_best_only=False)


@pytest.mark.parametrize(("path", "save_freq"), [("{val_acc}.st", "epoch"), ("{val_loss}.st", 2)])
def test_checkpoint_path_naming_a_key_the_logs_lack_is_one_value_error(tmp_path, path, save_freq):
    mc = ModelCheckpoint(str(tmp_path / path), save_best_only=False, save_freq=save_freq)
    trainer = make_trainer(callbacks=[mc])
    with pytest.raises(ValueError, match="does not fit the logs .*'loss'.*KeyError"):
        trainer.fit(*make_loaders(n_train=128), epochs=1)  # was a bare KeyError('val_acc')


# -- CSVLogger ---------------------------------------------------------------------------
def test_csv_logger_append_and_separator(tmp_path):
    path = tmp_path / "h.csv"
    drive(CSVLogger(path, separator=";"), [0.5, 0.4])
    drive(CSVLogger(path, separator=";", append=True), [0.3])  # a second fit goes on
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert [(r["epoch"], float(r["val_loss"])) for r in rows] == [
        ("1", 0.5),
        ("2", 0.4),
        ("1", 0.3),
    ]
    drive(CSVLogger(path, separator=";"), [0.2])  # append=False starts the file anew
    with open(path, newline="") as f:
        assert len(list(csv.DictReader(f, delimiter=";"))) == 1


# -- the trainer: hooks, History --------------------------------------------------------
def test_on_train_batch_end_is_called_by_fit():
    class Counter(Callback):  # Keras' name for the batch hook
        def __init__(self):
            self.batches = []

        def on_train_batch_end(self, trainer, batch, logs):
            self.batches.append(batch)

    counter = Counter()
    lam = []
    trainer = make_trainer(
        callbacks=[counter, LambdaCallback(on_train_batch_end=lambda t, b, logs: lam.append(b))]
    )
    train, val = make_loaders(n_train=96)
    trainer.fit(train, val, epochs=2)
    assert counter.batches == [1, 2, 3, 1, 2, 3] and lam == counter.batches


def test_history_history_is_a_dict_of_lists():
    trainer = make_trainer()
    history = trainer.fit(*make_loaders(), epochs=3)
    assert isinstance(history.history, dict)
    assert history.history["val_loss"] == [e["val_loss"] for e in history.epochs]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(history.history)
    assert all(len(v) == 3 for v in history.history.values())


def test_stop_training_set_by_a_callback_stops_after_the_epoch():
    def stop(trainer, epoch, logs):
        trainer.stop_training = epoch == 2

    trainer = make_trainer(callbacks=[LambdaCallback(on_epoch_end=stop)])
    history = trainer.fit(*make_loaders(), epochs=5)
    assert len(history) == 2 and trainer.stop_training


# -- the arguments: a Keras call ports as written ----------------------------------------------
def test_early_stopping_takes_keras_arguments_in_keras_order():
    # The README says the arguments are Keras', (monitor, min_delta, patience, verbose, mode,
    # baseline, restore_best_weights, start_from_epoch); they were in another order, so
    # Keras' EarlyStopping("val_loss", 0.01, 3) failed with "mode must be ..., got 0.01".
    import inspect

    keras_order = ["monitor", "min_delta", "patience", "verbose", "mode", "baseline",
                   "restore_best_weights", "start_from_epoch"]  # fmt: skip
    assert list(inspect.signature(EarlyStopping).parameters) == keras_order
    es = EarlyStopping("val_accuracy", 0.01, 3, 0, "max", 0.5, False, 2)
    assert (es.monitor, es._m.min_delta, es.patience, es.mode) == ("val_accuracy", 0.01, 3, "max")
    assert (es.baseline, es.restore_best_weights, es.start_from_epoch) == (0.5, False, 2)


def test_model_checkpoint_and_lambda_take_no_positional_keras_call(tmp_path):
    # Keras' ModelCheckpoint(path, "val_loss", 1, True) has verbose third (barenet has none)
    # and LambdaCallback's first is on_epoch_begin: refused, not read as another argument.
    with pytest.raises(TypeError, match="positional"):
        ModelCheckpoint(tmp_path / "m.safetensors", "val_loss", 1, True)
    with pytest.raises(TypeError, match="positional"):
        LambdaCallback(lambda t, e: None)
    mc = ModelCheckpoint(tmp_path / "m.safetensors", "val_loss", mode="min")
    assert (mc.monitor, mc.mode, mc.save_best_only) == ("val_loss", "min", True)
