"""The command line: train / test / info, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from barenet import checkpoint, fileio
from barenet.cli import main
from barenet.data.idx import write_idx


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, needle):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert needle in lines[0]


def test_train_test_info(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        capsys,
        "train",
        "--set",
        "data.subset=0.03",
        "--set",
        "train.epochs=1",
        "--set",
        "model.sizes=[784, 16, 10]",
        "--out",
        out,
        "--quiet",
    )
    assert code == 0, stdout
    assert " (1 epoch); " in stdout, stdout  # not "(1 epochs)"
    # complete: the training state and the lock are gone
    assert {p.name for p in out.iterdir()} == {
        "config.yaml",
        "model.safetensors",
        "history.csv",
        "metrics.json",
    }
    metrics = fileio.load_json(out / "metrics.json")
    code, stdout, _ = run_cli(capsys, "test", out, "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["n"] == 10000
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert len(result["per_class_accuracy"]) == 10
    assert np.asarray(result["confusion_matrix"]).sum() == 10000
    code, stdout, _ = run_cli(capsys, "info", out)
    assert code == 0
    assert "Linear(784, 16" in stdout and "12,730 parameters" in stdout
    assert "status: complete (1 epoch)" in stdout


def test_bad_config_value(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--set", "optim.lr=-3", "--out", tmp_path / "x")
    assert_one_line_error(code, err, "optim.lr: Input should be greater than 0")
    assert not (tmp_path / "x").exists()


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", tmp_path / "nope.yaml")
    assert_one_line_error(code, err, "config file not found")


def test_out_where_a_file_is(mlp_run, tmp_path, capsys):
    """--out naming a file (or a folder under one) says a file is in the way."""
    (tmp_path / "notes.md").write_text("mine")
    for out in (tmp_path / "notes.md", tmp_path / "notes.md" / "plots"):
        code, _, err = run_cli(capsys, "plot", mlp_run, "--out", out)
        assert_one_line_error(code, err, "a file is in the way")
    assert (tmp_path / "notes.md").read_text() == "mine"


def test_refuses_to_overwrite_a_run(mlp_run, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(mlp_run, run)
    before = (run / "model.safetensors").read_bytes()
    code, _, err = run_cli(capsys, "train", "--out", run)
    assert_one_line_error(code, err, "is not empty")
    assert (run / "model.safetensors").read_bytes() == before


def test_corrupt_weights(mlp_run, tmp_path, capsys):
    run = tmp_path / "corrupt"
    shutil.copytree(mlp_run, run)
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(capsys, "test", run)
    assert_one_line_error(code, err, "model.safetensors")


def test_weights_for_another_architecture(mlp_run, cnn_run, tmp_path, capsys):
    run = tmp_path / "mixed"
    shutil.copytree(mlp_run, run)
    shutil.copy(cnn_run / "model.safetensors", run / "model.safetensors")
    # The weights file carries its own config; strip it so config.yaml (the MLP) is used.
    state, meta = checkpoint.load_model_file(run / "model.safetensors")
    checkpoint.save_model(run / "model.safetensors", state, {})
    code, _, err = run_cli(capsys, "test", run)
    assert_one_line_error(code, err, "model.safetensors")


def test_corrupt_dataset(tmp_path, capsys, mlp_run):
    bad = tmp_path / "data" / "mnist"
    bad.mkdir(parents=True)
    write_idx(bad / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(bad / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (bad / name).write_bytes(b"\x00\x00\x08")
    code, _, err = run_cli(capsys, "test", mlp_run, "--data-dir", tmp_path / "data")
    assert_one_line_error(code, err, "t10k")


def test_missing_run(tmp_path, capsys):
    code, _, err = run_cli(capsys, "info", tmp_path / "none")
    assert_one_line_error(code, err, "run folder not found")


@pytest.mark.parametrize(
    "argv",
    [
        ("predict", "{image}", "{run}"),  # the two arguments swapped
        ("test", "{run}/config.yaml"),  # a file of the run instead of its folder
        ("info", "{run}/model.safetensors"),
        ("export", "{image}", "--format", "onnx"),
        ("train", "--resume", "{run}/history.csv"),
    ],
)
def test_a_file_where_the_run_folder_goes(argv, mlp_run, tmp_path, capsys):
    # These said "run folder not found: FILE" about a file that is there.
    image = tmp_path / "seven.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    argv = [a.format(run=mlp_run, image=image) for a in argv]
    code, _, err = run_cli(capsys, *argv)
    given = argv[2] if argv[1] == "--resume" else argv[1]
    assert_one_line_error(code, err, f"{given} is a file, not a run folder")
    inside = given != str(image)
    assert (f"the run folder holding it is {mlp_run}" in err) == inside


def test_a_folder_that_holds_no_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = run_cli(capsys, "test", tmp_path)
    assert_one_line_error(code, err, f"{tmp_path} is not a run folder")  # not "checkpoint ..."


def test_default_config_matches_shipped_file():
    from pathlib import Path

    from barenet.config import load_config

    shipped = load_config(Path(__file__).parents[1] / "configs" / "mnist_mlp.yaml")
    assert shipped == load_config()
