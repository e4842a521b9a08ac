"""The run folder: exclusive creation, its lock, failed starts, one config rule, RunMetrics,
and incomplete runs as ``info``/``test``/``report`` show them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from barenet import checkpoint, fileio, rundir
from barenet.cli import main
from barenet.config import load_config, to_dict
from barenet.data.idx import write_idx
from barenet.errors import FileError
from barenet.folderlock import FolderBusy
from barenet.run_metrics import RunMetrics
from barenet.runner import resume_run, train_run
from barenet.train import LambdaCallback

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
TINY = ["data.subset=0.02", "train.epochs=1", "model.sizes=[784, 8, 10]"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- racing --------------------------------------------------------------------------------
RACER = """
    import sys, time
    from barenet import rundir
    from barenet.errors import UserError
    out, me, start, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    for r in range(rounds):
        time.sleep(max(0.0, start + 0.6 * r - time.time()))
        target = None if out == "-" else f"{out}/round{r}"
        try:
            with rundir.create(target, f"r{r}", {"who": me}) as path:
                (path / rundir.CONFIG_FILE).write_text(f"who: {me}\\n")
                time.sleep(0.2)
                print(r, "won", path, flush=True)
        except UserError as e:
            print(r, "lost", type(e).__name__, flush=True)
"""


def _race(tmp_path: Path, out: str, racers: int, rounds: int) -> list[list[str]]:
    start = time.time() + 2.5  # after every racer has imported barenet
    procs = [_python(RACER, out, str(i), str(start), str(rounds)) for i in range(racers)]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        results.append(stdout.splitlines())
    return results


def interrupted_after(cfg, run: Path, epoch: int) -> None:
    """Train ``cfg`` into ``run`` until a Ctrl-C at the end of ``epoch`` (what it leaves)."""

    def stop(trainer, at, logs):
        if at == epoch:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, run, progress=False, extra_callbacks=(LambdaCallback(on_epoch_end=stop),))


def test_racing_creators_of_one_folder_exactly_one_wins(tmp_path):
    out = tmp_path / "x"
    out.mkdir()
    for r in range(0, 8, 2):  # even rounds race on an existing empty folder
        (out / f"round{r}").mkdir()
    results = _race(tmp_path, str(out), racers=3, rounds=8)
    for r in range(8):
        lines = [line for res in results for line in res if line.split()[0] == str(r)]
        winners = [line for line in lines if "won" in line]
        assert len(lines) == 3 and len(winners) == 1, lines
        winner = next(i for i, res in enumerate(results) if f"{r} won" in " ".join(res))
        assert (out / f"round{r}" / rundir.CONFIG_FILE).read_text() == f"who: {winner}\n"
        assert sorted(p.name for p in (out / f"round{r}").iterdir()) == [rundir.CONFIG_FILE]


def test_default_names_never_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = _race(tmp_path, "-", racers=3, rounds=2)
    paths = [line.split()[2] for res in results for line in res]
    assert len(paths) == 6 and len(set(paths)) == 6, paths
    with rundir.create(None, "same") as a, rundir.create(None, "same") as b:
        assert a != b and a.parent == b.parent == Path("runs")


def test_two_trainings_on_one_out_one_winner_consistent_folder(tmp_path):
    """Two ``barenet train --out X`` started together, several rounds: one wins, the other
    exits 2 having changed nothing, and X holds one run (config.yaml = the weights' config)."""
    code = """
        import sys, time
        from barenet.cli import main
        import barenet.runner, barenet.config
        start = float(sys.argv[1])
        time.sleep(max(0.0, start - time.time()))
        sys.exit(main(sys.argv[2:]))
    """
    for r in range(3):
        out = tmp_path / f"run{r}"
        if r == 1:
            out.mkdir()
        start = time.time() + 2.5
        procs = [
            _python(
                code,
                str(start),
                "train",
                "--quiet",
                "--out",
                str(out),
                *[a for s in [*TINY, f"name=racer{i}"] for a in ("--set", s)],
            )
            for i in range(2)
        ]
        done = [(p.wait(timeout=90), *p.communicate()) for p in procs]
        codes = sorted(c for c, _, _ in done)
        assert codes == [0, 2], done
        winner = next(i for i, (c, _, _) in enumerate(done) if c == 0)
        loser_err = done[1 - winner][2].strip().splitlines()
        assert len(loser_err) == 1 and "barenet: error:" in loser_err[0], loser_err
        assert "in use by another process" in loser_err[0] or "not empty" in loser_err[0]
        cfg = rundir.read_config(out)  # raises if config.yaml and the weights disagree
        assert cfg.name == f"racer{winner}"
        assert rundir.read_metrics(out).name == f"racer{winner}"
        assert rundir.read_weights(out)[1]["config"] == to_dict(cfg)
        assert not (out / rundir.LOCK_FILE).exists()


# -- the lock ------------------------------------------------------------------------------
HOLDER = """
    import sys, time
    from barenet import rundir
    with rundir.lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
"""


def test_a_held_lock_refuses_train_and_resume_a_dead_holder_does_not(tmp_path, capsys):
    run = tmp_path / "run"
    cfg = load_config(None, [*TINY, "train.epochs=3"])

    interrupted_after(cfg, run, epoch=2)
    holder = _python(HOLDER, str(run))
    assert holder.stdout.readline().strip() == "held"
    try:
        for argv in (["--resume", run], ["--out", run]):
            code, _, err = run_cli(capsys, "train", *argv)
            assert code == 2 and "in use by another process (pid" in err, err
            assert len(err.strip().splitlines()) == 1
        with pytest.raises(FolderBusy):
            train_run(cfg, run, progress=False)
        assert rundir.run_status(run).epochs_done == 1  # nothing changed
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run / rundir.LOCK_FILE).exists()  # stale: left by the killed holder
    code, out, err = run_cli(capsys, "train", "--resume", run, "--quiet")
    assert code == 0, err
    assert "after epoch 1 of 3" in out
    assert rundir.run_status(run).state == "complete"
    assert not (run / rundir.LOCK_FILE).exists()


