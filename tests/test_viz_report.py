"""The HTML reports (run and search), run comparison and the plot/report/compare commands."""

from __future__ import annotations

import base64
import csv
import os
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from test_viz import MAX_TEST, check_png, cnn_reported, mlp_reported  # noqa: F401 - fixtures

from barenet.cli import main
from barenet.runner import load_run, load_split
from barenet.viz import compare, compare_runs, overlay_curves, search_report
from barenet.viz.rundata import read_history, read_metrics
from barenet.viz.style import plt

VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}


class Checker(HTMLParser):
    """Balanced tags, and every image / link / resource reference collected."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[str] = []
        self.refs: list[str] = []
        self.text: list[str] = []
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        for key in ("src", "href", "action", "srcset", "data"):
            if a.get(key) is not None:
                self.refs.append(a[key])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_html(path) -> Checker:
    text = path.read_text(encoding="utf-8")
    c = Checker()
    c.feed(text)
    c.close()
    assert c.doctype, "missing <!DOCTYPE html>"
    assert not c.errors, c.errors[:3]
    assert c.stack == [], f"unclosed tags: {c.stack}"
    assert c.imgs, "no images"
    for src in c.imgs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for ref in c.refs:
        assert ref.startswith(("data:", "#")), f"external reference {ref[:80]}"
    low = text.lower()
    assert "http://" not in low and "https://" not in low and "file:" not in low
    assert "<script" not in low and "<link" not in low
    return c


def check_run_report(run, path) -> None:
    c = check_html(path)
    text = " ".join(c.text)
    metrics = read_metrics(run)
    for needle in (metrics["name"], "Per-class results", "Resolved config", "Architecture"):
        assert needle in text
    # Every PNG drawn for the run is embedded exactly once.
    pngs = sorted((run / "plots").glob("*.png"))
    assert len(pngs) == len(c.imgs) >= 9
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in c.imgs}
    assert {p.read_bytes() for p in pngs} == embedded
    # The per-class table shows each class's accuracy over the same test images as the
    # figures (the first MAX_TEST, as the report was written with --max-test).
    cfg, model = load_run(run)
    test = load_split(cfg, "test", os.environ["BARENET_DATA"])
    pred = model(test.x[:MAX_TEST]).argmax(axis=1)
    y = test.y[:MAX_TEST]
    acc = np.mean(pred[y == 3] == 3)
    assert f"{100 * acc:.2f}%" in text and f"Over the first {MAX_TEST} test images" in text
    assert plt.get_fignums() == []


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_run_report_is_valid_self_contained_html(kind, request):
    run = request.getfixturevalue(f"{kind}_reported")
    check_run_report(run, run / "report.html")
    assert ("Convolutions" in (run / "report.html").read_text()) == (kind == "cnn")


def _fake_search(root, mlp_run, cnn_run):
    (root / "trials").mkdir(parents=True)
    shutil.copytree(mlp_run, root / "trials" / "trial_0000")
    shutil.copytree(cnn_run, root / "trials" / "trial_0003")
    rows = [
        [
            "1",
            "3",
            "COMPLETE",
            "0.3",
            "[16]",
            "sgd",
            "0.91",
            "0.30",
            "2",
            "2",
            "4.0",
            "trials/trial_0003",
            "",
        ],
        [
            "2",
            "0",
            "COMPLETE",
            "0.001",
            "[32]",
            "adam",
            "0.88",
            "0.45",
            "2",
            "2",
            "1.5",
            "trials/trial_0000",
            "",
        ],
        ["3", "1", "COMPLETE", "0.01", "[32]", "sgd", "0.80", "0.60", "2", "2", "1.5", "", ""],
        ["", "2", "PRUNED", "0.05", "[16]", "adam", "0.50", "1.20", "1", "1", "0.5", "", ""],
        ["", "4", "FAIL", "1.0", "[32]", "sgd", "", "", "", "", "", "", "diverged: nan loss"],
    ]
    header = [
        "rank",
        "trial",
        "state",
        "optim.lr",
        "model.hidden",
        "optim.name",
        "val_accuracy",
        "val_loss",
        "best_epoch",
        "epochs_run",
        "seconds",
        "run_dir",
        "reason",
    ]
    with open(root / "leaderboard.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    (root / "best_config.yaml").write_text("optim:\n  lr: 0.3\n")


def test_search_report(tmp_path, mlp_run, cnn_run, monkeypatch):
    root = tmp_path / "search"
    _fake_search(root, mlp_run, cnn_run)
    shutil.copytree(mlp_run, root / "best")  # as --retrain-best leaves it
    figs = []
    real_save = search_report.save_figure

    def spy(fig, path):
        fig.canvas.draw()
        figs.append({ax.get_xlabel(): ax for ax in fig.axes})
        return real_save(fig, path)

    monkeypatch.setattr(search_report, "save_figure", spy)
    assert main(["report", str(root)]) == 0
    c = check_html(root / "report.html")
    text = " ".join(c.text)
    assert "diverged: nan loss" in text and "optim.lr" in text
    # best_config.yaml is named with the command that trains it, not dumped whole
    assert "lr: 0.3" not in text and f"barenet train {root / 'best_config.yaml'}" in text
    # accuracy in % in the summary as in the leaderboard (the summary said 0.91), and the
    # retrained best's one test evaluation is reported
    summary = text[text.index("trials:") : text.index("Train the best config")]
    assert "val_accuracy 91.00%" in " ".join(summary.split()) and "0.91" not in summary
    test_acc = read_metrics(mlp_run)["test_accuracy"]
    assert f"test accuracy {100 * test_acc:.2f}%" in text
    assert len(c.imgs) == 2  # the hyperparameter scatter and the top-trial curves
    check_png(root / "plots" / "search_params.png")
    check_png(root / "plots" / "search_top_curves.png")
    axes = figs[0]
    assert set(axes) >= {"optim.lr", "model.hidden", "optim.name"}
    assert axes["optim.lr"].get_xscale() == "log"  # 0.001..1 spans decades
    assert [t.get_text() for t in axes["optim.name"].get_xticklabels()] == ["sgd", "adam"]
    lo, hi = axes["model.hidden"].get_xlim()
    assert lo < 0 and hi > 1, "a category's tick is out of view"
    # Top curves: only the two trials with a run folder; best first.
    assert list(search_report.top_histories(root, search_report.read_leaderboard(root)[1])) == [
        "trial 3 (91.00%)",
        "trial 0 (88.00%)",
    ]
    rows = search_report.read_leaderboard(root)[1]
    labelled = list(search_report.top_histories(root, rows, params=["optim.lr"]))
    assert labelled[0].startswith("trial 3: lr=") and labelled[0].endswith("(91.00%)")


def test_learning_rates_get_a_log_axis_even_within_a_decade():
    assert search_report.log_axis("optim.lr", np.array([0.01, 0.03, 0.1]))
    assert not search_report.log_axis("model.hidden", np.array([8.0, 16.0, 32.0]))
    assert not search_report.log_axis("optim.lr", np.array([0.0, 0.1]))


def test_param_columns_are_config_keys():
    cols = [
        "rank",
        "trial",
        "state",
        "optim.lr",
        "model.hidden",
        "seed",
        "val_accuracy",
        "host",
        "run_dir",
        "reason",
        "bogus",
    ]
    assert search_report.param_columns(cols) == ["optim.lr", "model.hidden", "seed"]
    assert search_report.numeric(["0.1", "", "3"]) and not search_report.numeric(["True"])


def test_compare_runs_tables(mlp_run, cnn_run, tmp_path):
    rows = compare_runs([mlp_run, cnn_run], tmp_path, labels=["mlp", "cnn"])
    assert [r["label"] for r in rows] == ["mlp", "cnn"]
    for r, run in zip(rows, (mlp_run, cnn_run), strict=True):
        m = read_metrics(run)
        assert r["test_accuracy"] == m["test_accuracy"]
        assert r["val_accuracy"] == m["val_accuracy"]
    with open(tmp_path / "comparison.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["label"] for t in table] == ["mlp", "cnn"]
    assert float(table[1]["test_accuracy"]) == pytest.approx(rows[1]["test_accuracy"])
    md = (tmp_path / "comparison.md").read_text().splitlines()
    assert md[0].startswith("| label |") and len(md) == 4
    assert f"{100 * rows[0]['test_accuracy']:.2f}%" in md[2]
    check_png(tmp_path / "comparison_curves.png")


def test_overlay_curves_mean_and_band(tmp_path, monkeypatch):
    captured = {}
    real_save = compare.save_figure

    def spy(fig, path):
        captured["axes"] = fig.axes
        return real_save(fig, path)

    monkeypatch.setattr(compare, "save_figure", spy)
    seeds = [
        {"epoch": [1, 2, 3], "val_accuracy": [0.5, 0.7, 0.8]},
        [{"epoch": 1, "val_accuracy": 0.6}, {"epoch": 2, "val_accuracy": 0.9}],  # stopped early
    ]
    single = {"epoch": [1, 2, 3], "val_accuracy": [0.4, 0.5, 0.6]}
    path = overlay_curves(
        {"a": seeds, "b": single}, tmp_path / "o.png", metrics=["val_accuracy"], band="std"
    )
    check_png(path)
    ax = captured["axes"][0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["a (mean of 2)"].get_ydata(), [0.55, 0.8, 0.8])
    np.testing.assert_allclose(lines["b"].get_ydata(), [0.4, 0.5, 0.6])
    bands = ax.collections
    assert len(bands) == 1  # only the label with several runs gets a band
    top = bands[0].get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(0.8 + 0.1, abs=1e-9)  # mean + std at epoch 2 (0.7, 0.9)
    with pytest.raises(ValueError, match="band"):
        overlay_curves({"a": single}, tmp_path / "x.png", band="iqr")
    assert plt.get_fignums() == []


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_plot_and_compare(mlp_run, cnn_run, tmp_path, capsys, data_dir):
    out = tmp_path / "plots"
    argv = ["plot", str(mlp_run), "--out", str(out), "--what", "curves,weights"]
    assert main([*argv, "--data-dir", data_dir]) == 0
    expected = {"curves.png", "weight_histograms.png", "first_layer_weights.png"}
    assert {p.name for p in out.iterdir()} == expected
    argv = ["compare", str(mlp_run), str(cnn_run), "--out", str(tmp_path / "cmp")]
    assert main([*argv, "--labels", "m", "c"]) == 0
    printed = capsys.readouterr().out
    assert "| m |" in printed and (tmp_path / "cmp" / "comparison.md").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["plot", "{missing}"],
        ["report", "{missing}"],
        ["compare", "{run}", "{missing}"],
        ["plot", "{corrupt}"],
        ["report", "{corrupt}"],
        ["plot", "{run}", "--what", "loss"],
        ["plot", "{run}", "--what", "conv"],  # an MLP has no conv layers: nothing to draw
        # --max-test 0 is an argparse error now: tests/test_cli_help.py
        ["compare", "{run}", "{run}", "--labels", "one"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, mlp_run, tmp_path, capsys):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(mlp_run, corrupt)
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 3])
    paths = {"missing": tmp_path / "nope", "corrupt": corrupt, "run": mlp_run}
    args = [a.format(**{k: str(v) for k, v in paths.items()}) for a in argv]
    if args[0] == "compare":
        args += ["--out", str(tmp_path / "cmp")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("barenet: error:"), err
    assert "Traceback" not in err[0]


def test_history_reader_tolerates_gaps(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n1,2.0,\n2,1.5,1.7\n")
    h = read_history(tmp_path)
    np.testing.assert_array_equal(h["epoch"], [1, 2])
    assert np.isnan(h["val_loss"][0]) and h["val_loss"][1] == 1.7


def test_report_on_an_experiment_folder_says_what_writes_it(tmp_path, capsys):
    # `barenet report runs/experiments/NAME` said "is not a run folder: expected
    # model.safetensors ...", as if the folder were broken.
    exp = tmp_path / "init"
    exp.mkdir()
    (exp / "experiment.yaml").write_text("name: init\n")
    assert main(["report", str(exp)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an experiment folder" in err[0]
    assert "barenet experiment" in err[0] and not (exp / "report.html").exists()


def test_report_on_a_search_whose_leaderboard_has_no_row_yet(tmp_path, capsys):
    # A report racing a search whose workers all stopped before a trial ended read a
    # header-only leaderboard.csv and crashed (IndexError in the leaderboard table).
    root = tmp_path / "search"
    root.mkdir()
    (root / "leaderboard.csv").write_text(
        "rank,trial,state,optim.lr,val_accuracy,val_loss,best_epoch,epochs_run,seconds\n"
    )
    assert main(["report", str(root)]) == 0
    assert "0 trials" in (root / "report.html").read_text()
    assert "warning" not in capsys.readouterr().err  # no empty plot drawn


def test_report_on_a_search_before_its_first_trial_ended_says_so(tmp_path, capsys):
    # `barenet report OUT` started with `barenet search --out OUT` said "is not a run
    # folder: expected model.safetensors ..." until the first trial wrote leaderboard.csv.
    root = tmp_path / "search"
    root.mkdir()
    (root / "search.yaml").write_text("study: s\n")
    (root / "study.journal").write_text("")
    assert main(["report", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "search folder with no finished trial yet" in err[0]
    assert not (root / "report.html").exists()
