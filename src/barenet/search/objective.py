"""One trial of a study (a search or an experiment): its task gives the config, it trains on
the (subset of the) training data, is scored on the validation split and reports every epoch
to the pruner.

The result of each trial lives in its user attrs (``val_accuracy``, ``val_loss``,
``best_epoch``, ``epochs_run``, ``seconds``, ``run_dir``, ``fail_reason``), so the leaderboard
can be rebuilt from the storage alone, and in its run folder ``trials/trial_NNNN/``
(``config.yaml``, ``history.csv``, ``model.safetensors``, ``metrics.json`` when completed).
"""

from __future__ import annotations

import errno
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from .pruning import PruningCallback
from .storage import process_identity
from .task import StudyTask

TrainFn = Callable[..., dict[str, Any]]
"""``train_fn(cfg, out_dir, data_dir=..., extra_callbacks=..., progress=..., evaluate_test=...)``
with :func:`barenet.runner.train_run`'s signature."""


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class TrialReporter(PruningCallback):
    """``barenet search``'s :class:`PruningCallback` on the objective: it also keeps the best
    epoch's logs (max accuracy or min loss), reports only finite values and never prunes the
    last epoch (the trial has finished anyway: its result is kept).
    """

    def __init__(self, trial: optuna.Trial, objective: str) -> None:
        super().__init__(trial, objective)
        self.objective = objective
        self.maximize = objective == "val_accuracy"
        self.best: dict[str, Any] | None = None
        self.epochs = 0

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        old = self.best[self.objective]
        return value > old if self.maximize else value < old

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        self.epochs = epoch
        value = logs.get(self.objective)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self._better(value):
            self.best = {"epoch": epoch, **logs}
        last = getattr(trainer, "epochs", None) == epoch
        self.report(value, epoch, prune=not last)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epochs_run": self.epochs}
        if self.best is not None:
            out.update(
                best_epoch=self.best["epoch"],
                val_accuracy=float(self.best.get("val_accuracy", math.nan)),
                val_loss=float(self.best.get("val_loss", math.nan)),
            )
        return out


def _default_train_fn() -> TrainFn:
    from ..runner import train_run

    return train_run


# Errors from outside the trial: it is re-queued on the next run, never a final FAIL.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# metrics of train_fn's result kept in the trial's user attrs (the tables are built from them)
STORED_METRICS = (
    "final_val_accuracy",
    "test_accuracy",
    "train_seconds",
    "parameters",
)


def environmental(err: BaseException) -> OSError | None:
    """The full-disk (or quota) error behind ``err``, if that is what stopped it."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _ENVIRONMENT_ERRNOS:
            return e
        e = e.__cause__ or e.__context__
    return None


class Objective:
    """The callable handed to ``study.optimize``: ``task.prepare`` gives the trial's config and
    run folder, ``train_fn`` trains it. ``before`` runs first (the budget lock is released
    there: the trial exists by then). A trial stopped from outside (Ctrl-C, a full disk) is
    marked ``interrupted``; after a full disk ``stopped`` holds the error, and the worker
    stops: the next run re-queues the trial."""

    def __init__(
        self,
        task: StudyTask,
        out: str | Path,
        data_dir: str | None = None,
        train_fn: TrainFn | None = None,
        before: Callable[[], None] | None = None,
    ) -> None:
        self.task = task
        self.out = Path(out)
        self.data_dir = data_dir
        self.train_fn = train_fn or _default_train_fn()
        self.before = before
        self.last_number: int | None = None
        self.stopped: str | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        if self.before is not None:
            self.before()
        self.last_number = trial.number
        for key, value in process_identity().items():
            trial.set_user_attr(key, value)
        cfg, run_dir = self.task.prepare(trial, self.out)
        trial.set_user_attr("run_dir", os.path.relpath(run_dir, self.out))
        key = self.task.objective_key
        reporter = TrialReporter(trial, key)
        start = time.perf_counter()
        try:
            # A diverging trial is reported by the trainer (TrainingDiverged); NumPy's
            # overflow warnings on the way there are noise in a search log.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                metrics = self.train_fn(
                    cfg,
                    run_dir,
                    data_dir=self.data_dir,
                    extra_callbacks=(reporter,),
                    progress=False,
                    evaluate_test=self.task.evaluate_test,
                )
        except optuna.TrialPruned:
            self._record(trial, reporter, start)
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted")
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as err:
            full = environmental(err)
            if full is not None:
                where = full.filename or run_dir
                self.stopped = f"cannot write {where}: {full.strerror or full}"
                trial.set_user_attr("fail_reason", f"interrupted: {self.stopped}"[:500])
                trial.set_user_attr("interrupted", True)
                raise
            self._record(trial, reporter, start)
            trial.set_user_attr("fail_reason", one_line(err)[:500])
            raise
        summary = self._record(trial, reporter, start, metrics)
        if key not in summary or not math.isfinite(summary[key]):
            reason = f"no finite {key} was reported"
            trial.set_user_attr("fail_reason", reason)
            raise RuntimeError(reason)
        return summary[key]

    def _record(
        self,
        trial: optuna.Trial,
        reporter: TrialReporter,
        start: float,
        metrics: dict[str, Any] | None = None,
    ) -> dict:
        summary = reporter.summary()
        summary["seconds"] = round(time.perf_counter() - start, 3)
        for name in STORED_METRICS:
            value = (metrics or {}).get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                summary[name] = value
        for name, value in summary.items():
            trial.set_user_attr(
                name, value if not isinstance(value, float) or math.isfinite(value) else None
            )
        return summary
