"""The name of every folder and file barenet writes (the layouts: :mod:`barenet.rundir`)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from ..errors import UserError

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
STORAGE_FILE = "storage.txt"  # where the folder's study is stored (search and experiment)
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
