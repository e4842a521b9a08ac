"""Run a search: one or many worker processes on one study, then the leaderboard.

Each worker loops: take the budget lock, fail/re-queue trials of dead workers, stop if the
study already holds its budget of trials, else create the next trial (the lock is released
as soon as it exists) and train it. So N workers, on one machine or many, finish with
exactly the requested number of trials, and running the same command again resumes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .. import fileio, threads
from ..config import ConfigError, to_dict, validate
from ..rundir import BEST_DIR, SEARCH_FILE, search_out
from .leaderboard import best_config, best_trial, write_leaderboard
from .objective import Objective, TrainFn
from .space import Search
from .storage import HOST, budget_lock, make_storage
from .study import counted, make_sampler, on_stale_trial, open_study, recover


class SearchError(RuntimeError):
    """The search could not finish (a worker process died)."""


@dataclass
class SearchJob:
    """Everything a worker needs; picklable (``log`` and ``train_fn`` must be too when
    ``workers > 1``)."""

    search: Search
    out: Path
    storage: str | None = None
    trials: int | None = None
    workers: int = 1
    data_dir: str | None = None
    log: Callable[[str], None] | None = None
    train_fn: TrainFn | None = None


@dataclass
class SearchResult:
    out: Path
    study_name: str
    budget: int
    ran: int
    states: dict[str, int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None


def default_out(study_name: str) -> Path:
    """Fixed (no timestamp), so the same command resumes the same study."""
    return search_out(study_name)


def _describe(search: Search, t: FrozenTrial) -> str:
    values = search.decode(t.params)
    shown = " ".join(f"{k}={_short(v)}" for k, v in values.items())
    metric = search.config.objective
    if t.state == TrialState.COMPLETE:
        result = f"{metric} {t.value:.4f}"
    elif t.state == TrialState.PRUNED and "duplicate_of" in t.user_attrs:
        result = f"duplicate of trial {t.user_attrs['duplicate_of']}"
    elif t.state == TrialState.PRUNED:
        result = f"after {t.user_attrs.get('epochs_run')} epoch(s)"
    else:
        result = t.user_attrs.get("fail_reason", "")
    secs = t.user_attrs.get("seconds")
    tail = f"  ({secs:.1f} s)" if isinstance(secs, (int, float)) else ""
    return f"trial {t.number:>4} {t.state.name:<8} {result}  {shown}{tail}"


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v).replace(" ", "")


def run_worker(job: SearchJob, index: int = 0, parallel: bool = False) -> int:
    """Run trials until the study holds its budget; returns how many this worker ran."""
    search, out = job.search, Path(job.out)
    budget = search.budget(job.trials)
    storage = make_storage(job.storage, out, on_stale=on_stale_trial)
    lock = budget_lock(storage, job.storage, out, search.study_name)
    salt = HOST if job.storage else ""  # distinct TPE seeds on different machines
    sampler = make_sampler(search, index, parallel or job.storage is not None, salt)
    study = open_study(search, storage, sampler, create=False)
    objective = Objective(search, out, job.data_dir, job.train_fn, before=lock.release)
    tag = f"[worker {index}] " if parallel else ""

    def after(study: optuna.Study, trial: FrozenTrial) -> None:
        write_leaderboard(out, study, search)
        if job.log is not None:
            with contextlib.suppress(OSError):  # e.g. stdout piped into `head`: keep going
                job.log(tag + _describe(search, trial))

    ran = 0
    while ran < 2 * budget + 10:  # a guard: each pass normally uses one unit of budget
        lock.acquire()
        try:
            requeued = recover(study, storage)
            if requeued and job.log is not None:
                job.log(f"{tag}re-queued interrupted trial(s) {requeued}")
            claimed = counted(study.get_trials(deepcopy=False))
            waiting = any(t.state == TrialState.WAITING for t in claimed)
            # a queued retry already holds its budget slot; ask() pops it before creating
            if len(claimed) >= budget and not waiting:
                break
            study.optimize(
                objective, n_trials=1, catch=(Exception,), callbacks=[after], gc_after_trial=False
            )
            ran += 1
        finally:
            lock.release()
    return ran


def _worker_main(job: SearchJob, index: int) -> None:
    """Entry point of a spawned worker: one compute thread, so N workers share N cores."""
    threads.cap(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        run_worker(job, index, parallel=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - one line, not a traceback, per worker
        print(f"barenet: worker {index}: error: {err}", file=sys.stderr, flush=True)
        sys.exit(1)


def _spawn(job: SearchJob) -> tuple[list[int], list[int]]:
    """Run the workers; returns their pids and exit codes."""
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_worker_main, args=(job, i), name=f"barenet-search-{i}")
        for i in range(job.workers)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        # The workers got the same SIGINT: let them record their trials as interrupted.
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
        raise
    return [p.pid or 0 for p in procs], [p.exitcode or 0 for p in procs]


def _check_out(out: Path, search: Search) -> None:
    path = out / SEARCH_FILE
    if path.exists():
        old = fileio.load_yaml(path) or {}
        name = old.get("study") if isinstance(old, dict) else None
        if name is not None and name != search.study_name:
            raise ConfigError(
                f"{out} holds the search of study '{name}'; "
                f"use another --out for study '{search.study_name}'"
            )


def run_search(job: SearchJob) -> SearchResult:
    """Create or resume the study, run ``job.workers`` workers, write the leaderboard."""
    search, out = job.search, Path(job.out)
    if job.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {job.workers}")
    budget = search.budget(job.trials)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        _check_out(out, search)
        out.mkdir(parents=True, exist_ok=True)
        storage = make_storage(job.storage, out, on_stale=on_stale_trial)
        study = open_study(search, storage, create=True)
        fileio.save_yaml(out / SEARCH_FILE, {**search.resolved(), "trials": budget})
        with budget_lock(storage, job.storage, out, search.study_name):
            requeued = recover(study, storage)
        existing = study.get_trials(deepcopy=False)
        before, seen = len(counted(existing)), {t.number for t in existing}
        if job.log is not None:
            where = "" if job.storage is None else f", storage {job.storage.split('@')[-1]}"
            job.log(
                f"search '{search.study_name}': {search.config.sampler} sampler, "
                f"{budget} trials ({before} already in the study), "
                f"{job.workers} worker(s) -> {out}{where}"
            )
            if requeued:
                job.log(f"re-queued interrupted trial(s) {requeued}")
        try:
            if job.workers == 1:
                # a lone worker uses the config's train.threads (the bits do not depend on
                # the thread count, so results still do not depend on --workers)
                run_worker(job, 0)
                pids, codes = [os.getpid()], [0]
            else:
                pids, codes = _spawn(job)
        except KeyboardInterrupt:
            write_leaderboard(out, study, search)  # what was done, and what was interrupted
            raise
        rows = write_leaderboard(out, study, search)
    finally:
        optuna.logging.set_verbosity(verbosity)
    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    best = next((r for r in rows if r["state"] == "COMPLETE"), None)
    # trials this command ran (other machines may share the study)
    ran = sum(
        1
        for t in trials
        if t.number not in seen
        and t.user_attrs.get("host") == HOST
        and t.user_attrs.get("pid") in pids
    )
    result = SearchResult(out, search.study_name, budget, ran, states, rows, best)
    bad = [i for i, c in enumerate(codes) if c != 0]
    if bad:
        raise SearchError(
            f"worker(s) {bad} exited with code(s) {[codes[i] for i in bad]}; "
            "completed trials are kept, run the same command again to resume"
        )
    return result


def retrain_best(job: SearchJob, progress: bool = True) -> dict[str, Any]:
    """Train the best trial's config on the full training set (validation split kept) into
    ``OUT/best`` and evaluate it once on the test set. Returns the run's metrics plus
    ``trial`` and ``run_dir``. A finished retrain of the same config is not repeated."""
    search, out = job.search, Path(job.out)
    storage = make_storage(job.storage, out)
    study = open_study(search, storage, create=False)
    best = best_trial(study, search)
    if best is None:
        raise SearchError("no completed trial yet: nothing to retrain")
    data = best_config(search, best)
    data["data"]["subset"] = 1.0
    cfg = validate(data)
    target = out / BEST_DIR
    n = 1
    from ..runner import CONFIG_FILE, METRICS_FILE, train_run

    wanted = fileio.to_jsonable(to_dict(cfg))
    while target.exists() and any(target.iterdir()):
        same = (target / CONFIG_FILE).exists() and fileio.load_yaml(target / CONFIG_FILE) == wanted
        if same and (target / METRICS_FILE).exists():
            metrics = fileio.load_json(target / METRICS_FILE)
            if "test_accuracy" in metrics:
                return {**metrics, "trial": best.number, "run_dir": str(target), "reused": True}
        n += 1
        target = out / f"{BEST_DIR}_{n}"
    metrics = train_run(cfg, target, data_dir=job.data_dir, progress=progress, evaluate_test=True)
    return {**metrics, "trial": best.number, "run_dir": str(target), "reused": False}
