"""``barenet gradcheck``, ``barenet doctor`` and ``barenet lr-find``: why does it not learn?"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .common import EXIT_FAILED, EXIT_OK, add_data_dir, add_set


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from ..diagnose.gradcheck import gradcheck
    from ..diagnose.userfile import default_input_shape, load_object, parse_shape
    from ..fileio import to_jsonable

    obj = load_object(args.target)
    shape = parse_shape(args.input_shape) if args.input_shape else default_input_shape(obj)
    limit = None if args.max_per_tensor == 0 else args.max_per_tensor
    report = gradcheck(obj, shape, seed=args.seed, max_per_tensor=limit, train=not args.eval)
    if args.json:
        # strict JSON: a non-finite error (its row says "not finite") is null, not Infinity
        print(json.dumps(to_jsonable(report.as_dict()), allow_nan=False))
    else:
        print(report.table())
    if not report.passed:
        print(f"barenet: gradcheck failed: {', '.join(report.failed())}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _config(args: argparse.Namespace):
    from ..config import load_config

    return load_config(args.config, args.set)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..diagnose.doctor import format_checks, run_doctor

    cfg = _config(args)
    if not args.json:
        m = cfg.model
        arch = "-".join(map(str, m.sizes)) if m.type == "mlp" else f"{len(m.blocks)} conv blocks"
        print(
            f"doctor: {cfg.name} ({m.type} {arch}, {m.activation}, init {m.init}; "
            f"{cfg.optim.name} lr {cfg.optim.lr:g}; {cfg.data.dataset})",
            flush=True,
        )
    checks = run_doctor(cfg, data_dir=args.data_dir)
    if args.json:
        print(json.dumps([c.as_dict() for c in checks]))
    else:
        print(format_checks(checks))
        counts = {s: sum(c.status == s for c in checks) for s in ("ok", "warn", "fail")}
        print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK


def cmd_lr_find(args: argparse.Namespace) -> int:
    from ..diagnose.lrfind import lr_range_test
    from ..diagnose.lrplot import plot_lr_find
    from ..errors import UserError
    from ..fileio import save_json
    from ..rundir import LR_FIND_JSON, LR_FIND_PNG, timestamped

    cfg = _config(args)
    out = Path(args.out) if args.out else timestamped("lr-find")
    if (out / LR_FIND_PNG).exists() or (out / LR_FIND_JSON).exists():
        raise UserError(f"{out} already holds an LR range test; choose another --out")
    if not 5 <= args.steps <= 10_000:
        raise UserError(f"--steps must be between 5 and 10000, got {args.steps}")
    if not 0 < args.lr_min < args.lr_max:
        raise UserError(f"need 0 < --lr-min < --lr-max, got {args.lr_min:g} and {args.lr_max:g}")
    res = lr_range_test(
        cfg, data_dir=args.data_dir, lr_min=args.lr_min, lr_max=args.lr_max, steps=args.steps
    )
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / LR_FIND_JSON, res.as_dict())
    png = plot_lr_find(res, out / LR_FIND_PNG, title=f"LR range test: {cfg.name}")
    status, sentence = res.verdict()
    print(f"range test: {len(res.lrs)} steps from {res.lrs[0]:.0e} to {res.lrs[-1]:.2g}")
    print(f"configured lr: {sentence} [{status}]")
    print(f"suggested lr: {res.suggested_lr:g}")
    cmd = ["barenet", "train", *([args.config] if args.config else [])]
    for s in args.set:
        if not s.replace(" ", "").startswith("optim.lr="):
            cmd += ["--set", s]
    cmd += ["--set", f"optim.lr={res.suggested_lr:g}"]
    print(f"train with: {shlex.join(cmd)}")
    print(f"plot: {png}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcheck",
        help="check a layer's backward against finite differences (runs FILE.py's code)",
        description="Check every gradient of a Module (yours or barenet's) in float64 by "
        "central finite differences, and against PyTorch where the layer has a twin. "
        "Loading FILE.py executes its code, as pytest does: check only files you trust. "
        "Exit 0: all pass; 1: a gradient is wrong; 2: bad input.",
    )
    p.add_argument(
        "target",
        metavar="FILE.py:NAME",
        help="NAME: a Module or Loss instance, a class, or a function returning one",
    )
    p.add_argument(
        "--input-shape",
        default=None,
        metavar="N,C,H,W",
        help="input shape, batch first (default: guessed from the first layer)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--eval", action="store_true", help="check in eval mode (default: training mode)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random input and probes")
    p.add_argument(
        "--max-per-tensor",
        type=int,
        default=1000,
        metavar="K",
        help="probe at most K random elements per tensor (0: all; default 1000)",
    )
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser(
        "doctor",
        help="quick diagnostics of a config: init, data, gradients, lr (under a minute)",
        description="Run quick checks on a fresh model of CONFIG and print ok/warn/fail with "
        "what to do. Exit 0: no check failed; 1: one did; 2: bad input.",
    )
    p.add_argument(
        "config", nargs="?", metavar="CONFIG", help="YAML config (default: MLP on MNIST)"
    )
    add_set(p)
    p.add_argument(
        "--json", action="store_true", help="print a list of {check, status, detail, value}"
    )
    add_data_dir(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "lr-find",
        help="learning-rate range test: plot loss vs lr and suggest an lr",
        description="Exponential LR range test (Smith 2017, fastai's lr_find) on a fresh model "
        "of CONFIG. Writes lr_find.png and lr_find.json; the config file is not changed.",
    )
    p.add_argument(
        "config", nargs="?", metavar="CONFIG", help="YAML config (default: MLP on MNIST)"
    )
    add_set(p)
    p.add_argument("--out", default=None, help="output folder (default: runs/lr-find-TIMESTAMP)")
    p.add_argument("--steps", type=int, default=100, help="batches in the test (default 100)")
    p.add_argument("--lr-min", type=float, default=1e-6, help="first lr (default 1e-6)")
    p.add_argument("--lr-max", type=float, default=10.0, help="last lr (default 10)")
    add_data_dir(p)
    p.set_defaults(func=cmd_lr_find)
