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
