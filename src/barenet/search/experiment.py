"""Run an experiment: every (variant, seed) not yet done, in worker processes, then the tables,
curves and report. See ``experiment_spec`` for the experiment YAML.

A run whose ``metrics.json`` exists is done; a run folder without one is cleared and trained
again, so the same command resumes an interrupted experiment. Every run uses one BLAS thread
(in a worker process or in this one), so results do not depend on ``--workers``.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import fileio
from ..config import ConfigError, validate
from ..rundir import EXPERIMENT_FILE as MANIFEST
from ..runner import CONFIG_FILE, HISTORY_FILE, METRICS_FILE
from .experiment_spec import (
    Experiment,
    RunSpec,
    default_out,
    load_experiment,
    merge_overrides,
    resolve_experiment,
)

__all__ = [
    "Experiment",
    "ExperimentError",
    "ExperimentResult",
    "RunSpec",
    "default_out",
    "execute_run",
    "load_experiment",
    "merge_overrides",
    "resolve_experiment",
    "run_experiment",
]


class ExperimentError(RuntimeError):
    """A run failed (not a divergence) or a worker process died; finished runs are kept."""


# -- running ----------------------------------------------------------------------------------
def execute_run(spec: RunSpec, out: Path, data_dir: str | None) -> dict[str, Any]:
    """Train one run into ``out / spec.rel_dir``. A diverged run is a result, not an error: its
    metrics.json records ``status: diverged`` and the epochs it completed."""
    from ..runner import train_run
    from ..train.trainer import TrainingDiverged

    run_dir = out / spec.rel_dir
    try:
        return train_run(validate(spec.config), run_dir, data_dir=data_dir, progress=False)
    except TrainingDiverged as err:
        history = run_dir / HISTORY_FILE
        epochs = max(len(history.read_text().splitlines()) - 1, 0) if history.exists() else 0
        metrics = {
            "name": spec.config["name"],
            "status": "diverged",
            "error": str(err),
            "epochs_run": epochs,
        }
        fileio.save_json(run_dir / METRICS_FILE, metrics)
        return metrics


def _pool_worker(tasks: Any, results: Any, out: Path, data_dir: str | None) -> None:
    """A spawned worker: one compute thread (N workers share N cores), then runs until a None."""
    from .. import threads

    threads.cap(1)
    parent = mp.parent_process()
    while (spec := tasks.get()) is not None:
        if parent is not None and not parent.is_alive():  # orphaned: nobody reads the results
            return
        try:
            metrics = execute_run(spec, out, data_dir)
        except KeyboardInterrupt:
            return
        except Exception as err:  # noqa: BLE001 - reported by the parent as one line
            results.put((spec, None, f"{type(err).__name__}: {' '.join(str(err).split())}"))
            return
        results.put((spec, metrics, None))


def _run_parallel(
    pending: list[RunSpec],
    out: Path,
    workers: int,
    data_dir: str | None,
    on_done: Callable[[RunSpec, dict[str, Any]], None],
) -> None:
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    for spec in pending:
        tasks.put(spec)
    n = min(workers, len(pending))
    for _ in range(n):
        tasks.put(None)
    procs = [
        ctx.Process(
            target=_pool_worker,
            args=(tasks, results, out, data_dir),
            name=f"barenet-experiment-{i}",
            daemon=True,
        )
        for i in range(n)
    ]
    for p in procs:
        p.start()
    left = len(pending)
    try:
        while left:
            try:
                spec, metrics, error = results.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise ExperimentError(
                        f"worker {dead[0].name} died (exit code {dead[0].exitcode}); finished "
                        "runs are kept, run the same command again to resume"
                    ) from None
                continue
            left -= 1
            if error is not None:
                raise ExperimentError(
                    f"run {spec.rel_dir} failed: {error}; finished runs are "
                    "kept, run the same command again to resume"
                )
            on_done(spec, metrics)
    finally:
        for p in procs:
            p.join(timeout=0 if left else 10)
            if p.is_alive():  # interrupted or failed: a half-written run is redone on resume
                p.terminate()
                p.join()


@dataclass
class ExperimentResult:
    out: Path
    ran: int
    skipped: int
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    files: list[Path]


def _check_out(exp: Experiment, out: Path, specs: list[RunSpec]) -> None:
    """Refuse to mix: another experiment's folder, or finished runs trained with another config."""
    manifest = out / MANIFEST
    if manifest.exists():
        old = fileio.load_yaml(manifest) or {}
        if isinstance(old, dict) and old.get("name") not in (None, exp.name):
            raise ConfigError(
                f"{out} holds experiment '{old.get('name')}'; use another --out for '{exp.name}'"
            )
    for spec in specs:
        run = out / spec.rel_dir
        if (run / METRICS_FILE).exists() and (run / CONFIG_FILE).exists():
            saved = fileio.load_yaml(run / CONFIG_FILE)
            if saved != spec.config:
                key = _first_difference(saved, spec.config)
                raise ConfigError(
                    f"{run} was trained with a different config ({key} differs); "
                    "use another --out, or delete that folder to retrain it"
                )


