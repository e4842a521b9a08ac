"""The ``barenet`` command. Thin: parse, call the library, print.

Bad input of any kind ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'your input is wrong', reported as one line."""
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .train.trainer import TrainingDiverged

    return (
        ConfigError,
        DataError,
        CheckpointError,
        TrainingDiverged,
        FileNotFoundError,
        IsADirectoryError,
        PermissionError,
    )


def _default_out(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _check_fresh(out: Path) -> None:
    """Never train over an earlier run: nothing already saved is lost."""
    from .config import ConfigError

    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output folder {out} is not empty; choose another --out")


# -- commands ---------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .runner import train_run

    cfg = load_config(args.config, args.set)
    out = Path(args.out) if args.out else _default_out(cfg.name)
    _check_fresh(out)
    print(f"training {cfg.name}: {cfg.model.type} on {cfg.data.dataset} -> {out}", flush=True)
    metrics = train_run(cfg, out, data_dir=args.data_dir, progress=not args.quiet)
    line = f"done in {metrics['train_seconds']:.1f} s ({metrics['epochs_run']} epochs)"
    if "val_accuracy" in metrics:
        line += f"; best val accuracy {metrics['val_accuracy']:.4f} (epoch {metrics['best_epoch']})"
    if "test_accuracy" in metrics:
        line += f"; test accuracy {metrics['test_accuracy']:.4f}"
    print(line)
    print(f"run saved in {out}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from .runner import evaluate_run

    result = evaluate_run(args.run_dir, split=args.split, data_dir=args.data_dir)
    if args.json:
        print(
            json.dumps(
                {k: v for k, v in result.items() if k != "confusion_matrix"}
                | {"confusion_matrix": result["confusion_matrix"]}
            )
        )
        return 0
    print(
        f"{args.split}: loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  "
        f"({result['n']} samples)"
    )
    for name, acc in zip(result["classes"], result["per_class_accuracy"], strict=True):
        print(f"  {name:>12}  {acc:.4f}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from . import checkpoint
    from .runner import METRICS_FILE, load_run

    cfg, model = load_run(args.run_dir)
    print(f"run: {args.run_dir}")
    print(f"name: {cfg.name}   dataset: {cfg.data.dataset}   seed: {cfg.seed}")
    print(f"model ({cfg.model.type}, {model.num_parameters():,} parameters):")
    print(model)
    metrics_path = Path(args.run_dir) / METRICS_FILE
    if metrics_path.exists():
        metrics = checkpoint.load_json(metrics_path)
        keys = ("epochs_run", "train_seconds", "val_accuracy", "val_loss", "test_accuracy")
        for k in keys:
            if k in metrics:
                print(f"{k}: {metrics[k]}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .search import SearchError, SearchJob, default_out, load_search, retrain_best, run_search

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


def cmd_plot(args: argparse.Namespace) -> int:
    from .viz import plot_run

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
    from .viz import write_report

    path = write_report(
        args.run_dir, out_path=args.out, data_dir=args.data_dir, max_test=args.max_test
    )
    print(f"report: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .viz import compare_runs
    from .viz.compare import markdown_table

    out = Path(args.out) if args.out else Path("runs") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    rows = compare_runs(args.run_dirs, out, labels=args.labels)
    print(markdown_table(rows), end="")
    print(f"curves and tables in {out}")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from .search.experiment import (
        ExperimentError,
        default_out,
        load_experiment,
        run_experiment,
    )

    exp = load_experiment(args.experiment_config, seeds=args.seeds, sets=args.set)
    out = Path(args.out) if args.out else default_out(exp.name, args.set)
    start = time.perf_counter()
    try:
        log = None if args.quiet else lambda msg: print(msg, flush=True)
        result = run_experiment(exp, out, workers=args.workers, data_dir=args.data_dir, log=log)
    except ExperimentError as err:
        print(f"barenet: experiment stopped: {err}", file=sys.stderr)
        return 1
    print((out / "results.md").read_text(), end="")
    print(
        f"{result.ran} run(s) trained now, {result.skipped} already done; "
        f"{time.perf_counter() - start:.0f} s wall time"
    )
    print(f"table, curves and report.html in {out}")
    return 0


# -- parser -----------------------------------------------------------------------------------
def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding mnist/ and fashion-mnist/ (default: $BARENET_DATA, cache)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="barenet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", nargs="?", default=None, help="YAML config (default: MLP on MNIST)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=0.05 (repeatable)",
    )
    p.add_argument("--out", default=None, help="run folder (default: runs/NAME-TIMESTAMP)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_dir(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("test", help="evaluate a saved run")
    p.add_argument("run_dir")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data_dir(p)
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("info", help="architecture, parameter count and metrics of a run")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("search", help="hyperparameter search (Optuna): grid, random or TPE")
    p.add_argument("search_config", help="search YAML (base config, space, sampler, options)")
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
    _add_data_dir(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("plot", help="draw the plots of a run folder as PNGs")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/plots)")
    p.add_argument(
        "--what",
        default=None,
        help="comma-separated groups: curves, weights, pca, conv, confusion, "
        "predictions, embedding (default: all that apply)",
    )
    p.add_argument(
        "--max-test",
        type=int,
        default=None,
        metavar="N",
        help="use only the first N test images (default: the whole test set)",
    )
    _add_data_dir(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("report", help="one self-contained report.html for a run or search folder")
    p.add_argument("run_dir", help="a run folder, or a search output folder (leaderboard.csv)")
    p.add_argument("--out", default=None, help="HTML file (default: RUN_DIR/report.html)")
    p.add_argument(
        "--max-test",
        type=int,
        default=None,
        metavar="N",
        help="plots use only the first N test images (default: the whole test set)",
    )
    _add_data_dir(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="overlay the curves and tabulate the metrics of runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="output folder (default: runs/compare-TIMESTAMP)")
    p.add_argument("--labels", nargs="+", default=None, help="one label per run (default: names)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("experiment", help="variants x seeds of a base config: table and curves")
    p.add_argument("experiment_config", help="experiment YAML (base config, variants, seeds)")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: the file's)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--out", default=None, help="output folder (default: runs/experiments/NAME)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value in every run, after the variants' own overrides, "
        "e.g. --set train.epochs=1 --set data.subset=0.05 for a smoke run (repeatable)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-run lines")
    _add_data_dir(p)
    p.set_defaults(func=cmd_experiment)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("barenet: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence against tracebacks
        if isinstance(err, _user_errors()) or isinstance(err, (ValueError, OSError)):
            print(f"barenet: error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if os.environ.get("BARENET_DEBUG"):
            raise
        print(
            f"barenet: internal error: {type(err).__name__}: {err} "
            "(set BARENET_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
