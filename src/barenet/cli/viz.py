"""``barenet plot``, ``barenet report`` and ``barenet compare``: pictures of runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_data_dir, positive_int


def cmd_plot(args: argparse.Namespace) -> int:
    from ..viz import plot_run

    result = plot_run(
        args.run_dir,
        out_dir=args.out,
        what=args.what,
        data_dir=args.data_dir,
        max_test=args.max_test,
    )
    for path in result.all_files():
        print(path)
    for group, why in result.skipped.items():
        print(f"skipped {group}: {why}")
    print(f"{len(result.all_files())} plots in {result.out_dir}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..viz import write_report

    path = write_report(
        args.run_dir, out_path=args.out, data_dir=args.data_dir, max_test=args.max_test
    )
    print(f"report: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..rundir import timestamped
    from ..viz import compare_runs
    from ..viz.compare import markdown_table

    out = Path(args.out) if args.out else timestamped("compare")
    rows = compare_runs(args.run_dirs, out, labels=args.labels)
    print(markdown_table(rows), end="")
    print(f"curves, tables and report.html in {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..viz.plots import plot_names

    p = sub.add_parser("plot", help="draw the plots of a run folder as PNGs")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (from barenet train)")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/plots)")
    p.add_argument(
        "--what",
        default=None,
        help=f"comma-separated groups: {', '.join(plot_names())} (default: all that apply)",
    )
    p.add_argument(
        "--max-test",
        type=positive_int,
        default=None,
        metavar="N",
        help="use only the first N test images (default: the whole test set)",
    )
    add_data_dir(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "report", help="one self-contained report.html for a run, search or comparison folder"
    )
    p.add_argument(
        "run_dir",
        metavar="FOLDER",
        help="a run folder, a search output folder (leaderboard.csv) or a comparison folder "
        "(comparison.csv, from barenet compare)",
    )
    p.add_argument("--out", default=None, help="HTML file (default: RUN_DIR/report.html)")
    p.add_argument(
        "--max-test",
        type=positive_int,
        default=None,
        metavar="N",
        help="plots use only the first N test images (default: the whole test set)",
    )
    add_data_dir(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compare", help="overlay the curves and tabulate the metrics of runs (PNG, MD, CSV, HTML)"
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders to compare")
    p.add_argument("--out", default=None, help="output folder (default: runs/compare-TIMESTAMP)")
    p.add_argument("--labels", nargs="+", default=None, help="one label per run (default: names)")
    p.set_defaults(func=cmd_compare)
