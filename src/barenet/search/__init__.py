"""Hyperparameter search on Optuna: grid, random and TPE samplers, pruning, resumable studies,
many workers on one machine (journal file) or many (PostgreSQL), a leaderboard.

Names are imported on first use, so modules of this package that do not need Optuna (the
experiment runner) do not pay for importing it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    ".leaderboard": ["best_config", "best_trial", "trial_rows", "write_leaderboard"],
    ".objective": ["Objective", "TrialReporter"],
    ".space": ["Param", "RangeSpec", "Search", "SearchConfig", "load_search", "resolve_search"],
    ".storage": ["make_storage"],
    ".study": ["counted", "make_pruner", "make_sampler", "open_study"],
    ".workers": [
        "SearchError",
        "SearchJob",
        "SearchResult",
        "default_out",
        "retrain_best",
        "run_search",
        "run_worker",
    ],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