# -- failed starts and stubs ---------------------------------------------------------------
def _bad_data(tmp_path: Path) -> Path:
    bad = tmp_path / "data" / "mnist"
    bad.mkdir(parents=True)
    write_idx(bad / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(bad / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8))
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (bad / name).write_bytes(b"\x00\x00\x08")
    return bad.parent


def test_a_run_failing_before_its_first_epoch_leaves_nothing(tmp_path, capsys):
    bad = _bad_data(tmp_path)
    sets = [a for s in TINY for a in ("--set", s)]
    new, empty = tmp_path / "new", tmp_path / "empty"
    empty.mkdir()
    for out in (new, empty):
        code, _, err = run_cli(capsys, "train", *sets, "--out", out, "--data-dir", bad, "--quiet")
        assert code == 2 and "train-images" in err, err
    assert not new.exists() and list(empty.iterdir()) == []
    # the retry, with another config even, is not blocked
    code, _, err = run_cli(capsys, "train", *sets, "--set", "seed=3", "--out", new, "--quiet")
    assert code == 0, err


def test_a_full_disk_at_the_first_state_write_leaves_nothing(tmp_path, capsys, monkeypatch):
    # Before: checkpoints/epoch_1.safetensors (and watch.json) stayed behind, in a folder that
    # was neither a run (no config.yaml: no --resume) nor empty (the same command refused it).
    import errno

    from barenet.train import resume

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(resume, "save_state", full)
    extra = ["train.checkpoint_every_epoch=true", "train.watch=true"]
    sets = [a for s in [*TINY, *extra] for a in ("--set", s)]
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *sets, "--out", out, "--quiet")
    assert code == 2 and "No space left" in err and err.count("\n") == 1, err
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    monkeypatch.undo()
    code, _, err = run_cli(capsys, "train", *sets, "--out", out, "--quiet")
    assert code == 0, err


