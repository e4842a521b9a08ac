"""The training loop: ``Trainer.fit`` over any ``(xb, yb)`` batch iterable, with callbacks.

The trainer knows nothing of datasets or configs. Per batch it runs forward,
loss, backward, optional gradient-norm clipping, ``optimizer.step()``,
``optimizer.zero_grad()`` and an iteration schedule's ``step()``. Per epoch it
evaluates on the validation loader, steps an epoch schedule (ReduceLROnPlateau)
with the monitored metric, appends a row to the ``History`` and calls the
callbacks.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..nn.loss import softmax
from ..optim import clip_grad_norm_, grad_norm
from . import resume
from .callbacks import Callback, overrides_batch_hook
from .interrupts import interrupts_deferred
from .metrics import confusion_matrix, num_correct, per_class_accuracy
from .progress import ProgressBar

__all__ = ["History", "Trainer", "TrainingDiverged"]

Logs = dict[str, Any]


class TrainingDiverged(UserError, RuntimeError):
    """Raised by ``fit`` (after ``on_train_end``) when a batch loss or gradient norm
    became NaN/inf. The offending update was not applied. A user error: the config (a
    learning rate too high, say) is what to change."""


class History:
    """Per-epoch logs. ``epochs`` is a list of dicts (one per completed epoch);
    ``history`` is Keras' view of them, a dict of lists (``history.history["val_loss"]``)."""

    def __init__(self, epochs: Iterable[Logs] = ()) -> None:
        self.epochs: list[Logs] = [dict(e) for e in epochs]

    def append(self, logs: Logs) -> None:
        self.epochs.append(logs)

    def keys(self) -> list[str]:
        """Every key seen, in first-seen order."""
        return list(dict.fromkeys(k for e in self.epochs for k in e))

    def as_columns(self) -> dict[str, list[Any]]:
        """Key -> list with one value per epoch (NaN where an epoch lacks the key)."""
        return {k: [e.get(k, math.nan) for e in self.epochs] for k in self.keys()}

    @property
    def history(self) -> dict[str, list[Any]]:
        """Keras' ``History.history``: key -> one value per epoch (``as_columns()``)."""
        return self.as_columns()

    def __getitem__(self, key: str) -> list[Any]:
        return [e.get(key, math.nan) for e in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, keys={self.keys()})"


def _is_epoch_schedule(schedule: Any) -> bool:
    """ReduceLROnPlateau-style schedules are stepped once per epoch with a metric.

    Duck-typed by ``needs_metric`` (barenet.optim) or ``per_epoch``, else by class.
    """
    for attr in ("needs_metric", "per_epoch"):
        flag = getattr(schedule, attr, None)
        if flag is not None:
            return bool(flag)
    try:
        from ..optim import ReduceLROnPlateau
    except ImportError:
        return False
    return isinstance(schedule, ReduceLROnPlateau)


def _is_classification(out: np.ndarray, y: np.ndarray) -> bool:
    return out.ndim == 2 and y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


