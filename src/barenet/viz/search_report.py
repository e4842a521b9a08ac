"""The report of a search output folder: leaderboard, each hyperparameter against validation
accuracy, and the curves of the top trials.

The folder holds ``leaderboard.csv`` (one row per trial, best first: ``rank``, ``trial``,
``state``, one column per searched config key, ``val_accuracy``, ``val_loss``, ...) and one run
folder per trial under ``trials/trial_NNNN/`` (or the leaderboard's ``run_dir``, relative).
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import PercentFormatter

from .. import fileio
from ..config import Config, ConfigError
from ..rundir import BEST_DIR, trial_dir
from ..rundir import LEADERBOARD_CSV as LEADERBOARD
from . import html as H
from .compare import overlay_curves
from .curves import spans_decades
from .rundata import read_history, read_metrics
from .style import closes_on_error, new_figure, save_figure

# Leaderboard columns shown around the searched values, in table order; the rest is bookkeeping.
HEAD_COLUMNS = ("rank", "trial", "state")
TAIL_COLUMNS = ("val_accuracy", "val_loss", "best_epoch", "epochs_run", "seconds", "reason")
NOT_PARAMS = {*HEAD_COLUMNS, *TAIL_COLUMNS, "host", "run_dir", "retry_of", "value", "number"}
TOP_CURVES = 5
MAX_ROWS = 200  # leaderboard rows shown in the HTML (all are in the CSV)


def is_search_dir(path: str | Path) -> bool:
    return (Path(path) / LEADERBOARD).is_file()


def read_leaderboard(search_dir: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows (as strings) of ``leaderboard.csv``."""
    p = Path(search_dir) / LEADERBOARD
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            cols = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"cannot read {p}: {e}") from None
    if not cols:
        raise ConfigError(f"{p} is empty")
    return cols, rows


def param_columns(columns: list[str]) -> list[str]:
    """Searched keys: dotted config keys (``optim.lr``, ``model.hidden``) or top-level fields."""
    fields = set(Config.model_fields)
    return [c for c in columns if c not in NOT_PARAMS and c.split(".")[0] in fields]


def _num(s: Any) -> float:
    try:
        return float(s)
    except (TypeError, ValueError):
        return math.nan


def numeric(values: list[str]) -> bool:
    """True if every non-empty value parses as a number (booleans stay categorical)."""
    vals = [v for v in values if v not in ("", None)]
    return bool(vals) and all(v not in ("True", "False") and math.isfinite(_num(v)) for v in vals)


def objective_column(rows: list[dict[str, str]]) -> str:
    """``val_accuracy`` if any trial has it, else ``val_loss``."""
    if any(math.isfinite(_num(r.get("val_accuracy"))) for r in rows):
        return "val_accuracy"
    return "val_loss"


LOG_KEYS = ("lr", "weight_decay", "eps")  # searched on a log scale by convention


def log_axis(name: str, x: np.ndarray) -> bool:
    """A log axis for positive values of a rate-like key (``optim.lr``...) or values that span
    decades."""
    x = x[np.isfinite(x)]
    if not x.size or (x <= 0).any():
        return False
    return (name.rsplit(".", 1)[-1] in LOG_KEYS and x.max() > x.min()) or spans_decades(x, 20)


def short_params(row: dict[str, str], params: list[str]) -> str:
    """``lr=0.01, hidden=[16,8]``: a trial's searched values, keys without their section."""
    return ", ".join(f"{p.rsplit('.', 1)[-1]}={row.get(p, '')}" for p in params if row.get(p))


