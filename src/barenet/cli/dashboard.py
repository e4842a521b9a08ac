"""``barenet dashboard``: Optuna's dashboard on a search's (or experiment's) study storage."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import port_number


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
        from optuna_dashboard import wsgi
    except ImportError:
        raise UserError(
            "the dashboard needs optuna-dashboard: "
            "pip install -e '.[dashboard]' in barenet's folder"
        ) from None
    storage = storage_for(args.folder, args.storage)
    where = args.storage.split("@")[-1] if args.storage else args.folder

    def ready(host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        print(
            f"optuna-dashboard for {where} at http://{shown}:{port}/ (Ctrl-C stops it)", flush=True
        )

    serve_wsgi(wsgi(storage), args.host, args.port, ready)
    return 0


def serve_wsgi(app, host: str, port: int, ready=None) -> None:
    """Serve ``app`` from a thread; the main thread only waits, so Ctrl-C or SIGTERM always
    reaches it (raised inside a request, wsgiref would catch and log them) and stops the
    server cleanly. ``ready(host, port)`` is called once the socket listens, with the port
    really bound (``port`` 0 picks a free one): a URL said before that could be refused, or
    name port 0."""
    import threading
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:  # no line per request
            pass

    class Threaded(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    try:
        server = make_server(host, port, app, server_class=Threaded, handler_class=Quiet)
    except OSError as e:
        from ..errors import UserError

        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    if ready is not None:
        ready(*server.server_address[:2])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    finally:
        server.shutdown()
        server.server_close()


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
    p.add_argument(
        "--port", type=port_number, default=8080, help="port (default 8080; 0: any free)"
    )
    p.set_defaults(func=cmd_dashboard)
