"""Resume after a crash: killed at random moments (SIGKILL, mid-write included) and resumed, a
run ends bit-identical to an uninterrupted one; SIGTERM/SIGINT keep the last epoch."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from barenet import checkpoint, fileio, nn, optim, rundir
from barenet.checkpoint import CheckpointError
from barenet.data import DataLoader, RandomAffine
from barenet.train import CSVLogger, EarlyStopping, LambdaCallback, ModelCheckpoint, Trainer
from barenet.train import resume as resume_mod

THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
ENV = {**os.environ, **THREADS}

MLP = [
    "data.subset=0.04",
    "train.epochs=5",
    "model.sizes=[784, 24, 10]",
    "model.dropout=0.25",
    "data.augment.enabled=true",
    "optim.name=adam",
    "optim.lr=0.003",
    "schedule.name=cosine",
    "schedule.warmup_epochs=1",
    "train.early_stopping.enabled=true",
    "train.early_stopping.patience=4",
    "name=resume-mlp",
]
CNN = [
    "data.subset=0.03",
    "train.epochs=4",
    "model.type=cnn",
    "model.blocks=[{channels: 4, kernel: 5, pool: 2, batch_norm: true}, "
    "{channels: 6, kernel: 3, pool: 2, batch_norm: true, dropout: 0.1}]",
    "model.dense=[16, 10]",
    "model.dropout=0.1",
    "optim.momentum=0.9",
    "optim.nesterov=true",
    "optim.weight_decay=0.0005",
    "schedule.name=plateau",
    "schedule.patience=0",
    "name=resume-cnn",
]


def _argv(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "barenet.cli", "train", "--quiet", *map(str, args)]


def _fresh(out: Path, sets: list[str]) -> list[str]:
    return _argv(*[a for s in sets for a in ("--set", s)], "--out", out)


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=120)


def _rows(run: Path) -> int:
    try:
        return max(len((run / rundir.HISTORY_FILE).read_text().splitlines()) - 1, 0)
    except OSError:
        return 0


def _weights(run: Path) -> dict[str, np.ndarray]:
    return checkpoint.load_model_file(run / rundir.MODEL_FILE)[0]


def _history_without_time(run: Path) -> list[str]:
    lines = (run / rundir.HISTORY_FILE).read_text().splitlines()
    col = lines[0].split(",").index("time")
    return [",".join(c for i, c in enumerate(line.split(",")) if i != col) for line in lines]


def _kill_and_resume(
    out: Path, sets: list[str], epochs: int, seed: int, startup: float, epoch: float
) -> list[int]:
    """Train into ``out``, SIGKILL it several times (once early, then at random points of
    random epochs), restarting each time with ``--resume``; returns the epochs each restart
    found saved. ``startup`` and ``epoch``: seconds to the first epoch and per epoch."""
    rng = random.Random(seed)
    found = []
    for attempt in range(6):
        resuming = (out / rundir.CONFIG_FILE).is_file()
        if resuming:
            found.append(rundir.run_status(out).epochs_done)
        proc = subprocess.Popen(
            _argv("--resume", out) if resuming else _fresh(out, sets),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if attempt == 0:  # during start-up (imports, data, folder creation)
            time.sleep(rng.uniform(0.05, min(startup, 1.0)))
        else:  # somewhere in the epoch after a random one (its state write included)
            # never beyond the next-to-last epoch: a kill must land while training goes on
            target = rng.randint(min(max(1, _rows(out)), epochs - 1), epochs - 1)
            deadline = time.monotonic() + 60
            while _rows(out) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.9 * epoch))
        if proc.poll() is not None:
            assert proc.wait() == 0, proc.stderr.read()
            proc.stderr.close()
            return found
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    found.append(rundir.run_status(out).epochs_done)
    done = _run(_argv("--resume", out))
    assert done.returncode == 0, done.stderr
    return found


@pytest.mark.parametrize(("sets", "epochs", "seed"), [(MLP, 5, 1), (CNN, 4, 2)], ids=["mlp", "cnn"])
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, sets, epochs, seed):
    ref = tmp_path / "uninterrupted"
    start = time.monotonic()
    assert _run(_fresh(ref, sets)).returncode == 0
    seconds = time.monotonic() - start
    epoch = min(rundir.read_history(ref)["time"])
    startup = max(0.1, seconds - sum(rundir.read_history(ref)["time"]) - 0.5)
    out = tmp_path / "killed"
    found = _kill_and_resume(out, sets, epochs, seed, startup, epoch)
    # the kills really interrupted training half-way, not only before or after it
    assert any(0 < e < epochs for e in found), found
    a, b = _weights(ref), _weights(out)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    assert _history_without_time(ref) == _history_without_time(out)
    ma, mb = rundir.read_metrics(ref), rundir.read_metrics(out)
    assert ma.test == mb.test and ma.epochs_run == mb.epochs_run == epochs
    assert mb.status == "complete"
    names = {p.name for p in out.iterdir()}
    assert rundir.STATE_FILE not in names and rundir.LOCK_FILE not in names
    assert not [n for n in names if n.endswith(".tmp")], names


def _start_and_wait_epoch(out: Path, sets: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        _fresh(out, sets), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not (out / rundir.STATE_FILE).exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    return proc


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_sigterm_and_sigint_keep_the_last_epoch(tmp_path, sig, code, word):
    sets = [*MLP, "train.epochs=30"]
    out = tmp_path / "run"
    proc = _start_and_wait_epoch(out, sets)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err.decode(), err
    assert lines[0].startswith(f"barenet: {word}") and f"--resume {out}" in lines[0], lines
    status = rundir.run_status(out)
    assert status.state == "incomplete" and status.epochs_done >= 1
    assert not (out / rundir.LOCK_FILE).exists()
    meta = rundir.read_state_metadata(out)
    assert meta["epoch"] == status.epochs_done == _rows(out)


def test_resume_refuses_what_is_not_a_run_and_leaves_a_finished_run_alone(tmp_path, mlp_run):
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, needle in ((empty, "not a run folder"), (tmp_path / "nope", "not found")):
        r = _run(_argv("--resume", folder))
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.splitlines()) == 1
    before = {p.name: p.stat().st_mtime_ns for p in mlp_run.iterdir()}
    r = _run(_argv("--resume", mlp_run))
    assert r.returncode == 0 and "already complete" in r.stdout, r
    assert {p.name: p.stat().st_mtime_ns for p in mlp_run.iterdir()} == before
    r = _run(_argv("--resume", mlp_run, "--set", "train.epochs=9"))
    assert r.returncode == 2 and "--resume" in r.stderr


def test_corrupt_or_foreign_state_is_one_line(tmp_path):
    out = tmp_path / "run"
    proc = _start_and_wait_epoch(out, [*MLP, "train.epochs=30"])
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    state = out / rundir.STATE_FILE
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
    r = _run(_argv("--resume", out))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "state.safetensors" in r.stderr
    # a state whose config is not the folder's: the folder mixes two runs
    checkpoint.save_model(
        state, {}, {"format": resume_mod.FORMAT, "extra": {"config": {"seed": 5}}}
    )
    r = _run(_argv("--resume", out))
    assert r.returncode == 2 and "config.yaml" in r.stderr and "state.safetensors" in r.stderr


# -- the Trainer API -------------------------------------------------------------------------
class _Stop(Exception):
    pass


def _setup(tmp: Path, seed: int = 0):
    """A fresh model/optimizer/schedule/loaders/callbacks, identical for identical seeds."""
    root = np.random.SeedSequence(seed).spawn(3)
    data_rng, init_rng, shuffle_rng = (np.random.default_rng(s) for s in root)
    x = data_rng.normal(size=(300, 64)).astype(np.float32)
    y = (x[:, :10].argmax(1)).astype(np.int64)
    model = nn.Sequential(
        nn.Linear(64, 32, rng=init_rng),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(0.3, rng=init_rng.spawn(1)[0]),
        nn.Linear(32, 10, rng=init_rng),
    )
    opt = optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01, amsgrad=True)
    sched = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    aug = RandomAffine(degrees=5, translate=0.05, image_shape=(8, 8))
    train = DataLoader(
        x[:240], y[:240], batch_size=32, shuffle=True, rng=shuffle_rng, transform=aug
    )
    val = DataLoader(x[240:], y[240:], batch_size=64)
    callbacks = [
        CSVLogger(tmp / "h.csv"),
        ModelCheckpoint(tmp / "best.safetensors", monitor="val_accuracy"),
        EarlyStopping(monitor="val_loss", patience=3),
    ]
    trainer = Trainer(
        model, nn.CrossEntropyLoss(), opt, schedule=sched, callbacks=callbacks, progress=False
    )
    return trainer, train, val, {"data": data_rng}


def _snapshot(trainer: Trainer, loader: DataLoader, gens: dict, folder: Path) -> tuple[dict, dict]:
    """Everything the training state holds, minus wall-clock times and the folder's name."""
    arrays: dict = {}
    found = resume_mod.find_generators(trainer, loader, gens)
    meta = resume_mod._encode(resume_mod._capture(trainer, found, 0), arrays, "")

    def norm(obj):
        if isinstance(obj, dict):
            return {k: norm(v) for k, v in obj.items() if k != "time"}
        if isinstance(obj, list):
            return [norm(v) for v in obj]
        return obj.replace(str(folder), "FOLDER") if isinstance(obj, str) else obj

    return norm(meta), arrays


