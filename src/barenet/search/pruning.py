"""Optuna pruning for an objective of your own that trains with barenet's ``Trainer``, as
optuna-integration's ``KerasPruningCallback`` and ``PyTorchLightningPruningCallback`` do for
Keras and Lightning."""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from ..train.callbacks import Callback

__all__ = ["PruningCallback"]


class PruningCallback(Callback):
    """Report ``logs[monitor]`` to ``trial`` after every ``interval``-th epoch and raise
    ``optuna.TrialPruned`` when ``trial.should_prune()``.

    ``Trainer(..., callbacks=[PruningCallback(trial, "val_accuracy")]).fit(...)`` inside the
    objective; ``fit`` still runs every ``on_train_end`` (loggers, checkpoints) before the
    ``TrialPruned`` reaches ``study.optimize``, which records the trial as PRUNED. A monitor
    missing from the logs warns and reports nothing, as Optuna's callbacks do. Put it last in
    the list, so that the callbacks before it see the epoch at which it prunes.

    The step is barenet's epoch, counted from 1 as in the logs and ``barenet search`` (Optuna's
    Keras and Lightning callbacks report 0-based epochs): with
    ``MedianPruner(n_warmup_steps=k)`` a trial may be pruned from epoch ``k`` on.
    """

    def __init__(self, trial: optuna.Trial, monitor: str, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.trial = trial
        self.monitor = monitor
        self.interval = int(interval)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        if epoch % self.interval:
            return
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"The metric '{self.monitor}' is not in the logs for pruning "
                f"(available: {', '.join(sorted(logs))}).",
                stacklevel=2,
            )
            return
        self.report(float(value), epoch)

    def report(self, value: float, epoch: int, prune: bool = True) -> None:
        """Report ``value`` at step ``epoch``; with ``prune``, stop the trial if Optuna says so."""
        self.trial.report(value, epoch)
        if prune and self.trial.should_prune():
            raise optuna.TrialPruned(f"Trial was pruned at epoch {epoch}.")
