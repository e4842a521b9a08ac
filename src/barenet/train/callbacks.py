"""Keras-style training callbacks.

Hooks, all optional, called by ``Trainer.fit`` in this order::

    on_train_begin(trainer)
      on_epoch_begin(trainer, epoch)            # epoch is 1-based
        on_batch_end(trainer, batch, logs)      # batch is 1-based within the epoch
      on_epoch_end(trainer, epoch, logs)        # logs: the epoch's history row
    on_train_end(trainer, logs)                 # logs: the last complete epoch's row, or {}

A callback stops training by setting ``trainer.stop_training = True`` (and may
explain why in ``trainer.stop_reason``). It may also abort by raising (e.g.
``optuna.TrialPruned``): ``fit`` then still calls every callback's
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

import csv
import io
import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import checkpoint, fileio

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

    def on_batch_end(self, trainer: Any, batch: int, logs: Logs) -> None:
        """Called after every optimizer step; keep it cheap. ``logs`` holds the running
        epoch means ``loss``/``accuracy``, ``batch_loss`` and ``size``."""

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


_HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end")


class LambdaCallback(Callback):
    """A callback from plain functions with the hooks' signatures, e.g.
    ``LambdaCallback(on_epoch_end=lambda t, e, logs: print(e, logs["loss"]))``."""

    def __init__(
        self,
        on_train_begin: Callable[..., None] | None = None,
        on_epoch_begin: Callable[..., None] | None = None,
        on_batch_end: Callable[..., None] | None = None,
        on_epoch_end: Callable[..., None] | None = None,
        on_train_end: Callable[..., None] | None = None,
    ) -> None:
        given = (on_train_begin, on_epoch_begin, on_batch_end, on_epoch_end, on_train_end)
        # Only given hooks shadow the no-ops, so the trainer can tell that an
        # absent on_batch_end costs nothing per batch.
        for name, fn in zip(_HOOKS, given, strict=True):
            if fn is not None:
                setattr(self, name, fn)


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

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = abs(float(min_delta))
        self._warned = False
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
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

    def improved(self, value: float) -> bool:
        # NaN compares False: a diverged metric never counts as an improvement.
        if self.mode == "min":
            return value + self.min_delta < self.best
        return value - self.min_delta > self.best


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
    """Stop when ``monitor`` has not improved for ``patience`` consecutive epochs.

    Improvement means ``value < best - min_delta`` (mode ``min``) or
    ``value > best + min_delta`` (``max``); it resets the wait counter to 0.
    With ``restore_best_weights`` the model gets the best epoch's weights back in
    ``on_train_end`` whether or not training stopped early (Keras 3 behaviour).

    Attributes: ``best``, ``best_epoch``, ``wait``, ``stopped_epoch`` (0 if never).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self._m = _Monitor(monitor, mode, min_delta)
        self.monitor, self.mode = monitor, self._m.mode
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.on_train_begin(None)

    def on_train_begin(self, trainer: Any) -> None:
        self._m.reset()
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict[str, Any] | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        value = self._m.value(logs, "EarlyStopping")
        if value is None:
            return
        if self._m.improved(value):
            self._m.best, self._m.best_epoch = value, epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = trainer.model.state_dict()  # a copy
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True
            trainer.stop_reason = (
                f"early stopping at epoch {epoch}: {self.monitor} did not improve for "
                f"{self.wait} epochs (best {self.best:.6g} at epoch {self.best_epoch})"
            )

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        if self.restore_best_weights and self.best_weights is not None:
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
    """Save the model at epoch ends via ``save_fn(path, model, metadata)``.

    ``path`` may contain ``{epoch}`` and any log key (``"ckpt-{epoch:03d}.safetensors"``).
    With ``save_best_only`` a file is written only when ``monitor`` improves
    (strictly, by more than ``min_delta``); otherwise every epoch. The metadata is
    ``extra_metadata`` plus ``epoch``, ``monitor``, ``monitor_value`` and the epoch's
    ``logs``. The default ``save_fn`` (``checkpoint.save_model``) writes atomically,
    so an interrupted save keeps the previous best file.

    Attributes: ``best``, ``best_epoch``, ``last_saved`` (path or None), ``saved`` (all paths).
    """

    def __init__(
        self,
        path: str | Path,
        monitor: str = "val_accuracy",
        mode: str = "auto",
        save_best_only: bool = True,
        save_fn: Callable[[Path, Any, dict[str, Any]], Any] | None = None,
        extra_metadata: dict[str, Any] | None = None,
        min_delta: float = 0.0,
    ) -> None:
        self.path = str(path)
        self._m = _Monitor(monitor, mode, min_delta)
        self.monitor, self.mode = monitor, self._m.mode
        self.save_best_only = save_best_only
        self.save_fn = save_fn if save_fn is not None else checkpoint.save_model
        self.extra_metadata = dict(extra_metadata or {})
        self.on_train_begin(None)

    def on_train_begin(self, trainer: Any) -> None:
        self._m.reset()
        self.last_saved: Path | None = None
        self.saved: list[Path] = []

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
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
        return {**self._m.state_dict(), "last_saved": last, "saved": [str(p) for p in self.saved]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._m.load_state_dict(state)
        self.last_saved = None if state["last_saved"] is None else Path(state["last_saved"])
        self.saved = [Path(p) for p in state["saved"]]


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(fileio.to_jsonable(value))
    return value


class _HistoryLogger(Callback):
    """Keeps every epoch's logs and rewrites ``path`` (via ``_write``) after each epoch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: list[Logs] = []

    def on_train_begin(self, trainer: Any) -> None:
        self.rows = []

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        self.rows.append(dict(logs))
        self._write()

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state["rows"]]

    def _write(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class CSVLogger(_HistoryLogger):
    """Write the per-epoch logs to ``path`` as CSV, rewritten atomically every epoch.

    Columns are every key seen so far, in first-seen order; a missing value is empty.
    """

    def _write(self) -> None:
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
        fileio.atomic_write_text(self.path, buf.getvalue())


class JSONLogger(_HistoryLogger):
    """Write ``{"epochs": [logs, ...], "stop_reason": str | null}`` to ``path`` as strict JSON
    (NaN -> null), rewritten atomically every epoch and once more at train end."""

    def _write(self) -> None:
        fileio.save_json(self.path, {"epochs": self.rows, "stop_reason": None})

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        reason = getattr(trainer, "stop_reason", None)
        fileio.save_json(self.path, {"epochs": self.rows, "stop_reason": reason})
