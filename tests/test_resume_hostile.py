"""A training state (``state.safetensors``) edited by hand or corrupted in ways its checksum-free
format cannot see: impossible epochs, steps, history rows, flags, non-finite arrays. Each is a
CheckpointError naming the file (one line, exit 2), never an internal error and never a run
that silently trains the wrong epochs."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from barenet import checkpoint, rundir
from barenet.cli import main
from barenet.config import load_config
from barenet.runner import train_run
from barenet.train import LambdaCallback

SETS = ["train.epochs=3", "data.subset=0.02", "model.sizes=[784, 8, 10]", "optim.name=adam",
        "train.early_stopping.enabled=true"]  # fmt: skip


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A run interrupted in its second epoch: config, weights, history and the state of 1."""
    out = tmp_path_factory.mktemp("stopped") / "run"

    def stop(trainer, epoch, logs):
        if epoch == 2:  # before the state of epoch 2 is written
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(load_config(None, SETS), out, progress=False,
                  extra_callbacks=(LambdaCallback(on_epoch_end=stop),))  # fmt: skip
    return out


def _set(meta, key, value):
    meta[key] = value


EDITS = {
    "epoch-negative": lambda a, m: _set(m, "epoch", -5),  # trained 11 epochs of 3
    "epoch-huge": lambda a, m: _set(m, "epoch", 10**30),  # "complete (1 epoch)" of 3
    "epoch-text": lambda a, m: _set(m, "epoch", "x"),  # internal error
    "history-null": lambda a, m: _set(m, "history", None),  # internal error
    "history-row": lambda a, m: _set(m, "history", [{"epoch": "a"}]),  # internal error
    "step-negative": lambda a, m: _set(m, "global_step", -1),
    "stop-text": lambda a, m: _set(m, "stop_training", "yes"),  # stopped at once, "complete"
    "optimizer-step": lambda a, m: _set(m["optimizer"]["state"]["0"], "step", -3),  # math error
    "nan-moment": lambda a, m: a["optimizer/state/0/exp_avg_sq"].fill(np.nan),
    "nan-best-weights": lambda a, m: next(v for k, v in a.items() if "best_weights" in k).fill(
        np.nan
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_impossible_training_state_is_one_line(stopped_run, tmp_path, capsys, edit):
    run = tmp_path / "run"
    run.mkdir()
    for f in stopped_run.iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    state = run / rundir.STATE_FILE
    arrays, meta = checkpoint.load_model_file(state)
    meta = copy.deepcopy(meta)
    EDITS[edit](arrays, meta)
    checkpoint.save_model(state, arrays, meta)
    code = main(["train", "--resume", str(run), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(state) in err, err
    assert rundir.run_status(run).state != "complete"
