"""The tables of an experiment, built from its study: one row per run, mean +- sample std per
variant.

``runs.csv`` (every run), ``results.md`` / ``results.json`` (per variant: final and best
validation accuracy and test accuracy as mean +- std over seeds, with ``ddof=1``; mean train
time). The figures and ``report.html`` are drawn by :mod:`barenet.viz.experiment_report`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from .. import fileio
from ..rundir import RESULTS_JSON, RESULTS_MD, RUNS_CSV
from ..search.storage import write_output
from ..search.study import interrupted_numbers
from .spec import Experiment
from .task import RUN_ATTR, label

# runs.csv column -> the trial's user attr (the run's metrics.json key)
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


def _status(t: FrozenTrial | None) -> str:
    if t is None:
        return "pending"
    if t.state == TrialState.COMPLETE:
        return "ok"
    if str(t.user_attrs.get("fail_reason", "")).startswith("TrainingDiverged"):
        return "diverged"
    return "failed"


def collect_rows(exp: Experiment, trials: Sequence[FrozenTrial]) -> list[dict[str, Any]]:
    """One row per (variant, seed) of the experiment, in run order, from the study's trials:
    ``status`` is ``ok``, ``diverged``, ``failed`` (its own error, final) or ``pending``
    (queued, running or interrupted). Missing metrics are NaN; ``state`` is the trial's."""
    retried = interrupted_numbers(trials)
    final: dict[str, FrozenTrial] = {}
    for t in trials:
        key = t.user_attrs.get(RUN_ATTR)
        done = t.state in (TrialState.COMPLETE, TrialState.FAIL) and t.number not in retried
        if key is not None and done and not t.user_attrs.get("interrupted"):
            final[key] = t
    rows = []
    for spec in exp.runs():
        t = final.get(label(spec))
        attrs = t.user_attrs if t is not None else {}
        row: dict[str, Any] = {"variant": spec.variant, "seed": spec.seed, "status": _status(t)}
        for col, key in RUN_METRICS.items():
            v = attrs.get(key)
            row[col] = float(v) if isinstance(v, int | float) and col in ACCURACIES else v
            if row[col] is None and col in ACCURACIES:
                row[col] = math.nan
        row["run_dir"] = spec.rel_dir
        row["state"] = t.state.name if t is not None else "WAITING"
        row["reason"] = attrs.get("fail_reason", "") if row["status"] != "ok" else ""
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
            "failed": sum(r["status"] == "failed" for r in mine),
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
    notes = [f"{s[k]} {k}" for k in ("diverged", "failed") if s.get(k)]
    return text + (f" ({', '.join(notes)})" if notes else "")


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
        w.writerow({k: ("" if missing(v) else v) for k, v in r.items()})
    return buf.getvalue()


def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def write_tables(exp: Experiment, out: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rewrite runs.csv, results.md and results.json (atomically); return the summary."""
    summary = summarise(exp, rows)
    write_output(out / RUNS_CSV, runs_csv(rows))
    write_output(out / RESULTS_MD, markdown(exp, summary, rows))
    results = {
        "name": exp.name,
        "seeds": list(exp.seeds),
        "description": exp.description,
        "std": "sample (ddof=1)",
        "variants": summary,
        "runs": rows,
    }
    text = json.dumps(fileio.to_jsonable(results), indent=2, allow_nan=False)
    write_output(out / RESULTS_JSON, text + "\n")
    return summary
