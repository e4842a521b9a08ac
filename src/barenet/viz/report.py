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
from ..rundir import (
    EXPERIMENT_FILE,
    LEADERBOARD_CSV,
    PLOTS_DIR,
    REPORT_FILE,
    SEARCH_FILE,
    RunFolderError,
)
from . import html as H
from . import plots
from .compare_report import is_compare_dir, write_compare_report
from .rundata import check_run_dir, has_values, read_config, read_history, read_metrics
from .search_report import is_search_dir, write_search_report


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


def _class_table(
    result: plots.PlotResult, metrics: dict[str, Any], classes: list[str]
) -> list[str]:
    """The per-class table over the same test images as the figures beside it (``--max-test``
    may limit them), else over the whole test set as evaluated after training."""
    if "confusion" in result.files and result.context is not None:
        cm = result.context.confusion_matrix
    else:
        cm = (metrics.get("test") or {}).get("confusion_matrix")
    if cm is None:
        return []
    n = int(np.asarray(cm).sum())
    total = (metrics.get("test") or {}).get("n")
    note = f"Over {n:,} test images."
    if total and total != n:
        note = (
            f"Over the first {n:,} test images, as the figures below "
            f"(the metrics above: all {total:,})."
        )
    return [H.para(note), per_class_table(np.asarray(cm), classes)]


def _plots(
    run: Path, out: Path, data_dir: str | None, max_test: int | None
) -> tuple[plots.PlotResult, str | None]:
    try:
        return plots.plot_run(run, out, data_dir=data_dir, max_test=max_test), None
    except Exception as err:  # noqa: BLE001 - only data errors are retried below
        from ..data import DataError

        if not isinstance(err, DataError):
            raise
        groups = plots.plot_names(needs_data=False)
        note = f"Plots needing test images were skipped: {err}"
        return plots.plot_run(run, out, what=groups, data_dir=data_dir), note


def write_report(
    run_dir: str | Path,
    out_path: str | Path | None = None,
    data_dir: str | None = None,
    max_test: int | None = None,
) -> Path:
    """Write ``report.html`` (default: inside ``run_dir``) and return its path; the PNGs go to
    ``plots/`` next to it. A search output folder (one holding ``leaderboard.csv``) gets the
    search report instead, a comparison folder (``comparison.csv``) the comparison page.
    ``max_test`` limits the test images the plots use (default all)."""
    if is_search_dir(run_dir):
        return write_search_report(run_dir, out_path, data_dir=data_dir)
    if is_compare_dir(run_dir):
        return write_compare_report(run_dir, out_path)
    if (Path(run_dir) / EXPERIMENT_FILE).is_file():
        raise RunFolderError(
            f"{run_dir} is an experiment folder: `barenet experiment` writes its report.html;"
            " run the same command again to redraw it (it trains nothing already done)"
        )
    if (Path(run_dir) / SEARCH_FILE).is_file():  # a search before its first trial ended
        raise RunFolderError(
            f"{run_dir} is a search folder with no finished trial yet: its {LEADERBOARD_CSV}"
            " is written as each trial ends; run the report again then"
        )
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
    for plot in plots.REGISTRY:
        names = [p.name for p in result.files.get(plot.name, [])]
        parts = [H.figure(files[n], plots.caption(n)) for n in names]
        if plot.name == "curves" and history:
            parts += ["<h3>Per epoch</h3>", _history_table(history)]
        if plot.name == "confusion":
            parts[:0] = _class_table(result, metrics, classes)
        if parts:
            sections.append((plot.name, plot.title, parts))
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
    if note:  # plots that do not apply to this model (conv for an MLP) are simply absent
        sections[0][2].append(H.para("Not drawn — " + note, "note"))

    subtitle = (
        f"{cfg.model.type.upper()} on {cfg.data.dataset} · run folder {run.resolve()} · "
        f"report written {time.strftime('%Y-%m-%d %H:%M')}"
    )
    text = H.page(f"barenet run: {cfg.name}", subtitle, sections)
    return fileio.atomic_write_text(out, text)
