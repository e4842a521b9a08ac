"""Run a study (a search or an experiment): one or many worker processes, then its outputs.

Each worker loops: take the budget lock, fail/re-queue trials of dead workers, stop if the
study already holds its budget of trials, else create the next trial (the lock is released
as soon as it exists) and train it. So N workers, on one machine or many, finish with
exactly the requested number of trials, and running the same command again resumes.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .. import fileio, rundir, threads
from ..config import ConfigError, to_dict, validate
from ..errors import Terminated, UserError
from ..folderlock import FolderBusy
from ..rundir import BEST_DIR, LOCK_FILE, search_out
from .leaderboard import best_config, best_trial
from .objective import Objective, TrainFn
from .space import Search
from .storage import HOST, budget_lock, check_storage, make_storage, record_storage
from .study import counted, on_stale_trial, open_study, pending_interrupted, recover
from .task import SearchTask, StudyTask


class SearchError(RuntimeError):
    """The study could not finish (a worker process died, or a full disk stopped a trial);
    finished trials are kept and the same command resumes."""


@dataclass
class StudyJob:
    """Everything a worker needs; picklable (``log`` and ``train_fn`` must be too when
    ``workers > 1``)."""

    task: StudyTask
    out: Path
    storage: str | None = None
    trials: int | None = None
    workers: int = 1
    data_dir: str | None = None
    log: Callable[[str], None] | None = None
    train_fn: TrainFn | None = None


@dataclass
class SearchJob:
    """A ``barenet search`` run: a :class:`~barenet.search.space.Search` and the options."""

    search: Search
    out: Path
    storage: str | None = None
    trials: int | None = None
    workers: int = 1
    data_dir: str | None = None
    log: Callable[[str], None] | None = None
    train_fn: TrainFn | None = None

    def study_job(self) -> StudyJob:
        fields = {k: v for k, v in vars(self).items() if k != "search"}
        return StudyJob(task=SearchTask(self.search), **fields)


@dataclass
class SearchResult:
    out: Path
    study_name: str
    budget: int
    ran: int
    states: dict[str, int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    interrupted: list[int] = field(default_factory=list)  # re-queued by the next run


def default_out(study_name: str) -> Path:
    """Fixed (no timestamp), so the same command resumes the same study."""
    return search_out(study_name)


def _say(job: StudyJob, msg: str) -> None:
    if job.log is not None:
        with contextlib.suppress(OSError):  # e.g. stdout piped into `head`: keep going
            job.log(msg)
            sys.stdout.flush()  # workers share the terminal or log file


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a batch scheduler) stops the study as Ctrl-C does: the running trial
    is recorded as interrupted and re-queued by the next command. It raises ``Terminated``
    (a KeyboardInterrupt), so the command still exits 143, not Ctrl-C's 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise Terminated

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_worker(job: StudyJob, index: int = 0, parallel: bool = False) -> int:
    """Run trials until the study holds its budget; returns how many this worker ran."""
    task, out = job.task, Path(job.out)
    budget = task.budget(job.trials)
    storage = make_storage(job.storage, out, on_stale=on_stale_trial)
    lock = budget_lock(storage, job.storage, out, task.study_name)
    salt = HOST if job.storage else ""  # distinct TPE seeds on different machines
    sampler = task.sampler(index, parallel or job.storage is not None, salt)
    study = open_study(task, storage, sampler, create=False)
    objective = Objective(task, out, job.data_dir, job.train_fn, before=lock.release)
    tag = f"[worker {index}] " if parallel else ""

    def after(study: optuna.Study, trial: FrozenTrial) -> None:
        task.write_outputs(out, study)
        _say(job, tag + task.describe(trial))

    ran = 0
    while ran < 2 * budget + 10:  # a guard: each pass normally uses one unit of budget
        lock.acquire()
        try:
            requeued = recover(study, storage, stopped=False)
            if requeued:
                _say(job, f"{tag}re-queued trial(s) {requeued} of a dead worker")
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
        if objective.stopped is not None:
            raise SearchError(
                f"trial {objective.last_number} stopped: {objective.stopped}; finished "
                "trials are kept: free some space and run the same command again"
            )
    return ran


def _worker_main(job: StudyJob, index: int, errors: Any = None) -> None:
    """Entry point of a spawned worker: one compute thread, so N workers share N cores. An
    error goes to ``errors`` (a queue the parent reads), so the command still ends with one
    line, not one per worker."""
    threads.cap(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with sigterm_as_interrupt():
            run_worker(job, index, parallel=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - one line, not a traceback, per worker
        if errors is None:
            print(f"barenet: worker {index}: error: {err}", file=sys.stderr, flush=True)
        else:
            errors.put(f"worker {index}: {err}")
        sys.exit(1)


def _spawn(job: StudyJob) -> tuple[list[int], list[int], list[str]]:
    """Run the workers; returns their pids, exit codes and error messages."""
    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    procs = [
        ctx.Process(target=_worker_main, args=(job, i, errors), name=f"barenet-worker-{i}")
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
    messages = []
    while not errors.empty():
        messages.append(str(errors.get()))
    return [p.pid or 0 for p in procs], [p.exitcode or 0 for p in procs], messages


def max_workers() -> int:
    """Local worker processes allowed: 4 per core, at least 8 (more only thrash)."""
    return max(8, 4 * (os.cpu_count() or 1))


def run_study(job: StudyJob, describe: str = "") -> SearchResult:
    """Create or resume the task's study, run ``job.workers`` workers (in this process for
    one), write the task's outputs. ``describe`` begins the first log line."""
    task, out = job.task, Path(job.out)
    if job.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {job.workers}")
    if job.workers > max_workers():
        raise ConfigError(
            f"--workers {job.workers} is too many: at most {max_workers()} on this machine "
            f"({os.cpu_count() or 1} cores; each worker is a process with its own data)"
        )
    budget = task.budget(job.trials)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        task.check_out(out)
        check_storage(out, job.storage)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        try:
            storage = make_storage(job.storage, out, on_stale=on_stale_trial)
        except Exception:
            if created:  # a --storage that cannot be opened leaves no empty output folder
                with contextlib.suppress(OSError):
                    out.rmdir()
            raise
        study = open_study(task, storage, create=True)
        fileio.save_yaml(out / task.manifest, task.resolved(budget))
        record_storage(out, job.storage)
        with budget_lock(storage, job.storage, out, task.study_name):
            task.seed_study(study, out)
            requeued = recover(study, storage)
        existing = study.get_trials(deepcopy=False)
        seen = {t.number for t in existing if t.state != TrialState.WAITING}
        done = sum(t.state != TrialState.WAITING for t in counted(existing))
        where = "" if job.storage is None else f", storage {job.storage.split('@')[-1]}"
        _say(
            job,
            f"{describe or task.study_name}: {budget} {task.unit} ({done} already done), "
            f"{job.workers} worker(s) -> {out}{where}",
        )
        if requeued:
            _say(job, f"re-queued interrupted trial(s) {requeued}")
        try:
            with sigterm_as_interrupt():
                if job.workers == 1:
                    # a lone worker uses the config's train.threads (the bits do not depend
                    # on the thread count, so results still do not depend on --workers)
                    run_worker(job, 0)
                    pids, codes, errors = [os.getpid()], [0], []
                else:
                    pids, codes, errors = _spawn(job)
        except (KeyboardInterrupt, SearchError):
            with contextlib.suppress(OSError, UserError):
                task.write_outputs(out, study)  # what was done, and what was interrupted
            raise
        rows = task.write_outputs(out, study)
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
    result = SearchResult(
        out, task.study_name, budget, ran, states, rows, best, pending_interrupted(trials)
    )
    bad = [i for i, c in enumerate(codes) if c != 0]
    if bad and errors:  # the first worker's reason (a full disk names the file), one line
        more = f" (and {len(bad) - 1} other worker(s))" if len(bad) > 1 else ""
        raise SearchError(f"{errors[0]}{more}")
    if bad:
        raise SearchError(
            f"worker(s) {bad} exited with code(s) {[codes[i] for i in bad]}; "
            "completed trials are kept, run the same command again to resume"
        )
    return result


