"""The figures and HTML report of an experiment folder.

``curves.png`` (validation accuracy and loss per epoch, mean over seeds with the min-max band,
from the run folders on this machine), ``accuracy.png`` (every seed's accuracy per variant,
mean +- sample std) and ``report.html`` (the results table, the figures, every run, the setup).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..experiment.spec import Experiment
from ..experiment.tables import (
    ACCURACIES,
    RUN_COLUMNS,
    TITLES,
    mean_std,
    missing,
    table_rows,
    write_tables,
)
from ..rundir import (
    ACCURACY_PNG,
    CURVES_PNG,
    HISTORY_FILE,
    METRICS_FILE,
    REPORT_FILE,
    RESULTS_JSON,
    RESULTS_MD,
    RUNS_CSV,
    RUNS_DIR,
)
from ..search.storage import write_output
from . import html as H
from .compare import overlay_curves
from .style import new_figure, save_figure

ZOOM = 10.0  # accuracy.png spans the variants within this many points of the best mean


def _bar_ends(values: np.ndarray) -> tuple[float, ...]:
    """Where the mean +- sample std bar of ``values`` ends (nothing for a single value)."""
    mean, std = mean_std(values)
    return () if std is None else (mean - std, mean + std)


def draw_accuracy(
    exp: Experiment, rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str] = ACCURACIES
) -> Path | None:
    """One panel per accuracy: each seed as a dot, the mean +- std as a bar, per variant. The
    axis spans the variants within ``ZOOM`` of the best mean, so a failed variant (e.g. zero
    init at 11%) does not squash the differences that matter; it is written at the left edge."""
    ok = [r for r in rows if r["status"] == "ok"]
    cols = [c for c in columns if any(math.isfinite(r[c]) for r in ok)]
    if not cols:
        return None
    variants = list(exp.variants)
    fig, axes = new_figure(
        1, len(cols), figsize=(4.2 * len(cols) + 1.5, 0.45 * len(variants) + 1.6), sharey=True
    )
    for ax, col in zip(axes[0], cols, strict=True):
        per = {v: np.array([r[col] for r in ok if r["variant"] == v]) for v in variants}
        per = {v: 100 * a[np.isfinite(a)] for v, a in per.items()}
        means = {v: float(a.mean()) for v, a in per.items() if a.size}
        best = max(means.values())
        near = [a for v, a in per.items() if v in means and means[v] >= best - ZOOM]
        # the axis holds every dot and every mean +- std bar whole, caps included
        ends = [x for a in near for x in (a.min(), a.max(), *_bar_ends(a))]
        lo, hi = float(min(ends)), float(max(ends))
        pad = max(0.15 * (hi - lo), 0.05)
        left = lo - pad
        for y, v in enumerate(variants):
            if v not in means:
                continue
            if means[v] < left:
                ax.annotate(
                    f"◀ {means[v]:.2f}",
                    (0.01, y),
                    xycoords=("axes fraction", "data"),
                    va="center",
                    fontsize=8,
                    color="C3",
                )
                continue
            vals = per[v]
            ax.plot(vals, np.full(vals.size, y), "o", ms=4, alpha=0.6, color="C0")
            mean, std = mean_std(vals)
            ax.errorbar(mean, y, xerr=std, fmt="|", ms=14, mew=2, capsize=4, color="C3")
        ax.set_xlim(left, hi + pad)
        ax.set_title(TITLES[col])
        ax.set_xlabel("accuracy (%)")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0, 0].set_yticks(range(len(variants)), variants)
    axes[0, 0].set_ylim(len(variants) - 0.5, -0.5)
    fig.suptitle(f"{exp.name}: every seed (dots), mean ± sample std (red); ◀ = off scale (mean)")
    return save_figure(fig, path)


def draw_curves(exp: Experiment, out: Path, path: Path) -> Path | None:
    """Validation accuracy and loss and training loss per epoch: one line per variant, the mean
    over its seeds, with the min-max band."""
    groups = {}
    for v in exp.variants:
        hs = [out / RUNS_DIR / v / f"seed_{s}" / HISTORY_FILE for s in exp.seeds]
        hs = [h for h in hs if h.exists() and (h.parent / METRICS_FILE).exists()]
        if hs:
            groups[v] = hs
    if not groups:
        return None
    return overlay_curves(
        groups,
        path,
        metrics=("val_accuracy", "val_loss", "loss"),
        band="minmax",
        title=f"{exp.name}: mean over seeds",
    )


def write_report(
    exp: Experiment,
    out: Path,
    summary: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    figures: Sequence[Path],
) -> Path:
    """A self-contained ``report.html``: the results table, the figures, every run, the setup."""
    header, cells = table_rows(summary)
    n_done = sum(r["status"] != "pending" for r in rows)
    results = [H.para(exp.description)] if exp.description else []
    results += [
        H.para(
            f"Seeds {', '.join(map(str, exp.seeds))}; {n_done} of {len(rows)} runs done. "
            "Accuracies in %, mean ± sample standard deviation (ddof=1) over seeds."
        ),
        H.table(header, cells, text_cols=(0, len(header) - 1) if "reference" in header else (0,)),
    ]
    captions = {
        ACCURACY_PNG: "Every seed's accuracy (dots) and the mean ± one sample std (red bar).",
        CURVES_PNG: "Per epoch: mean over seeds, shaded from the lowest to the highest seed.",
    }
    results += [H.figure(f, captions.get(f.name, "")) for f in figures]
    run_header = [c for c in RUN_COLUMNS if c != "run_dir"]
    run_cells = [[_fmt_cell(r[c], c) for c in run_header] for r in rows]
    setup = [
        "<h3>Base config</h3>",
        H.pre(yaml.safe_dump(exp.base, sort_keys=False)),
        "<h3>Common overrides</h3>",
        H.pre(yaml.safe_dump(exp.overrides, sort_keys=False)),
        "<h3>Variants (overrides of the base, after the common ones)</h3>",
        H.pre(yaml.safe_dump(exp.variants, sort_keys=False)),
        *(
            ["<h3>--set (applied last)</h3>", H.pre(yaml.safe_dump(exp.forced))]
            if exp.forced
            else []
        ),
        H.para(f"Run folders: {out.resolve()}/runs/VARIANT/seed_K"),
    ]
    sections = [
        ("results", "Results", results),
        ("runs", "Every run", [H.table(run_header, run_cells, text_cols=(0, 2))]),
        ("setup", "Setup", setup),
    ]
    subtitle = (
        f"{len(exp.variants)} variants x {len(exp.seeds)} seeds · "
        f"written {time.strftime('%Y-%m-%d %H:%M')}"
    )
    return write_output(
        out / REPORT_FILE, H.page(f"barenet experiment: {exp.name}", subtitle, sections)
    )


def _fmt_cell(v: Any, col: str) -> str:
    if missing(v):
        return "–"
    if col in ACCURACIES:
        return f"{100 * v:.2f}"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def write_outputs(
    exp: Experiment, out: Path, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[Path]]:
    """The tables, both figures and the report; returns the summary and the files written."""
    summary = write_tables(exp, out, rows)
    figures = [
        p
        for p in (
            draw_accuracy(exp, rows, out / ACCURACY_PNG),
            draw_curves(exp, out, out / CURVES_PNG),
        )
        if p is not None
    ]
    report = write_report(exp, out, summary, rows, figures)
    files = [out / RUNS_CSV, out / RESULTS_MD, out / RESULTS_JSON, *figures, report]
    return summary, files
