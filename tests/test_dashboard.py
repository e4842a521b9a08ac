"""``barenet dashboard``: optuna-dashboard on a real (tiny) search folder, over loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

import yaml

from barenet.cli import main

BASE = {"seed": 1, "model": {"sizes": [784, 8, 10]}, "train": {"epochs": 1, "batch_size": 64}}


def get(url: str) -> bytes:
    """GET ``url``: the server listens before it prints its URL, so no retry (a generous
    timeout: a busy machine answers late, not never)."""
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def test_dashboard_serves_the_study_of_a_search_folder(tmp_path, data_dir):
    spec = {
        "base_config": BASE,
        "subset": 0.02,
        "epochs": 1,
        "sampler": "grid",
        "space": {"optim.lr": [0.1, 0.02]},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    assert (
        main(
            [
                "search",
                str(tmp_path / "s.yaml"),
                "--out",
                str(out),
                "--data-dir",
                data_dir,
                "--quiet",
            ]
        )
        == 0
    )
    # --port 0: the port the server really bound, from the line it prints once it listens
    # (a free port picked here beforehand could be taken by someone else meanwhile)
    proc = subprocess.Popen(
        [sys.executable, "-m", "barenet.cli", "dashboard", str(out), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r" at (http://127\.0\.0\.1:(\d+)/) ", line)
        assert match and match.group(2) != "0", (line, proc.poll())
        url = match.group(1)
        studies = json.loads(get(url + "api/studies"))["study_summaries"]
        assert [s["study_name"] for s in studies] == ["s"]
        study = json.loads(get(f"{url}api/studies/{studies[0]['study_id']}"))
        assert [t["state"] for t in study["trials"]] == ["Complete", "Complete"]
        page = get(url + "dashboard")
        assert b"<html" in page.lower()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 143


def test_dashboard_refuses_a_folder_without_a_study(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path)]) == 2
    assert "no study.journal" in capsys.readouterr().err


def test_a_missing_optuna_dashboard_names_the_folder_install(monkeypatch, tmp_path, capsys):
    # `pip install -e '.[dashboard]'` alone installs `.`, the current folder, which need not
    # be barenet's: the message says where, as the other extras' messages do.
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # as if not installed
    assert main(["dashboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[dashboard]' in barenet's folder" in err, err
    assert len(err.strip().splitlines()) == 1