def test_trainer_resume_is_bit_identical(tmp_path):
    for sub in "ab":
        (tmp_path / sub).mkdir()
    ref, train, val, gens = _setup(tmp_path / "a")
    ref.fit(train, val, epochs=6, generators=gens)
    expected = _snapshot(ref, train, gens, tmp_path / "a")

    state = tmp_path / "b" / "state.safetensors"
    first, train, val, gens = _setup(tmp_path / "b")

    def stop_after_3(t, epoch, logs):
        if epoch == 3:
            raise _Stop

    first.callbacks.append(LambdaCallback(on_epoch_end=stop_after_3))
    with pytest.raises(_Stop):
        first.fit(train, val, epochs=6, state_file=state, generators=gens)
    assert resume_mod.read_state(state)["epoch"] == 2  # the epoch that raised was not saved

    again, train, val, gens = _setup(tmp_path / "b")  # a new process builds everything anew
    history = again.fit(train, val, epochs=6, state_file=state, resume_from=state, generators=gens)
    assert len(history) == len(ref.history) >= 4
    assert again.global_step == ref.global_step == len(history) * len(train)
    meta, arrays = _snapshot(again, train, gens, tmp_path / "b")
    assert meta == expected[0]
    assert arrays.keys() == expected[1].keys()
    assert any("exp_avg" in k for k in arrays) and any("best_weights" in k for k in arrays)
    for k, v in arrays.items():
        assert v.dtype == expected[1][k].dtype and np.array_equal(v, expected[1][k]), k
    csv_a, csv_b = ((tmp_path / d / "h.csv").read_text().splitlines() for d in "ab")
    assert len(csv_a) == len(csv_b) == len(history) + 1
    assert resume_mod.read_state(state)["epoch"] == len(history)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_an_interrupt_while_an_epoch_is_written_waits_for_its_state(tmp_path, sig):
    """Ctrl-C or SIGTERM landing after the epoch's history row but before its state: the
    history was left one epoch ahead of the state (test_sigterm_and_sigint_keep_the_last_epoch
    could fail on it when the signal met the end of an epoch). It now takes effect once the
    state holds the epoch; a second one at once."""

    def interrupt(signum, frame):  # what the CLI installs for SIGTERM
        raise KeyboardInterrupt

    old = signal.signal(sig, interrupt)
    try:
        for times, saved in ((1, 2), (2, 1)):
            folder = tmp_path / str(times)
            folder.mkdir()
            trainer, train, val, gens = _setup(folder)

            def signal_at_2(t, epoch, logs, times=times):  # after the CSV logger's row
                if epoch == 2:
                    for _ in range(times):
                        signal.raise_signal(sig)

            trainer.callbacks.append(LambdaCallback(on_epoch_end=signal_at_2))
            state = folder / "state.safetensors"
            with pytest.raises(KeyboardInterrupt):
                trainer.fit(train, val, epochs=6, state_file=state, generators=gens)
            assert resume_mod.read_state(state)["epoch"] == saved, times
            if times == 1:  # the epoch written whole: its row and its state
                assert len((folder / "h.csv").read_text().splitlines()) == 1 + saved
            assert signal.getsignal(sig) is interrupt  # the handler is back
    finally:
        signal.signal(sig, old)


