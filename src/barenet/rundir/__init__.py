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

from ..folderlock import FolderBusy
from ..run_metrics import RunMetrics
from .create import clear, create, lock
from .names import (
    ACCURACY_PNG,
    BEST_CONFIG_FILE,
    BEST_DIR,
    CHECKPOINTS_DIR,
    COMPARISON_CSV,
    COMPARISON_CURVES_PNG,
    COMPARISON_MD,
    CONFIG_FILE,
    CURVES_PNG,
    EXPERIMENT_FILE,
    HISTORY_FILE,
    JOURNAL_FILE,
    LEADERBOARD_CSV,
    LEADERBOARD_MD,
    LOCK_FILE,
    LR_FIND_JSON,
    LR_FIND_PNG,
    METRICS_FILE,
    MODEL_FILE,
    ONNX_FILE,
    OUTPUT_ROOT,
    PLOTS_DIR,
    REPORT_FILE,
    RESULTS_JSON,
    RESULTS_MD,
    RUN_FILES,
    RUNS_CSV,
    RUNS_DIR,
    SEARCH_FILE,
    STATE_FILE,
    STORAGE_FILE,
    TENSORBOARD_DIR,
    TRIALS_DIR,
    WATCH_FILE,
    History,
    RunFolderError,
    check_name,
    experiment_out,
    search_out,
    timestamped,
    trial_dir,
)
from .read import (
    RunStatus,
    check_run_dir,
    check_same_config,
    history_from_rows,
    no_run_folder,
    parse_history_csv,
    present,
    read_config,
    read_history,
    read_metrics,
    read_state_metadata,
    read_weights,
    run_status,
    to_float,
    write_metrics,
)

__all__ = [
    "ACCURACY_PNG",
    "BEST_CONFIG_FILE",
    "BEST_DIR",
    "CHECKPOINTS_DIR",
    "COMPARISON_CSV",
    "COMPARISON_CURVES_PNG",
    "COMPARISON_MD",
    "CONFIG_FILE",
    "CURVES_PNG",
    "EXPERIMENT_FILE",
    "FolderBusy",
    "HISTORY_FILE",
    "History",
    "JOURNAL_FILE",
    "STORAGE_FILE",
    "LEADERBOARD_CSV",
    "LEADERBOARD_MD",
    "LOCK_FILE",
    "LR_FIND_JSON",
    "LR_FIND_PNG",
    "METRICS_FILE",
    "MODEL_FILE",
    "ONNX_FILE",
    "OUTPUT_ROOT",
    "PLOTS_DIR",
    "REPORT_FILE",
    "RESULTS_JSON",
    "RESULTS_MD",
    "RUNS_CSV",
    "RUNS_DIR",
    "RUN_FILES",
    "RunFolderError",
    "RunMetrics",
    "RunStatus",
    "SEARCH_FILE",
    "STATE_FILE",
    "TENSORBOARD_DIR",
    "TRIALS_DIR",
    "WATCH_FILE",
    "check_name",
    "check_run_dir",
    "check_same_config",
    "clear",
    "create",
    "experiment_out",
    "history_from_rows",
    "lock",
    "no_run_folder",
    "parse_history_csv",
    "present",
    "read_config",
    "read_history",
    "read_metrics",
    "read_state_metadata",
    "read_weights",
    "run_status",
    "search_out",
    "timestamped",
    "to_float",
    "trial_dir",
    "write_metrics",
]
