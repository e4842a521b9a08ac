"""barenet search end to end, with real (tiny) training on MNIST from $BARENET_DATA."""

from __future__ import annotations

import csv
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from barenet.cli import main
from barenet.config import ConfigError, load_config
from barenet.search import SearchJob, load_search, make_storage, run_search

DATA = os.environ["BARENET_DATA"]
BASE = {"seed": 3, "model": {"sizes": [784, 16, 10]}, "train": {"epochs": 1, "batch_size": 64}}


def write_search(tmp_path: Path, name: str = "s", **kw) -> Path:
    data = {"base_config": BASE, "subset": 0.02, "epochs": 1, **kw}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def read_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "leaderboard.csv", newline="") as f:
        return list(csv.DictReader(f))


def trials_of(out: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=make_storage(None, out)).get_trials()


GRID = {"optim.lr": [0.1, 0.02], "model.hidden": [8, [16, 8]]}


def test_grid_exhaustive_resumable_and_reproducible(tmp_path, capsys):
    path = write_search(tmp_path, "g", sampler="grid", space=GRID)
    out = tmp_path / "out"
    args = ["search", str(path), "--out", str(out), "--data-dir", DATA]
    assert main([*args, "--trials", "2"]) == 0  # an "interrupted" search: half the grid
    first = {t.number: t.value for t in trials_of(out, "g")}
    assert len(first) == 2 and all(v is not None for v in first.values())
    stamp = {
        n: (out / "trials" / f"trial_{n:04d}" / "history.csv").stat().st_mtime_ns for n in first
    }

    assert main(args) == 0  # same command: resumes and finishes the grid
    trials = trials_of(out, "g")
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    points = {(t.params["optim.lr"], t.params["model.hidden"]) for t in trials}
    assert points == {(lr, h) for lr, h in itertools.product([0.1, 0.02], [8, "[16,8]"])}
    for n, value in first.items():  # completed trials were neither re-run nor changed
        assert trials[n].value == value
        hist = out / "trials" / f"trial_{n:04d}" / "history.csv"
        assert hist.stat().st_mtime_ns == stamp[n]
    rows = read_rows(out)
    assert len(rows) == 4 and [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    accs = [float(r["val_accuracy"]) for r in rows]
    assert accs == sorted(accs, reverse=True)
    assert {r["model.hidden"] for r in rows} == {"8", "[16, 8]"}
    for r in rows:  # every trial kept its history, one row per epoch
        hist = (out / r["run_dir"] / "history.csv").read_text().strip().splitlines()
        assert len(hist) == 1 + int(r["epochs_run"]) == 2

    capsys.readouterr()
    assert main(args) == 0  # a finished study: nothing runs again
    assert "0 run now" in capsys.readouterr().out
    assert len(trials_of(out, "g")) == 4

    # The same search in one go, elsewhere, gives the same leaderboard.
    again = tmp_path / "again"
    assert main(["search", str(path), "--out", str(again), "--data-dir", DATA, "--quiet"]) == 0
    keep = ["rank", "trial", "state", "optim.lr", "model.hidden", "val_accuracy", "val_loss"]
    assert [[r[k] for k in keep] for r in read_rows(again)] == [[r[k] for k in keep] for r in rows]


def test_two_local_workers_run_exactly_the_budget(tmp_path):
    space = {"optim.lr": {"low": 0.01, "high": 0.2, "log": True}, "model.hidden": [8, 16]}
    path = write_search(tmp_path, "r", sampler="random", seed=5, space=space)
    out = tmp_path / "out"
    job = SearchJob(load_search(path), out, trials=5, workers=2, data_dir=DATA)
    result = run_search(job)
    trials = trials_of(out, "r")
    assert len(trials) == 5 and result.ran == 5
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["pid"] for t in trials}.isdisjoint({os.getpid()})  # in the workers
    for t in trials:
        assert (out / t.user_attrs["run_dir"] / "history.csv").is_file()
    # The random sampler draws from (seed, trial number): which worker ran a trial is moot.
    solo = run_search(
        SearchJob(
            load_search(path),
            tmp_path / "solo",
            trials=5,
            workers=1,
            data_dir=DATA,
            train_fn=lambda *a, **k: {},
        )
    )
    assert solo.ran == 5
    params = {t.number: t.params for t in trials_of(tmp_path / "solo", "r")}
    assert params == {t.number: t.params for t in trials}


