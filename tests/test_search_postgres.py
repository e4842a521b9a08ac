"""Distributed search on a real PostgreSQL server (see ``postgres_server.py``)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import postgres_server
import yaml

from barenet.search import make_storage

DATA = os.environ["BARENET_DATA"]
postgres_url = postgres_server.postgres_url  # the fixture


def write_search(tmp_path: Path) -> Path:
    path = tmp_path / "pg.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "base_config": {"model": {"sizes": [784, 16, 10]}, "train": {"batch_size": 64}},
                "sampler": "tpe",
                "subset": 0.02,
                "epochs": 1,
                "seed": 1,
                "space": {
                    "optim.lr": {"low": 0.01, "high": 0.2, "log": True},
                    "model.hidden": [8, 16],
                },
            }
        )
    )
    return path


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=make_storage(url, ".")).get_trials()


def test_workers_on_two_machines_share_one_study(tmp_path, postgres_url):
    """Two independent `barenet search` commands (as on two machines, each with its own output
    folder), one of them with two local workers, finish exactly the requested trials together."""
    path = write_search(tmp_path)
    common = [
        sys.executable,
        "-m",
        "barenet.cli",
        "search",
        str(path),
        "--storage",
        postgres_url,
        "--study",
        "shared",
        "--trials",
        "7",
        "--data-dir",
        DATA,
    ]
    cmds = [
        [*common, "--out", str(tmp_path / "m0")],
        [*common, "--out", str(tmp_path / "m1"), "--workers", "2"],
    ]
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    ran = [int(re.search(r"(\d+) run now", out).group(1)) for out, _ in outputs]
    assert sum(ran) == 7
    trials = _trials(postgres_url, "shared")
    assert len(trials) == 7, outputs
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), [
        (t.number, t.state, t.user_attrs) for t in trials
    ]
    assert len({t.user_attrs["pid"] for t in trials}) <= 3
    for i in range(2):  # each machine's leaderboard shows the whole study
        with open(tmp_path / f"m{i}" / "leaderboard.csv", newline="") as f:
            assert len(list(csv.DictReader(f))) == 7
        assert not (tmp_path / f"m{i}" / "study.journal").exists()  # the database holds it
