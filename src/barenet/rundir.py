"""Every folder barenet writes, the name of every file in it, and the run folder's readers.

A run folder (``barenet train``)::

    RUN/config.yaml  model.safetensors  history.csv  metrics.json  plots/  report.html
        [watch.json]  (``train.watch: true``)
        tensorboard/  (``train.tensorboard: true``)
        state.safetensors  (training state of the last completed epoch; until the run ends)
        .lock              (held by the process training into RUN)

A search folder (``barenet search``)::

    OUT/search.yaml  study.journal  leaderboard.csv  leaderboard.md  best_config.yaml
        trials/trial_NNNN/  (each a run folder)   best/  (``--retrain-best``)

A comparison folder (``barenet compare``)::

    OUT/comparison_curves.png  comparison.md  comparison.csv  report.html

An experiment folder (``barenet experiment``)::

    OUT/experiment.yaml  runs.csv  results.md  results.json  curves.png  accuracy.png
        report.html  runs/VARIANT/seed_N/  (each a run folder)

A run is *complete* once ``metrics.json`` exists (written last); until then it is
*incomplete*, and resumable from ``state.safetensors`` if at least one epoch ended.

One config precedence: ``config.yaml`` is the run's config. The copy embedded in the
weights' (and the state's) metadata must agree with it, else the folder is refused naming
both files; without ``config.yaml`` (a folder holding only weights) the embedded one is used.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import fileio
from .errors import FileError, UserError
from .folderlock import FolderBusy, FolderLock
from .run_metrics import RunMetrics

if TYPE_CHECKING:
    from .config import Config

__all__ = ["RunFolderError", "RunMetrics", "RunStatus", "create", "lock", "read_config"]

# -- a run folder --------------------------------------------------------------------------
CONFIG_FILE = "config.yaml"  # the resolved config
MODEL_FILE = "model.safetensors"  # best weights; config and training state as JSON metadata
HISTORY_FILE = "history.csv"  # one row per epoch
METRICS_FILE = "metrics.json"  # final metrics (RunMetrics); its presence means "complete"
STATE_FILE = "state.safetensors"  # full training state of the last completed epoch
LOCK_FILE = ".lock"  # flock-ed by the process writing the folder
CHECKPOINTS_DIR = "checkpoints"  # train.checkpoint_every_epoch: epoch_N.safetensors
PLOTS_DIR = "plots"  # ``barenet plot`` default output
TENSORBOARD_DIR = "tensorboard"  # event files (``train.tensorboard: true``)
REPORT_FILE = "report.html"  # ``barenet report`` default output (also in experiment folders)
WATCH_FILE = "watch.json"  # per-layer internals per epoch (``train.watch: true``)

# -- an lr-find folder (``barenet lr-find``) -----------------------------------------------
LR_FIND_PNG = "lr_find.png"
LR_FIND_JSON = "lr_find.json"
# What training writes (and a fresh start over an old run replaces).
RUN_FILES = (CONFIG_FILE, MODEL_FILE, HISTORY_FILE, METRICS_FILE, STATE_FILE)
ONNX_FILE = "model.onnx"  # ``barenet export`` default output

# -- a search folder -----------------------------------------------------------------------
SEARCH_FILE = "search.yaml"  # the resolved search, self-contained
JOURNAL_FILE = "study.journal"  # the Optuna study (default storage)
LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_MD = "leaderboard.md"
BEST_CONFIG_FILE = "best_config.yaml"
TRIALS_DIR = "trials"
BEST_DIR = "best"  # --retrain-best

# -- an experiment folder ------------------------------------------------------------------
EXPERIMENT_FILE = "experiment.yaml"  # the resolved experiment (manifest)
RUNS_DIR = "runs"  # runs/VARIANT/seed_N
RUNS_CSV = "runs.csv"
RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"
CURVES_PNG = "curves.png"
ACCURACY_PNG = "accuracy.png"

# -- a comparison folder (``barenet compare``) ----------------------------------------------
COMPARISON_CURVES_PNG = "comparison_curves.png"
COMPARISON_MD = "comparison.md"
COMPARISON_CSV = "comparison.csv"  # one row per run; marks the folder for ``barenet report``

# -- default locations ---------------------------------------------------------------------
OUTPUT_ROOT = Path("runs")

History = dict[str, np.ndarray]  # column -> one float per epoch (NaN for an empty cell)


class RunFolderError(UserError):
    """A folder is not a run, holds another run, or its files disagree."""


def trial_dir(out: str | Path, number: int) -> Path:
    """The run folder of search trial ``number``: ``OUT/trials/trial_NNNN``."""
    return Path(out) / TRIALS_DIR / f"trial_{number:04d}"


def timestamped(prefix: str) -> Path:
    """``runs/PREFIX-YYYYmmdd-HHMMSS``: the default folder of a run or a comparison."""
    return OUTPUT_ROOT / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def check_name(name: str, what: str) -> str:
    """A study, experiment or variant name: it names a folder under the output root, so
    letters, digits, ``_ - . +`` only, not starting with a dot (no ``..``, no ``/``)."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 200:
        raise UserError(
            f"{what} '{name}' must be letters, digits, '_', '-', '.' or '+' "
            "(it names a folder), starting with a letter or digit"
        )
    return name