@closes_on_error
def plot_params(rows: list[dict[str, str]], params: list[str], out_path: str | Path) -> Path:
    """One panel per hyperparameter: its value against validation accuracy (or loss).

    Completed trials are dots, pruned ones crosses (their last reported value), the best trial a
    star. Numeric ranges spanning decades get a log axis; categorical values are spread
    along the axis in first-seen order with a little jitter.
    """
    metric = objective_column(rows)
    done = [r for r in rows if r.get("state", "COMPLETE") in ("COMPLETE", "PRUNED")]
    n = max(len(params), 1)
    cols = min(3, n)
    nrows = -(-n // cols)
    fig, axes = new_figure(nrows, cols, figsize=(5.2 * cols, 4.0 * nrows + 0.4))
    rng = np.random.default_rng(0)  # jitter only: fixed so the picture is reproducible
    y_all = np.array([_num(r.get(metric)) for r in done])
    best_i = None
    complete = [
        i
        for i, r in enumerate(done)
        if r.get("state", "COMPLETE") == "COMPLETE" and math.isfinite(y_all[i])
    ]
    if complete:
        pick = np.nanargmax if metric == "val_accuracy" else np.nanargmin
        best_i = complete[int(pick(y_all[complete]))]
    for k, name in enumerate(params):
        ax = axes[k // cols, k % cols]
        raw = [r.get(name, "") for r in done]
        if numeric(raw):
            x = np.array([_num(v) for v in raw])
            if log_axis(name, x):
                ax.set_xscale("log")
                grid = np.unique(x[np.isfinite(x)])
                if len(grid) <= 8:  # a grid: label every value tried, not just the decades
                    ax.set_xticks(grid, [f"{v:g}" for v in grid])
                    ax.minorticks_off()
        else:
            cats = list(dict.fromkeys(raw))
            x = np.array([cats.index(v) for v in raw], dtype=float)
            x += rng.uniform(-0.12, 0.12, size=len(x))
            ax.set_xticks(
                range(len(cats)),
                [c if c else "(none)" for c in cats],
                rotation=30 if max(map(len, cats), default=0) > 6 else 0,
            )
            ax.set_xlim(-0.5, len(cats) - 0.5)  # every category's tick stays in view
        states = np.array([r.get("state", "COMPLETE") for r in done])
        for state, marker, color, label in (
            ("COMPLETE", "o", "tab:blue", "complete"),
            ("PRUNED", "x", "0.55", "pruned"),
        ):
            m = (states == state) & np.isfinite(y_all) & np.isfinite(x)
            if m.any():
                ax.scatter(x[m], y_all[m], marker=marker, color=color, s=28, alpha=0.8, label=label)
        if best_i is not None and np.isfinite(x[best_i]):
            ax.scatter(
                [x[best_i]],
                [y_all[best_i]],
                marker="*",
                s=220,
                color="tab:red",
                edgecolor="k",
                lw=0.6,
                zorder=3,
                label="best",
            )
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        if metric == "val_accuracy":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if k == 0:
            ax.legend(loc="best", fontsize=8)
    for k in range(len(params), nrows * cols):
        axes[k // cols, k % cols].set_visible(False)
    if not params:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(
            0.5, 0.5, "no searched keys found in the leaderboard", ha="center", va="center"
        )
    fig.suptitle(f"Each hyperparameter against {metric} ({len(done)} completed or pruned trials)")
    return save_figure(fig, out_path)


def trial_folder(search_dir: Path, row: dict[str, str]) -> Path | None:
    """The run folder of a leaderboard row: its ``run_dir`` (relative to the search folder),
    else ``trials/trial_NNNN``."""
    if row.get("run_dir"):
        p = Path(row["run_dir"])
        return p if p.is_absolute() else search_dir / p
    number = _num(row.get("trial", row.get("number")))
    if math.isfinite(number):
        return trial_dir(search_dir, int(number))
    return None


def top_histories(
    search_dir: Path, rows: list[dict[str, str]], k: int = TOP_CURVES, params: list[str] = ()
):
    """``{label: history}`` of the best ``k`` completed trials that have a history, labelled
    with their number, searched values and score."""
    metric = objective_column(rows)
    out: dict[str, Any] = {}
    for r in rows:
        if r.get("state", "COMPLETE") != "COMPLETE" or not math.isfinite(_num(r.get(metric))):
            continue
        folder = trial_folder(search_dir, r)
        h = read_history(folder) if folder is not None and folder.is_dir() else {}
        if h:
            v = _num(r.get(metric))
            score = f"{100 * v:.2f}%" if metric == "val_accuracy" else f"{v:.4f}"
            values = short_params(r, list(params))
            out[
                f"trial {r.get('trial', '?')}: {values} ({score})"
                if values
                else f"trial {r.get('trial', '?')} ({score})"
            ] = h
        if len(out) >= k:
            break
    return out


def write_search_report(
    search_dir: str | Path, out_path: str | Path | None = None, data_dir: str | None = None
) -> Path:
    """Write ``report.html`` for a search output folder and return its path."""
    root = Path(search_dir)
    out = Path(out_path) if out_path is not None else root / "report.html"
    cols, rows = read_leaderboard(root)
    params = param_columns(cols)
    metric = objective_column(rows)
    plots = out.parent / "plots"
    sections: list[tuple[str, str, list[str]]] = []

    states = [r.get("state", "COMPLETE") for r in rows]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in dict.fromkeys(states))
    summary = [
        H.para(
            f"{len(rows)} trials: {counts or 'none'}. Ranked on {metric} "
            "(validation split; the test set is never used to choose)."
        )
    ]
    best = next((r for r in rows if r.get("state", "COMPLETE") == "COMPLETE"), None)
    if best is not None:
        summary.append(
            H.key_values(
                [("best trial", best.get("trial", "?"))]
                + [(p, best.get(p, "")) for p in params]
                + [
                    (m, H.fmt(_num(best[m]), pct=True) if m == "val_accuracy" else best[m])
                    for m in ("val_accuracy", "val_loss", "epochs_run", "seconds")
                    if m in best
                ]
            )
        )
    retrained = read_metrics(root / BEST_DIR) if (root / BEST_DIR).is_dir() else {}
    if isinstance(retrained.get("test_accuracy"), float):  # --retrain-best ran to the end
        summary.append(
            H.para(
                f"Retrained on the full training set ({root / BEST_DIR}): test accuracy "
                f"{H.fmt(retrained['test_accuracy'], pct=True)}, validation accuracy "
                f"{H.fmt(retrained.get('val_accuracy'), pct=True)}."
            )
        )
    best_yaml = root / "best_config.yaml"
    if best_yaml.is_file():  # its searched values are above; the file itself is for training
        summary.append(H.para(f"Train the best config: barenet train {best_yaml}"))
    sections.append(("summary", "Summary", summary))

    show = [c for c in (*HEAD_COLUMNS, *params, *TAIL_COLUMNS) if c in cols]
    pct = {"val_accuracy"}
    body = [
        [
            H.fmt(_num(r.get(c)), pct=True) if c in pct and r.get(c) else (r.get(c) or "–")
            for c in show
        ]
        for r in rows[:MAX_ROWS]
    ]
    note = (
        [H.para(f"First {MAX_ROWS} of {len(rows)} rows; all are in {LEADERBOARD}.")]
        if len(rows) > MAX_ROWS
        else []
    )
    text_cols = [i for i, c in enumerate(show) if c in ("state", "reason")]
    top = 0 if rows and best is rows[0] else None  # no rows while the first trials train
    sections.append(
        (
            "leaderboard",
            "Leaderboard",
            [H.table(show, body, text_cols=text_cols, highlight=top)] + note,
        )
    )

    if rows:  # none yet while the first trials train
        png = plot_params(rows, params, plots / "search_params.png")
        caption = f"Each searched key against {metric}; the red star is the best trial."
        sections.append(("params", "Hyperparameters", [H.figure(png, caption)]))

    tops = top_histories(root, rows, params=params)
    if tops:
        png = overlay_curves(tops, plots / "search_top_curves.png", title=f"Top {len(tops)} trials")
        sections.append(
            (
                "curves",
                "Top trials",
                [
                    H.figure(
                        png,
                        "Validation accuracy, validation loss and training loss per epoch of the "
                        "best trials.",
                    )
                ],
            )
        )

    subtitle = f"search folder {root.resolve()} · report written {time.strftime('%Y-%m-%d %H:%M')}"
    return fileio.atomic_write_text(out, H.page(f"barenet search: {root.name}", subtitle, sections))
