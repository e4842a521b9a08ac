"""Reading what plots need from a run folder: history, metrics and config, tolerant of gaps.

A history is a plain ``dict[column, float array]`` (NaN for empty cells), one entry per epoch.
``as_history`` also accepts pandas DataFrames, dicts of lists, lists of row dicts and paths, so
callers (compare, experiments) can pass whatever they hold.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import checkpoint, fileio
from ..config import Config, ConfigError, validate
from ..errors import FileError
from ..rundir import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE

History = dict[str, np.ndarray]


def _to_float(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return math.nan
    return f


def _columns(rows: Sequence[Mapping[str, Any]]) -> History:
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {k: np.array([_to_float(r.get(k)) for r in rows], dtype=np.float64) for k in names}


def parse_history_csv(text: str) -> History:
    """Columns of a history CSV as float arrays; empty or non-numeric cells become NaN."""
    rows = list(csv.DictReader(io.StringIO(text)))
    return _columns(rows)


def read_history(path: str | Path) -> History:
    """History of a run folder (or of a ``history.csv`` path). Missing file -> ``{}``."""
    p = Path(path)
    if p.is_dir():
        p = p / HISTORY_FILE
    if not p.is_file():
        return {}
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FileError(f"cannot read history {p}: {e}") from None
    return parse_history_csv(text)


def as_history(obj: Any) -> History:
    """Normalise a DataFrame, dict of sequences, list of row dicts, or path into a History.

    Without an ``epoch`` column, epochs are numbered 1..E.
    """
    if isinstance(obj, (str, Path)):
        h = read_history(obj)
    elif hasattr(obj, "columns") and hasattr(obj, "to_dict"):  # pandas, without importing it
        h = {str(c): np.asarray(obj[c], dtype=np.float64) for c in obj.columns}
    elif isinstance(obj, Mapping):
        h = {
            str(k): np.array([_to_float(v) for v in np.ravel(np.asarray(vals, dtype=object))])
            for k, vals in obj.items()
        }
    elif isinstance(obj, Sequence):
        h = _columns(list(obj))
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
    """metrics.json of a run folder, or ``{}`` if there is none."""
    p = Path(run_dir) / METRICS_FILE
    if not p.is_file():
        return {}
    data = fileio.load_json(p)
    return data if isinstance(data, dict) else {}


def read_config(run_dir: str | Path) -> Config:
    """The run's config: config.yaml, else the JSON metadata inside the weights file."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run folder not found: {run}")
    if (run / CONFIG_FILE).is_file():
        return validate(fileio.load_yaml(run / CONFIG_FILE))
    if (run / MODEL_FILE).is_file():
        _, meta = checkpoint.load_model_file(run / MODEL_FILE)
        if isinstance(meta.get("config"), dict):
            return validate(meta["config"])
    raise ConfigError(f"{run} is not a run folder: no {CONFIG_FILE} and no config in {MODEL_FILE}")


def check_run_dir(run_dir: str | Path) -> Path:
    """The folder as a Path, or ConfigError if it is missing or holds no run at all."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run folder not found: {run}")
    if not any((run / f).is_file() for f in (MODEL_FILE, HISTORY_FILE, CONFIG_FILE)):
        raise ConfigError(
            f"{run} is not a run folder: expected {MODEL_FILE}, {HISTORY_FILE} or {CONFIG_FILE}"
        )
    return run
