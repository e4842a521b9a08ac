"""``barenet search``: a hyperparameter study on Optuna."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_BAD_INPUT, add_data_dir


def cmd_search(args: argparse.Namespace) -> int:
    from ..search import SearchError, SearchJob, default_out, load_search, retrain_best, run_search

    search = load_search(args.search_config, study=args.study)
    out = Path(args.out) if args.out else default_out(search.study_name)
    job = SearchJob(
        search=search,
        out=out,
        storage=args.storage,
        trials=args.trials,
        workers=args.workers,
        data_dir=args.data_dir,
        log=None if args.quiet else print,
    )
    try:
        result = run_search(job)
    except SearchError as err:
        print(f"barenet: search stopped: {err}", file=sys.stderr)
        return 1
    states = ", ".join(f"{n} {s.lower()}" for s, n in result.states.items())
    print(f"study '{result.study_name}': {states or 'no trials'}; {result.ran} run now")
    if result.interrupted:
        print(f"interrupted trial(s) {result.interrupted}: the same command runs them again")
    best = result.best
    if best is not None:
        metric = search.config.objective
        values = "  ".join(
            f"{p.name}={best[p.name]:.4g}"
            if isinstance(best[p.name], float)
            else f"{p.name}={best[p.name]}"
            for p in search.params
        )
        print(f"best: trial {best['trial']}  {metric} {best[metric]:.4f}  {values}")
    print(f"leaderboard: {out / 'leaderboard.md'}; best config: {out / 'best_config.yaml'}")
    if args.retrain_best:
        try:
            m = retrain_best(job, progress=not args.quiet)
        except SearchError as err:
            print(f"barenet: error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        again = " (already retrained)" if m["reused"] else ""
        print(
            f"retrained trial {m['trial']} on the full training set{again}: "
            f"val accuracy {m.get('val_accuracy', float('nan')):.4f}, "
            f"test accuracy {m['test_accuracy']:.4f} -> {m['run_dir']}"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="hyperparameter search (Optuna): grid, random or TPE")
    p.add_argument(
        "search_config",
        metavar="SEARCH_CONFIG",
        help="search YAML (base config, space, sampler, options)",
    )
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL shared by machines, e.g. postgresql://user@host/db "
        "(default: a journal file in the output folder)",
    )
    p.add_argument("--study", default=None, help="study name (default: from the search config)")
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="total trials of the study over all workers (grid: the grid size)",
    )
    p.add_argument("--out", default=None, help="output folder (default: runs/search/STUDY)")
    p.add_argument(
        "--retrain-best",
        action="store_true",
        help="then train the best config on the full training set and test it once",
    )
    p.add_argument("--quiet", action="store_true", help="no per-trial lines")
    add_data_dir(p)
    p.set_defaults(func=cmd_search)
