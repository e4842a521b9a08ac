"""One experiment run by several processes at once: on one folder (the journal file), and on
one real PostgreSQL server (as from several machines). Every (variant, seed) runs once."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import optuna
import postgres_server
import yaml

from barenet.search import make_storage

DATA = os.environ["BARENET_DATA"]
postgres_url = postgres_server.postgres_url  # the fixture
EXP = {
    "name": "shared",
    "base_config": {
        "model": {"sizes": [784, 8, 10]},
        "train": {"epochs": 1, "batch_size": 64},
        "data": {"subset": 0.02},
    },
    "seeds": 3,
    "variants": {"a": {}, "b": {"optim.lr": 0.05}},
}
RUNS = {f"{v}/seed_{s}" for v in ("a", "b") for s in range(3)}


def start(path: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "barenet.cli", "experiment", str(path), "--data-dir", DATA]
    return subprocess.Popen(
        [*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(procs: list[subprocess.Popen]) -> list[str]:
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
    return [out for out, _ in outs]


def assert_each_run_once(storage: str | None, out: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="shared", storage=make_storage(storage, out))
    trials = study.get_trials()
    assert len(trials) == len(RUNS), [(t.number, t.state, t.user_attrs) for t in trials]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["run"] for t in trials} == RUNS
    return trials


def table(out: Path) -> list[dict[str, str]]:
    with open(out / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_two_processes_on_one_folder_run_each_run_once(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(EXP))
    out = tmp_path / "out"
    finish([start(path, "--out", str(out)), start(path, "--out", str(out))])
    trials = assert_each_run_once(None, out)
    for t in trials:  # each run folder holds its own run
        meta = yaml.safe_load((out / t.user_attrs["run_dir"] / "config.yaml").read_text())
        assert meta["seed"] == t.user_attrs["seed"]
    assert [r["status"] for r in table(out)] == ["ok"] * len(RUNS)


def test_experiment_on_postgres_from_two_machines(tmp_path, postgres_url):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(EXP))
    m0, m1 = tmp_path / "m0", tmp_path / "m1"
    common = ("--storage", postgres_url)
    outs = finish(
        [
            start(path, *common, "--out", str(m0)),
            start(path, *common, "--out", str(m1), "--workers", "2"),
        ]
    )
    trials = assert_each_run_once(postgres_url, m0)
    # every run folder exists on exactly one machine: the one that trained it
    for t in trials:
        here = [(m / t.user_attrs["run_dir"] / "metrics.json").exists() for m in (m0, m1)]
        assert sum(here) == 1, (t.user_attrs, outs)
    # the same command again on each machine: nothing left to run; the tables, built from
    # the storage, hold the whole experiment, also the runs the other machine trained
    for m in (m0, m1):
        again = finish([start(path, *common, "--out", str(m))])[0]
        assert "0 run(s) trained now, 6 already done" in again
        rows = table(m)
        assert len(rows) == len(RUNS) and all(r["status"] == "ok" for r in rows)
        assert all(0 < float(r["test_accuracy"]) <= 1 for r in rows)
        assert not (m / "study.journal").exists()
    assert table(m0) == table(m1)
