"""What a study trains: the one interface between the search engine and what runs on it.

The engine (storage, budget lock, workers, resume and failure handling) knows nothing of
search spaces or experiments; it asks a :class:`StudyTask` for the study's name, budget,
sampler and pruner, each trial's config and run folder, and how to write the study's outputs.
:class:`SearchTask` is ``barenet search``; ``barenet.experiment`` supplies its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from .. import fileio
from ..config import Config, ConfigError
from ..rundir import SEARCH_FILE, trial_dir


class StudyTask(Protocol):
    study_name: str
    direction: str  # "maximize" or "minimize"
    objective_key: str  # the metric (a user attr of each trial) that is the trial's value
    evaluate_test: bool  # trials also report test accuracy (experiments), or never (search)
    manifest: str  # file in the output folder holding :meth:`resolved`
    unit: str  # what a trial is called in log lines: "trials", "runs"

    def budget(self, trials: int | None) -> int: ...
    def sampler(self, worker: int, parallel: bool, salt: str) -> BaseSampler: ...
    def pruner(self) -> optuna.pruners.BasePruner: ...
    def fingerprint(self) -> dict[str, Any]: ...
    def resolved(self, budget: int) -> dict[str, Any]: ...
    def check_out(self, out: Path) -> None: ...
    def seed_study(self, study: optuna.Study, out: Path) -> None: ...
    def prepare(self, trial: optuna.Trial, out: Path) -> tuple[Config, Path]: ...
    def describe(self, trial: FrozenTrial) -> str: ...
    def write_outputs(self, out: Path, study: optuna.Study) -> list[dict[str, Any]]: ...


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v).replace(" ", "")


def outcome(t: FrozenTrial, metric: str) -> str:
    """How a finished trial ended, for a log line."""
    if t.state == TrialState.COMPLETE:
        return f"{metric} {t.value:.4f}"
    if t.state == TrialState.PRUNED and "duplicate_of" in t.user_attrs:
        return f"duplicate of trial {t.user_attrs['duplicate_of']}"
    if t.state == TrialState.PRUNED:
        return f"after {t.user_attrs.get('epochs_run')} epoch(s)"
    return str(t.user_attrs.get("fail_reason", ""))


def seconds(t: FrozenTrial) -> str:
    secs = t.user_attrs.get("seconds")
    return f"  ({secs:.1f} s)" if isinstance(secs, int | float) else ""


class SearchTask:
    """``barenet search``: trials sampled from a :class:`~barenet.search.space.Search`."""

    evaluate_test = False
    manifest = SEARCH_FILE
    unit = "trials"

    def __init__(self, search: Any) -> None:
        self.search = search
        self.study_name = search.study_name
        self.direction = search.direction
        self.objective_key = search.config.objective

    def budget(self, trials: int | None) -> int:
        return self.search.budget(trials)

    def sampler(self, worker: int = 0, parallel: bool = False, salt: str = "") -> BaseSampler:
        from .study import make_sampler

        return make_sampler(self.search, worker, parallel, salt)

    def pruner(self) -> optuna.pruners.BasePruner:
        from .study import make_pruner

        return make_pruner(self.search)

    def fingerprint(self) -> dict[str, Any]:
        return self.search.fingerprint()

    def resolved(self, budget: int) -> dict[str, Any]:
        return {**self.search.resolved(), "trials": budget}

    def check_out(self, out: Path) -> None:
        path = out / SEARCH_FILE
        if path.exists():
            old = fileio.load_yaml(path) or {}
            name = old.get("study") if isinstance(old, dict) else None
            if name is not None and name != self.study_name:
                raise ConfigError(
                    f"{out} holds the search of study '{name}'; "
                    f"use another --out for study '{self.study_name}'"
                )

    def seed_study(self, study: optuna.Study, out: Path) -> None:
        pass  # the sampler proposes every trial

    def prepare(self, trial: optuna.Trial, out: Path) -> tuple[Config, Path]:
        values = {p.name: p.suggest(trial) for p in self.search.params}
        if self.search.config.sampler == "grid":
            dup = _duplicate_of(trial)
            if dup is not None:
                trial.set_user_attr("duplicate_of", dup)
                raise optuna.TrialPruned(f"duplicate of trial {dup}")
        cfg = self.search.make_config(values)
        cfg.name = f"{self.study_name}-trial{trial.number}"
        return cfg, trial_dir(out, trial.number)

    def describe(self, t: FrozenTrial) -> str:
        shown = " ".join(f"{k}={_short(v)}" for k, v in self.search.decode(t.params).items())
        result = outcome(t, self.objective_key)
        return f"trial {t.number:>4} {t.state.name:<8} {result}  {shown}{seconds(t)}"

    def write_outputs(self, out: Path, study: optuna.Study) -> list[dict[str, Any]]:
        from .leaderboard import write_leaderboard

        return write_leaderboard(out, study, self.search)


def _duplicate_of(trial: optuna.Trial) -> int | None:
    """A lower-numbered live trial with the same grid point (a race without a lock)."""
    from .study import interrupted_numbers

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
