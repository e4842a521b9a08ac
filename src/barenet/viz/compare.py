"""Several runs side by side: overlaid curves (optionally mean and band over seeds per label)
and a table of final metrics as Markdown and CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import PercentFormatter

from .. import fileio
from ..errors import UserError
from ..rundir import COMPARISON_CSV, COMPARISON_CURVES_PNG, COMPARISON_MD
from .curves import epoch_axis, spans_decades
from .rundata import as_history, check_run_dir, has_values, read_history, read_metrics
from .style import CLASS_CMAP, closes_on_error, new_figure, plt, save_figure

CURVE_TITLES = {
    "val_accuracy": "Validation accuracy",
    "val_loss": "Validation loss",
    "loss": "Training loss",
    "accuracy": "Training accuracy",
    "lr": "Learning rate",
    "grad_norm": "Gradient norm",
}
COLUMNS = (
    "label",
    "name",
    "dataset",
    "parameters",
    "epochs_run",
    "best_epoch",
    "val_accuracy",
    "final_val_accuracy",
    "val_loss",
    "test_accuracy",
    "test_loss",
    "train_seconds",
    "run_dir",
)
PCT = {"val_accuracy", "final_val_accuracy", "test_accuracy"}


def align(histories: Sequence[Any], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs (E,) present in any run and values (runs, E), NaN where a run has none (e.g. it
    stopped early)."""
    hs = [as_history(h) for h in histories]
    epochs = np.unique(np.concatenate([h["epoch"][np.isfinite(h["epoch"])] for h in hs]))
    values = np.full((len(hs), len(epochs)), np.nan)
    for r, h in enumerate(hs):
        if metric in h:
            idx = np.searchsorted(epochs, h["epoch"])
            ok = np.isfinite(h["epoch"])
            values[r, idx[ok]] = h[metric][ok]
    return epochs, values


def _as_runs(value: Any) -> list[Any]:
    """A label's value as a list of histories. A list of row dicts is ONE history; any other
    non-empty list or tuple holds one history per element."""
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, Mapping) and _is_row(v) for v in value):
            return [value]
        return list(value)
    return [value]


def _is_row(d: Mapping) -> bool:
    """A dict of scalars (one epoch's logs), not a dict of columns."""
    return not any(isinstance(v, (list, tuple, np.ndarray)) for v in d.values())


@closes_on_error
def overlay_curves(
    histories: Mapping[str, Any],
    out_path: str | Path,
    metrics: Sequence[str] = ("val_accuracy", "val_loss", "loss"),
    band: str = "minmax",
    title: str | None = None,
) -> Path:
    """One panel per metric, one line per label. ``histories[label]`` is a history (path, dict,
    DataFrame, list of row dicts) or a list of histories (e.g. one per seed): several runs are
    drawn as their mean with a shaded band, ``minmax`` (range) or ``std`` (mean +- 1 std); past
    the epoch where a run stopped early, the mean is over the runs still going. Metrics no
    history has are left out."""
    if band not in ("minmax", "std"):
        raise ValueError(f"band must be 'minmax' or 'std', got {band!r}")
    runs = {label: [as_history(h) for h in _as_runs(v)] for label, v in histories.items()}
    shown = [m for m in metrics if any(has_values(h, m) for hs in runs.values() for h in hs)]
    if not shown:
        raise UserError(f"none of the histories has any of {', '.join(metrics)}")
    fig, axes = new_figure(1, len(shown), figsize=(5.0 * len(shown) + 2.2, 4.6))
    cmap = plt.get_cmap(CLASS_CMAP if len(runs) <= 10 else "tab20")
    same = identical_to(runs, shown)
    for c, metric in enumerate(shown):
        ax = axes[0, c]
        every: list[np.ndarray] = []
        drawn: list[np.ndarray] = []
        for k, (label, hs) in enumerate(runs.items()):
            epochs, vals = align(hs, metric)
            have = np.isfinite(vals).sum(axis=0)
            if not have.any():
                continue
            keep = have > 0
            e, v = epochs[keep], vals[:, keep]
            mean = np.nanmean(v, axis=0)
            color = cmap(k % cmap.N)
            n = len(hs)
            name = label if n == 1 else f"{label} (mean of {n})"
            # Each line its own dash and marker: identical runs stay visible as a mixed line.
            ax.plot(
                e,
                mean,
                LINESTYLES[k % len(LINESTYLES)],
                marker=MARKERS[k % len(MARKERS)] if len(e) <= 30 else None,
                ms=4 + 1.5 * (k % 3),
                mfc="none" if k % 2 else color,
                lw=1.6,
                color=color,
                label=name + (f" (identical to {same[label]})" if label in same else ""),
            )
            if n > 1:
                if band == "std":
                    sd = np.nanstd(v, axis=0)
                    lo, hi = mean - sd, mean + sd
                else:
                    lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
                ax.fill_between(e, lo, hi, color=color, alpha=0.18, lw=0)
            every.append(v[np.isfinite(v)])
            drawn.append(np.asarray(e, dtype=np.float64))
        ax.set_title(CURVE_TITLES.get(metric, metric))
        ax.set_ylabel(metric)
        # Whole-epoch ticks, also for runs of one or two epochs (not 0.945 ... 1.05).
        epoch_axis(ax, np.concatenate(drawn) if drawn else None)
        if "loss" in metric and every and spans_decades(np.concatenate(every), 10):
            ax.set_yscale("log")
        if "accuracy" in metric:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    # One legend for all panels; a label missing from the first panel still gets its entry.
    entries: dict[str, Any] = {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    several = any(len(hs) > 1 for hs in runs.values())
    spread = "min-max" if band == "minmax" else "±1 std"
    fig.legend(
        list(entries.values()),
        list(entries),
        loc="outside right center",
        frameon=False,
        title=f"shaded: {spread} over runs" if several else None,
    )
    fig.suptitle(title or "Run comparison")
    return save_figure(fig, out_path)


LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P")


def identical_to(runs: Mapping[str, list[Any]], metrics: Sequence[str]) -> dict[str, str]:
    """``{label: earlier label}`` for runs whose curves equal an earlier one's on every metric
    (e.g. two variants that resolve to the same config): they would hide each other."""
    curves = {label: [align(hs, m)[1] for m in metrics] for label, hs in runs.items()}
    out: dict[str, str] = {}
    labels = list(curves)
    for i, a in enumerate(labels):
        for b in labels[:i]:
            if b not in out and all(
                x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
                for x, y in zip(curves[a], curves[b], strict=True)
            ):
                out[a] = b
                break
    return out


def _unique_labels(run_dirs: Sequence[Path]) -> list[str]:
    names = [p.name for p in run_dirs]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in run_dirs]


