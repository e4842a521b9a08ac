"""scikit-learn's stopping rules for its MLP, as barenet callbacks."""

from __future__ import annotations

import math
from typing import Any

from ..train.callbacks import Callback


class NoImprovement(Callback):
    """scikit-learn's MLP stopping rule on the training loss: stop once it has failed to
    beat the best so far by ``tol`` for more than ``n_iter_no_change`` epochs in a row; the
    last weights are kept (no restore)."""

    def __init__(self, tol: float, n_iter_no_change: int) -> None:
        self.tol, self.n_iter_no_change = tol, n_iter_no_change

    def on_train_begin(self, trainer: Any) -> None:
        self.best, self.count = math.inf, 0

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        loss = logs["loss"]
        self.count = self.count + 1 if loss > self.best - self.tol else 0
        self.best = min(self.best, loss)
        if self.count > self.n_iter_no_change:
            trainer.stop_training = True


class NoValidationImprovement(Callback):
    """scikit-learn's rule with ``early_stopping=True``: the validation accuracy of each
    epoch (``scores``); stop once it has failed to beat the best by ``tol`` for more than
    ``n_iter_no_change`` epochs in a row, and end with the best epoch's weights."""

    def __init__(self, tol: float, n_iter_no_change: int) -> None:
        self.tol, self.n_iter_no_change = tol, n_iter_no_change

    def on_train_begin(self, trainer: Any) -> None:
        self.best, self.count, self.scores = -math.inf, 0, []
        self.best_weights: dict[str, Any] | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        score = float(logs["val_accuracy"])
        self.scores.append(score)
        self.count = self.count + 1 if score < self.best + self.tol else 0
        if score > self.best:
            self.best = score
            self.best_weights = {k: v.copy() for k, v in trainer.model.state_dict().items()}
        if self.n_iter_no_change and self.count > self.n_iter_no_change:
            trainer.stop_training = True

    def on_train_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.best_weights is not None:
            trainer.model.load_state_dict(self.best_weights)
