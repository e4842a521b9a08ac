"""``barenet dashboard``: optuna-dashboard on a real (tiny) search folder, over loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import yaml

from barenet.cli import main

BASE = {"seed": 1, "model": {"sizes": [784, 8, 10]}, "train": {"epochs": 1, "batch_size": 64}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 60.0) -> bytes:
    """GET ``url``, retrying while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


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
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "barenet.cli", "dashboard", str(out), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        studies = json.loads(get(f"http://127.0.0.1:{port}/api/studies"))["study_summaries"]
        assert [s["study_name"] for s in studies] == ["s"]
        study = json.loads(get(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}"))
        assert [t["state"] for t in study["trials"]] == ["Complete", "Complete"]
        page = get(f"http://127.0.0.1:{port}/dashboard")
        assert b"<html" in page.lower()
    finally:
        proc.terminate()
        stdout, _ = proc.communicate(timeout=20)
    assert f"at http://127.0.0.1:{port}/" in stdout


def test_dashboard_refuses_a_folder_without_a_study(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path)]) == 2
    assert "no study.journal" in capsys.readouterr().err