def run_search(job: SearchJob) -> SearchResult:
    """Create or resume the search's study, run its workers, write the leaderboard."""
    search = job.search
    return run_study(
        job.study_job(), f"search '{search.study_name}': {search.config.sampler} sampler"
    )


def retrain_best(job: SearchJob, progress: bool = True) -> dict[str, Any]:
    """Train the best trial's config on the full training set (validation split kept) into
    ``OUT/best`` and evaluate it once on the test set. Returns the run's metrics plus
    ``trial`` and ``run_dir``. A finished retrain of the same config is not repeated."""
    search, out = job.search, Path(job.out)
    storage = make_storage(job.storage, out)
    study = open_study(SearchTask(search), storage, create=False)
    best = best_trial(study, search)
    if best is None:
        raise SearchError("no completed trial yet: nothing to retrain")
    data = best_config(search, best)
    data["data"]["subset"] = 1.0
    cfg = validate(data)
    from ..runner import CONFIG_FILE, METRICS_FILE, train_run

    wanted = fileio.to_jsonable(to_dict(cfg))
    for n in itertools.count(1):
        target = out / (BEST_DIR if n == 1 else f"{BEST_DIR}_{n}")
        target.mkdir(parents=True, exist_ok=True)
        # Locked while looked at: a second command retraining the same winner at once
        # stops here instead of training a copy of it into best_2.
        try:
            held = rundir.lock(target).acquire()
        except FolderBusy as err:
            raise FolderBusy(f"{err}: it is retraining trial {best.number} now") from None
        try:
            if not any(p.name != LOCK_FILE for p in target.iterdir()):
                metrics = train_run(
                    cfg, target, data_dir=job.data_dir, progress=progress, evaluate_test=True
                )
                return {**metrics, "trial": best.number, "run_dir": str(target), "reused": False}
            same = (target / CONFIG_FILE).exists() and fileio.load_yaml(
                target / CONFIG_FILE
            ) == wanted
            if same and (target / METRICS_FILE).exists():
                metrics = fileio.load_json(target / METRICS_FILE)
                if "test_accuracy" in metrics:
                    return {**metrics, "trial": best.number, "run_dir": str(target), "reused": True}
        finally:
            held.release()
    raise AssertionError("unreachable")
