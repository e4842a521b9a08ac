"""One trial: sample a config, train it on the (subset of the) training data, score it on the
validation split, report every epoch to the pruner.

The result of each trial lives in its user attrs (``val_accuracy``, ``val_loss``,
``best_epoch``, ``epochs_run``, ``seconds``, ``run_dir``, ``fail_reason``), so the leaderboard
can be rebuilt from the storage alone, and in its run folder ``trials/trial_NNNN/``
(``config.yaml``, ``history.csv``, ``model.safetensors``, ``metrics.json`` when completed).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from ..config import Config
from ..rundir import trial_dir
from ..train.callbacks import Callback
from .space import Search
from .storage import process_identity
from .study import interrupted_numbers

TrainFn = Callable[..., dict[str, Any]]
"""``train_fn(cfg, out_dir, data_dir=..., extra_callbacks=..., progress=..., evaluate_test=...)``
with :func:`barenet.runner.train_run`'s signature."""


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class TrialReporter(Callback):
    """Reports the objective to Optuna after each epoch and prunes when Optuna says so.

    Keeps the best epoch's logs by the objective (max accuracy or min loss).
    """

    def __init__(self, trial: optuna.Trial, objective: str) -> None:
        self.trial = trial
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
        self.trial.report(value, epoch)
        last = getattr(trainer, "epochs", None) == epoch  # finished anyway: keep the result
        if not last and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} ({self.objective} {value:.4f})")

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


class Objective:
    """The callable handed to ``study.optimize``. ``before`` runs first (the budget lock is
    released there: the trial exists by then)."""

    def __init__(
        self,
        search: Search,
        out: str | Path,
        data_dir: str | None = None,
        train_fn: TrainFn | None = None,
        before: Callable[[], None] | None = None,
    ) -> None:
        self.search = search
        self.out = Path(out)
        self.data_dir = data_dir
        self.train_fn = train_fn or _default_train_fn()
        self.before = before
        self.last_number: int | None = None

    def _duplicate_of(self, trial: optuna.Trial) -> int | None:
        """A lower-numbered live trial with the same grid point (a race without a lock)."""
        trials = trial.study.get_trials(deepcopy=False)
        gone = interrupted_numbers(trials)
        for t in trials:
            if (
                t.number < trial.number
                and t.number not in gone
                and t.params == trial.params
                and "duplicate_of" not in t.user_attrs
                and t.state != TrialState.WAITING
            ):
                return t.number
        return None

    def __call__(self, trial: optuna.Trial) -> float:
        if self.before is not None:
            self.before()
        self.last_number = trial.number
        for key, value in process_identity().items():
            trial.set_user_attr(key, value)
        values = {p.name: p.suggest(trial) for p in self.search.params}
        if self.search.config.sampler == "grid":
            dup = self._duplicate_of(trial)
            if dup is not None:
                trial.set_user_attr("duplicate_of", dup)
                raise optuna.TrialPruned(f"duplicate of trial {dup}")
        cfg: Config = self.search.make_config(values)
        cfg.name = f"{self.search.study_name}-trial{trial.number}"
        run_dir = trial_dir(self.out, trial.number)
        trial.set_user_attr("run_dir", os.path.relpath(run_dir, self.out))
        reporter = TrialReporter(trial, self.search.config.objective)
        start = time.perf_counter()
        try:
            # A diverging trial is reported by the trainer (TrainingDiverged); NumPy's
            # overflow warnings on the way there are noise in a search log.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self.train_fn(
                    cfg,
                    run_dir,
                    data_dir=self.data_dir,
                    extra_callbacks=(reporter,),
                    progress=False,
                    evaluate_test=False,
                )
        except optuna.TrialPruned:
            self._record(trial, reporter, start)
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted")
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as err:
            self._record(trial, reporter, start)
            trial.set_user_attr("fail_reason", one_line(err)[:500])
            raise
        summary = self._record(trial, reporter, start)
        key = self.search.config.objective
        if key not in summary or not math.isfinite(summary[key]):
            reason = f"no finite {key} was reported"
            trial.set_user_attr("fail_reason", reason)
            raise RuntimeError(reason)
        return summary[key]

    def _record(self, trial: optuna.Trial, reporter: TrialReporter, start: float) -> dict:
        summary = reporter.summary()
        summary["seconds"] = round(time.perf_counter() - start, 3)
        for key, value in summary.items():
            trial.set_user_attr(
                key, value if not isinstance(value, float) or math.isfinite(value) else None
            )
        return summary
