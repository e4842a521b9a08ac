"""One reader per file of a run folder, the one config precedence, and a run's status."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import fileio
from ..errors import FileError
from ..run_metrics import RunMetrics
from .names import (
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    STATE_FILE,
    History,
    RunFolderError,
)

if TYPE_CHECKING:
    from ..config import Config


# -- readers: one per file -----------------------------------------------------------------
def present(path: str | Path) -> bool:
    """Whether anything sits at ``path`` (a file, a folder, a FIFO, a dangling link): then
    the run's reader reads it and refuses what is not a regular file, instead of the run
    silently behaving as if the file were missing."""
    return os.path.lexists(path)


def no_run_folder(run: Path) -> RunFolderError:
    """The error for a ``run`` that is no folder: missing, or a file given in its place (an
    image or a config named where the run folder goes, or a file inside a run folder)."""
    if not os.path.lexists(run):
        return RunFolderError(f"run folder not found: {run}")
    hint = ""
    if run.parent.is_dir() and any(present(run.parent / f) for f in (MODEL_FILE, CONFIG_FILE)):
        hint = f"; the run folder holding it is {run.parent}"
    return RunFolderError(f"{run} is a file, not a run folder (the folder a training wrote){hint}")


def check_run_dir(run_dir: str | Path) -> Path:
    """The folder as a Path, or RunFolderError if it is missing or holds no run at all."""
    run = Path(run_dir)
    if not run.is_dir():
        raise no_run_folder(run)
    if not any(present(run / f) for f in (MODEL_FILE, HISTORY_FILE, CONFIG_FILE)):
        raise RunFolderError(
            f"{run} is not a run folder: expected {MODEL_FILE}, {HISTORY_FILE} or {CONFIG_FILE}"
        )
    return run


def read_weights(run_dir: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(state_dict, metadata)`` of ``RUN/model.safetensors`` (CheckpointError if bad)."""
    from ..checkpoint import load_model_file

    return load_model_file(Path(run_dir) / MODEL_FILE)


def _validated(raw: Any, path: Path) -> Config:
    from ..config import ConfigError, validate

    try:
        return validate(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def read_config(run_dir: str | Path, embedded: Mapping[str, Any] | None = None) -> Config:
    """The run's config by the one precedence rule (module docstring).

    ``embedded``: the metadata of the run's weights if the caller has read them already
    (else ``model.safetensors`` is read here when present). Raises RunFolderError if the
    folder is no run or ``config.yaml`` and the weights' config disagree.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise no_run_folder(run)
    yaml_path, weights = run / CONFIG_FILE, run / MODEL_FILE
    if embedded is None and present(weights):
        embedded = read_weights(run)[1]
    inner = (embedded or {}).get("config")
    if present(yaml_path):
        cfg = _validated(fileio.load_yaml(yaml_path), yaml_path)
        if inner is not None:
            check_same_config(cfg, inner, yaml_path, weights)
        return cfg
    if isinstance(inner, dict):
        return _validated(inner, weights)
    raise RunFolderError(
        f"{run} is not a run folder: no {CONFIG_FILE} and no config in {MODEL_FILE}"
    )


def check_same_config(cfg: Config, other: Any, cfg_file: Path, other_file: Path) -> None:
    """RunFolderError naming both files unless ``other`` (raw data) is the same config."""
    from ..config import to_dict

    if to_dict(_validated(other, other_file)) != to_dict(cfg):
        raise RunFolderError(
            f"{other_file} was trained with another config than {cfg_file} says; "
            "the folder mixes two runs"
        )


def parse_history_csv(text: str) -> History:
    """Columns of a history CSV as float arrays; empty or non-numeric cells become NaN."""
    return history_from_rows(list(csv.DictReader(io.StringIO(text))))


def history_from_rows(rows: list[Mapping[str, Any]]) -> History:
    """Row dicts -> columns (every key seen, first-seen order), NaN where a row lacks one."""
    names = list(dict.fromkeys(k for row in rows for k in row if k is not None))
    return {k: np.array([to_float(r.get(k)) for r in rows], dtype=np.float64) for k in names}


def to_float(value: Any) -> float:
    """``float(value)``, NaN for an empty or non-numeric cell."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_history(path: str | Path) -> History:
    """History of a run folder (or of a ``history.csv`` path). Missing file -> ``{}``."""
    p = Path(path)
    if p.is_dir():
        p = p / HISTORY_FILE
    if not present(p):
        return {}
    try:
        text = fileio.read_bytes(p, "history").decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileError(f"cannot read history {p}: {e}") from None
    return parse_history_csv(text)


def read_metrics(run_dir: str | Path) -> RunMetrics | None:
    """``metrics.json`` of a run folder, or None if the run is not complete."""
    p = Path(run_dir) / METRICS_FILE
    if not present(p):
        return None
    return RunMetrics.from_dict(fileio.load_json(p), p)


def write_metrics(run_dir: str | Path, metrics: RunMetrics) -> Path:
    """Write ``metrics.json`` atomically: from now on the run is complete."""
    return fileio.save_json(Path(run_dir) / METRICS_FILE, metrics.to_dict())


# -- status ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunStatus:
    """``state``: "complete", "diverged" (both final) or "incomplete"; epochs done and planned."""

    state: str
    epochs_done: int
    epochs_total: int | None

    @property
    def finished(self) -> bool:
        return self.state != "incomplete"

    def describe(self, run_dir: str | Path) -> str:
        """One line for humans, with the command that resumes an incomplete run."""
        if self.finished:
            return f"{self.state} ({self.epochs_done} epoch{'s' * (self.epochs_done != 1)})"
        n = self.epochs_total or self.epochs_done
        total = f" of {self.epochs_total}" if self.epochs_total else ""
        return (
            f"incomplete ({self.epochs_done}{total} epoch{'s' * (n != 1)} saved); "
            f"resume with: barenet train --resume {run_dir}"
        )


def read_state_metadata(run_dir: str | Path) -> dict[str, Any] | None:
    """The JSON part of ``state.safetensors``, or None without one."""
    from ..checkpoint import load_model_file

    p = Path(run_dir) / STATE_FILE
    return load_model_file(p)[1] if present(p) else None


def run_status(run_dir: str | Path) -> RunStatus:
    """Complete, diverged or incomplete (RunFolderError if the folder holds no run)."""
    run = check_run_dir(run_dir)
    metrics = read_metrics(run)
    if metrics is not None:
        return RunStatus(metrics.status, metrics.epochs_run or 0, metrics.epochs_run)
    state = read_state_metadata(run) or {}
    total = None
    if present(run / CONFIG_FILE):
        raw = fileio.load_yaml(run / CONFIG_FILE)
        epochs = raw.get("train", {}).get("epochs") if isinstance(raw, dict) else None
        total = epochs if isinstance(epochs, int) else None
    done = state.get("epoch", 0)
    return RunStatus("incomplete", done if isinstance(done, int) else 0, total)
