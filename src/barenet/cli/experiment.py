"""``barenet experiment``: variants x seeds of a base config."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import add_data_dir


def cmd_experiment(args: argparse.Namespace) -> int:
    from ..experiment import ExperimentError, default_out, load_experiment, run_experiment
    from ..search import SearchError

    exp = load_experiment(args.experiment_config, seeds=args.seeds, sets=args.set)
    out = Path(args.out) if args.out else default_out(exp.name, args.set)
    start = time.perf_counter()
    try:
        result = run_experiment(
            exp,
            out,
            workers=args.workers,
            data_dir=args.data_dir,
            log=None if args.quiet else print,
            storage=args.storage,
        )
    except (ExperimentError, SearchError) as err:
        print(f"barenet: experiment stopped: {err}", file=sys.stderr)
        return 1
    print((out / "results.md").read_text(), end="")
    print(
        f"{result.ran} run(s) trained now, {result.skipped} already done; "
        f"{time.perf_counter() - start:.0f} s wall time"
    )
    print(f"table, curves and report.html in {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="variants x seeds of a base config: table and curves")
    p.add_argument(
        "experiment_config",
        metavar="EXPERIMENT_CONFIG",
        help="experiment YAML (base config, variants, seeds)",
    )
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: the file's)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--out", default=None, help="output folder (default: runs/experiments/NAME)")
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL shared by machines, e.g. postgresql://user@host/db: each "
        "run happens once over all of them (default: a journal file in the output folder)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value in every run, after the variants' own overrides, "
        "e.g. --set train.epochs=1 --set data.subset=0.05 for a smoke run (repeatable)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-run lines")
    add_data_dir(p)
    p.set_defaults(func=cmd_experiment)
