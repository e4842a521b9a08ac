"""Keras-style training callbacks.

Hooks, all optional, called by ``Trainer.fit`` in this order::

    on_train_begin(trainer)
      on_epoch_begin(trainer, epoch)                # epoch is 1-based
        on_train_batch_end(trainer, batch, logs)    # batch is 1-based within the epoch
      on_epoch_end(trainer, epoch, logs)            # logs: the epoch's history row
    on_train_end(trainer, logs)                     # logs: the last complete epoch's row, or {}

As in Keras, ``on_train_batch_end`` calls ``on_batch_end`` unless overridden, so either name
works. Unlike Keras, every hook gets the trainer first (Keras callbacks read ``self.model``),
and epochs and batches count from 1, as the logs and files show them.

A callback stops training by setting ``trainer.stop_training = True`` (Keras'
``self.model.stop_training``; it may explain why in ``trainer.stop_reason``). It may also
abort by raising (e.g. ``optuna.TrialPruned``): ``fit`` then still calls every callback's
``on_train_end`` before re-raising, so loggers and checkpoints are final.
Callbacks only touch ``trainer.model``, ``trainer.stop_training`` and
``trainer.stop_reason`` (plus ``epochs``/``steps_per_epoch`` for display), so
tests can drive them with a plain namespace object.

A callback that carries something from one epoch to the next (a counter, best weights,
logged rows) returns it from ``state_dict()`` and takes it back in ``load_state_dict()``:
``Trainer.fit(state_file=...)`` saves it with the rest of the training state after every
epoch, and ``fit(resume_from=...)`` restores it after ``on_train_begin`` (``resume.py``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "JSONLogger",
    "LambdaCallback",
    "ModelCheckpoint",
    "resolve_mode",
]

Logs = dict[str, Any]


class Callback:
    """Base class: every hook is a no-op."""

    def on_train_begin(self, trainer: Any) -> None:
        pass

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        pass

    def on_train_batch_end(self, trainer: Any, batch: int, logs: Logs) -> None:
        """Called after every optimizer step; keep it cheap. ``logs`` holds the running
        epoch means ``loss``/``accuracy``, ``batch_loss`` and ``size``. Calls
        ``on_batch_end`` (Keras' older name) unless overridden."""
        self.on_batch_end(trainer, batch, logs)

    def on_batch_end(self, trainer: Any, batch: int, logs: Logs) -> None:
        """See ``on_train_batch_end``."""

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        pass

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """What this callback carries from one epoch to the next (arrays allowed), saved in
        the training state so a resumed ``fit`` continues it. Stateless callbacks keep {}."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` (called after ``on_train_begin``)."""


def overrides_batch_hook(cb: Callback) -> bool:
    """Whether ``cb`` does something per batch (else the trainer skips it there)."""
    names = ("on_train_batch_end", "on_batch_end")
    return any(n in vars(cb) or getattr(type(cb), n) is not getattr(Callback, n) for n in names)


_HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_end",
    "on_batch_end",
    "on_epoch_end",
    "on_train_end",
)


class LambdaCallback(Callback):
    """A callback from plain functions with the hooks' signatures, e.g.
    ``LambdaCallback(on_epoch_end=lambda t, e, logs: print(e, logs["loss"]))``. Keyword
    arguments only: Keras' first positional one is ``on_epoch_begin``, barenet's hooks were
    in another order."""

    def __init__(
        self,
        *,
        on_train_begin: Callable[..., None] | None = None,
        on_epoch_begin: Callable[..., None] | None = None,
        on_batch_end: Callable[..., None] | None = None,
        on_epoch_end: Callable[..., None] | None = None,
        on_train_end: Callable[..., None] | None = None,
        on_train_batch_end: Callable[..., None] | None = None,
    ) -> None:
        given = locals()  # the arguments, by hook name
        # Only given hooks shadow the no-ops, so the trainer can tell that an
        # absent batch hook costs nothing per batch.
        for name in _HOOKS:
            if given[name] is not None:
                setattr(self, name, given[name])


