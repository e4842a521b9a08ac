"""Ctrl-C or SIGTERM while the ``barenet`` command is still loading: one line, no traceback.

The command's console script imports ``barenet`` (NumPy, the layers), then ``barenet.cli``
(the commands, their parsers). ``barenet/__init__`` imports this module first when the
process is that command (``sys.argv[0]`` named ``barenet``), and ``barenet.cli`` imports
it before anything heavy in any case, so a signal landing while either loads ends the
process at once with the usual line and exit code (nothing has been written yet); before,
Ctrl-C printed the traceback of whatever import it interrupted. ``done()`` (at the end of
``barenet.cli``'s imports) puts the previous handlers back, so importing ``barenet.cli`` as
a library changes nothing; ``cli.main`` then handles both signals itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

_LINES = {
    signal.SIGINT: (b"barenet: interrupted\n", 130),
    signal.SIGTERM: (b"barenet: terminated\n", 143),
}
_previous: dict[int, Any] = {}


def _exit_now(signum: int, frame: Any) -> None:
    line, code = _LINES[signum]
    with contextlib.suppress(OSError):
        os.write(2, line)
    os._exit(code)


def install() -> None:
    """Exit quietly on SIGINT/SIGTERM, where their handlers are Python's defaults (main
    thread only: elsewhere nothing is changed)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _LINES:
        current = signal.getsignal(sig)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            _previous[sig] = signal.signal(sig, _exit_now)


def done() -> None:
    """Put back the handlers ``install`` replaced."""
    while _previous:
        sig, handler = _previous.popitem()
        with contextlib.suppress(ValueError):
            signal.signal(sig, handler)


install()
