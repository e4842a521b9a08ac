"""``barenet train``, ``barenet test`` and ``barenet info``: one run folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_data_dir, add_set, check_fresh, default_out


def cmd_train(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..runner import train_run

    cfg = load_config(args.config, args.set)
    out = Path(args.out) if args.out else default_out(cfg.name)
    check_fresh(out)
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
    from ..runner import evaluate_run

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
    from .. import fileio
    from ..runner import METRICS_FILE, load_run

    cfg, model = load_run(args.run_dir)
    print(f"run: {args.run_dir}")
    print(f"name: {cfg.name}   dataset: {cfg.data.dataset}   seed: {cfg.seed}")
    print(f"model ({cfg.model.type}, {model.num_parameters():,} parameters):")
    print(model)
    metrics_path = Path(args.run_dir) / METRICS_FILE
    if metrics_path.exists():
        metrics = fileio.load_json(metrics_path)
        keys = ("epochs_run", "train_seconds", "val_accuracy", "val_loss", "test_accuracy")
        for k in keys:
            if k in metrics:
                print(f"{k}: {metrics[k]}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", nargs="?", default=None, help="YAML config (default: MLP on MNIST)")
    add_set(p)
    p.add_argument("--out", default=None, help="run folder (default: runs/NAME-TIMESTAMP)")
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

    p = sub.add_parser("info", help="architecture, parameter count and metrics of a run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (from barenet train)")
    p.set_defaults(func=cmd_info)