class Trainer:
    """Fit ``model`` with ``loss_fn`` and ``optimizer``.

    Args:
        schedule: optional. Iteration schedules get ``step()`` after every optimizer
            step; an epoch schedule (``needs_metric``/``per_epoch`` true, or a
            ReduceLROnPlateau) gets
            ``step(logs[plateau_monitor])`` after each epoch's validation. Without a
            validation loader a ``val_*`` monitor falls back to the training metric.
        callbacks: ``Callback`` instances, called in order.
        clip_grad_norm: if set, gradients are rescaled to this global L2 norm at most.
        progress: add a ``ProgressBar`` (a bar on a terminal or in Jupyter; a line per epoch).

    Epoch logs: ``epoch`` (1-based), ``loss`` and ``accuracy`` (batch-size weighted
    means over the epoch, computed from the training-mode forward passes),
    ``val_loss``/``val_accuracy`` (with a validation loader), ``lr`` (the learning
    rate at the start of the epoch, i.e. the one used for its first batch),
    ``grad_norm`` (mean over the epoch's batches of the global gradient L2 norm
    before clipping) and ``time`` (seconds for training plus validation).

    After ``fit``: ``history``, ``stop_training`` and ``stop_reason`` (None if all
    epochs ran, else why training stopped).
    """

    def __init__(
        self,
        model: Any,
        loss_fn: Any,
        optimizer: Any,
        schedule: Any = None,
        callbacks: Sequence[Callback] = (),
        clip_grad_norm: float | None = None,
        progress: bool = True,
        plateau_monitor: str = "val_loss",
    ) -> None:
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0, got {clip_grad_norm}")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.schedule = schedule
        self.callbacks = list(callbacks)
        if progress and not any(isinstance(cb, ProgressBar) for cb in self.callbacks):
            self.callbacks.append(ProgressBar())
        self.clip_grad_norm = clip_grad_norm
        self.plateau_monitor = plateau_monitor
        self.history = History()
        self.stop_training = False
        self.stop_reason: str | None = None
        self.epochs = 0
        self.global_step = 0  # optimizer steps taken in this fit (resumed runs included)
        self.steps_per_epoch: int | None = None
        self._params = list(model.parameters())

    # -- fit -------------------------------------------------------------------
    def fit(
        self,
        train_loader: Iterable,
        val_loader: Iterable | None = None,
        epochs: int = 1,
        *,
        state_file: str | Path | None = None,
        resume_from: str | Path | None = None,
        generators: Mapping[str, np.random.Generator] | None = None,
        state_metadata: Mapping[str, Any] | None = None,
    ) -> History:
        """Train for up to ``epochs`` epochs; returns the ``History``.

        Raises ``TrainingDiverged`` if a loss/gradient norm became non-finite. Any
        exception (divergence, one raised by a callback such as a pruning signal,
        KeyboardInterrupt) is raised only after every callback's ``on_train_end``.

        Resuming (Keras' ``BackupAndRestore``, Lightning's ``ckpt_path``): with
        ``state_file`` the full training state (``resume.py``: weights, optimizer,
        schedule, every random generator, history, callbacks) is written there atomically
        after every epoch, plus ``state_metadata``. ``resume_from`` (such a file) restores it
        after ``on_train_begin`` and continues with the next epoch: given the same loaders,
        callbacks and thread count, the result is bit-identical to a run never stopped.
        ``generators`` names random generators beyond the loader's and the layers' ones.
        """
        self.history = History()
        self.stop_training = False
        self.stop_reason = None
        self.epochs = int(epochs)
        self.global_step = 0
        try:
            self.steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            self.steps_per_epoch = None
        self._diverged = False
        self.model.train()
        self.optimizer.zero_grad()
        error: BaseException | None = None
        last: Logs = {}
        try:
            self._call("on_train_begin", self)
            gens = resume.find_generators(self, train_loader, generators)
            first = 1
            if resume_from is not None:
                first = 1 + resume.load_state(
                    resume.read_state(resume_from), self, gens, resume_from
                )
                last = self.history.epochs[-1] if self.history.epochs else {}
            for epoch in range(first, self.epochs + 1):
                if self.stop_training:  # restored from a run that had stopped
                    break
                self._call("on_epoch_begin", self, epoch)
                logs = self._run_epoch(epoch, train_loader, val_loader)
                if logs is None:  # diverged mid-epoch: no row for the partial epoch
                    break
                self.history.append(logs)
                last = logs
                # The epoch's files and its state as one step: an interrupt waits for both.
                with interrupts_deferred():
                    self._call("on_epoch_end", self, epoch, logs)
                    if self.stop_training and self.stop_reason is None:
                        self.stop_reason = f"stopped by a callback at epoch {epoch}"
                    if state_file is not None:  # after every callback: their state is final
                        resume.save_state(state_file, self, gens, epoch, state_metadata)
                if self.stop_training:
                    break
        except BaseException as e:  # noqa: B036 - re-raised below, after on_train_end
            error = e
            if self.stop_reason is None:
                self.stop_reason = f"aborted by {type(e).__name__}: {e}"
        end_error = self._train_end(last)
        if error is not None:
            raise error
        if end_error is not None:
            raise end_error
        if self._diverged:
            raise TrainingDiverged(self.stop_reason)
        return self.history

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def _train_end(self, logs: Logs) -> BaseException | None:
        """Run every ``on_train_end`` even if one raises; return the first error."""
        first = None
        for cb in self.callbacks:
            try:
                cb.on_train_end(self, logs)
            except BaseException as e:  # noqa: B036
                first = first or e
        return first

    def _diverge(self, what: str, value: float, epoch: int, batch: int) -> None:
        hint = "try a lower learning rate" + ("" if self.clip_grad_norm else " or clip_grad_norm")
        self.stop_reason = f"{what} became {value} at epoch {epoch}, batch {batch}; {hint}"
        self.stop_training = True
        self._diverged = True
        self.optimizer.zero_grad()

    def _run_epoch(
        self, epoch: int, train_loader: Iterable, val_loader: Iterable | None
    ) -> Logs | None:
        start = time.perf_counter()
        batch_cbs = [cb for cb in self.callbacks if overrides_batch_hook(cb)]
        per_iteration = self.schedule is not None and not _is_epoch_schedule(self.schedule)
        lr = float(self.optimizer.lr)
        loss_sum = 0.0
        correct = 0
        n_seen = 0
        scored = True
        norm_sum = 0.0
        batch = 0
        for batch, (xb, yb) in enumerate(train_loader, start=1):
            out = self.model.forward(xb)
            loss = float(self.loss_fn(out, yb))
            if not math.isfinite(loss):
                self._diverge("loss", loss, epoch, batch)
                return None
            n = len(yb)
            # Accuracy from the logits already computed: one argmax, no extra forward.
            scored = scored and _is_classification(out, yb)
            if scored:
                correct += num_correct(out, yb)
            self.model.backward(self.loss_fn.backward())
            if self.clip_grad_norm is not None:
                norm = clip_grad_norm_(self._params, self.clip_grad_norm)
            else:
                norm = grad_norm(self._params)
            if not math.isfinite(norm):
                self._diverge("gradient norm", norm, epoch, batch)
                return None
            self.optimizer.step()
            self.optimizer.zero_grad()
            self.global_step += 1
            if per_iteration:
                self.schedule.step()
            loss_sum += loss * n
            n_seen += n
            norm_sum += norm
            if batch_cbs:
                blogs = {"loss": loss_sum / n_seen, "batch_loss": loss, "size": n}
                if scored:
                    blogs["accuracy"] = correct / n_seen
                for cb in batch_cbs:
                    cb.on_train_batch_end(self, batch, blogs)
            if self.stop_training:  # a batch callback may stop mid-epoch
                break
        if n_seen == 0:
            raise ValueError("the training loader yielded no batches")
        logs: Logs = {"epoch": epoch, "loss": loss_sum / n_seen}
        if scored:
            logs["accuracy"] = correct / n_seen
        if val_loader is not None:
            val = self.evaluate(val_loader)
            logs["val_loss"] = val["loss"]
            if "accuracy" in val:
                logs["val_accuracy"] = val["accuracy"]
        logs["lr"] = lr
        logs["grad_norm"] = norm_sum / batch
        if self.schedule is not None and not per_iteration:
            self.schedule.step(self._plateau_value(logs))
        logs["time"] = time.perf_counter() - start
        return logs

    def _plateau_value(self, logs: Logs) -> float:
        key = self.plateau_monitor
        if key not in logs and key.startswith("val_") and key[4:] in logs:
            warnings.warn(
                f"no validation loader: stepping the schedule on '{key[4:]}' instead of '{key}'",
                stacklevel=3,
            )
            key = key[4:]
        if key not in logs:
            raise KeyError(f"plateau_monitor '{key}' is not in the epoch logs {sorted(logs)}")
        return float(logs[key])

    # -- evaluation ------------------------------------------------------------
    def _batches_eval(self, loader: Iterable):
        """Yield ``(outputs, labels)`` per batch in eval mode; restores the previous mode."""
        was_training = bool(getattr(self.model, "training", True))
        self.model.eval()
        try:
            for xb, yb in loader:
                yield self.model.forward(xb), yb
        finally:
            self.model.train(was_training)

    def evaluate(self, loader: Iterable) -> dict[str, Any]:
        """Loss and metrics over ``loader``, batch by batch, in eval mode.

        Returns ``loss`` (sample-weighted mean), ``n`` and, for classification,
        ``accuracy``, ``confusion_matrix`` ((C, C) int64, rows = true class) and
        ``per_class_accuracy`` (list of C floats, NaN for a class with no samples).
        """
        loss_sum = 0.0
        n_total = 0
        cm: np.ndarray | None = None
        for out, yb in self._batches_eval(loader):
            n = len(yb)
            loss_sum += float(self.loss_fn(out, yb)) * n
            n_total += n
            if _is_classification(out, yb):
                part = confusion_matrix(out, yb, out.shape[1])
                cm = part if cm is None else cm + part
        if n_total == 0:
            raise ValueError("the evaluation loader yielded no batches")
        result: dict[str, Any] = {"loss": loss_sum / n_total, "n": n_total}
        if cm is not None:
            result["accuracy"] = float(np.trace(cm)) / n_total
            result["per_class_accuracy"] = per_class_accuracy(cm).tolist()
            result["confusion_matrix"] = cm
        return result

    def predict(self, loader: Iterable, probs: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Concatenated model outputs (softmax probabilities if ``probs``) and labels,
        computed batch by batch in eval mode."""
        outs, labels = [], []
        for out, yb in self._batches_eval(loader):
            outs.append(softmax(out) if probs else out.copy())
            labels.append(np.asarray(yb))
        return np.concatenate(outs), np.concatenate(labels)
