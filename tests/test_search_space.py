"""Search config validation: bad spaces are rejected before any trial, in one line."""

from __future__ import annotations

import math

import optuna
import pytest
import yaml

from barenet.cli import main
from barenet.config import ConfigError
from barenet.search import load_search, resolve_search

TINY = {"model": {"sizes": [784, 16, 10]}}


def spec(space, **kw):
    return {"base_config": TINY, "sampler": "random", "trials": 2, "space": space, **kw}


def write(tmp_path, data, name="s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


BAD = [
    ({"optim.lrr": [0.1]}, "optim.lrr"),
    ({"nosuch.key": [1]}, "nosuch"),
    ({"optim.lr": []}, "empty list"),
    ({"optim.lr": {"low": 0.1, "high": 0.01}}, "low (0.1) > high (0.01)"),
    ({"optim.lr": {"low": 0.0, "high": 0.1, "log": True}}, "low > 0"),
    ({"optim.lr": {"low": -1.0, "high": 0.1, "log": True}}, "low > 0"),
    ({"optim.lr": [0.1, -0.5]}, "optim.lr"),  # rejected by the run schema (lr > 0)
    ({"optim.name": ["sgd", "lbfgs"]}, "lbfgs"),
    ({"model.sizes": [[784, 10], [784, 0, 10]]}, "model.sizes"),
    ({"train.batch_size": {"low": 8, "high": 64.5, "type": "int"}}, "whole numbers"),
    ({"optim.lr": [0.1, 0.1]}, "repeated"),
    ({"optim.lr": {"low": 0.1, "high": 0.2, "bogus": 1}}, "bogus"),
]


@pytest.mark.parametrize(("space", "needle"), BAD)
def test_bad_space_raises_one_line(space, needle):
    with pytest.raises(ConfigError) as info:
        resolve_search(spec(space))
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_other_bad_search_configs(tmp_path):
    cases = [
        (spec({"optim.lr": [0.1]}, samplr="tpe"), "samplr"),
        (
            spec({"optim.lr": {"low": 0.01, "high": 0.1}}, sampler="grid"),
            "grid sampler needs lists",
        ),
        (spec({"optim.lr": [0.1]}, sampler="grid", pruner="median"), "pruner"),
        (spec({}), "space"),
        (spec({"optim.lr": [0.1]}, base_config={"data": {"val_fraction": 0.0}}), "validation"),
        (spec({"optim.lr": [0.1]}, base="nope.yaml", base_config=None), "not found"),
        (
            spec(
                {"model.hidden": [16]},
                base_config={"model": {"type": "cnn", "blocks": [{"channels": 4}]}},
            ),
            "only for mlp",
        ),
    ]
    for data, needle in cases:
        with pytest.raises(ConfigError) as info:
            path = write(tmp_path, data)
            load_search(path)
        assert needle in str(info.value), (data, str(info.value))
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="trials: required"):
        resolve_search(
            {"base_config": TINY, "sampler": "tpe", "space": {"optim.lr": [0.1]}}
        ).budget()


@pytest.mark.parametrize(("space", "needle"), [BAD[0], BAD[2], BAD[3]])
def test_cli_rejects_bad_space_before_any_trial(tmp_path, capsys, space, needle):
    path = write(tmp_path, spec(space))
    out = tmp_path / "out"
    code = main(["search", str(path), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], captured.err
    assert not out.exists()  # nothing ran, nothing written


def test_cli_bad_options_exit_2(tmp_path, capsys):
    path = write(tmp_path, spec({"optim.lr": [0.1, 0.01]}))
    assert main(["search", str(path), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "workers" in capsys.readouterr().err
    assert main(["search", str(path), "--out", str(tmp_path / "o"), "--trials", "0"]) == 2
    assert "trials" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_base_path_is_relative_to_search_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "base.yaml").write_text(
        yaml.safe_dump({"model": {"sizes": [784, 32, 10]}, "optim": {"lr": 0.3}})
    )
    sub = tmp_path / "search"
    sub.mkdir()
    path = write(
        sub,
        {
            "base": "../cfg/base.yaml",
            "sampler": "grid",
            "space": {"optim.weight_decay": [0.0, 1e-3]},
        },
        "wd.yaml",
    )
    s = load_search(path)
    assert s.study_name == "wd"  # default: the file's stem
    assert s.base["optim"]["lr"] == 0.3 and s.base["model"]["sizes"] == [784, 32, 10]
    assert s.grid_size == 2 and s.budget() == 2 and s.budget(5) == 2 and s.budget(1) == 1
    assert load_search(path, study="other").study_name == "other"


def test_values_are_applied_to_the_config():
    s = resolve_search(
        spec(
            {
                "model.hidden": [64, [32, 16]],
                "optim.lr": ["1e-3", 0.1],
                "model.sizes": [[784, 8, 10]],
            },
            subset=0.1,
            epochs=3,
            base_config={"model": {"sizes": [784, 100, 50, 10]}},
        )
    )
    lr = next(p for p in s.params if p.name == "optim.lr")
    assert lr.choices == (1e-3, 0.1)  # YAML's "1e-3" string is read as a number
    cfg = s.make_config({"model.hidden": [32, 16], "optim.lr": 1e-3})
    assert cfg.model.sizes == [784, 32, 16, 10]
    assert cfg.data.subset == 0.1 and cfg.train.epochs == 3 and cfg.optim.lr == 1e-3
    full = s.make_config({"model.hidden": 64}, trial=False)
    assert full.model.sizes == [784, 64, 10] and full.data.subset == 1.0
    assert full.train.epochs == 10  # the base's epochs, not the search's budget
    # lists are stored as JSON text (Optuna stores only scalars) and decoded back
    hidden = next(p for p in s.params if p.name == "model.hidden")
    assert hidden.labels == (64, "[32,16]")
    assert s.decode({"model.hidden": "[32,16]", "optim.lr": 0.1}) == {
        "model.hidden": [32, 16],
        "optim.lr": 0.1,
    }


def test_suggest_respects_ranges():
    s = resolve_search(
        spec(
            {
                "optim.lr": {"low": 1e-4, "high": 1e-1, "log": True},
                "train.batch_size": {"low": 16, "high": 64, "type": "int", "step": 16},
                "optim.name": ["sgd", "adam"],
            }
        )
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []
    for _ in range(30):
        trial = study.ask()
        v = {p.name: p.suggest(trial) for p in s.params}
        study.tell(trial, 0.0)
        seen.append(v)
    lrs = [v["optim.lr"] for v in seen]
    assert all(1e-4 <= x <= 1e-1 for x in lrs)
    assert min(lrs) < 1e-3 and max(lrs) > 1e-2  # log-uniform reaches both decades
    assert {v["train.batch_size"] for v in seen} <= {16, 32, 48, 64}
    assert all(isinstance(v["train.batch_size"], int) for v in seen)
    assert {v["optim.name"] for v in seen} == {"sgd", "adam"}
    assert all(math.isfinite(x) for x in lrs)