def test_a_stub_of_the_same_config_is_taken_another_run_is_not(tmp_path, capsys):
    cfg = load_config(None, TINY)
    stub = tmp_path / "stub"
    stub.mkdir()
    fileio.save_yaml(stub / rundir.CONFIG_FILE, to_dict(cfg))
    (stub / rundir.LOCK_FILE).write_text("12345\n")  # a killed holder's
    (stub / ".config.yaml.x1y2.tmp").write_bytes(b"half")
    other = [a for s in [*TINY, "seed=4"] for a in ("--set", s)]
    code, _, err = run_cli(capsys, "train", *other, "--out", stub, "--quiet")
    assert code == 2 and "is not empty" in err
    assert fileio.load_yaml(stub / rundir.CONFIG_FILE) == to_dict(cfg)
    same = [a for s in TINY for a in ("--set", s)]
    code, _, err = run_cli(capsys, "train", *same, "--out", stub, "--quiet")
    assert code == 0, err
    assert rundir.run_status(stub).state == "complete"
    assert sorted(p.name for p in stub.iterdir()) == sorted(
        [rundir.CONFIG_FILE, rundir.MODEL_FILE, rundir.HISTORY_FILE, rundir.METRICS_FILE]
    )


def test_the_same_command_takes_over_a_stub_with_watch_and_checkpoints(tmp_path, capsys):
    # Before: a run with train.watch killed in its first epoch left config.yaml and
    # watch.json (epoch 0's record), and the same command refused it as "not empty".
    extra = ["train.checkpoint_every_epoch=true", "train.watch=true", "train.epochs=2"]
    cfg = load_config(None, [*TINY, *extra])
    run = tmp_path / "run"

    interrupted_after(cfg, run, epoch=1)
    assert not (run / rundir.STATE_FILE).exists() and (run / rundir.WATCH_FILE).exists()
    (run / rundir.CHECKPOINTS_DIR).mkdir(exist_ok=True)  # a SIGKILL after the first one
    (run / rundir.CHECKPOINTS_DIR / "epoch_1.safetensors").write_bytes(b"old")
    sets = [a for s in [*TINY, *extra] for a in ("--set", s)]
    code, _, err = run_cli(capsys, "train", *sets, "--out", run, "--quiet")
    assert code == 0, err
    assert rundir.run_status(run).state == "complete"
    assert (run / rundir.CHECKPOINTS_DIR / "epoch_1.safetensors").read_bytes() != b"old"


def test_out_on_an_unfinished_run_points_to_resume(tmp_path, capsys):
    cfg = load_config(None, [*TINY, "train.epochs=3"])
    run = tmp_path / "run"

    interrupted_after(cfg, run, epoch=2)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code, _, err = run_cli(capsys, "train", "--out", run)
    assert code == 2 and f"--resume {run}" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


# -- one config rule -----------------------------------------------------------------------
def test_config_yaml_and_weights_must_agree(mlp_run, tmp_path, capsys):
    from barenet.viz.rundata import read_config as viz_read_config

    run = tmp_path / "mixed"
    shutil.copytree(mlp_run, run)
    raw = fileio.load_yaml(run / rundir.CONFIG_FILE)
    raw["optim"]["lr"] = 0.5
    fileio.save_yaml(run / rundir.CONFIG_FILE, raw)
    for cmd in ("info", "test"):
        code, _, err = run_cli(capsys, cmd, run)
        assert code == 2 and "model.safetensors" in err and "config.yaml" in err, err
    with pytest.raises(rundir.RunFolderError, match="mixes two runs"):
        viz_read_config(run)
    # without config.yaml the weights' own config is the run's
    (run / rundir.CONFIG_FILE).unlink()
    assert rundir.read_config(run).optim.lr != 0.5


# -- RunMetrics ----------------------------------------------------------------------------
def test_run_metrics_types_and_tolerance(tmp_path):
    m = RunMetrics.from_dict({"name": "a", "val_accuracy": 1, "future_key": [1], "test": None})
    assert m.val_accuracy == 1.0 and isinstance(m.val_accuracy, float) and m.status == "complete"
    assert m.to_dict() == {"name": "a", "val_accuracy": 1.0}  # "complete" is implied
    assert RunMetrics(status="diverged").to_dict() == {"status": "diverged"}
    for bad in ({"epochs_run": True}, {"val_loss": "0.3"}, {"test": [1]}, {"epochs_run": 2.5}):
        with pytest.raises(FileError, match=f"'{next(iter(bad))}'"):
            RunMetrics.from_dict(bad, tmp_path / "metrics.json")
    with pytest.raises(FileError, match="JSON object"):
        RunMetrics.from_dict([1, 2])
    (tmp_path / rundir.CONFIG_FILE).write_text("name: x\n")
    (tmp_path / rundir.METRICS_FILE).write_text(json.dumps({"epochs_run": "many"}))
    with pytest.raises(FileError, match="metrics.json"):
        rundir.read_metrics(tmp_path)


