"""The outputs of an experiment: one row per run, mean +- sample std per variant, and the files.

``runs.csv`` (every run), ``results.md`` / ``results.json`` (per variant: final and best
validation accuracy and test accuracy as mean +- std over seeds, with ``ddof=1``; mean train
time), ``curves.png`` (validation accuracy and loss per epoch, mean over seeds with the min-max
band), ``accuracy.png`` (every seed's accuracy per variant) and ``report.html``.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .. import fileio
from ..rundir import ACCURACY_PNG, CURVES_PNG, RESULTS_JSON, RESULTS_MD, RUNS_CSV
from ..rundir import REPORT_FILE as REPORT_HTML
from ..runner import HISTORY_FILE, METRICS_FILE
from .experiment_spec import RUNS_DIR, Experiment

ZOOM = 10.0  # accuracy.png spans the variants within this many points of the best mean
# runs.csv column -> metrics.json key
RUN_METRICS = {
    "final_val_accuracy": "final_val_accuracy",
    "best_val_accuracy": "val_accuracy",
    "test_accuracy": "test_accuracy",
    "train_seconds": "train_seconds",
    "epochs_run": "epochs_run",
    "best_epoch": "best_epoch",
}
RUN_COLUMNS = ("variant", "seed", "status", *RUN_METRICS, "run_dir")
ACCURACIES = ("final_val_accuracy", "best_val_accuracy", "test_accuracy")
TITLES = {
    "final_val_accuracy": "final val accuracy",
    "best_val_accuracy": "best val accuracy",
    "test_accuracy": "test accuracy",
}


def collect_rows(exp: Experiment, out: Path) -> list[dict[str, Any]]:
    """One row per (variant, seed) of the experiment, in run order; ``status`` is ``ok``,
    ``diverged`` or ``pending`` (no metrics.json yet). Missing metrics are NaN."""
    rows = []
    for spec in exp.runs():
        path = out / spec.rel_dir / METRICS_FILE
        m = fileio.load_json(path) if path.exists() else None
        row: dict[str, Any] = {"variant": spec.variant, "seed": spec.seed}
        row["status"] = "pending" if m is None else str(m.get("status", "ok"))
        for col, key in RUN_METRICS.items():
            v = (m or {}).get(key)
            row[col] = float(v) if isinstance(v, int | float) and col in ACCURACIES else v
            if row[col] is None and col in ACCURACIES:
                row[col] = math.nan
        row["run_dir"] = spec.rel_dir
        rows.append(row)
    return rows


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1) of the finite values; std is None for fewer
    than two values, mean NaN for none."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, None
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)


def summarise(exp: Experiment, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant (in the file's order): runs done, diverged, and mean/std of each accuracy."""
    out = []
    for variant in exp.variants:
        mine = [r for r in rows if r["variant"] == variant]
        ok = [r for r in mine if r["status"] == "ok"]
        s: dict[str, Any] = {
            "variant": variant,
            "seeds": len(mine),
            "done": sum(r["status"] != "pending" for r in mine),
            "diverged": sum(r["status"] == "diverged" for r in mine),
        }
        for col in ACCURACIES:
            values = [r[col] for r in ok]
            mean, std = mean_std(values)
            s[col] = {"mean": mean, "std": std, "n": sum(math.isfinite(v) for v in values)}
        s["train_seconds"] = mean_std([r["train_seconds"] for r in ok])[0]
        s["reference"] = exp.reference.get(variant, "")
        out.append(s)
    return out


def pm(stat: dict[str, Any]) -> str:
    """'97.12 ± 0.15' in percent; just the mean for one value; '–' for none."""
    mean, std = stat["mean"], stat["std"]
    if not math.isfinite(mean):
        return "–"
    return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def _runs_cell(s: dict[str, Any]) -> str:
    text = f"{s['done']}" if s["done"] == s["seeds"] else f"{s['done']}/{s['seeds']}"
    return text + (f" ({s['diverged']} diverged)" if s["diverged"] else "")


def table_rows(summary: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the results table (shared by Markdown and HTML)."""
    header = ["variant", "runs", *(f"{TITLES[c]} (%)" for c in ACCURACIES), "train time (s)"]
    with_ref = any(s["reference"] for s in summary)
    if with_ref:
        header.append("reference")
    rows = []
    for s in summary:
        t = s["train_seconds"]
        cells = [
            s["variant"],
            _runs_cell(s),
            *(pm(s[c]) for c in ACCURACIES),
            "–" if not math.isfinite(t) else f"{t:.1f}",
        ]
        rows.append(cells + ([s["reference"]] if with_ref else []))
    return header, rows


def markdown(exp: Experiment, summary: Sequence[dict[str, Any]], rows: Sequence[dict]) -> str:
    header, cells = table_rows(summary)
    n_done = sum(r["status"] != "pending" for r in rows)
    total = sum(r["train_seconds"] or 0.0 for r in rows if r["status"] == "ok")
    lines = [f"# Experiment: {exp.name}", ""]
    if exp.description:
        lines += [exp.description, ""]
    lines += [
        f"Seeds {', '.join(map(str, exp.seeds))}; {n_done} of {len(rows)} runs done "
        f"({total / 60:.1f} min of training in all). Accuracies in %, mean ± sample standard "
        "deviation (ddof=1) over seeds; train time is the mean per run.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if h in ("variant", "reference") else "---:" for h in header) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in cells]
    return "\n".join(lines) + "\n"


def runs_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RUN_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if _missing(v) else v) for k, v in r.items()})
    return buf.getvalue()


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def write_tables(exp: Experiment, out: Path) -> list[dict[str, Any]]:
    """Rewrite runs.csv, results.md and results.json (atomically); return the summary."""
    rows = collect_rows(exp, out)
    summary = summarise(exp, rows)
    fileio.atomic_write_text(out / RUNS_CSV, runs_csv(rows))
    fileio.atomic_write_text(out / RESULTS_MD, markdown(exp, summary, rows))
    fileio.save_json(
        out / RESULTS_JSON,
        {
            "name": exp.name,
            "seeds": list(exp.seeds),
            "description": exp.description,
            "std": "sample (ddof=1)",
            "variants": summary,
            "runs": rows,
        },
    )
    return summary


# -- figures and report -----------------------------------------------------------------------
def draw_accuracy(
    exp: Experiment, rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str] = ACCURACIES
) -> Path | None:
    """One panel per accuracy: each seed as a dot, the mean +- std as a bar, per variant. The
    axis spans the variants within ``ZOOM`` of the best mean, so a failed variant (e.g. zero
    init at 11%) does not squash the differences that matter; it is written at the left edge."""
    from ..viz.style import new_figure, save_figure

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
        lo, hi = float(min(a.min() for a in near)), float(max(a.max() for a in near))
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
    from ..viz.compare import overlay_curves

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
    from ..viz import html as H

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
    return fileio.atomic_write_text(
        out / REPORT_HTML, H.page(f"barenet experiment: {exp.name}", subtitle, sections)
    )


def _fmt_cell(v: Any, col: str) -> str:
    if _missing(v):
        return "–"
    if col in ACCURACIES:
        return f"{100 * v:.2f}"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def write_outputs(exp: Experiment, out: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    """The tables, both figures and the report; returns the summary and the files written."""
    summary = write_tables(exp, out)
    rows = collect_rows(exp, out)
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
