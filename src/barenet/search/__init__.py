"""Hyperparameter search on Optuna: grid, random and TPE samplers, pruning, resumable studies,
many workers on one machine (journal file) or many (PostgreSQL), a leaderboard.

The engine (``storage``, ``journal``, ``study``, ``objective``, ``workers``) runs any
:class:`~barenet.search.task.StudyTask`; ``barenet.experiment`` runs on it too.
"""

from __future__ import annotations

from .leaderboard import best_config, best_trial, trial_rows, write_leaderboard
from .objective import Objective, TrialReporter
from .pruning import PruningCallback
from .space import Param, RangeSpec, Search, SearchConfig, load_search, resolve_search
from .storage import make_storage
from .study import counted, make_pruner, make_sampler, open_study
from .task import SearchTask, StudyTask
from .workers import (
    SearchError,
    SearchJob,
    SearchResult,
    StudyJob,
    default_out,
    retrain_best,
    run_search,
    run_study,
    run_worker,
)

__all__ = [
    "Objective",
    "Param",
    "PruningCallback",
    "RangeSpec",
    "Search",
    "SearchConfig",
    "SearchError",
    "SearchJob",
    "SearchResult",
    "SearchTask",
    "StudyJob",
    "StudyTask",
    "TrialReporter",
    "best_config",
    "best_trial",
    "counted",
    "default_out",
    "load_search",
    "make_pruner",
    "make_sampler",
    "make_storage",
    "open_study",
    "resolve_search",
    "retrain_best",
    "run_search",
    "run_study",
    "run_worker",
    "trial_rows",
    "write_leaderboard",
]
