"""Reading what plots need from a run folder: history, metrics and config, tolerant of gaps.

A history is a plain ``dict[column, float array]`` (NaN for empty cells), one entry per epoch.
``as_history`` also accepts pandas DataFrames, dicts of lists, lists of row dicts and paths, so
callers (compare, experiments) can pass whatever they hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import rundir
from ..rundir import (
    History,
    check_run_dir,
    history_from_rows,
    parse_history_csv,
    read_config,
    read_history,
    to_float,
)

__all__ = [
    "History",
    "as_history",
    "check_run_dir",
    "has_values",
    "parse_history_csv",
    "read_config",
    "read_history",
    "read_metrics",
]


def as_history(obj: Any) -> History:
    """Normalise a DataFrame, dict of sequences, list of row dicts, path, or the ``History``
    that ``Trainer.fit`` returns into a History.

    Without an ``epoch`` column, epochs are numbered 1..E.
    """
    if isinstance(obj, (str, Path)):
        h = read_history(obj)
    elif hasattr(obj, "columns") and hasattr(obj, "to_dict"):  # pandas, without importing it
        h = {str(c): np.asarray(obj[c], dtype=np.float64) for c in obj.columns}
    elif isinstance(getattr(obj, "epochs", None), list):  # barenet.train.History: its rows
        h = history_from_rows(obj.epochs)
    elif isinstance(obj, Mapping):
        h = {
            str(k): np.array([to_float(v) for v in np.ravel(np.asarray(vals, dtype=object))])
            for k, vals in obj.items()
        }
    elif isinstance(obj, Sequence):
        h = history_from_rows(list(obj))
    else:
        raise TypeError(f"cannot read a history from {type(obj).__name__}")
    n = max((len(v) for v in h.values()), default=0)
    if "epoch" not in h or np.isnan(h["epoch"]).all():
        h["epoch"] = np.arange(1, n + 1, dtype=np.float64)
    return h


def has_values(history: History, key: str) -> bool:
    """True if ``key`` is a column with at least one finite value."""
    return key in history and bool(np.isfinite(history[key]).any())


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """metrics.json of a run folder as a dict; for a run not finished yet only its
    ``status`` ("incomplete (3 of 10 epochs saved); resume with: ..."); ``{}`` for no run."""
    metrics = rundir.read_metrics(run_dir)
    if metrics is not None:
        return metrics.to_dict()
    try:
        return {"status": rundir.run_status(run_dir).describe(run_dir)}
    except rundir.RunFolderError:
        return {}