def test_diverging_trial_fails_with_reason_and_search_continues(tmp_path, capsys):
    path = write_search(tmp_path, "d", sampler="grid", space={"optim.lr": [0.05, 1.0e30]})
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out), "--data-dir", DATA]) == 0
    rows = {r["optim.lr"]: r for r in read_rows(out)}
    assert rows["1e+30"]["state"] == "FAIL"
    assert "TrainingDiverged" in rows["1e+30"]["reason"]
    assert rows["0.05"]["state"] == "COMPLETE" and rows["0.05"]["rank"] == "1"
    assert "FAIL" in capsys.readouterr().out


def test_best_config_and_retrain_best(tmp_path, capsys):
    path = write_search(
        tmp_path, "b", sampler="grid", objective="val_loss", space={"optim.lr": [0.05, 0.001]}
    )
    out = tmp_path / "out"
    args = ["search", str(path), "--out", str(out), "--data-dir", DATA, "--retrain-best"]
    assert main(args) == 0
    text = capsys.readouterr().out
    best_row = read_rows(out)[0]
    losses = [float(r["val_loss"]) for r in read_rows(out)]
    assert float(best_row["val_loss"]) == min(losses)  # val_loss objective: lowest first
    cfg = load_config(out / "best_config.yaml")  # validates as a run config
    assert cfg.optim.lr == float(best_row["optim.lr"]) and cfg.model.sizes == [784, 16, 10]
    metrics = yaml.safe_load((out / "best" / "metrics.json").read_text())
    assert 0.5 < metrics["test_accuracy"] <= 1.0  # 1 epoch on the full training set
    assert yaml.safe_load((out / "best" / "config.yaml").read_text())["data"]["subset"] == 1.0
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in text
    assert text.count("test accuracy") == 1
    for r in read_rows(out):  # trials never touched the test set
        trial_metrics = yaml.safe_load((out / r["run_dir"] / "metrics.json").read_text())
        assert "test_accuracy" not in trial_metrics
    resolved = yaml.safe_load((out / "search.yaml").read_text())
    assert resolved["study"] == "b" and resolved["base_config"]["seed"] == 3
    assert main(args) == 0  # again: the same winner is not retrained
    assert "already retrained" in capsys.readouterr().out
    assert not (out / "best_2").exists()


