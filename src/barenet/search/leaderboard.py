"""The leaderboard of a study, rebuilt from the storage alone.

``leaderboard.csv``: every trial, best first (completed by objective, then pruned, failed,
running); ``leaderboard.md``: the top-k completed trials; ``best_config.yaml``: the base
config with the winner's values, ready for ``barenet train``. All writes are atomic.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from .. import fileio
from ..config import to_dict
from ..rundir import BEST_CONFIG_FILE as BEST_FILE
from ..rundir import LEADERBOARD_CSV as CSV_FILE
from ..rundir import LEADERBOARD_MD as MD_FILE
from .space import Search
from .storage import write_output
from .study import interrupted_numbers

METRIC_COLUMNS = ["val_accuracy", "val_loss", "best_epoch", "epochs_run", "seconds"]
_STATE_ORDER = {
    TrialState.COMPLETE: 0,
    TrialState.PRUNED: 1,
    TrialState.FAIL: 2,
    TrialState.RUNNING: 3,
    TrialState.WAITING: 4,
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def ranked(trials: list[FrozenTrial], maximize: bool) -> list[FrozenTrial]:
    """Completed trials best first, then the others by state. Ties on the objective (common:
    accuracy on a few hundred validation images) go to the other validation metric, then to
    the lower trial number."""

    def key(t: FrozenTrial) -> tuple:
        value = t.value if t.state == TrialState.COMPLETE and t.value is not None else None
        score = (-value if maximize else value) if value is not None else math.inf
        other = t.user_attrs.get("val_loss" if maximize else "val_accuracy")
        tie = math.inf if other is None else (other if maximize else -other)
        return (_STATE_ORDER.get(t.state, 5), score, tie, t.number)

    return sorted(trials, key=key)


def best_trial(study: optuna.Study, search: Search) -> FrozenTrial | None:
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    rows = ranked(done, search.direction == "maximize")
    return rows[0] if rows else None


def trial_rows(study: optuna.Study, search: Search) -> list[dict[str, Any]]:
    """One dict per trial: rank, number, state, each searched value, metrics, reason."""
    trials = study.get_trials(deepcopy=False)
    retried_as = {
        int(t.user_attrs["retry_of"]): t.number for t in trials if "retry_of" in t.user_attrs
    }
    gone = interrupted_numbers(trials)
    rows, rank = [], 0
    for t in ranked(trials, search.direction == "maximize"):
        values = search.decode(t.params)
        reason = t.user_attrs.get("fail_reason", "")
        if t.number in gone:
            reason = f"{reason or 'interrupted'}; retried as trial {retried_as[t.number]}"
        elif "duplicate_of" in t.user_attrs:
            reason = f"duplicate of trial {t.user_attrs['duplicate_of']}"
        elif t.state == TrialState.FAIL and not reason:
            reason = "failed (no reason recorded)"
        if t.state == TrialState.COMPLETE:
            rank += 1
        row: dict[str, Any] = {
            "rank": rank if t.state == TrialState.COMPLETE else None,
            "trial": t.number,
            "state": t.state.name,
        }
        for p in search.params:
            row[p.name] = values.get(p.name)
        for col in METRIC_COLUMNS:
            row[col] = t.user_attrs.get(col)
        row.update(
            host=t.user_attrs.get("host"),
            run_dir=t.user_attrs.get("run_dir"),
            retry_of=t.user_attrs.get("retry_of"),
            reason=reason,
        )
        rows.append(row)
    return rows


def _compact(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return _cell(value)


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_compact(row.get(c)) for c in columns])
    return buf.getvalue()


def to_markdown(rows: list[dict[str, Any]], search: Search, top_k: int) -> str:
    names = [p.name for p in search.params]
    cols = ["rank", "trial", *names, "val_accuracy", "val_loss", "epochs_run", "seconds"]
    done = [r for r in rows if r["state"] == "COMPLETE"][:top_k]
    states = [r["state"] for r in rows]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in dict.fromkeys(states))
    lines = [
        f"# Search `{search.study_name}`: top {len(done)} by {search.config.objective}",
        "",
        f"{search.config.sampler} sampler, {len(rows)} trials ({counts or 'none yet'}); "
        "scored on the validation split.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in done:
        lines.append("| " + " | ".join(_compact(r.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def columns(search: Search) -> list[str]:
    return [
        "rank",
        "trial",
        "state",
        *(p.name for p in search.params),
        *METRIC_COLUMNS,
        "host",
        "run_dir",
        "retry_of",
        "reason",
    ]


def write_leaderboard(
    out: str | Path, study: optuna.Study, search: Search, top_k: int | None = None
) -> list[dict[str, Any]]:
    """Write leaderboard.csv, leaderboard.md and best_config.yaml (once a trial completed)."""
    out = Path(out)
    rows = trial_rows(study, search)
    write_output(out / CSV_FILE, to_csv(rows, columns(search)))
    write_output(out / MD_FILE, to_markdown(rows, search, top_k or search.config.top_k))
    best = best_trial(study, search)
    if best is not None:
        data = fileio.to_jsonable(best_config(search, best))
        write_output(out / BEST_FILE, yaml.safe_dump(data, sort_keys=False))
    return rows


def best_config(search: Search, trial: FrozenTrial) -> dict[str, Any]:
    """The base config with the trial's values; the search's subset/epochs are not applied
    (they were budget knobs), so this trains on the base config's data and epochs."""
    cfg = search.make_config(search.decode(trial.params), trial=False)
    cfg.name = f"{search.study_name}-best"
    return to_dict(cfg)
