"""The command line explains itself: --version, and help on every argument of every command."""

from __future__ import annotations

import argparse
import subprocess
import sys

import barenet
from barenet.cli import build_parser, main


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_argument_has_help():
    parser = build_parser()
    missing = []
    for name, p in {"barenet": parser, **subcommands(parser)}.items():
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {action.dest}")
    assert not missing, missing


def test_every_command_has_a_one_line_help():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest for c in sub._choices_actions} == set(sub.choices)
    assert all(c.help and "\n" not in c.help for c in sub._choices_actions)


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.strip() == f"barenet {barenet.__version__}"


def test_python_m_barenet_is_the_command():
    # `python -m barenet train` said "No module named barenet.__main__"
    r = subprocess.run(
        [sys.executable, "-m", "barenet", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.strip() == f"barenet {barenet.__version__}"


def test_help_starts_with_the_usage_and_description():
    out = subprocess.run(
        [sys.executable, "-m", "barenet.cli", "--help"], capture_output=True, text=True
    ).stdout
    assert out.startswith("usage: barenet")
    assert out.splitlines()[2] == "barenet: train, search, test and draw NumPy neural networks."
    assert "barenet COMMAND --help" in out


def test_help_command_as_git_and_pip_take_it(capsys):
    """`barenet help` and `barenet help COMMAND` said "invalid choice: 'help'"."""
    for argv, start in [
        (["help"], "usage: barenet [-h]"),
        (["help", "predict"], "usage: barenet predict"),
        (["help", "help"], "usage: barenet [-h]"),  # said "invalid choice: 'help'"
    ]:
        try:
            main(argv)
        except SystemExit as e:
            assert e.code == 0
        assert capsys.readouterr().out.startswith(start)


def test_test_split_val_is_the_runs_validation_split(mlp_run, capsys):
    from barenet.runner import evaluate_run
    from barenet.viz.rundata import read_metrics

    result = evaluate_run(mlp_run, split="val")
    metrics = read_metrics(mlp_run)
    # the kept weights are the best-validation epoch's: the same accuracy on the same samples
    assert result["accuracy"] == metrics["val_accuracy"] and result["split"] == "val"
    assert main(["test", str(mlp_run), "--split", "val"]) == 0
    assert capsys.readouterr().out.startswith("val: loss ")


def test_bad_arguments_are_one_line_that_points_at_help_and_at_set():
    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "barenet.cli", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    for args, needles in [
        (["train", "--epochs", "5"], ["--set train.epochs=VALUE", "see `barenet train --help`"]),
        (["train", "--lr=0.01"], ["--set optim.lr=0.01"]),
        (["train", "--batch-size=64"], ["--set train.batch_size=64"]),
        (["train", "--epoch=3"], ["--set train.epochs=3"]),  # a typo: the closest key
        (["train", "--batchsize", "64"], ["--set train.batch_size=VALUE"]),
        (["train", "--xyz"], ["unrecognized arguments: --xyz;"]),  # nothing close: no hint
        (["trian"], ["invalid choice: 'trian'", "(did you mean 'train'?)", "see `barenet --help`"]),
        (["export", "r", "--format", "onxx"], ["(did you mean 'onnx'?)"]),
        (["help", "trian"], ["(did you mean 'train'?)"]),
        (["TRAIN"], ["(did you mean 'train'?)"]),  # case alone: no hint was given
        (["train", "--out"], ["argument --out: expected one argument"]),
        # no --set in `barenet test`: no hint to use it
        (["test", "--epochs", "2", "runs/x"], ["unrecognized arguments: --epochs"]),
    ]:
        r = run(*args)
        assert r.returncode == 2 and r.stdout == "", args
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert all(n in r.stderr for n in needles), r.stderr
        assert ("--set" in r.stderr) == any("--set" in n for n in needles), r.stderr


def test_positional_arguments_are_named_as_the_readme_names_them():
    # `barenet predict` without arguments said "required: run_dir, IMAGE": one lowercase dest
    # beside the README's RUN_DIR, IMAGE, CONFIG, SEARCH_CONFIG in every usage line.
    lower = []
    for name, p in subcommands(build_parser()).items():
        for action in p._actions:
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                shown = action.metavar or action.dest
                if shown != shown.upper() and shown != "FILE.py:NAME":
                    lower.append(f"{name} {shown}")
    assert not lower, lower
    r = subprocess.run(
        [sys.executable, "-m", "barenet.cli", "predict"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "required: RUN_DIR, IMAGE;" in r.stderr, r.stderr


def test_max_test_below_one_names_the_option():
    # was "barenet: error: max_test must be at least 1": the Python name, not the option typed
    for command in ("plot", "report"):
        r = subprocess.run(
            [sys.executable, "-m", "barenet.cli", command, "runs/x", "--max-test", "0"],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2 and "argument --max-test: must be at least 1" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
