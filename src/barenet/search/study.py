"""The Optuna study of a search: sampler, pruner, creation/resume checks and trial budget.

Trial bookkeeping kept in user attrs:

- ``retry_of``: this trial re-runs trial N, which was interrupted (its worker died or was
  stopped). An interrupted trial does not count towards the budget; its retry does.
- ``duplicate_of``: a grid point another trial already holds (only possible with storages
  without a budget lock); not counted, not trained.
- ``interrupted``: the trial was stopped (Ctrl-C) or its worker died; it is re-queued.
- ``fail_reason``: why a FAIL trial failed, one line.
- ``host``, ``pid``, ``pid_start``: the worker process running the trial.
"""

from __future__ import annotations

import json
import math
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..config import ConfigError
from .space import Search
from .storage import is_dead
from .task import StudyTask

FINGERPRINT_ATTR = "barenet_search"


class TrialSeededRandomSampler(BaseSampler):
    """Random search whose draws depend only on (seed, trial number, key).

    Which worker runs which trial then does not matter: the same seed gives the same
    configurations with any number of workers.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict) -> dict:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        key = [self.seed, trial.number, zlib.crc32(param_name.encode())]
        seed = int(np.random.SeedSequence(key).generate_state(1)[0])
        return RandomSampler(seed=seed).sample_independent(
            study, trial, param_name, param_distribution
        )


def worker_seed(seed: int, worker: int, salt: str = "") -> int:
    """A distinct, reproducible sampler seed per worker, derived from the search seed."""
    key = [seed, worker] + ([zlib.crc32(salt.encode())] if salt else [])
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def make_sampler(
    search: Search, worker: int = 0, parallel: bool = False, salt: str = ""
) -> BaseSampler:
    """``grid``: the same shuffled grid in every worker (Optuna maps trial number -> point, so
    all workers must agree). ``random``: seeded per trial. ``tpe``: seeded per worker, with the
    constant liar when trials run in parallel."""
    kind = search.config.sampler
    if kind == "grid":
        return GridSampler(search.grid, seed=search.config.seed)
    if kind == "random":
        return TrialSeededRandomSampler(search.config.seed)
    return TPESampler(
        seed=worker_seed(search.config.seed, worker, salt),
        constant_liar=parallel,
        multivariate=True,
    )


def make_pruner(search: Search) -> optuna.pruners.BasePruner:
    spec = search.pruner
    if spec.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps
        )
    if spec.type == "percentile":
        return optuna.pruners.PercentilePruner(
            spec.percentile,
            n_startup_trials=spec.n_startup_trials,
            n_warmup_steps=spec.n_warmup_steps,
        )
    if spec.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1,
            max_resource=int(
                search.base["train"]["epochs"]
                if search.config.epochs is None
                else search.config.epochs
            ),
        )
    return optuna.pruners.NopPruner()


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _name_objective(study: optuna.Study, name: str) -> None:
    """Name the study's value after its metric, so the dashboard shows "val_accuracy", not
    "Objective 0" (Optuna marks the API experimental: its warning is not the user's news)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if study.metric_names != [name]:
            study.set_metric_names([name])


def open_study(
    task: StudyTask,
    storage: BaseStorage,
    sampler: BaseSampler | None = None,
    create: bool = True,
) -> optuna.Study:
    """Create or load the task's study; a study made from a different config is refused."""
    kwargs = {
        "study_name": task.study_name,
        "storage": storage,
        "sampler": sampler or task.sampler(0, False, ""),
        "pruner": task.pruner(),
    }
    if create:
        study = optuna.create_study(direction=task.direction, load_if_exists=True, **kwargs)
    else:
        study = optuna.load_study(**kwargs)
    if study.direction.name.lower() != task.direction:
        raise ConfigError(
            f"study '{task.study_name}' exists with direction "
            f"{study.direction.name.lower()}; use another --study"
        )
    _check_values(study, task.study_name)
    if create:
        _name_objective(study, task.objective_key)
    mine = task.fingerprint()
    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is None and create:
        study.set_user_attr(FINGERPRINT_ATTR, json.dumps(mine, sort_keys=True))
    elif stored is not None:
        try:
            theirs = json.loads(stored)
        except (TypeError, ValueError, RecursionError):
            raise ConfigError(
                f"study '{task.study_name}' is corrupt: its stored config ({FINGERPRINT_ATTR}) "
                "is not JSON; restore its storage or use another --study/--out"
            ) from None
        if theirs != json.loads(json.dumps(mine)):
            raise ConfigError(
                f"study '{task.study_name}' was created from a different config "
                f"(differs in: {', '.join(_diff(theirs, mine))}); "
                "resume it with the same config, or use another --study/--out"
            )
    return study


def _check_values(study: optuna.Study, name: str) -> None:
    """Every finished trial holds one finite value per objective; a hand-edited or corrupt
    storage that replays but does not (two values, NaN) would fail later, deep inside the
    leaderboard."""
    n = len(study.directions)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        values = t.values or []
        if len(values) != n or not all(math.isfinite(v) for v in values):
            raise ConfigError(
                f"study '{name}' is corrupt: trial {t.number} is complete with values "
                f"{values}; restore its storage or use another --study/--out"
            )


# -- budget ------------------------------------------------------------------------------------
def interrupted_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Trials that were retried under another number."""
    return {int(t.user_attrs["retry_of"]) for t in trials if "retry_of" in t.user_attrs}


def counted(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that use the budget: all states, minus interrupted ones and grid duplicates."""
    gone = interrupted_numbers(trials)
    return [t for t in trials if t.number not in gone and "duplicate_of" not in t.user_attrs]


KEPT_ON_RETRY = ("run",)  # user attrs a task sets when it queues a trial (experiments)


def enqueue_retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a re-run of an interrupted trial with the same parameters (and grid point).

    Interruptions come from outside the trial (Ctrl-C, SIGTERM/SIGKILL, a dead worker, a full
    disk), so they are retried as often as they happen and never count as the trial's own
    failure: a grid point interrupted any number of times still ends COMPLETE. A trial that
    fails by itself (divergence, an exception from its config) is final: its config is
    deterministic, so a retry would fail the same way."""
    attempt = int(trial.user_attrs.get("attempt", 1))
    system = {k: v for k, v in trial.system_attrs.items() if k in ("grid_id", "search_space")}
    kept = {k: trial.user_attrs[k] for k in KEPT_ON_RETRY if k in trial.user_attrs}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={**kept, "retry_of": trial.number, "attempt": attempt + 1},
            system_attrs=system,
        )
    )


def on_stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """RDB heartbeat callback: a worker on some machine stopped beating; re-run its trial."""
    enqueue_retry(study, trial)


def is_interrupted(t: FrozenTrial) -> bool:
    """A FAIL trial stopped from outside (see :func:`enqueue_retry`), or one of a worker that
    stopped sending heartbeats (no ``fail_reason``: its worker never got to write one)."""
    return t.state == TrialState.FAIL and bool(
        t.user_attrs.get("interrupted") or "fail_reason" not in t.user_attrs
    )


def recover(study: optuna.Study, storage: BaseStorage, stopped: bool = True) -> list[int]:
    """Fail and re-queue the running trials of workers that died on this host and, with
    ``stopped``, the interrupted FAIL trials that have no retry yet (at the start of a
    command: within one, a trial stopped by a full disk would only fail again). Call under
    the budget lock. Returns the numbers of the trials re-queued."""
    with_heartbeat = isinstance(storage, optuna.storages.RDBStorage)
    if with_heartbeat:
        optuna.storages.fail_stale_trials(study)  # retries via on_stale_trial
    trials = study.get_trials(deepcopy=False)
    retried = interrupted_numbers(trials)
    requeued = []
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in trials:
        if t.number in retried:
            continue
        dead_runner = t.state == TrialState.RUNNING and is_dead(t.user_attrs)
        if not (dead_runner or (stopped and is_interrupted(t))):
            continue
        if dead_runner:
            tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            attrs = t.user_attrs
            storage.set_trial_user_attr(
                tid, "fail_reason", f"worker died (pid {attrs['pid']} on {attrs['host']})"
            )
            storage.set_trial_user_attr(tid, "interrupted", True)
            storage.set_trial_state_values(tid, TrialState.FAIL)
            t = storage.get_trial(tid)
        enqueue_retry(study, t)
        requeued.append(t.number)
    return requeued


def pending_interrupted(trials: Sequence[FrozenTrial]) -> list[int]:
    """Interrupted trials not re-queued yet: the next command runs them again."""
    retried = interrupted_numbers(trials)
    return [t.number for t in trials if is_interrupted(t) and t.number not in retried]