def run_row(run_dir: str | Path, label: str) -> dict[str, Any]:
    """Final metrics of one run: from metrics.json, else derived from the history."""
    run = Path(run_dir)
    m = read_metrics(run)
    h = read_history(run)
    row: dict[str, Any] = {"label": label, "run_dir": str(run)}
    for k in COLUMNS[1:-1]:
        if k in m:
            row[k] = m[k]
    test = m.get("test") or {}
    if "loss" in test:
        row["test_loss"] = test["loss"]
    if h and "val_accuracy" not in row and has_values(h, "val_accuracy"):
        best = int(np.nanargmax(h["val_accuracy"]))
        row.update(
            val_accuracy=float(h["val_accuracy"][best]),
            best_epoch=int(h["epoch"][best]),
            final_val_accuracy=float(h["val_accuracy"][-1]),
        )
        if has_values(h, "val_loss"):
            row["val_loss"] = float(h["val_loss"][best])
    if h and "epochs_run" not in row:
        row["epochs_run"] = len(h["epoch"])
    return row


def _cell(v: Any, key: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if key in PCT and isinstance(v, (int, float)):
        return f"{100 * v:.2f}%"
    if isinstance(v, float):
        return f"{v:.4g}" if key != "train_seconds" else f"{v:.1f}"
    return str(v)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """A GitHub Markdown table of ``rows`` over the ``columns`` any row has (pipes escaped)."""
    cols = [c for c in columns if any(c in r for r in rows)]
    lines = [
        "| " + " | ".join(cols) + " |",
        "|"
        + "|".join("---" if c in ("label", "name", "dataset", "run_dir") else "---:" for c in cols)
        + "|",
    ]
    for r in rows:
        cells = [_cell(r.get(c), c).replace("|", "\\|") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    cols = [c for c in columns if any(c in r for r in rows)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def compare_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    labels: Sequence[str] | None = None,
    band: str = "minmax",
) -> list[dict[str, Any]]:
    """Write ``comparison_curves.png``, ``comparison.md``, ``comparison.csv`` and
    ``report.html`` into ``out_dir``; return the table rows (one dict per run, keys from
    ``COLUMNS``).

    Runs sharing a label are drawn as one mean curve with a band (the table keeps every run).
    """
    runs = [check_run_dir(d) for d in run_dirs]
    if not runs:
        raise ValueError("compare needs at least one run folder")
    if labels is not None and len(labels) != len(runs):
        raise UserError(f"got {len(labels)} labels for {len(runs)} run folders")
    names = list(labels) if labels is not None else _unique_labels(runs)
    out = Path(out_dir)
    rows = [run_row(r, n) for r, n in zip(runs, names, strict=True)]
    groups: dict[str, list[Any]] = {}
    for r, n in zip(runs, names, strict=True):
        h = read_history(r)
        if h:
            groups.setdefault(n, []).append(h)
    if groups:
        overlay_curves(
            groups,
            out / COMPARISON_CURVES_PNG,
            band=band,
            title=f"Comparison of {len(runs)} runs",
        )
    fileio.atomic_write_text(out / COMPARISON_MD, markdown_table(rows))
    fileio.atomic_write_text(out / COMPARISON_CSV, csv_table(rows))
    from .compare_report import write_compare_report

    write_compare_report(out, rows=rows)
    return rows
