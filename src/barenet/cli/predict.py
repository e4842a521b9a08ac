"""``barenet predict``, ``barenet serve`` and ``barenet export``: use a trained run."""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import sys
from pathlib import Path

from .common import EXIT_BAD_INPUT, EXIT_OK, port_number


def _need(extra: str, *modules: str) -> None:
    """Import ``modules`` or refuse in one line naming the extra that installs them."""
    import importlib

    from ..errors import UserError

    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError:
            raise UserError(
                f"this command needs {m}: pip install -e '.[{extra}]' in barenet's folder"
            ) from None


def _percent(p: float) -> str:
    return f"{100 * p:.1f}%"


def _flat(text: object) -> str:
    """One line: a file name holding a newline must not split its answer or error line."""
    return " ".join(str(text).split())


def _line(r: dict) -> str:
    top = ", ".join(f"{t['name']} {_percent(t['probability'])}" for t in r["top"])
    line = f"{_flat(r['file'])}: {r['name']} ({_percent(r['probability'])})  "
    line += f"top {len(r['top'])}: {top}"
    return line + ("  (blank: no ink found, the guess means nothing)" if r.get("blank") else "")


def _save_input(out_dir: Path, index: int, source: str, picture) -> Path:
    import io

    from PIL import Image

    from ..fileio import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(picture, "L").save(buf, format="PNG")
    return atomic_write_bytes(out_dir / f"{index:03d}_{Path(source).stem}.png", buf.getvalue())


def cmd_predict(args: argparse.Namespace) -> int:
    from ..data.images import ImageError
    from ..errors import UserError
    from ..serve.predict import Predictor

    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    save = Path(args.save_inputs) if args.save_inputs else None
    if save is not None and save.exists() and not save.is_dir():
        raise UserError(f"--save-inputs {_flat(save)}: is a file; give a folder")
    predictor = Predictor.from_run(args.run_dir)
    results, failed = [], []
    for i, source in enumerate(args.images):
        try:
            picture = predictor.image(source)  # one file at a time: a bad one is reported
        except ImageError as e:
            print(f"barenet: error: {_flat(e)}", file=sys.stderr)
            failed.append(source)
            continue
        probs = predictor.probabilities(picture[None])[0]
        results.append(
            {"file": source, **predictor.describe(probs, args.top, blank=not picture.any())}
        )
        if args.save_inputs:
            _save_input(Path(args.save_inputs), i, source, picture)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(_line(r))
    if args.save_inputs and results:
        print(f"inputs the model saw (28x28): {args.save_inputs}", file=sys.stderr)
    if failed:
        if len(args.images) > 1:  # one image: its own error line says it all
            print(f"barenet: {len(failed)} of {len(args.images)} images failed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    _need("web", "starlette", "uvicorn", "multipart")
    import uvicorn

    from ..errors import UserError
    from ..serve.app import create_app
    from ..serve.predict import Predictor

    predictor = Predictor.from_run(args.run_dir)  # a bad run folder fails before binding
    app = create_app(predictor)
    try:  # bound here so a busy port is one line, and --port 0 reports the port chosen
        sock = socket.create_server((args.host, args.port))
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    host, port = sock.getsockname()[:2]
    if not ipaddress.ip_address(host).is_loopback:
        print(f"barenet: warning: {host} is reachable from other machines", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {args.run_dir} at http://{shown}:{port}/  (Ctrl-C to stop)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=False))
    server.run(sockets=[sock])
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    _need("onnx", "onnx")
    from ..export.onnx import export_run
    from ..rundir import ONNX_FILE

    out = Path(args.out) if args.out else Path(args.run_dir) / ONNX_FILE
    path = export_run(args.run_dir, out, opset=args.opset)
    print(f"onnx: {path}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify your own image files with a trained run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (from barenet train)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP or GIF files")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes listed (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON list, one object per image")
    p.add_argument(
        "--save-inputs",
        default=None,
        metavar="DIR",
        help="save the 28x28 image the model saw for each file as DIR/NNN_NAME.png",
    )
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("serve", help="a local draw-a-digit web page and JSON API for a run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (from barenet train)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=port_number, default=8000, help="port (default 8000; 0: any free)"
    )
    p.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info"],
        help="web server log level (default warning)",
    )
    p.set_defaults(func=cmd_serve)

    from ..export import DEFAULT_OPSET

    p = sub.add_parser("export", help="write a run's model as ONNX")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (from barenet train)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="only onnx (default)")
    p.add_argument("--out", default=None, help="output file (default: RUN_DIR/model.onnx)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version")
    p.set_defaults(func=cmd_export)
