"""Every folder barenet writes, and the name of every file in it: spelled here once.

A run folder (``barenet train``)::

    RUN/config.yaml  model.safetensors  history.csv  metrics.json  plots/  report.html

A search folder (``barenet search``)::

    OUT/search.yaml  study.journal  leaderboard.csv  leaderboard.md  best_config.yaml
        trials/trial_NNNN/  (each a run folder)   best/  (``--retrain-best``)

An experiment folder (``barenet experiment``)::

    OUT/experiment.yaml  runs.csv  results.md  results.json  curves.png  accuracy.png
        report.html  runs/VARIANT/seed_N/  (each a run folder)
"""

from __future__ import annotations

import time
from pathlib import Path

# -- a run folder --------------------------------------------------------------------------
CONFIG_FILE = "config.yaml"  # the resolved config
MODEL_FILE = "model.safetensors"  # best weights; config and training state as JSON metadata
HISTORY_FILE = "history.csv"  # one row per epoch
METRICS_FILE = "metrics.json"  # final metrics
PLOTS_DIR = "plots"  # ``barenet plot`` default output
REPORT_FILE = "report.html"  # ``barenet report`` default output (also in experiment folders)
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

# -- default locations ---------------------------------------------------------------------
OUTPUT_ROOT = Path("runs")


def trial_dir(out: str | Path, number: int) -> Path:
    """The run folder of search trial ``number``: ``OUT/trials/trial_NNNN``."""
    return Path(out) / TRIALS_DIR / f"trial_{number:04d}"


def timestamped(prefix: str) -> Path:
    """``runs/PREFIX-YYYYmmdd-HHMMSS``: the default folder of a run or a comparison."""
    return OUTPUT_ROOT / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def search_out(study_name: str) -> Path:
    """Default output folder of a search: ``runs/search/STUDY``."""
    return OUTPUT_ROOT / "search" / study_name


def experiment_out(name: str) -> Path:
    """Default output folder of an experiment: ``runs/experiments/NAME``."""
    return OUTPUT_ROOT / "experiments" / name
