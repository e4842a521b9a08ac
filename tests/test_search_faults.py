"""Searches survive real life: torn journal records, a full disk, repeated interruptions.

The full-disk test mounts a small tmpfs (we run as root in CI and in the sandbox) and fills
it during a real ``barenet search``; the interruption tests send SIGINT and SIGKILL to the
process group of a real search at its first trial.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from barenet.errors import FileError
from barenet.search import SearchJob, make_storage, resolve_search, run_search
from barenet.search.journal import SafeJournalBackend
from barenet.search.study import counted

DATA = os.environ["BARENET_DATA"]
COMPLETE = optuna.trial.TrialState.COMPLETE
BASE = {"seed": 3, "model": {"sizes": [784, 16, 10]}, "train": {"epochs": 1, "batch_size": 64}}
GRID = {"optim.lr": [0.1, 0.05], "model.hidden": [8, 16]}
POINTS = {(lr, h) for lr in (0.1, 0.05) for h in (8, 16)}


def quick_train(cfg, out_dir, data_dir=None, extra_callbacks=(), progress=False, **kw):
    for cb in extra_callbacks:
        cb.on_epoch_end(None, 1, {"val_accuracy": cfg.optim.lr, "val_loss": 1.0})
    return {}


def quick_search(tmp_path: Path):
    s = resolve_search(
        {"base_config": BASE, "study": "q", "sampler": "grid", "space": {"optim.lr": [0.1, 0.2]}}
    )
    return s, run_search(SearchJob(s, tmp_path, train_fn=quick_train))


def trials(out: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=make_storage(None, out)).get_trials()


def assert_whole_grid(out: Path, name: str = "f") -> None:
    ts = trials(out, name)
    done = [t for t in ts if t.state == COMPLETE]
    assert {(t.params["optim.lr"], t.params["model.hidden"]) for t in done} == POINTS
    assert len(done) == len(POINTS)  # every point exactly once
    assert len(counted(ts)) == len(POINTS)  # the exact budget


# -- torn records ------------------------------------------------------------------------------
def test_torn_last_record_is_dropped_and_the_study_resumes(tmp_path, capsys):
    quick_search(tmp_path)
    journal = tmp_path / "study.journal"
    whole = journal.read_bytes()
    torn = b'{"op_code":5,"worker_id":"x","trial_id":1,"us'
    journal.write_bytes(whole + torn)  # cut short
    capsys.readouterr()
    s, result = quick_search(tmp_path)  # resumes: nothing to do
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"dropped a torn last record ({len(torn)} bytes)" in err
    assert str(journal) in err
    assert journal.read_bytes().startswith(whole) and torn not in journal.read_bytes()
    assert result.ran == 0 and result.states == {"COMPLETE": 2}


def test_torn_record_glued_to_the_next_is_repaired(tmp_path, capsys):
    """What a full disk left before this backend: the next append glued to the torn line
    ("Expecting ':' delimiter" on every later run)."""
    quick_search(tmp_path)
    journal = tmp_path / "study.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    glued = b'{"op_code":8,"worker_id":"x","trial_id":0,"us' + lines[-2]
    journal.write_bytes(b"".join(lines[:-2]) + glued + lines[-1])
    with pytest.raises(ValueError):  # Optuna's own backend cannot read it
        optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))
        ).get_all_studies()
    capsys.readouterr()
    _, result = quick_search(tmp_path)
    err = capsys.readouterr().err
    assert "removed 1 torn record(s)" in err and err.count("\n") == 1
    assert journal.read_bytes().startswith(b"".join(lines))
    assert result.states == {"COMPLETE": 2}


def test_failed_append_leaves_the_journal_as_it_was(tmp_path, monkeypatch):
    quick_search(tmp_path)
    journal = tmp_path / "study.journal"
    before = journal.read_bytes()
    backend = SafeJournalBackend(journal, make_storage(None, tmp_path)._backend._lock)
    real = os.write

    def half_then_full(fd, data):
        if len(data) > 8:
            return real(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(FileError, match=r"cannot write study journal .*study\.journal: No space"):
        backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "x" * 50}])
    monkeypatch.undo()
    assert journal.read_bytes() == before


# -- a full disk -------------------------------------------------------------------------------
def write_search(tmp_path: Path, epochs: int = 1) -> Path:
    path = tmp_path / "f.yaml"
    data = {"base_config": BASE, "subset": 0.02, "epochs": epochs, "sampler": "grid", "space": GRID}
    path.write_text(yaml.safe_dump(data))
    return path


def barenet(*args: str, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "barenet.cli", *args, "--data-dir", DATA]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a real file system that runs out of space."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_during_a_search_then_freed_completes_the_grid(tmp_path, small_disk):
    search = write_search(tmp_path)
    out = small_disk / "out"
    filler = small_disk / "filler"
    # leave room for about one trial: while it trains, a trial folder holds its weights and
    # its resume state (weights, optimizer buffers, written atomically beside the old copy),
    # ~200 KB at the peak, then ~55 KB of weights and logs (150 KB: none ends, 300 KB: all)
    filler.write_bytes(b"\0" * (1024 * 1024 - 225 * 1024))
    first = barenet("search", str(search), "--out", str(out))
    assert first.returncode in (1, 2), first.stderr
    err = first.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "No space left on device" in err and str(small_disk) in err, err  # names the file
    before = [t for t in trials(out, "f") if t.state == COMPLETE]
    assert 0 < len(before) < len(POINTS), err

    filler.unlink()
    again = barenet("search", str(search), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert_whole_grid(out)
    done_before = {t.number for t in before}
    assert done_before <= {t.number for t in trials(out, "f") if t.state == COMPLETE}


def test_full_disk_with_two_workers_is_one_line(tmp_path, small_disk):
    # Before: each worker printed its own "barenet: worker N: error: ..." line, then the
    # command added "worker(s) [0, 1] exited with code(s) [1, 1]": three lines, and the one
    # naming the file was not the last.
    search = write_search(tmp_path)
    out = small_disk / "out"
    (small_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 40 * 1024))  # no trial fits
    first = barenet("search", str(search), "--out", str(out), "--workers", "2")
    assert first.returncode == 1, first.stderr
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in first.stderr, first.stderr
    assert "No space left on device" in lines[0] and str(small_disk) in lines[0], lines
    (small_disk / "filler").unlink()
    again = barenet("search", str(search), "--out", str(out), "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert_whole_grid(out)


# -- repeated interruptions --------------------------------------------------------------------
def _wait_for_trial(out: Path, proc: subprocess.Popen, n_before: int) -> None:
    """Until the search has created a new trial folder (it is training it)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        folders = list((out / "trials").glob("trial_*/config.yaml"))
        if len(folders) > n_before:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the search never started a trial")


