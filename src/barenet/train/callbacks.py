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
from pathlib import Path
from typing import Any

from .. import checkpoint

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


class ModelCheckpoint(_MonitoredCallback):
    """Save the model via ``save_fn(path, model, metadata)`` at epoch ends, or every
    ``save_freq`` batches when that is an int (Keras' ``save_freq``).

    ``path`` may contain ``{epoch}`` and any log key (``"ckpt-{epoch:03d}.safetensors"``;
    ``{batch}`` too with an int ``save_freq``). With ``save_best_only`` a file is written
    only when ``monitor`` improves (strictly, by more than ``min_delta``) on the best so
    far, which starts at ``initial_value_threshold`` if given; otherwise every time. The
    metadata is ``extra_metadata`` plus ``epoch``, ``monitor``, ``monitor_value`` and the
    logs. The default ``save_fn`` (``checkpoint.save_model``) writes atomically, so an
    interrupted save keeps the previous best file.

    Arguments after ``monitor`` are keyword-only: Keras' third is ``verbose``, which
    barenet's lacks (as ``save_weights_only``), so a positional Keras call is refused by name
    instead of read as ``mode``. Differences from Keras: ``monitor="val_accuracy"`` and
    ``save_best_only=True`` by default (Keras: ``"val_loss"``, False); with
    ``save_best_only``, an epoch whose logs lack ``monitor`` is skipped with a warning
    (Keras 3 saves it).

    Attributes: ``best``, ``best_epoch``, ``last_saved`` (path or None), ``saved`` (all paths).
    """

    def __init__(
        self,
        path: str | Path,
        monitor: str = "val_accuracy",
        *,
        mode: str = "auto",
        save_best_only: bool = True,
        save_fn: Callable[[Path, Any, dict[str, Any]], Any] | None = None,
        extra_metadata: dict[str, Any] | None = None,
        min_delta: float = 0.0,
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq >= 1):
            raise ValueError(f"save_freq must be 'epoch' or an int >= 1, got {save_freq!r}")
        self.path = str(path)
        self._m = _Monitor(monitor, mode, min_delta, initial_value_threshold)
        self.monitor, self.mode = monitor, self._m.mode
        self.save_best_only = save_best_only
        self.save_fn = save_fn if save_fn is not None else checkpoint.save_model
        self.extra_metadata = dict(extra_metadata or {})
        self.save_freq = save_freq
        if save_freq != "epoch":  # only then a per-batch hook (the trainer skips no-ops)
            self.on_train_batch_end = self._on_batch
        self.on_train_begin(None)

    def on_train_begin(self, trainer: Any) -> None:
        self._m.reset()
        self.last_saved: Path | None = None
        self.saved: list[Path] = []
        self._epoch = 1
        self._batches = 0  # since the last save, across epochs (Keras counts so too)

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        self._epoch = epoch

    def _on_batch(self, trainer: Any, batch: int, logs: Logs) -> None:
        self._batches += 1
        if self._batches >= self.save_freq:
            self._batches = 0
            self._save(trainer, self._epoch, {**logs, "batch": batch})

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        if self.save_freq == "epoch":
            self._save(trainer, epoch, logs)

    def _save(self, trainer: Any, epoch: int, logs: Logs) -> None:
        value = logs.get(self.monitor)
        if self.save_best_only:
            value = self._m.value(logs, "ModelCheckpoint")
            if value is None or not self._m.improved(value):
                return
            self._m.best, self._m.best_epoch = value, epoch
        path = Path(self.path.format(**{**logs, "epoch": epoch}))
        meta = {
            **self.extra_metadata,
            "epoch": epoch,
            "monitor": self.monitor,
            "monitor_value": value,
            "logs": dict(logs),
        }
        self.save_fn(path, trainer.model, meta)
        self.last_saved = path
        self.saved.append(path)

    def state_dict(self) -> dict[str, Any]:
        last = None if self.last_saved is None else str(self.last_saved)
        return {
            **self._m.state_dict(),
            "last_saved": last,
            "saved": [str(p) for p in self.saved],
            "batches": self._batches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._m.load_state_dict(state)
        self.last_saved = None if state["last_saved"] is None else Path(state["last_saved"])
        self.saved = [Path(p) for p in state["saved"]]
        self._batches = int(state.get("batches", 0))  # absent in states of older versions


# The loggers live in loggers.py; imported last (they subclass Callback).
from .loggers import CSVLogger, JSONLogger  # noqa: E402
