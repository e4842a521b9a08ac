"""The live progress bar (rich), throttled so it costs nothing per batch."""

from __future__ import annotations

import math
import time
from typing import Any

from .callbacks import Callback, Logs

_clock = time.monotonic  # module-level so tests can substitute a fake clock


def format_logs(logs: Logs) -> str:
    """One line: ``loss 0.1234  accuracy 0.9650  val_loss ...  lr 1.00e-02  3.2s``."""
    parts = []
    for key, value in logs.items():
        if key == "epoch" or not isinstance(value, (int, float)):
            continue
        if key == "time":
            parts.append(f"{value:.1f}s")
        elif key == "lr":
            parts.append(f"lr {value:.2e}")
        elif "acc" in key:
            parts.append(f"{key} {value:.4f}")
        else:
            parts.append(f"{key} {value:.4g}")
    return "  ".join(parts)


class ProgressBar(Callback):
    """A rich progress bar per epoch with the running loss/accuracy, then a summary line.

    Silent (and doing nothing per batch) when the console is not a terminal. The
    display is refreshed by hand at most once per ``min_interval`` seconds: rich's
    auto-refresh thread is off, so a fast epoch costs one clock read per batch.
    """

    def __init__(self, console: Any = None, min_interval: float = 0.1) -> None:
        self.console = console
        self.min_interval = min_interval
        self.refreshes = 0  # display updates made; lets tests check the throttling
        self._progress: Any = None
        self._task: Any = None

    def on_train_begin(self, trainer: Any) -> None:
        from rich import progress as rp
        from rich.console import Console

        console = self.console if self.console is not None else Console(stderr=True)
        self._progress = None
        if not console.is_terminal:
            return
        self._progress = rp.Progress(
            rp.TextColumn("[bold]{task.description}"),
            rp.BarColumn(),
            rp.MofNCompleteColumn(),
            rp.TimeElapsedColumn(),
            rp.TimeRemainingColumn(),
            rp.TextColumn("{task.fields[info]}"),
            console=console,
            auto_refresh=False,
            transient=True,
        )
        self._progress.start()

    def _epoch_label(self, trainer: Any, epoch: int) -> str:
        total = getattr(trainer, "epochs", None)
        return f"epoch {epoch}/{total}" if total else f"epoch {epoch}"

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        if self._progress is None:
            return
        self._task = self._progress.add_task(
            self._epoch_label(trainer, epoch),
            total=getattr(trainer, "steps_per_epoch", None),
            info="",
        )
        self._last = _clock()
        self._refresh()

    def _refresh(self) -> None:
        self._progress.refresh()
        self.refreshes += 1

    def on_batch_end(self, trainer: Any, batch: int, logs: Logs) -> None:
        if self._progress is None:
            return
        now = _clock()
        if now - self._last < self.min_interval:
            return
        self._last = now
        info = f"loss {logs.get('loss', math.nan):.4f}"
        if "accuracy" in logs:
            info += f"  acc {logs['accuracy']:.4f}"
        self._progress.update(self._task, completed=batch, info=info)
        self._refresh()

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        if self._progress is None:
            return
        self._progress.remove_task(self._task)
        self._progress.console.print(
            f"{self._epoch_label(trainer, epoch)}  {format_logs(logs)}",
            highlight=False,
            markup=False,
        )
        self._refresh()

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