def test_search_interrupted_four_times_at_its_first_trial_completes(tmp_path):
    # 60 epochs (~0.9 s a trial): the signal must land while the trial trains; with one
    # (~0.2 s) a test process stalled on a busy machine could find the trial complete
    search = write_search(tmp_path, epochs=60)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "barenet.cli", "search", str(search), "--out", str(out)]
    for k, sig in enumerate([signal.SIGINT, signal.SIGKILL, signal.SIGTERM, signal.SIGKILL]):
        proc = subprocess.Popen(
            [*cmd, "--data-dir", DATA],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's Ctrl-C hits
        )
        _wait_for_trial(out, proc, k)
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        expected = {signal.SIGINT: (130,), signal.SIGTERM: (130, 143), signal.SIGKILL: (-9,)}
        assert proc.returncode in expected[sig], err
    ts = trials(out, "f")
    assert len(ts) == 4 and not any(t.state == COMPLETE for t in ts)
    assert len({(t.params["optim.lr"], t.params["model.hidden"]) for t in ts}) == 1  # one point

    done = barenet("search", str(search), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "re-queued interrupted trial(s)" in done.stdout
    assert_whole_grid(out)


def test_sigterm_during_a_trial_is_terminated_not_ctrl_c(tmp_path, capsys):
    # Before: the search's SIGTERM handler raised a bare KeyboardInterrupt, so `kill` of a
    # search ended "barenet: interrupted" with Ctrl-C's 130 where the CLI promises 143.
    from barenet.cli import main
    from barenet.errors import Terminated

    def terminated_train(cfg, out_dir, *a, **kw):
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before the next line
        raise AssertionError("SIGTERM did not stop the trial")

    s = resolve_search({"base_config": BASE, "study": "t", "sampler": "grid", "space": GRID})
    with pytest.raises(Terminated):
        run_search(SearchJob(s, tmp_path, train_fn=terminated_train))
    (t,) = trials(tmp_path, "t")
    assert t.state != COMPLETE and t.user_attrs["fail_reason"] == "interrupted"
    # and through the CLI (a search whose trial gets SIGTERM): one line, exit 143
    import barenet.search.objective as objective

    monkey = pytest.MonkeyPatch()
    monkey.setattr(objective, "_default_train_fn", lambda: terminated_train)
    try:
        code = main(
            ["search", str(write_search(tmp_path)), "--out", str(tmp_path / "cli"), "--quiet"]
        )
    finally:
        monkey.undo()
    err = capsys.readouterr().err
    assert code == 143 and err == "barenet: terminated\n", err


def test_trials_must_be_positive_and_study_names_stay_inside(tmp_path, capsys):
    from barenet.cli import main

    search = write_search(tmp_path)
    for args, needle in [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--trials", "-3"], "--trials must be at least 1"),
        (["--study", "../../escape"], "study name '../../escape'"),
        (["--study", "/abs"], "study name '/abs'"),
    ]:
        code = main(["search", str(search), *args, "--data-dir", DATA])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not Path("runs/escape").exists() and not (tmp_path / "out").exists()


def test_two_searches_on_one_folder_run_each_grid_point_once(tmp_path):
    search = write_search(tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "barenet.cli", "search", str(search), "--out", str(out)]
    procs = [
        subprocess.Popen([*cmd, "--data-dir", DATA], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        p.communicate(timeout=300)
        assert p.returncode == 0
    assert_whole_grid(out)
    assert len(trials(out, "f")) == len(POINTS)  # no duplicate, nothing retried
