"""Holding Ctrl-C and SIGTERM back while a group of writes must finish together."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C (SIGINT) or SIGTERM arriving inside the block takes effect when the block ends,
    through whatever handler was installed before; a second one arriving meanwhile takes
    effect at once (a block that hangs can still be stopped). Only the main thread can set
    signal handlers: elsewhere the block runs unprotected.

    ``fit`` ends an epoch in one: the callbacks write the epoch (its ``history.csv`` row, the
    best weights) and then the state file records it. An interrupt landing between those
    left a history one epoch ahead of the state it says was kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kinds = (signal.SIGINT, signal.SIGTERM)
    pending: list[int] = []
    previous: dict[int, Any] = {}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        previous.clear()

    def hold(signum: int, frame: Any) -> None:
        if pending:  # asked twice: no more waiting (and nothing left to deliver at the end)
            pending.clear()
            restore()
            signal.raise_signal(signum)
            return
        pending.append(signum)

    try:
        for sig in kinds:
            previous[sig] = signal.signal(sig, hold)
        yield
    finally:
        restore()
        if pending:
            signal.raise_signal(pending[0])  # the restored handler runs now (KeyboardInterrupt)
