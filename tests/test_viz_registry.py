"""The plot registry: one entry adds a plot to ``--what``, ``plot_run`` and the HTML report."""

from __future__ import annotations

import shutil

import pytest

from barenet.cli import main
from barenet.viz import plots, style


def draw_extra(ctx, **_):
    fig, axes = style.new_figure(1, 1, figsize=(3, 2))
    axes[0, 0].plot(ctx.model.num_parameters() * [0])  # uses the lazily loaded model
    return [style.save_figure(fig, ctx.out / "extra.png")]


@pytest.fixture
def extra_plot(monkeypatch):
    entry = plots.Plot("extra", "An extra panel", draw_extra, {"extra.png": "The extra caption."})
    monkeypatch.setattr(plots, "REGISTRY", (*plots.REGISTRY, entry))
    return entry


def test_one_entry_reaches_cli_plot_run_and_report(extra_plot, mlp_run, tmp_path, capsys):
    run = shutil.copytree(mlp_run, tmp_path / "run")
    assert "extra" in plots.plot_names()
    assert main(["plot", str(run), "--what", "extra"]) == 0
    assert (run / "plots" / "extra.png").is_file()
    res = plots.plot_run(run, tmp_path / "p", what="extra,curves")
    assert [p.name for p in res.all_files()] == ["curves.png", "extra.png"]
    assert main(["report", str(run), "--max-test", "50"]) == 0
    html = (run / "report.html").read_text()
    assert "An extra panel" in html and "The extra caption." in html
    assert html.index("Hidden representation") < html.index("An extra panel")
    assert main(["plot", str(run), "--what", "nothing"]) == 2
    assert "choose from curves" in capsys.readouterr().err


def test_every_registered_file_has_a_caption(cnn_run, tmp_path):
    res = plots.plot_run(cnn_run, tmp_path, max_test=50)
    # every plot but "watch", which needs a run trained with train.watch: true
    assert set(res.files) == set(plots.plot_names()) - {"watch"}
    for path in res.all_files():
        assert plots.caption(path), path.name