def search_out(study_name: str) -> Path:
    """Default output folder of a search: ``runs/search/STUDY``."""
    return OUTPUT_ROOT / "search" / study_name


def experiment_out(name: str) -> Path:
    """Default output folder of an experiment: ``runs/experiments/NAME``."""
    return OUTPUT_ROOT / "experiments" / name


# -- readers: one per file -----------------------------------------------------------------
def present(path: str | Path) -> bool:
    """Whether anything sits at ``path`` (a file, a folder, a FIFO, a dangling link): then
    the run's reader reads it and refuses what is not a regular file, instead of the run
    silently behaving as if the file were missing."""
    return os.path.lexists(path)


def check_run_dir(run_dir: str | Path) -> Path:
    """The folder as a Path, or RunFolderError if it is missing or holds no run at all."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunFolderError(f"run folder not found: {run}")
    if not any(present(run / f) for f in (MODEL_FILE, HISTORY_FILE, CONFIG_FILE)):
        raise RunFolderError(
            f"{run} is not a run folder: expected {MODEL_FILE}, {HISTORY_FILE} or {CONFIG_FILE}"
        )
    return run


def read_weights(run_dir: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(state_dict, metadata)`` of ``RUN/model.safetensors`` (CheckpointError if bad)."""
    from .checkpoint import load_model_file

    return load_model_file(Path(run_dir) / MODEL_FILE)


def _validated(raw: Any, path: Path) -> Config:
    from .config import ConfigError, validate

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
        raise RunFolderError(f"run folder not found: {run}")
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
    from .config import to_dict

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
    from .checkpoint import load_model_file

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


# -- creating and locking --------------------------------------------------------------------
def lock(run_dir: str | Path) -> FolderLock:
    """The run folder's lock (``with rundir.lock(run):``); FolderBusy if another process has it."""
    return FolderLock(run_dir, LOCK_FILE)


def _is_temp(name: str, of: tuple[str, ...] | None = None) -> bool:
    # fileio's atomic writes stage ``.NAME.XXXXXXXX.tmp`` beside the target
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    return of is None or any(name.startswith(f".{n}.") for n in of)


def clear(run_dir: str | Path, keep: tuple[str, ...] = ()) -> None:
    """Remove what training writes (RUN_FILES but ``keep``) and the temp files a killed
    write left of any of them: a fresh start over an earlier attempt. Call it locked."""
    run = Path(run_dir)
    names = tuple(n for n in RUN_FILES if n not in keep)
    for p in run.iterdir():
        if p.name in names or _is_temp(p.name, RUN_FILES):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _check_fresh(out: Path, config: Mapping[str, Any] | None) -> None:
    names = {p.name for p in out.iterdir() if p.name != LOCK_FILE and not _is_temp(p.name)}
    if not names:
        return
    if STATE_FILE in names:
        raise RunFolderError(
            f"{out} holds an unfinished run; resume it with `barenet train --resume {out}` "
            "or choose another --out"
        )
    # A run killed before its first epoch ended left config.yaml (and maybe the first
    # checkpoint): the same command again may start over.
    stub = {CONFIG_FILE, MODEL_FILE, HISTORY_FILE}
    if config is not None and CONFIG_FILE in names and names <= stub:
        with contextlib.suppress(FileError):
            if fileio.load_yaml(out / CONFIG_FILE) == fileio.to_jsonable(config):
                return
    raise RunFolderError(f"output folder {out} is not empty; choose another --out")


def _mkdir(out: Path) -> bool:
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(out)
    except FileExistsError:
        if not out.is_dir():
            raise RunFolderError(f"{out} exists and is not a folder") from None
        return False
    return True


def _claim_given(out: Path, config: Mapping[str, Any] | None) -> tuple[bool, FolderLock]:
    for _ in range(5):
        created = _mkdir(out)
        held = lock(out)
        try:
            held.acquire()
        except FileError:
            if out.is_dir():
                raise
            continue  # the folder vanished (a failed run removed its own): make it again
        try:
            _check_fresh(out, config)
        except BaseException:
            held.release()
            raise
        return created, held
    raise RunFolderError(f"cannot create {out}: it keeps disappearing")


def _claim_default(prefix: str) -> tuple[Path, FolderLock]:
    base = timestamped(prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        held = lock(path)
        try:
            return path, held.acquire()
        except FolderBusy:
            continue
    raise RunFolderError(f"no free folder name {base}-N")


@contextlib.contextmanager
def create(
    out: str | Path | None, prefix: str = "run", config: Mapping[str, Any] | None = None
) -> Iterator[Path]:
    """``with rundir.create(out, name, config) as run:`` a new run folder, locked for the block.

    ``out`` given: it is created (parents too), or must be an empty folder, or a stub
    holding only this ``config`` (a run killed before its first epoch). Of two processes
    creating the same ``out`` exactly one wins; the other gets FolderBusy or RunFolderError
    and the folder is as it was. ``out`` None: ``runs/PREFIX-TIMESTAMP``, with ``-2``,
    ``-3``... while that exists, so default names never collide. If the folder was created
    here and holds nothing when the block ends (a run that failed at once), it is removed.
    """
    if out is None:
        path, held = _claim_default(prefix)
        created = True
    else:
        path = Path(out)
        created, held = _claim_given(path, config)
    try:
        yield path
    finally:
        held.release()
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds if empty
