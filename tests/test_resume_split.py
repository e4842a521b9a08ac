"""A resumed run trains on the samples it was saved with, or is refused in one line.

Classes too small for data.subset / data.val_fraction are pooled since the pooled split
came in; a state saved before (no split record) by a run whose split that changes would
otherwise go on silently with other samples (a 30-image run gained 3 validation images,
trained on 27, and crashed at its end with an internal KeyError 'val_accuracy')."""

from __future__ import annotations

import copy

import pytest

from barenet import checkpoint, run_data, rundir, runner
from barenet.cli import main
from barenet.config import load_config
from barenet.train import LambdaCallback

SMALL = ["model.sizes=[784, 8, 10]", "train.epochs=3", "train.batch_size=8", "optim.lr=0.01"]


def stopped_run(out, sets, monkeypatch, pool=True):
    """A run stopped in its second epoch, its state saved as a barenet before the split
    record saved it (``pool=False``: also split as it then was)."""
    if not pool:
        plain = run_data.split_indices  # where prepare_data finds it
        monkeypatch.setattr(run_data, "split_indices", lambda c, y: plain(c, y, pool=False))

    def stop(trainer, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.train_run(load_config(None, [*SMALL, *sets]), out, progress=False,
                         extra_callbacks=(LambdaCallback(on_epoch_end=stop),))  # fmt: skip
    monkeypatch.undo()
    state = out / rundir.STATE_FILE
    arrays, meta = checkpoint.load_model_file(state)
    meta = copy.deepcopy(meta)
    meta["extra"].pop("split", None)
    checkpoint.save_model(state, arrays, meta)
    return state


def resume(run, capsys):
    code = main(["train", "--resume", str(run), "--quiet"])
    return code, capsys.readouterr().err


def test_an_old_state_whose_small_classes_are_now_pooled_is_refused(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    state = stopped_run(run, ["data.subset=0.0005"], monkeypatch, pool=False)  # 3 per class
    before = {f.name: f.read_bytes() for f in run.iterdir()}
    code, err = resume(run, capsys)
    assert code == 2 and err.count("\n") == 1 and str(state) in err, err
    assert "30 to train, 0 to validate" in err and "(27, 3" in err, err
    assert {f.name: f.read_bytes() for f in run.iterdir()} == before  # nothing lost


def test_an_old_state_whose_split_is_unchanged_still_resumes(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    stopped_run(run, ["data.subset=0.02"], monkeypatch, pool=False)  # 120 per class
    code, err = resume(run, capsys)
    assert code == 0, err
    assert rundir.run_status(run).state == "complete"


def test_a_state_saved_on_other_samples_is_refused(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    state = stopped_run(run, ["data.subset=0.02"], monkeypatch)
    arrays, meta = checkpoint.load_model_file(state)
    meta["extra"]["split"] = "1080/120/0123456789abcdef"  # the same sizes, other images
    checkpoint.save_model(state, arrays, meta)
    code, err = resume(run, capsys)
    assert code == 2 and err.count("\n") == 1 and "other samples" in err, err
