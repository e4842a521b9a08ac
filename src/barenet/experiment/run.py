"""Run an experiment on the search engine: every (variant, seed) not yet done, by the study's
workers (this process for one, spawned processes for more, other machines sharing
``--storage``), then the tables, curves and report.

The study lives where a search's does: ``OUT/study.journal`` by default, or any Optuna storage
URL (``postgresql://...``), so many machines share one experiment and each run happens once.
A run that was interrupted (Ctrl-C, a killed or dead worker, a full disk) is re-queued by the
next command; a run that fails by itself is final. A diverged run is a result, not an error:
its ``metrics.json`` records ``status: diverged``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import fileio
from ..config import Config
from ..rundir import HISTORY_FILE, METRICS_FILE
from ..search.objective import TrainFn
from ..search.workers import StudyJob, run_study
from .spec import Experiment
from .task import ExperimentTask


class ExperimentError(RuntimeError):
    """A run failed by itself (not a divergence); every other run was done and is kept."""


@dataclass
class ExperimentResult:
    out: Path
    ran: int
    skipped: int
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    files: list[Path]


def train_experiment_run(cfg: Config, out_dir: Path, **kwargs: Any) -> dict[str, Any]:
    """:func:`barenet.runner.train_run`, writing ``status: diverged`` and the epochs it
    completed into ``metrics.json`` when the run diverges (then re-raising)."""
    from .. import runner
    from ..train.trainer import TrainingDiverged

    try:
        return runner.train_run(cfg, out_dir, **kwargs)
    except TrainingDiverged as err:
        history = Path(out_dir) / HISTORY_FILE
        epochs = max(len(history.read_text().splitlines()) - 1, 0) if history.exists() else 0
        metrics = {"name": cfg.name, "status": "diverged", "error": str(err), "epochs_run": epochs}
        fileio.save_json(Path(out_dir) / METRICS_FILE, metrics)
        raise


def _check_data(exp: Experiment, data_dir: str | None) -> None:
    """Find (or download, once) every data set before the workers start: a missing one is a
    one-line DataError now, not a failed run later."""
    from ..data import locate

    runs = exp.runs()
    for name, where in {(s.config["data"]["dataset"], s.config["data"]["data_dir"]) for s in runs}:
        for split in ("train", "test"):
            locate(name, split, data_dir or where)


def run_experiment(
    exp: Experiment,
    out: str | Path,
    workers: int = 1,
    data_dir: str | None = None,
    log: Callable[[str], None] | None = None,
    storage: str | None = None,
    train_fn: TrainFn | None = None,
) -> ExperimentResult:
    """Train every run not yet done (``workers`` processes; ``storage`` shares the study with
    other machines), rewriting ``runs.csv``, ``results.md`` and ``results.json`` as runs
    finish; then draw the curves and write ``report.html``."""
    from ..viz.experiment_report import write_outputs

    out = Path(out)
    _check_data(exp, data_dir)
    job = StudyJob(
        ExperimentTask(exp),
        out,
        storage=storage,
        workers=workers,
        data_dir=data_dir,
        log=log,
        train_fn=train_fn or train_experiment_run,
    )
    head = f"experiment '{exp.name}': {len(exp.variants)} variants x {len(exp.seeds)} seeds"
    result = run_study(job, head)
    summary, files = write_outputs(exp, out, result.rows)
    done = sum(r["status"] != "pending" for r in result.rows)
    failed = [r for r in result.rows if r["status"] == "failed"]
    if failed:
        r = failed[0]
        raise ExperimentError(
            f"{len(failed)} run(s) failed, e.g. {r['variant']} seed {r['seed']}: {r['reason']}; "
            f"the other runs are kept (tables in {out})"
        )
    return ExperimentResult(out, result.ran, done - result.ran, result.rows, summary, files)