# -- incomplete runs -----------------------------------------------------------------------
def test_incomplete_run_in_info_test_report_and_resume_api(tmp_path, capsys):
    from barenet.viz import write_report

    cfg = load_config(None, [*TINY, "train.epochs=3", "name=half"])
    full = tmp_path / "full"
    train_run(cfg, full, progress=False)
    run = tmp_path / "half"

    interrupted_after(cfg, run, epoch=3)
    assert rundir.run_status(run) == rundir.RunStatus("incomplete", 2, 3)
    code, out, _ = run_cli(capsys, "info", run)
    assert (
        code == 0
        and f"status: incomplete (2 of 3 epochs saved); resume with: barenet train --resume {run}"
        in out
    )
    code, out, err = run_cli(capsys, "test", run, "--json")
    assert code == 0 and json.loads(out)["complete"] is False
    assert err.startswith(f"note: {run} is incomplete")
    html = write_report(run, max_test=100).read_text()
    assert "incomplete (2 of 3 epochs saved)" in html

    seen = []
    metrics = resume_run(run, progress=False, on_start=lambda c, s: seen.append(s.epochs_done))
    assert seen == [2] and metrics["epochs_run"] == 3 and "status" not in metrics
    a, b = rundir.read_weights(full)[0], rundir.read_weights(run)[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert rundir.read_metrics(run).test == rundir.read_metrics(full).test
    assert resume_run(run) is None  # finished: nothing to do
    code, out, _ = run_cli(capsys, "info", run)
    assert "status: complete (3 epochs)" in out


def test_info_on_a_run_killed_before_its_first_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    fileio.save_yaml(run / rundir.CONFIG_FILE, to_dict(load_config(None, TINY)))
    code, out, _ = run_cli(capsys, "info", run)
    assert code == 0 and "no weights saved yet" in out and "incomplete (0 of 1 epoch saved)" in out
    code, _, err = run_cli(capsys, "test", run)
    assert code == 2 and "has no model.safetensors yet: incomplete (0 of 1" in err
    checkpoint.save_model(run / rundir.STATE_FILE, {}, {"epoch": "x"})
    assert rundir.run_status(run).epochs_done == 0


def test_an_interrupt_in_the_first_epoch_keeps_a_stub_that_resumes(tmp_path, capsys):
    cfg = load_config(None, [*TINY, "train.epochs=2"])
    run = tmp_path / "run"

    interrupted_after(cfg, run, epoch=1)
    assert not (run / rundir.STATE_FILE).exists() and (run / rundir.CONFIG_FILE).exists()
    assert rundir.run_status(run) == rundir.RunStatus("incomplete", 0, 2)
    code, out, err = run_cli(capsys, "train", "--resume", run, "--quiet")
    assert code == 0 and "after epoch 0 of 2" in out, err
    train_run(cfg, tmp_path / "ref", progress=False)
    a, b = rundir.read_weights(tmp_path / "ref")[0], rundir.read_weights(run)[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_after_torn_writes_and_after_a_kill_right_after_metrics(tmp_path, capsys):
    cfg = load_config(None, [*TINY, "train.epochs=3"])
    run = tmp_path / "run"

    interrupted_after(cfg, run, epoch=2)
    # what a SIGKILL in the middle of atomic writes leaves: half-written temp files
    junk = [".state.safetensors.ab12cd.tmp", ".model.safetensors.x9.tmp", ".history.csv.q.tmp"]
    for name in junk:
        (run / name).write_bytes(b"\x00half")
    code, _, err = run_cli(capsys, "train", "--resume", run, "--quiet")
    assert code == 0, err
    assert not [p for p in run.iterdir() if p.name in junk]
    train_run(cfg, tmp_path / "ref", progress=False)
    a, b = rundir.read_weights(tmp_path / "ref")[0], rundir.read_weights(run)[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # killed between writing metrics.json and removing the state: complete, state dropped
    shutil.copy(tmp_path / "ref" / rundir.MODEL_FILE, run / rundir.STATE_FILE)
    code, out, _ = run_cli(capsys, "train", "--resume", run)
    assert code == 0 and "already complete (3 epochs)" in out
    assert not (run / rundir.STATE_FILE).exists()
