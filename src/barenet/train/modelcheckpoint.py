"""``ModelCheckpoint``: the model saved at epoch ends or every ``save_freq`` batches, the
best so far or every time (Keras' arguments); its best value and batch count are part of
the training state."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import checkpoint
from .callbacks import Logs, _Monitor, _MonitoredCallback

__all__ = ["ModelCheckpoint"]


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
        self.path = _checked_path(str(path), save_freq)
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
        try:  # a log key the path names may be missing: one ValueError, not a KeyError
            path = Path(self.path.format(**{**logs, "epoch": epoch}))
        except (KeyError, IndexError, ValueError, AttributeError) as e:
            raise ValueError(
                f"ModelCheckpoint path {self.path!r} does not fit the logs "
                f"{sorted({**logs, 'epoch': epoch})}: {type(e).__name__}: {e}"
            ) from None
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


def _checked_path(path: str, save_freq: str | int) -> str:
    """``path`` unless its fields can never be filled (ValueError now, not after an epoch
    of training): bad braces, a positional ``{}``, ``{batch}`` without an int save_freq."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(path) if f is not None]
    except ValueError as e:
        raise ValueError(f"ModelCheckpoint path {path!r}: {e}") from None
    for name in (re.split(r"[.\[]", f, maxsplit=1)[0] for f in names):
        if not name.isidentifier() or (name == "batch" and save_freq == "epoch"):
            what = "needs an int save_freq" if name == "batch" else "is not a log key"
            raise ValueError(f"ModelCheckpoint path {path!r}: {{{name}}} {what}")
    return path