def resolve_mode(monitor: str, mode: str) -> str:
    """``"auto"`` -> ``"max"`` for accuracy-like names (acc, auc, f1, precision, recall), else
    ``"min"``."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.lower()
    return "max" if any(k in name for k in ("acc", "auc", "f1", "precision", "recall")) else "min"


class _Monitor:
    """Best-so-far tracking shared by EarlyStopping and ModelCheckpoint."""

    def __init__(self, monitor: str, mode: str, min_delta: float, start: float | None) -> None:
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = abs(float(min_delta))  # Keras: the sign follows the mode
        self.start = start
        self._warned = False
        self.reset()

    def reset(self) -> None:
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = worst if self.start is None else float(self.start)
        self.best_epoch: int | None = None

    def value(self, logs: Logs, who: str) -> float | None:
        value = logs.get(self.monitor)
        if value is None:
            if not self._warned:
                warnings.warn(
                    f"{who}: metric '{self.monitor}' is not in the logs "
                    f"(available: {', '.join(sorted(logs))}); skipping",
                    stacklevel=3,
                )
                self._warned = True
            return None
        return float(value)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])

    def improved(self, value: float, reference: float | None = None) -> bool:
        """``value`` beats ``reference`` (default: the best so far) by more than min_delta.
        NaN compares False: a diverged metric never counts as an improvement."""
        ref = self.best if reference is None else reference
        if self.mode == "min":
            return value + self.min_delta < ref
        return value - self.min_delta > ref


class _MonitoredCallback(Callback):
    """A callback that tracks the best value of one logged metric (in ``self._m``)."""

    _m: _Monitor

    @property
    def best(self) -> float:
        return self._m.best

    @property
    def best_epoch(self) -> int | None:
        return self._m.best_epoch


class EarlyStopping(_MonitoredCallback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; Keras 3's rule.

    Improvement means ``value < best - min_delta`` (mode ``min``) or
    ``value > best + min_delta`` (``max``; the sign of ``min_delta`` is ignored, as in
    Keras). Each monitored epoch adds one to ``wait``; an improvement sets it back to 0
    (with a ``baseline``, only an improvement that also beats the baseline does), and
    training stops at an epoch that does not improve once ``wait >= patience`` (never at
    epoch 1). The first ``start_from_epoch`` epochs are not monitored. With
    ``restore_best_weights`` the model gets the best epoch's weights back in
    ``on_train_end`` whether or not training stopped early (Keras 3 behaviour).

    The arguments are Keras 3's, in its order (so positional calls port too). Differences
    from Keras: ``patience=5`` and ``restore_best_weights=True`` by default
    (Keras: 0 and False); a NaN is never an improvement, not even the first value (Keras
    takes a first NaN as the best and then never improves on it).

    Attributes: ``best``, ``best_epoch``, ``wait``, ``stopped_epoch`` (0 if never).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 5,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = True,
        start_from_epoch: int = 0,
    ) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        if start_from_epoch < 0:
            raise ValueError(f"start_from_epoch must be >= 0, got {start_from_epoch}")
        self._m = _Monitor(monitor, mode, min_delta, None)
        self.monitor, self.mode = monitor, self._m.mode
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.baseline = None if baseline is None else float(baseline)
        self.start_from_epoch = int(start_from_epoch)
        self.verbose = verbose
        self.on_train_begin(None)

    def on_train_begin(self, trainer: Any) -> None:
        self._m.reset()
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict[str, Any] | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        value = self._m.value(logs, "EarlyStopping")
        if value is None or epoch <= self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = trainer.model.state_dict()  # nothing better yet
        self.wait += 1
        if self._m.improved(value):
            self._m.best, self._m.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = trainer.model.state_dict()  # a copy
            if self.baseline is None or self._m.improved(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 1:
            self.stopped_epoch = epoch
            trainer.stop_training = True
            trainer.stop_reason = (
                f"early stopping at epoch {epoch}: {self.monitor} did not improve for "
                f"{self.wait} epochs (best {self.best:.6g} at epoch {self.best_epoch}"
                + ("" if self.baseline is None else f", baseline {self.baseline:.6g}")
                + ")"
            )

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch}.")
            trainer.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._m.state_dict(),
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._m.load_state_dict(state)
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        weights = state["best_weights"]
        self.best_weights = None if weights is None else dict(weights)


# ModelCheckpoint and the loggers live in their own files; imported last (they subclass
# the classes above).
from .loggers import CSVLogger, JSONLogger  # noqa: E402
from .modelcheckpoint import ModelCheckpoint  # noqa: E402
