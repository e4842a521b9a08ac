"""Ctrl-C or SIGTERM while the ``barenet`` command is still loading: one line, no traceback.

The command's console script imports ``barenet`` (NumPy, the layers), then ``barenet.cli``
(the commands, their parsers). Each of the two installs quiet handlers first and puts the
previous ones back at its end (``install``/``done``), but only in the command itself
(``sys.argv[0]`` named ``barenet``), so a signal landing while either loads ends the process
at once with the usual line and exit code (nothing has been written yet); before, Ctrl-C
printed the traceback of whatever import it interrupted. A script or notebook importing
barenet keeps its handlers: there Ctrl-C stays a KeyboardInterrupt. ``cli.main`` then
handles both signals itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
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


def is_command() -> bool:
    """Whether this process is the ``barenet`` command (its console script: argv[0] named
    ``barenet``), not a script or notebook importing barenet."""
    argv = getattr(sys, "argv", None)
    first = argv[0] if argv else None
    return isinstance(first, str) and os.path.basename(first).partition(".")[0] == "barenet"


def install() -> None:
    """In the ``barenet`` command only: exit quietly on SIGINT/SIGTERM, where their handlers
    are Python's defaults (main thread only). Elsewhere nothing is changed: a notebook's
    "interrupt kernel" during ``import barenet.cli`` stays a KeyboardInterrupt."""
    if not is_command() or threading.current_thread() is not threading.main_thread():
        return
    for sig in _LINES:
        current = signal.getsignal(sig)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            _previous[sig] = signal.signal(sig, _exit_now)


def done() -> None:
    """Put back the handlers ``install`` replaced, unless something replaced ours since."""
    while _previous:
        sig, handler = _previous.popitem()
        if signal.getsignal(sig) is _exit_now:
            with contextlib.suppress(ValueError):
                signal.signal(sig, handler)
