"""barenet experiment: variants x seeds, the results table, resume, validation, determinism."""

from __future__ import annotations

import csv
import json
import os
import statistics
from pathlib import Path

import pytest
import yaml

import barenet.runner
from barenet.cli import main
from barenet.config import ConfigError
from barenet.experiment import load_experiment, run_experiment
from barenet.experiment.spec import merge_overrides
from barenet.train.callbacks import Callback

DATA = os.environ["BARENET_DATA"]
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = {
    "name": "tiny",
    "base_config": {
        "model": {"sizes": [784, 16, 10]},
        "train": {"epochs": 1, "batch_size": 64},
        "data": {"subset": 0.03},
    },
    "overrides": {"optim.lr": 0.05},
    "seeds": 2,
    "variants": {"relu": {}, "sigmoid": {"model.activation": "sigmoid", "optim.lr": 0.5}},
}
ACC = ("final_val_accuracy", "best_val_accuracy", "test_accuracy")


def write(tmp_path: Path, data: dict, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def md_rows(path: Path) -> dict[str, list[str]]:
    """The results.md table as variant -> cells."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("| ")]
    return {
        cells[0]: cells
        for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in lines[1:])
    }


def run_files(out: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under runs/ -> (mtime_ns, bytes)."""
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted((out / "runs").rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> Path:
    """The tiny experiment through the CLI with two worker processes."""
    tmp = tmp_path_factory.mktemp("exp")
    out = tmp / "out"
    code = main(
        [
            "experiment",
            str(write(tmp, TINY)),
            "--workers",
            "2",
            "--out",
            str(out),
            "--data-dir",
            DATA,
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_table_is_mean_and_sample_std_of_the_runs(two_workers):
    out = two_workers
    rows = read_csv(out / "runs.csv")
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("relu", "0"),
        ("sigmoid", "0"),
        ("relu", "1"),
        ("sigmoid", "1"),
    ]
    for r in rows:  # runs.csv holds what each run folder recorded
        run = out / r["run_dir"]
        m = json.loads((run / "metrics.json").read_text())
        assert float(r["best_val_accuracy"]) == m["val_accuracy"]
        assert float(r["final_val_accuracy"]) == m["final_val_accuracy"]
        assert float(r["test_accuracy"]) == m["test_accuracy"]
        assert int(r["epochs_run"]) == m["epochs_run"] == 1
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["seed"] == int(r["seed"])  # the seed reaches the run's config
        assert cfg["optim"]["lr"] == (0.05 if r["variant"] == "relu" else 0.5)
    # different seeds give different runs (init, split and shuffle all change)
    assert rows[0]["test_accuracy"] != rows[2]["test_accuracy"]

    table = md_rows(out / "results.md")
    summary = {v["variant"]: v for v in json.loads((out / "results.json").read_text())["variants"]}
    assert list(table) == list(summary) == ["relu", "sigmoid"]
    for variant in ("relu", "sigmoid"):
        mine = [r for r in rows if r["variant"] == variant]
        for k, col in enumerate(ACC):
            values = [float(r[col]) for r in mine]
            mean, std = statistics.fmean(values), statistics.stdev(values)  # ddof = 1
            assert summary[variant][col]["mean"] == pytest.approx(mean, abs=1e-12)
            assert summary[variant][col]["std"] == pytest.approx(std, abs=1e-12)
            assert table[variant][2 + k] == f"{100 * mean:.2f} ± {100 * std:.2f}"
        assert table[variant][1] == "2"
    for name in ("curves.png", "accuracy.png", "report.html", "experiment.yaml"):
        assert (out / name).stat().st_size > 1000 or name == "experiment.yaml"
    html = (out / "report.html").read_text()
    assert "relu" in html and "sigmoid" in html and "data:image/png;base64," in html


def test_one_worker_gives_the_same_bits_as_two(two_workers, tmp_path):
    exp = load_experiment(write(tmp_path, TINY))
    result = run_experiment(exp, tmp_path / "one", workers=1, data_dir=DATA)
    assert result.ran == 4 and result.skipped == 0
    a, b = read_csv(two_workers / "runs.csv"), read_csv(tmp_path / "one" / "runs.csv")
    for ra, rb in zip(a, b, strict=True):
        assert all(ra[c] == rb[c] for c in ("variant", "seed", *ACC))
        ha = read_csv(two_workers / ra["run_dir"] / "history.csv")
        hb = read_csv(tmp_path / "one" / rb["run_dir"] / "history.csv")
        assert [(h["loss"], h["val_loss"]) for h in ha] == [(h["loss"], h["val_loss"]) for h in hb]


class _Interrupt(Callback):
    def on_epoch_end(self, trainer, epoch, logs):
        raise KeyboardInterrupt


def test_resume_trains_only_the_missing_runs(tmp_path, monkeypatch):
    exp = load_experiment(write(tmp_path, TINY))
    out = tmp_path / "out"
    real, calls = barenet.runner.train_run, []

    def interrupted_on_third(cfg, out_dir, **kw):
        calls.append(out_dir)
        if len(calls) == 3:  # Ctrl-C during the third run, after its first epoch was saved
            kw["extra_callbacks"] = (_Interrupt(),)
        return real(cfg, out_dir, **kw)

    monkeypatch.setattr(barenet.runner, "train_run", interrupted_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, out, workers=1, data_dir=DATA)
    monkeypatch.undo()
    half = out / "runs" / "relu" / "seed_1"
    assert (half / "history.csv").exists() and not (half / "metrics.json").exists()
    assert [r["status"] for r in read_csv(out / "runs.csv")] == ["ok", "ok", "pending", "pending"]
    before = run_files(out)

    result = run_experiment(exp, out, workers=1, data_dir=DATA)
    assert (result.ran, result.skipped) == (2, 2)
    after = run_files(out)
    finished = [k for k in before if k.startswith(("runs/relu/seed_0", "runs/sigmoid/seed_0"))]
    assert len(finished) == 8 and all(after[k] == before[k] for k in finished)  # untouched
    assert (
        after[str(half.relative_to(out) / "history.csv")][0]
        > before[str(half.relative_to(out) / "history.csv")][0]
    )  # the half-finished run was cleared and trained again
    assert [r["status"] for r in read_csv(out / "runs.csv")] == ["ok"] * 4

    # a finished experiment: the same command trains nothing
    assert run_experiment(exp, out, workers=1, data_dir=DATA).ran == 0
    assert run_files(out) == after
    # a changed experiment cannot reuse the folder's runs silently
    changed = load_experiment(write(tmp_path, {**TINY, "overrides": {"optim.lr": 0.07}}, "b.yaml"))
    with pytest.raises(ConfigError, match="different config"):
        run_experiment(changed, out, data_dir=DATA)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow on the way to NaN
def test_diverged_run_is_a_result_not_a_crash(tmp_path):
    data = {**TINY, "seeds": 1, "variants": {"boom": {"optim.lr": 1.0e6}}}
    result = run_experiment(load_experiment(write(tmp_path, data)), tmp_path / "o", data_dir=DATA)
    (row,) = result.rows
    assert row["status"] == "diverged"
    assert "1 (1 diverged)" in (tmp_path / "o" / "results.md").read_text()


BAD = [
    ({"variants": {"bad": {"model.nope": 1}}}, ["variant 'bad'", "model.nope", "unknown key"]),
    ({"variants": {"bad": {"train": {"epoch": 3}}}}, ["variant 'bad'", "train.epoch"]),
    ({"variants": {"bad": {"optim.lr": -1}}}, ["variant 'bad'", "optim.lr"]),
    ({"variants": {}}, ["variants"]),
    ({"variants": {"a/b": {}}}, ["variant name 'a/b'"]),
    ({"variants": {"a": {"seed": 3}}}, ["seed"]),
    ({"overrides": {"model.zzz": 1}}, ["base config", "model.zzz"]),
    ({"seeds": 0}, ["seeds"]),
    ({"sedes": 3}, ["unknown key", "sedes"]),
    ({"base": "nowhere.yaml", "base_config": None}, ["nowhere.yaml"]),
]


@pytest.mark.parametrize(("change", "needles"), BAD)
def test_invalid_experiment_is_one_line_exit_2(tmp_path, capsys, change, needles):
    path = write(tmp_path, {k: v for k, v in {**TINY, **change}.items() if v is not None})
    out = tmp_path / "out"
    code = main(["experiment", str(path), "--out", str(out), "--data-dir", DATA])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(n in err for n in needles), err
    assert not out.exists()  # validated before anything is written or trained


def test_duplicate_variant_names_are_refused(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text(
        "base_config: {model: {sizes: [784, 8, 10]}}\n"
        "variants:\n  a: {optim.lr: 0.1}\n  b: {}\n  a: {optim.lr: 0.2}\n"
    )
    assert main(["experiment", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "duplicate key 'a'" in err and len(err.strip().splitlines()) == 1


def test_overrides_merge_into_sections():
    data = {"optim": {"lr": 0.1, "momentum": 0.9}, "model": {"sizes": [784, 10]}}
    merge_overrides(
        data, {"optim": {"lr": 0.5}, "train.epochs": 3, "model.sizes": [784, 5, 10]}, "t"
    )
    assert data == {
        "optim": {"lr": 0.5, "momentum": 0.9},
        "model": {"sizes": [784, 5, 10]},
        "train": {"epochs": 3},
    }


def test_a_variant_can_start_from_another_run_config(tmp_path):
    (tmp_path / "cfgs").mkdir()
    (tmp_path / "cfgs" / "other.yaml").write_text(
        "model: {sizes: [784, 7, 10], activation: tanh}\noptim: {lr: 0.2, momentum: 0.5}\n"
    )
    data = {
        **TINY,
        "variants": {"plain": {}, "other": {"base": "cfgs/other.yaml", "optim.momentum": 0.0}},
    }
    exp = load_experiment(write(tmp_path, data), seeds=5)
    assert exp.seeds == (0, 1, 2, 3, 4)
    plain, other = exp.config("plain", 4), exp.config("other", 4)
    assert plain["model"]["sizes"] == [784, 16, 10] and plain["optim"]["lr"] == 0.05
    assert other["model"]["sizes"] == [784, 7, 10] and other["model"]["activation"] == "tanh"
    assert other["optim"]["lr"] == 0.05  # the common overrides apply to every variant's base
    assert other["optim"]["momentum"] == 0.0 and other["seed"] == 4
    assert other["train"]["epochs"] == 10  # the schema default: TINY's base is not merged in


@pytest.mark.parametrize(
    "path", sorted((CONFIGS / "experiments").glob("*.yaml")), ids=lambda p: p.stem
)
def test_ready_experiment_configs_are_valid(path):
    exp = load_experiment(path)
    assert len(exp.seeds) >= 3 and len(exp.variants) >= 2
    configs = [yaml.safe_dump(s.config) for s in exp.runs()]
    assert len(set(configs)) == len(configs)  # no two variants train the same thing
    assert all(s.config["data"]["val_fraction"] > 0 for s in exp.runs())  # a real validation set
