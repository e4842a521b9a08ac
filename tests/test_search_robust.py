"""Pruning, failures and interruptions, with a scripted stand-in for training (fast)."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from barenet.config import ConfigError
from barenet.search import (
    SearchJob,
    SearchTask,
    make_storage,
    open_study,
    resolve_search,
    run_search,
)
from barenet.search.study import counted
from barenet.train.trainer import TrainingDiverged

TINY = {"model": {"sizes": [784, 16, 10]}}
COMPLETE, PRUNED, FAIL = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def scripted(
    quality: dict[float, float],
    fail: dict[float, BaseException] | None = None,
    calls: list | None = None,
):
    """A ``train_run`` stand-in: per-epoch validation accuracy = quality[lr] + 0.01 * epoch."""

    def train_fn(
        cfg, out_dir, data_dir=None, extra_callbacks=(), progress=False, evaluate_test=True
    ):
        assert evaluate_test is False and progress is False
        lr = cfg.optim.lr
        if calls is not None:
            calls.append(lr)
        for epoch in range(1, cfg.train.epochs + 1):
            if fail and lr in fail:
                raise fail[lr]
            acc = quality[lr] + 0.01 * epoch
            logs = {"loss": 1 - acc, "accuracy": acc, "val_loss": 1 - acc, "val_accuracy": acc}
            for cb in extra_callbacks:
                cb.on_epoch_end(None, epoch, logs)
        return {}

    return train_fn


def search(space, **kw):
    data = {"base_config": TINY, "epochs": 4, "study": "t", **kw, "space": space}
    return resolve_search(data)


def trials(out, name="t"):
    return optuna.load_study(study_name=name, storage=make_storage(None, out)).get_trials()


def test_pruner_stops_bad_trials_early(tmp_path):
    # equal good values: the median pruner stops only what is below the median
    quality = {0.1: 0.85, 0.05: 0.85, 0.02: 0.85, 7.0: 0.10}  # 7.0 is hopeless
    s = search(
        {"optim.lr": list(quality)},
        sampler="random",
        seed=2,
        trials=10,
        pruner={"type": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
    )
    result = run_search(SearchJob(s, tmp_path, train_fn=scripted(quality)))
    ts = trials(tmp_path)
    assert len(ts) == 10 and result.ran == 10
    bad = [t for t in ts if t.params["optim.lr"] == 7.0]
    good = [t for t in ts if t.params["optim.lr"] != 7.0]
    late_bad = [t for t in bad if sum(g.number < t.number for g in good) >= 2]
    assert late_bad, "the seed should draw the hopeless value after two good trials"
    for t in late_bad:
        assert t.state == PRUNED
        assert t.user_attrs["epochs_run"] == 1 < 4  # stopped after its first report
    assert all(t.state == COMPLETE for t in good)
    rows = {r["trial"]: r for r in result.rows}
    assert all(rows[t.number]["state"] == "PRUNED" for t in late_bad)
    assert result.best["optim.lr"] != 7.0 and result.best["trial"] == min(g.number for g in good)


def test_grid_never_prunes_and_needs_none():
    s = search({"optim.lr": [0.1, 0.01]}, sampler="grid")
    assert s.pruner.type == "none"
    with pytest.raises(ConfigError, match="pruner"):
        search({"optim.lr": [0.1]}, sampler="grid", pruner="median")


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path):
    quality = {0.1: 0.8, 0.5: 0.0, 0.9: 0.0, 0.01: 0.9}
    fail = {
        0.5: TrainingDiverged("loss became nan at epoch 1, batch 3"),
        0.9: RuntimeError("out of\nmemory"),
    }
    s = search({"optim.lr": list(quality)}, sampler="grid")
    result = run_search(SearchJob(s, tmp_path, train_fn=scripted(quality, fail)))
    by_lr = {t.params["optim.lr"]: t for t in trials(tmp_path)}
    assert by_lr[0.5].state == FAIL and by_lr[0.9].state == FAIL
    assert (
        by_lr[0.5].user_attrs["fail_reason"]
        == "TrainingDiverged: loss became nan at epoch 1, batch 3"
    )
    assert by_lr[0.9].user_attrs["fail_reason"] == "RuntimeError: out of memory"  # one line
    assert by_lr[0.1].state == COMPLETE and by_lr[0.01].state == COMPLETE
    assert [r["state"] for r in result.rows] == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    assert result.best["optim.lr"] == 0.01
    # a failed trial uses its budget slot: running again does not retry it
    again = run_search(SearchJob(s, tmp_path, train_fn=scripted(quality, fail)))
    assert again.ran == 0 and len(trials(tmp_path)) == 4


def test_trials_of_a_dead_worker_are_failed_and_retried(tmp_path):
    quality = {0.1: 0.8, 0.05: 0.7, 0.01: 0.9}
    s = search({"optim.lr": list(quality)}, sampler="grid")
    storage = make_storage(None, tmp_path)
    study = open_study(SearchTask(s), storage)
    assert study.metric_names == ["val_accuracy"]  # the dashboard said "Objective 0"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    ghost = study.ask()  # a worker took trial 0 and died before finishing it
    ghost.suggest_categorical("optim.lr", [0.1, 0.05, 0.01])
    for key, value in {"host": __import__("socket").gethostname(), "pid": int(dead.stdout)}.items():
        ghost.set_user_attr(key, value)
    calls: list[float] = []
    result = run_search(SearchJob(s, tmp_path, train_fn=scripted(quality, calls=calls)))
    ts = trials(tmp_path)
    assert ts[0].state == FAIL and "worker died" in ts[0].user_attrs["fail_reason"]
    retry = next(t for t in ts if t.user_attrs.get("retry_of") == 0)
    assert retry.params == ts[0].params and retry.state == COMPLETE
    assert sorted(calls) == sorted(quality)  # every grid point trained exactly once
    assert len(counted(ts)) == 3 and result.states == {"COMPLETE": 3, "FAIL": 1}


def test_interrupted_search_resumes_without_rerunning(tmp_path):
    quality = {0.1: 0.8, 0.05: 0.7, 0.02: 0.75, 0.01: 0.9}
    s = search({"optim.lr": list(quality)}, sampler="grid")
    calls: list[float] = []
    with pytest.raises(KeyboardInterrupt):
        run_search(
            SearchJob(
                s,
                tmp_path,
                train_fn=scripted(quality, fail={0.02: KeyboardInterrupt()}, calls=calls),
            )
        )
    first = trials(tmp_path)
    stopped = next(t for t in first if t.params["optim.lr"] == 0.02)
    assert stopped.state == FAIL and stopped.user_attrs["interrupted"] is True
    done_before = {t.params["optim.lr"] for t in first if t.state == COMPLETE}
    calls2: list[float] = []
    run_search(SearchJob(s, tmp_path, train_fn=scripted(quality, calls=calls2)))
    ts = trials(tmp_path)
    assert sorted(calls2) == sorted(set(quality) - done_before)  # nothing done is redone
    complete = sorted(t.params["optim.lr"] for t in ts if t.state == COMPLETE)
    assert complete == sorted(quality)
    assert len(counted(ts)) == 4


def test_random_sampler_budget_counts_every_finished_state(tmp_path):
    quality = {0.1: 0.8, 0.5: 0.0}
    s = search({"optim.lr": list(quality)}, sampler="random", trials=6, pruner="none")
    run_search(
        SearchJob(s, tmp_path, train_fn=scripted(quality, fail={0.5: TrainingDiverged("nan")}))
    )
    ts = trials(tmp_path)
    assert len(ts) == 6 and {t.state for t in ts} <= {COMPLETE, FAIL}
    more = run_search(
        SearchJob(
            s, tmp_path, trials=8, train_fn=scripted(quality, fail={0.5: TrainingDiverged("nan")})
        )
    )
    assert more.ran == 2 and len(trials(tmp_path)) == 8


def test_ranking_breaks_accuracy_ties_by_validation_loss():
    from barenet.search.leaderboard import ranked

    def make(value, loss, state=COMPLETE):
        return optuna.trial.create_trial(
            state=state,
            value=value if state == COMPLETE else None,
            user_attrs={"val_loss": loss, "val_accuracy": value},
        )

    trials = [make(0.9, 0.30), make(0.95, 0.5), make(0.9, 0.20), make(None, 1.0, PRUNED)]
    for i, t in enumerate(trials):
        t.number = i
    order = [t.number for t in ranked(trials, maximize=True)]
    assert order == [1, 2, 0, 3]


def test_a_storage_that_cannot_be_opened_leaves_no_output_folder(tmp_path, capsys):
    # `barenet search ... --storage postgresql://...@db-host/...` with the database down
    # stopped in one line but left an empty runs/search/STUDY behind.
    from barenet.cli import main

    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        "base_config: {model: {sizes: [784, 16, 10]}}\nsampler: grid\nspace: {optim.lr: [0.1]}\n"
    )
    out = tmp_path / "out" / "study"
    url = "postgresql://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    assert main(["search", str(cfg), "--storage", url, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open" in err[0]
    assert not out.exists()


def test_absurd_worker_counts_are_refused_before_any_process_starts(tmp_path, monkeypatch):
    # Before: --workers 1000000 started spawning a million Python processes (a fork bomb).
    import multiprocessing

    def no_spawn(*a, **k):
        raise AssertionError("a worker process was started")

    monkeypatch.setattr(multiprocessing.get_context("spawn"), "Process", no_spawn)
    search = resolve_search({"base_config": TINY, "sampler": "grid", "study": "w",
                             "space": {"optim.lr": [0.1]}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"--workers 1000000 .* at most \d+"):
        run_search(SearchJob(search, tmp_path, workers=1_000_000, train_fn=scripted({0.1: 0.5})))
    assert not (tmp_path / "study.journal").exists()
