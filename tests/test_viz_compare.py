"""``barenet compare`` writes an HTML page; ``barenet report`` accepts a comparison folder;
identical runs stay visible in overlaid curves."""

from __future__ import annotations

import shutil

import numpy as np
from test_viz_report import check_html

from barenet.cli import main
from barenet.viz import compare
from barenet.viz.compare_report import read_comparison
from barenet.viz.style import plt


def test_compare_writes_html_and_report_rewrites_it(mlp_run, cnn_run, tmp_path, capsys):
    twin = shutil.copytree(mlp_run, tmp_path / "twin")
    out = tmp_path / "cmp"
    assert main(["compare", str(mlp_run), str(twin), str(cnn_run), "--out", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    c = check_html(out / "report.html")
    text = " ".join(c.text)
    assert "Final metrics" in text and "twin" in text and len(c.imgs) == 1
    rows = read_comparison(out)
    assert [r["label"] for r in rows] == ["mlp", "twin", "cnn"]
    assert isinstance(rows[0]["test_accuracy"], float) and isinstance(rows[0]["parameters"], int)
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0  # a comparison folder, not "not a run folder"
    assert check_html(out / "report.html").imgs


def test_identical_runs_are_named_and_drawn_distinguishably(tmp_path, monkeypatch):
    captured = {}
    real_save = compare.save_figure

    def spy(fig, path):
        captured["ax"] = fig.axes[0]
        return real_save(fig, path)

    monkeypatch.setattr(compare, "save_figure", spy)
    h = {"epoch": [1, 2, 3], "val_accuracy": [0.5, 0.7, 0.8]}
    other = {"epoch": [1, 2, 3], "val_accuracy": [0.4, 0.6, 0.7]}
    compare.overlay_curves(
        {"a": h, "b": dict(h), "c": other}, tmp_path / "o.png", metrics=["val_accuracy"]
    )
    lines = captured["ax"].get_lines()
    assert [ln.get_label() for ln in lines] == ["a", "b (identical to a)", "c"]
    styles = {(ln.get_linestyle(), ln.get_marker()) for ln in lines}
    assert len(styles) == 3
    np.testing.assert_array_equal(lines[0].get_ydata(), lines[1].get_ydata())
    assert plt.get_fignums() == []


def test_one_epoch_runs_get_whole_epoch_ticks(tmp_path, monkeypatch):
    # An experiment smoke run (--set train.epochs=1) drew its curves.png with ticks
    # 0.945 ... 1.05: the epoch axis of a comparison has whole epochs only.
    captured = {}
    real_save = compare.save_figure

    def spy(fig, path):
        fig.canvas.draw()
        captured["ticks"] = [list(ax.get_xticks()) for ax in fig.axes if ax.get_lines()]
        return real_save(fig, path)

    monkeypatch.setattr(compare, "save_figure", spy)
    runs = {
        "a": [{"epoch": [1], "val_accuracy": [0.5], "loss": [2.0]}] * 2,
        "b": {"epoch": [1], "val_accuracy": [0.6], "loss": [1.5]},
    }
    compare.overlay_curves(runs, tmp_path / "o.png", metrics=["val_accuracy", "loss"])
    assert captured["ticks"] == [[1.0], [1.0]]
