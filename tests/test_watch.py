"""`train.watch: true`: per-layer internals per epoch in watch.json, drawn by `barenet plot`
and the report; watching does not change training; a damaged record is skipped, not fatal."""

from __future__ import annotations

import numpy as np
import pytest

from barenet import checkpoint, fileio
from barenet.cli import main
from barenet.config import load_config
from barenet.rundir import MODEL_FILE, REPORT_FILE, WATCH_FILE
from barenet.runner import train_run
from barenet.viz import plot_run, write_report
from barenet.viz.watch import WATCH_PNG, draw_watch, read_watch

SMALL = [
    "data.subset=0.03",
    "model.sizes=[784,32,16,10]",
    "train.epochs=2",
    "train.batch_size=64",
    "model.dropout=0.2",
    "model.batch_norm=true",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("watch")
    watched = root / "watched"
    train_run(
        load_config(None, [*SMALL, "train.watch=true"]),
        watched,
        progress=False,
        evaluate_test=False,
    )
    plain = root / "plain"
    train_run(load_config(None, SMALL), plain, progress=False, evaluate_test=False)
    return watched, plain


def test_watch_records_every_layer_per_epoch(runs) -> None:
    watched, plain = runs
    assert not (plain / WATCH_FILE).exists()
    rec = read_watch(watched)
    assert rec["format"] == "barenet-watch-1"
    assert rec["layers"] == [
        "Linear 784->32 + ReLU",
        "Linear 32->16 + ReLU",
        "Linear 16->10",
    ]
    assert [r["epoch"] for r in rec["records"]] == [0, 1, 2]
    for r in rec["records"]:
        assert len(r["layers"]) == 3
        for layer in r["layers"]:
            assert layer["grad_norm"] > 0 and layer["weight_norm"] > 0
            assert layer["std"] > 0
        assert 0 <= r["layers"][0]["dead"] <= 1 and r["layers"][0]["saturated"] is None
        assert r["layers"][2]["dead"] is None  # the output layer has no activation
    assert rec["records"][0]["layers"][0]["update_ratio"] is None  # nothing moved at init
    ratios = [layer["update_ratio"] for layer in rec["records"][1]["layers"]]
    assert all(1e-6 < v < 1 for v in ratios)


def test_watching_does_not_change_training(runs) -> None:
    watched, plain = runs
    a, _ = checkpoint.load_model_file(watched / MODEL_FILE)
    b, _ = checkpoint.load_model_file(plain / MODEL_FILE)
    assert a.keys() == b.keys()
    for k in a:  # BatchNorm statistics and dropout masks included
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_plot_and_report_draw_the_watch_panel(runs, tmp_path, capsys) -> None:
    watched, plain = runs
    assert main(["plot", str(watched), "--what", "watch", "--out", str(tmp_path / "p")]) == 0
    png = (tmp_path / "p" / WATCH_PNG).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # asked for on a run without a record: skipped with the reason
    res = plot_run(plain, tmp_path / "q", what="watch,curves")
    assert "train.watch=true" in res.skipped["watch"]
    # not asked for (``--what`` left out): silently absent
    assert draw_watch(plain, tmp_path / "r", requested=False) is None
    report = write_report(watched, tmp_path / "rep" / REPORT_FILE, max_test=50).read_text()
    assert "Inside the network" in report and "watch.png" not in report  # embedded


@pytest.mark.parametrize("damage", ["truncate", "not_a_record", "huge"])
def test_a_damaged_record_is_skipped_not_fatal(runs, tmp_path, damage) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    path = run / WATCH_FILE
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "not_a_record":
        fileio.save_json(path, {"records": [1, 2]})
    else:
        with open(path, "ab") as f:
            f.truncate(65 * 2**20)
    res = plot_run(run, tmp_path / "p", what="watch,curves")
    assert "curves" in res.files and "watch" not in res.files
    assert str(path) in res.skipped["watch"]