def _check_data(specs: list[RunSpec], data_dir: str | None) -> None:
    """Find (or download, once) every data set before the workers start: a missing one is a
    one-line DataError now, not a failed run later."""
    from ..data import locate

    for name, where in {(s.config["data"]["dataset"], s.config["data"]["data_dir"]) for s in specs}:
        for split in ("train", "test"):
            locate(name, split, data_dir or where)


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "config"


def run_experiment(
    exp: Experiment,
    out: str | Path,
    workers: int = 1,
    data_dir: str | None = None,
    log: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Train every run not yet done (``workers`` processes), rewriting ``runs.csv``,
    ``results.md`` and ``results.json`` as runs finish; then draw the curves and write
    ``report.html``. With ``workers == 1`` the runs train in this process."""
    from .experiment_table import collect_rows, write_outputs, write_tables

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    out = Path(out)
    specs = exp.runs()
    _check_out(exp, out, specs)
    pending = [s for s in specs if not (out / s.rel_dir / METRICS_FILE).exists()]
    _check_data(pending, data_dir)
    out.mkdir(parents=True, exist_ok=True)
    fileio.save_yaml(out / MANIFEST, exp.resolved())
    for s in pending:  # a folder without metrics.json is an interrupted run: start it afresh
        if (out / s.rel_dir).exists():
            shutil.rmtree(out / s.rel_dir)
    say = log or (lambda _msg: None)
    say(
        f"experiment '{exp.name}': {len(exp.variants)} variants x {len(exp.seeds)} seeds = "
        f"{len(specs)} runs ({len(specs) - len(pending)} already done), "
        f"{min(workers, max(len(pending), 1))} worker(s) -> {out}"
    )
    write_tables(exp, out)
    done = 0

    def on_done(spec: RunSpec, metrics: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        write_tables(exp, out)
        say(f"[{done}/{len(pending)}] {spec.variant} seed {spec.seed}: {_describe(metrics)}")

    if workers == 1 or len(pending) <= 1:
        # train.threads as configured: the bits do not depend on the thread count
        for spec in pending:
            on_done(spec, execute_run(spec, out, data_dir))
    else:
        _run_parallel(pending, out, workers, data_dir, on_done)
    summary, files = write_outputs(exp, out)
    return ExperimentResult(
        out, done, len(specs) - len(pending), collect_rows(exp, out), summary, files
    )


def _describe(m: dict[str, Any]) -> str:
    if m.get("status") == "diverged":
        return f"diverged after {m.get('epochs_run', 0)} epoch(s)"
    parts = [f"{k} {m[k]:.4f}" for k in ("val_accuracy", "test_accuracy") if k in m]
    return ", ".join(parts) + f" ({m.get('train_seconds', 0):.1f} s)"