def test_retrain_best_while_another_command_retrains_it_stops_with_one_line(tmp_path, capsys):
    # Two `search --retrain-best` on one --out (both finding the study done) each trained
    # the winner on the full training set, the second into a copy, best_2.
    path = write_search(tmp_path, "rb", sampler="grid", space={"optim.lr": [0.05]})
    out = tmp_path / "out"
    args = ["search", str(path), "--out", str(out), "--data-dir", DATA, "--quiet"]
    assert main(args) == 0
    (out / "best").mkdir()
    holder = (  # another process retraining: it holds best/.lock
        "import sys, time; from barenet import rundir; rundir.lock(sys.argv[1]).acquire();"
        "print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(out / "best")], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout.readline() == b"locked\n"
        capsys.readouterr()
        assert main([*args, "--retrain-best"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"pid {proc.pid}" in err[0] and "retraining trial 0" in err[0]
        assert not (out / "best_2").exists() and not (out / "best" / "metrics.json").exists()
    finally:
        proc.kill()
        proc.wait()


def test_killed_worker_loses_no_completed_trial(tmp_path):
    path = write_search(
        tmp_path, "k", sampler="grid", epochs=15, subset=0.05, space={"optim.lr": [0.1, 0.02]}
    )
    out = tmp_path / "out"
    args = ["search", str(path), "--out", str(out), "--data-dir", DATA, "--quiet"]
    cmd = [sys.executable, "-m", "barenet.cli", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = out / "trials" / "trial_0001" / "history.csv"
    deadline = time.monotonic() + 60
    while not second.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-trial 1, trial 0 complete
    proc.wait()
    before = trials_of(out, "k")
    assert before[0].state == optuna.trial.TrialState.COMPLETE
    assert before[1].state == optuna.trial.TrialState.RUNNING

    assert main(args) == 0  # the same command again resumes (in-process: faster)
    trials = trials_of(out, "k")
    assert (
        trials[0].value == before[0].value
        and trials[0].datetime_complete == before[0].datetime_complete
    )
    assert trials[1].state == optuna.trial.TrialState.FAIL
    assert "worker died" in trials[1].user_attrs["fail_reason"]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["optim.lr"] for t in complete) == [0.02, 0.1]  # each once
    retry = next(t for t in trials if t.user_attrs.get("retry_of") == 1)
    assert retry.params == trials[1].params and retry.state == optuna.trial.TrialState.COMPLETE
    rows = read_rows(out)
    assert [r["state"] for r in rows].count("COMPLETE") == 2
    killed = next(r for r in rows if r["trial"] == "1")
    assert f"retried as trial {retry.number}" in killed["reason"]


def test_fingerprint_and_out_folder_guard(tmp_path, capsys):
    path = write_search(tmp_path, "f", sampler="grid", space={"optim.lr": [0.1]})
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out), "--data-dir", DATA, "--quiet"]) == 0
    changed = write_search(tmp_path, "f", sampler="grid", space={"optim.lr": [0.1, 0.2]})
    capsys.readouterr()
    assert main(["search", str(changed), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "different config" in err and "space" in err and "\n" not in err
    assert main(["search", str(changed), "--out", str(out), "--study", "other"]) == 2
    assert "holds the search of study 'f'" in capsys.readouterr().err


def test_a_second_storage_into_the_same_out_is_refused_and_loses_nothing(tmp_path, capsys):
    # Before: `--storage sqlite:///other.db` (or a mistyped --storage) into the folder of a
    # finished journal search ran a second study there, overwriting its leaderboard and trials.
    path = write_search(tmp_path, "two", sampler="grid", space={"optim.lr": [0.1, 0.02]})
    out = tmp_path / "out"
    args = ["search", str(path), "--out", str(out), "--data-dir", DATA, "--quiet"]
    assert main(args) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and "lock" not in p.name}
    capsys.readouterr()
    db = tmp_path / "other.db"
    for storage in (f"sqlite:///{db}", str(tmp_path / "elsewhere.journal")):
        assert main([*args, "--storage", storage]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "holds the study stored in journal study.journal" in err[0]
        assert "use the same --storage" in err[0]
    assert not db.exists() and not (tmp_path / "elsewhere.journal").exists()
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and "lock" not in p.name}
    assert after == before
    # the same study through the same journal named explicitly, or after moving the folder
    assert main([*args, "--storage", str(out / "study.journal")]) == 0
    moved = tmp_path / "moved"
    out.rename(moved)
    assert main(["search", str(path), "--out", str(moved), "--data-dir", DATA, "--quiet"]) == 0
    assert "0 run now" in capsys.readouterr().out


def test_storage_records_name_the_database_not_the_spelling(tmp_path, monkeypatch):
    # A relative SQLite URL is a file of the working directory; passwords (also in the
    # query string) never reach storage.txt or messages; driver spellings are one database.
    from barenet.search.storage import check_storage, record_storage, storage_id

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    in_a = storage_id("sqlite:///study.db", out)
    record_storage(out, "sqlite:///study.db")
    check_storage(out, f"sqlite:///{tmp_path / 'a' / 'study.db'}")  # the same file
    monkeypatch.chdir(tmp_path / "b")
    assert storage_id("sqlite:///study.db", out) != in_a
    with pytest.raises(ConfigError, match="holds the study stored in sqlite"):
        check_storage(out, "sqlite:///study.db")  # another file of that name
    for url in ("postgresql://u:secret@h/db", "postgresql://h/db?user=u&password=secret"):
        assert "secret" not in storage_id(url, out)
    same = {storage_id(u, out) for u in ("postgres://u@h/db", "postgresql+psycopg2://u:pw@h/db")}
    assert same == {"postgresql://u@h/db"}
    (out / "storage.txt").write_bytes(b"journal x\n\x1b[31mred\n")
    with pytest.raises(ConfigError) as info:
        check_storage(out, None)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)
