"""``barenet train``, ``barenet test`` and ``barenet info``: one run folder."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, add_data_dir, add_set


def cmd_train(args: argparse.Namespace) -> int:
    where: list[Path] = []  # the run folder, once known
    # SIGTERM arrives as Terminated, a KeyboardInterrupt (cli.main installs the handler), so
    # both unwind the same way: ``finally`` blocks run and the last completed epoch is kept.
    try:
        metrics = _resume(args, where) if args.resume else _train(args, where)
    except KeyboardInterrupt as e:
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"barenet: {what}; {_kept(where)}", file=sys.stderr, flush=True)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    if metrics is None:
        return 0
    from ..run_metrics import RunMetrics

    m = RunMetrics.from_dict(metrics)
    n = m.epochs_run
    line = f"done in {m.train_seconds:.1f} s ({n} epoch{'s' * (n != 1)})"
    if m.val_accuracy is not None:
        line += f"; best val accuracy {m.val_accuracy:.4f} (epoch {m.best_epoch})"
    if m.test_accuracy is not None:
        line += f"; test accuracy {m.test_accuracy:.4f}"
    print(line)
    print(f"run saved in {where[0]}")
    return 0


def _kept(where: list[Path]) -> str:
    """What an interrupted run left: the last completed epoch, resumable, or nothing."""
    from .. import rundir

    if not where or not (where[0] / rundir.CONFIG_FILE).is_file():
        return "nothing was saved"
    try:
        status = rundir.run_status(where[0])
    except (OSError, ValueError):
        return f"run folder {where[0]}"
    if status.finished:
        return f"run {where[0]} is {status.describe(where[0])}"
    return f"run {where[0]} kept: {status.describe(where[0])}"


def _train(args: argparse.Namespace, where: list[Path]) -> dict[str, Any]:
    from .. import rundir
    from ..config import load_config, to_dict
    from ..runner import train_run

    cfg = load_config(args.config, args.set)
    if cfg.train.tensorboard:  # a missing extra is said before any folder or data is made
        from ..train.tensorboard import TensorBoard

        TensorBoard(Path(args.out or "."))  # raises UserError naming the extra; writes nothing
    with rundir.create(args.out, cfg.name, to_dict(cfg)) as out:
        where.append(out)
        print(f"training {cfg.name}: {cfg.model.type} on {cfg.data.dataset} -> {out}", flush=True)
        return train_run(cfg, out, data_dir=args.data_dir, progress=not args.quiet)


def _resume(args: argparse.Namespace, where: list[Path]) -> dict[str, Any] | None:
    from .. import rundir
    from ..config import ConfigError
    from ..runner import resume_run

    if args.config is not None or args.set or args.out is not None:
        raise ConfigError(
            "--resume RUN_DIR trains on with RUN_DIR's own config: no config, --set or --out"
        )
    run = Path(args.resume)

    def announce(cfg: Any, status: rundir.RunStatus) -> None:
        where.append(run)
        print(
            f"resuming {cfg.name} after epoch {status.epochs_done} of {cfg.train.epochs} -> {run}",
            flush=True,
        )

    metrics = resume_run(run, data_dir=args.data_dir, progress=not args.quiet, on_start=announce)
    if metrics is None:
        print(f"{run} is already {rundir.run_status(run).describe(run)}: nothing to do")
    return metrics


def _note_incomplete(run_dir: str) -> str | None:
    """A line for stderr if the run is not finished (its weights are the best so far)."""
    from .. import rundir

    status = rundir.run_status(run_dir)
    return None if status.finished else f"note: {run_dir} is {status.describe(run_dir)}"


def cmd_test(args: argparse.Namespace) -> int:
    from ..fileio import to_jsonable
    from ..runner import evaluate_run

    result = evaluate_run(args.run_dir, split=args.split, data_dir=args.data_dir)
    note = _note_incomplete(args.run_dir)
    if note:
        print(note + "; scores of its best weights so far", file=sys.stderr)
    if args.json:
        # strict JSON: a class without test images has accuracy null, not NaN
        doc = {k: v for k, v in result.items() if k != "confusion_matrix"}
        doc |= {"complete": note is None, "confusion_matrix": result["confusion_matrix"]}
        print(json.dumps(to_jsonable(doc), allow_nan=False))
        return 0
    print(
        f"{args.split}: loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  "
        f"({result['n']} samples)"
    )
    for name, acc in zip(result["classes"], result["per_class_accuracy"], strict=True):
        print(f"  {name:>12}  {acc:.4f}" if math.isfinite(acc) else f"  {name:>12}  no images")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .. import rundir
    from ..builders import build_model
    from ..runner import load_run

    run = Path(args.run_dir)
    status = rundir.run_status(run)
    if rundir.present(run / rundir.MODEL_FILE):
        cfg, model = load_run(run)
        weights = ""
    else:  # killed before its first checkpoint
        cfg = rundir.read_config(run)
        model = build_model(cfg.model, 0, cfg.train.dtype)
        weights = ", no weights saved yet"
    print(f"run: {args.run_dir}")
    print(f"status: {status.describe(args.run_dir)}")
    print(f"name: {cfg.name}   dataset: {cfg.data.dataset}   seed: {cfg.seed}")
    print(f"model ({cfg.model.type}, {model.num_parameters():,} parameters{weights}):")
    print(model)
    metrics = rundir.read_metrics(run)
    if metrics is not None:
        for k in ("epochs_run", "train_seconds", "val_accuracy", "val_loss", "test_accuracy"):
            value = getattr(metrics, k)
            if value is not None:
                print(f"{k}: {value}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (or resume a run)")
    p.add_argument(
        "config", nargs="?", metavar="CONFIG", help="YAML config (default: MLP on MNIST)"
    )
    add_set(p)
    p.add_argument("--out", default=None, help="run folder (default: runs/NAME-TIMESTAMP)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue an interrupted run from its last completed epoch (bit-identical result)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_dir(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("test", help="evaluate a saved run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (from barenet train)")
    p.add_argument(
        "--split",
        choices=("test", "train", "val"),
        default="test",
        help="test set, the whole training set, or the validation samples the run held out "
        "(default: test)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_data_dir(p)
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("info", help="architecture, parameter count, status and metrics of a run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (from barenet train)")
    p.set_defaults(func=cmd_info)
