"""``barenet dashboard``: Optuna's dashboard on a search's (or experiment's) study storage."""

from __future__ import annotations

import argparse
from pathlib import Path


def storage_for(folder: str | None, url: str | None):
    """The Optuna storage of a search/experiment folder (its ``study.journal``) or a URL."""
    from ..errors import UserError
    from ..rundir import JOURNAL_FILE
    from ..search.storage import make_storage

    if url is not None:
        return make_storage(url, ".")
    if folder is None:
        raise UserError("give a search or experiment folder, or --storage URL")
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"folder not found: {path}")
    if not (path / JOURNAL_FILE).is_file():
        raise UserError(f"no {JOURNAL_FILE} in {path}: not a search or experiment folder")
    return make_storage(None, path)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ..errors import UserError

    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise UserError(
            "the dashboard needs optuna-dashboard: pip install -e '.[dashboard]'"
        ) from None
    storage = storage_for(args.folder, args.storage)
    where = args.storage.split("@")[-1] if args.storage else args.folder
    print(
        f"optuna-dashboard for {where} at http://{args.host}:{args.port}/ (Ctrl-C stops it)",
        flush=True,
    )
    run_server(storage, host=args.host, port=args.port)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="open Optuna's dashboard on a search or experiment folder")
    p.add_argument(
        "folder",
        nargs="?",
        default=None,
        metavar="SEARCH_OR_EXPERIMENT_DIR",
        help="a folder holding study.journal (omit with --storage)",
    )
    p.add_argument(
        "--storage", default=None, metavar="URL", help="a study database, e.g. postgresql://..."
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.set_defaults(func=cmd_dashboard)
