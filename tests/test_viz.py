"""Plots of a run folder: every PNG is produced, decodes, has the intended size and is not blank;
PCA matches an independent SVD; curves share one epoch axis; batched inference is exact."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from barenet import nn
from barenet.cli import main
from barenet.runner import load_run, load_split
from barenet.viz import curves, plot_run, style
from barenet.viz.inference import conv_feature_maps, run_batches
from barenet.viz.pca import pca
from barenet.viz.plots import parse_what
from barenet.viz.style import DPI, plt

MAX_TEST = 300  # test images used by the plot tests: enough for every plot, fast

MLP_FILES = {
    "curves.png": (1200, 800),
    "weight_histograms.png": None,
    "first_layer_weights.png": None,
    "pca_first_layer.png": (1300, 400),
    "confusion_matrix.png": (1500, 660),
    "per_class_accuracy.png": (1300, 500),
    "predictions.png": None,
    "confident_errors.png": None,
    "embedding_pca.png": (900, 750),
}
CNN_FILES = {k: v for k, v in MLP_FILES.items() if k != "first_layer_weights.png"} | {
    "kernels_conv1.png": None,
    "kernels_conv2.png": None,
    "feature_maps_conv1.png": None,
    "feature_maps_conv2.png": None,
}


def check_png(path, size=None) -> np.ndarray:
    """Decodes, has ``size`` (w, h) if given (else a sane one), and is not blank."""
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4), path
    h, w = img.shape[:2]
    if size is not None:
        assert (w, h) == size, f"{path.name}: {w}x{h}, expected {size}"
    else:
        assert 300 <= w <= 5000 and 150 <= h <= 5000, f"{path.name}: {w}x{h}"
    rgb = img[..., :3]
    assert rgb.var() > 2e-3, f"{path.name} looks blank (variance {rgb.var():.2e})"
    # More than a title on white: a real share of the pixels is not background.
    assert (np.abs(rgb - 1.0).max(axis=2) > 0.1).mean() > 0.01, f"{path.name} nearly empty"
    return img


_REPORTED: dict[str, Path] = {}


def reported_run(run: Path, tmp_path_factory, data_dir: str) -> Path:
    """A copy of ``run`` after ``barenet report`` (once per session): the report draws every
    plot into ``plots/``, which the plot tests inspect and the report tests parse."""
    if str(run) not in _REPORTED:
        copy = shutil.copytree(run, tmp_path_factory.mktemp("reported") / run.name)
        argv = ["report", str(copy), "--max-test", str(MAX_TEST), "--data-dir", data_dir]
        assert main(argv) == 0
        _REPORTED[str(run)] = copy
    return _REPORTED[str(run)]


@pytest.fixture
def mlp_reported(mlp_run, tmp_path_factory, data_dir) -> Path:
    return reported_run(mlp_run, tmp_path_factory, data_dir)


@pytest.fixture
def cnn_reported(cnn_run, tmp_path_factory, data_dir) -> Path:
    return reported_run(cnn_run, tmp_path_factory, data_dir)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_every_plot_is_drawn_and_not_blank(kind, request):
    run = request.getfixturevalue(f"{kind}_reported")
    expected = MLP_FILES if kind == "mlp" else CNN_FILES
    # Only the PNGs: no temporary files left behind by the atomic writes.
    assert {p.name for p in (run / "plots").iterdir()} == set(expected)
    for name, size in expected.items():
        check_png(run / "plots" / name, size)
    # plots that do not apply (conv plots of an MLP) are absent, not a warning
    assert "Not drawn" not in (run / "report.html").read_text()
    assert plt.get_fignums() == [], "figures left open"


def test_figure_size_is_figsize_times_dpi(tmp_path):
    fig, _ = style.new_figure(1, 1, figsize=(3.0, 2.0))
    fig.axes[0].plot([0, 1], [1, 0])
    path = style.save_figure(fig, tmp_path / "a.png")
    assert mpimg.imread(path).shape[:2] == (2 * DPI, 3 * DPI)
    assert plt.get_fignums() == []


def test_parse_what():
    assert parse_what(None) == parse_what("all") == list(parse_what(None))
    assert parse_what("embedding, curves") == ["curves", "embedding"]
    with pytest.raises(ValueError, match="unknown plot 'loss'"):
        parse_what("curves,loss")


def test_only_curves_needs_no_model(mlp_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    (run / "model.safetensors").unlink()
    res = plot_run(run, tmp_path / "out", what="curves")
    assert [p.name for p in res.all_files()] == ["curves.png"]


# -- PCA ----------------------------------------------------------------------------------------
def _check_against_svd(w: np.ndarray) -> None:
    comps, ratio, mean = pca(w)
    x = w.astype(np.float64) - w.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(mean, w.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ratio, s**2 / (s**2).sum(), rtol=1e-9, atol=1e-12)
    assert np.all(np.diff(ratio) <= 1e-12), "components not sorted by explained variance"
    # Sign-invariant: compare components whose singular value is clearly separated.
    k = len(s)
    for j in range(k - 1):
        gap = min(s[j] - s[j + 1], s[j - 1] - s[j] if j else np.inf)
        if gap > 1e-6 * s[0]:
            assert abs(comps[j] @ vt[j]) == pytest.approx(1.0, abs=1e-8)
    # The top components span the same space and rebuild the centred data exactly.
    np.testing.assert_allclose((x @ comps.T) @ comps, x, atol=1e-8 * np.abs(x).max())


def test_pca_matches_independent_svd_random():
    rng = np.random.default_rng(7)
    for units, feats in [(40, 25), (8, 60), (30, 30)]:
        w = rng.standard_normal((units, feats)) * rng.uniform(0.1, 3.0, size=feats)
        _check_against_svd(w + 5.0)  # a large common offset: centring must remove it


def test_pca_matches_svd_on_trained_first_layer(mlp_run):
    _, model = load_run(mlp_run)
    _check_against_svd(np.asarray(model.layers[0].weight.data, dtype=np.float64))


def test_pca_centres_the_data():
    rng = np.random.default_rng(1)
    offset = np.zeros(10)
    offset[0] = 100.0  # every unit shares a huge weight on input 0
    w = rng.standard_normal((50, 10)) + offset
    comps, _, mean = pca(w)
    assert mean[0] == pytest.approx(100.0, abs=1.0)
    # Uncentred, PC1 would point along input 0; centred, it is just another direction.
    assert abs(comps[0, 0]) < 0.9


# -- curves -------------------------------------------------------------------------------------
def test_curves_share_one_epoch_axis_and_loss_is_not_clipped(tmp_path, monkeypatch):
    captured = {}
    real_save = curves.save_figure

    def spy(fig, path):
        fig.canvas.draw()
        captured["axes"] = fig.axes
        captured["ylim"] = [ax.get_ylim() for ax in fig.axes]
        return real_save(fig, path)

    monkeypatch.setattr(curves, "save_figure", spy)
    history = {
        "epoch": [1, 2, 3, 4],
        "loss": [4.5, 2.0, 1.2, 0.8],
        "accuracy": [0.3, 0.6, 0.7, 0.8],
        "val_loss": [3.0, 1.8, 1.1, 1.3],
        "val_accuracy": [0.4, 0.65, 0.75, 0.72],
        "lr": [0.1, 0.1, 0.01, 0.01],
        "grad_norm": [5.0, 3.0, 2.0, 1.5],
    }
    check_png(curves.plot_curves(history, tmp_path / "c.png"), (1200, 800))
    loss_ax, acc_ax = captured["axes"][:2]
    for ax in (loss_ax, acc_ax):
        data = [line for line in ax.get_lines() if line.get_label() in ("train", "validation")]
        assert len(data) == 2
        for line in data:
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
    lo, hi = captured["ylim"][0]
    assert hi >= 4.5 and lo <= 0.8, "loss axis clips the data"
    assert curves.best_epoch(curves.as_history(history)) == 3.0


def test_curves_of_the_history_trainer_fit_returns(tmp_path):
    """plot_curves(trainer.fit(...)), the Keras habit, on a regression (no accuracy): the
    History object was refused ('cannot read a history from History')."""
    from barenet import optim
    from barenet.data import DataLoader
    from barenet.train import Trainer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = nn.Sequential(nn.Linear(3, 8, rng=0), nn.Tanh(), nn.Linear(8, 1, rng=1))
    trainer = Trainer(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=0.01), progress=False)
    history = trainer.fit(DataLoader(x, y, batch_size=16), DataLoader(x, y, batch_size=64), 3)
    h = curves.as_history(history)
    np.testing.assert_array_equal(h["epoch"], [1, 2, 3])
    np.testing.assert_array_equal(h["val_loss"], history["val_loss"])
    check_png(curves.plot_curves(history, tmp_path / "c.png"), (1200, 800))


# -- inference ----------------------------------------------------------------------------------
def test_batched_outputs_match_one_pass(mlp_run, data_dir):
    cfg, model = load_run(mlp_run)
    x = load_split(cfg, "test", data_dir).x[:250]
    out = run_batches(model, x, batch_size=64)
    logits = model.forward(x)
    np.testing.assert_allclose(out.probs, nn.softmax(logits.astype(np.float64)), atol=1e-6)
    last = model.layers[-1]
    again = out.features @ last.weight.data.T + last.bias.data
    np.testing.assert_allclose(again, logits, rtol=1e-4, atol=1e-4)


def test_conv_feature_maps_are_the_block_outputs(cnn_run, data_dir):
    cfg, model = load_run(cnn_run)
    x = load_split(cfg, "test", data_dir).x[:3]
    maps = conv_feature_maps(model, x)
    assert len(maps) == 2
    # Block 1 is conv -> activation: its map is the activation's output, before pooling.
    h = model.layers[1].forward(model.layers[0].forward(x))
    np.testing.assert_allclose(maps[0][1], h, rtol=1e-6)
    assert maps[0][1].min() >= 0 and maps[1][1].shape[1] == 6


def test_feature_maps_of_colour_images(tmp_path):
    """A 3-channel CNN's maps beside its colour inputs (n, H, W, 3): the grey-only code
    failed with 'too many values to unpack'; a wrong shape is one clear ValueError."""
    from barenet.viz.conv import plot_feature_maps

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2))
    rgb = np.zeros((2, 12, 16, 3), np.uint8)
    rgb[0, :, :8, 0] = 255  # left half red
    rgb[1, 6:, :, 2] = 200  # bottom half blue
    x = (rgb.transpose(0, 3, 1, 2) / 255.0).astype(np.float32)
    (path,) = plot_feature_maps(model, x, rgb, tmp_path)
    png = check_png(path)
    reds = (png[..., 0] > 0.9) & (png[..., 1] < 0.1) & (png[..., 2] < 0.1)
    blues = (png[..., 2] > 0.9) & (png[..., 0] < 0.1) & (png[..., 1] < 0.1)
    assert reds.sum() > 100 and blues.sum() > 100  # the inputs are drawn in their colours
    with pytest.raises(ValueError, match="inputs for display"):
        plot_feature_maps(model, x, rgb[..., :2], tmp_path)


def test_run_made_elsewhere_without_history_or_metrics(tmp_path, data_dir):
    """A bare folder (config + weights only) of a model with no hidden layer still plots."""
    from barenet import checkpoint, fileio
    from barenet.builders import build_model
    from barenet.config import load_config, to_dict
    from barenet.runner import model_metadata

    cfg = load_config(None, ["model.sizes=[784, 10]"])
    model = build_model(cfg.model, np.random.default_rng(3))
    checkpoint.save_model(tmp_path / "run" / "model.safetensors", model, model_metadata(cfg))
    fileio.save_yaml(tmp_path / "run" / "config.yaml", to_dict(cfg))
    what = "curves,weights,conv,embedding"
    res = plot_run(tmp_path / "run", tmp_path / "out", what=what, data_dir=data_dir, max_test=100)
    assert res.skipped == {"curves": "no history.csv", "conv": "the model has no conv layers"}
    names = {p.name for p in res.all_files()}
    assert names == {"weight_histograms.png", "first_layer_weights.png", "embedding_pca.png"}
    for p in res.all_files():
        check_png(p)


def test_a_failing_plot_closes_its_figure(tmp_path):
    from barenet.viz.confusion import plot_per_class

    with pytest.raises(ValueError):  # 3 accuracies for 10 class names
        plot_per_class(np.array([0.9, 0.8, 0.7]), [str(i) for i in range(10)], tmp_path / "x.png")
    assert plt.get_fignums() == []
    assert not list(tmp_path.iterdir())


def test_per_step_schedule_reproduces_the_logged_rates(mlp_run, data_dir):
    from barenet.viz.rundata import read_config, read_history
    from barenet.viz.schedule import lr_per_step, steps_per_epoch

    cfg, h = read_config(mlp_run), read_history(mlp_run)
    spe = steps_per_epoch(cfg, data_dir)
    n_train = len(load_split(cfg, "train", data_dir).y)
    assert spe < n_train * cfg.data.subset / cfg.train.batch_size + 1
    x, lr = lr_per_step(cfg, h, spe)
    assert len(x) == len(h["epoch"]) * spe and x[-1] == len(h["epoch"])
    # The logged epoch-start rates sit on the rebuilt curve, and the warm-up peak is visible.
    np.testing.assert_allclose(lr[(h["epoch"].astype(int) - 1) * spe], h["lr"], rtol=1e-6)
    if cfg.schedule.warmup_epochs:
        assert lr.max() == pytest.approx(cfg.optim.lr) and lr.max() > h["lr"].max()
    # A wrong step count does not reproduce the log: no curve rather than a wrong one.
    assert lr_per_step(cfg, h, spe + 3) is None


def test_embedding_projection_matches_pca():
    from barenet.viz.embedding import project_2d

    rng = np.random.default_rng(5)
    for n, d in [(400, 50), (30, 120), (200, 3)]:
        x = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + 2.0
        xy, ratio = project_2d(x)
        comps, ref_ratio, mean = pca(x)
        ref = (x - mean) @ comps[:2].T
        np.testing.assert_allclose(np.abs(xy), np.abs(ref), atol=1e-8)
        np.testing.assert_allclose(ratio, ref_ratio[:2], rtol=1e-8)