def test_trainer_resume_checks_what_it_restores_into(tmp_path):
    trainer, train, val, gens = _setup(tmp_path)
    state = tmp_path / "s.safetensors"
    trainer.fit(train, val, epochs=1, state_file=state, generators=gens)
    other, train, val, _ = _setup(tmp_path)
    with pytest.raises(CheckpointError, match="random generators"):
        other.fit(train, val, epochs=2, resume_from=state)
    other, train, val, gens = _setup(tmp_path)
    other.callbacks.pop()
    with pytest.raises(CheckpointError, match="callbacks"):
        other.fit(train, val, epochs=2, resume_from=state, generators=gens)
    fileio.atomic_write_bytes(state, b"\x08" + b"\x00" * 20)
    other, train, val, gens = _setup(tmp_path)
    with pytest.raises(CheckpointError, match="s.safetensors"):
        other.fit(train, val, epochs=2, resume_from=state, generators=gens)


def test_state_json_round_trips_types_exactly():
    value = {
        "t": (1, 2.5),
        "f32": np.float32(0.1),
        "i64": np.int64(7),
        "inf": float("inf"),
        "ninf": -np.inf,
        "nan": [float("nan")],
        "a": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.array(3)},
        "none": None,
        "big": 2**127 + 1,
    }
    arrays: dict = {}
    enc = resume_mod._encode(value, arrays, "")
    import json

    back = resume_mod._decode(json.loads(json.dumps(enc, allow_nan=False)), arrays, Path("x"))
    assert back["t"] == (1, 2.5) and type(back["f32"]) is np.float32 and back["f32"] == value["f32"]
    assert type(back["i64"]) is np.int64 and back["big"] == value["big"]
    assert back["inf"] == np.inf and back["ninf"] == -np.inf and np.isnan(back["nan"][0])
    assert back["a"]["w"] is value["a"]["w"] and back["none"] is None
    with pytest.raises(TypeError, match="cannot store"):
        resume_mod._encode({"x": object()}, {}, "")
