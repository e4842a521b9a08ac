"""One self-contained ``report.html`` per run folder (or per search output folder).

A run report holds the summary, metrics, per-class table, every plot (embedded), the history
table, the architecture and the config. If the data set is not available, the plots that need
test images are left out with a note rather than failing the whole report.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .. import fileio
from ..config import to_dict
from ..run_metrics import RunMetrics
from ..rundir import PLOTS_DIR, REPORT_FILE
from . import html as H
from .plots import NEEDS_TEST_DATA, PLOTS, PlotResult, plot_run
from .rundata import check_run_dir, has_values, read_config, read_history, read_metrics
from .search_report import is_search_dir, write_search_report

CAPTIONS = {
    "curves.png": "Loss and accuracy per epoch (train: running mean over the epoch in training "
    "mode; validation: end of epoch), learning rate at the start of each epoch, and mean "
    "gradient norm. The dotted line marks the best validation epoch (the weights kept).",
    "weight_histograms.png": "Distribution of weights and biases in each layer.",
    "first_layer_weights.png": "Incoming weights of each first-layer unit drawn as an image: "
    "red pixels excite the unit, blue ones inhibit it.",
    "pca_first_layer.png": "PCA of the first layer's weight vectors (one sample per unit, "
    "centred): the patterns along which units differ most, and how much variance each explains.",
    "confusion_matrix.png": "Rows are true classes, columns predictions: raw counts and each "
    "row as a percentage of its class.",
    "per_class_accuracy.png": "Test accuracy per class, and the error rate on a scale that "
    "shows the differences.",
    "predictions.png": "Random test images with predicted label, confidence and true label.",
    "confident_errors.png": "The misclassified test images the model was most confident about.",
    "embedding_pca.png": "The input of the final linear layer for a sample of test images, "
    "projected on its top two principal components and coloured by true class.",
}


def _caption(png: Path) -> str:
    if png.name.startswith("kernels_"):
        return "Learned convolution kernels (one symmetric colour scale per layer)."
    if png.name.startswith("feature_maps_"):
        return "What this conv layer responds to on a few test images (after the activation)."
    return CAPTIONS.get(png.name, "")


def _metrics_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (k, H.fmt(m[k], pct=k.endswith("accuracy"))) for k in RunMetrics.scalar_keys() if k in m
    ]
    test = m.get("test") or {}
    if "loss" in test:
        rows.append(("test_loss", H.fmt(test["loss"])))
    if "n" in test:
        rows.append(("test_images", H.fmt(test["n"])))
    return rows


def per_class_table(cm: np.ndarray, classes: list[str]) -> str:
    """Class, test images, correct, accuracy and the class it is most often mistaken for."""
    cm = np.asarray(cm, dtype=np.int64)
    rows = []
    for i, name in enumerate(classes):
        n, right = int(cm[i].sum()), int(cm[i, i])
        off = cm[i].copy()
        off[i] = -1
        j = int(off.argmax())
        confused = f"{classes[j]} ({off[j]})" if off[j] > 0 else "–"
        rows.append((name, n, right, H.fmt(right / n if n else float("nan"), pct=True), confused))
    return H.table(
        ["class", "test images", "correct", "accuracy", "most often predicted as"],
        rows,
        text_cols=(0, 4),
    )


def _history_table(h: dict[str, np.ndarray]) -> str:
    cols = [
        c
        for c in (
            "epoch",
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "lr",
            "grad_norm",
            "time",
        )
        if has_values(h, c)
    ]
    pct = {"accuracy", "val_accuracy"}
    rows = []
    for r in range(len(h["epoch"])):
        row = []
        for c in cols:
            v = float(h[c][r])
            row.append(str(int(v)) if c == "epoch" else H.fmt(v, pct=c in pct))
        rows.append(row)
    best = None
    if has_values(h, "val_accuracy"):
        best = int(np.nanargmax(h["val_accuracy"]))
    return H.table(cols, rows, text_cols=(), highlight=best)


def _plots(
    run: Path, plots: Path, data_dir: str | None, max_test: int | None
) -> tuple[PlotResult, str | None]:
    try:
        return plot_run(run, plots, data_dir=data_dir, max_test=max_test), None
    except Exception as err:  # noqa: BLE001 - only data errors are retried below
        from ..data import DataError

        if not isinstance(err, DataError):
            raise
        groups = [g for g in PLOTS if g not in NEEDS_TEST_DATA]
        note = f"Plots needing test images were skipped: {err}"
        return plot_run(run, plots, what=groups, data_dir=data_dir), note


def write_report(
    run_dir: str | Path,
    out_path: str | Path | None = None,
    data_dir: str | None = None,
    max_test: int | None = None,
) -> Path:
    """Write ``report.html`` (default: inside ``run_dir``) and return its path; the PNGs go to
    ``plots/`` next to it. A search output folder (one holding ``leaderboard.csv``) gets the
    search report instead. ``max_test`` limits the test images the plots use (default all)."""
    if is_search_dir(run_dir):
        return write_search_report(run_dir, out_path, data_dir=data_dir)
    run = check_run_dir(run_dir)
    out = Path(out_path) if out_path is not None else run / REPORT_FILE
    cfg = read_config(run)
    metrics = read_metrics(run)
    history = read_history(run)
    result, note = _plots(run, out.parent / PLOTS_DIR, data_dir, max_test)
    files = {p.name: p for p in result.all_files()}
    from ..data import CLASS_NAMES

    classes = CLASS_NAMES[cfg.data.dataset]
    sections: list[tuple[str, str, list[str]]] = []

    summary = _metrics_rows(metrics) or [("metrics", "no metrics.json in this run folder")]
    sections.append(("metrics", "Metrics", [H.key_values(summary)]))
    if "curves.png" in files:
        parts = [H.figure(files["curves.png"], _caption(files["curves.png"]))]
        if history:
            parts += ["<h3>Per epoch</h3>", _history_table(history)]
        sections.append(("curves", "Training curves", parts))
    cm = (metrics.get("test") or {}).get("confusion_matrix")
    parts = [per_class_table(np.asarray(cm), classes)] if cm is not None else []
    parts += [
        H.figure(files[n], _caption(files[n]))
        for n in ("per_class_accuracy.png", "confusion_matrix.png")
        if n in files
    ]
    if parts:
        sections.append(("classes", "Per-class results (test set)", parts))
    groups = [
        ("predictions", "Predictions", ("predictions.png", "confident_errors.png")),
        (
            "weights",
            "Weights",
            ("weight_histograms.png", "first_layer_weights.png", "pca_first_layer.png"),
        ),
        (
            "conv",
            "Convolutions",
            tuple(sorted(n for n in files if n.startswith("kernels_")))
            + tuple(sorted(n for n in files if n.startswith("feature_maps_"))),
        ),
        ("embedding", "Hidden representation", ("embedding_pca.png",)),
    ]
    for anchor, title, names in groups:
        parts = [H.figure(files[n], _caption(files[n])) for n in names if n in files]
        if parts:
            sections.append((anchor, title, parts))
    from ..runner import load_run

    _, model = load_run(run)
    sections.append(
        (
            "model",
            "Model and config",
            [
                f"<h3>Architecture ({model.num_parameters():,} parameters)</h3>",
                H.pre(str(model)),
                "<h3>Resolved config</h3>",
                H.pre(yaml.safe_dump(to_dict(cfg), sort_keys=False)),
            ],
        )
    )
    if note or result.skipped:
        notes = ([note] if note else []) + [f"{k}: {v}" for k, v in result.skipped.items()]
        sections[0][2].extend(H.para("Not drawn — " + n, "note") for n in notes)

    subtitle = (
        f"{cfg.model.type.upper()} on {cfg.data.dataset} · run folder {run.resolve()} · "
        f"report written {time.strftime('%Y-%m-%d %H:%M')}"
    )
    text = H.page(f"barenet run: {cfg.name}", subtitle, sections)
    return fileio.atomic_write_text(out, text)
