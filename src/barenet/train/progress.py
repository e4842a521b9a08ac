"""Training progress where the user is: a terminal, a log file, or a Jupyter notebook.

- terminal (stderr is a TTY): a rich bar per epoch, throttled so it costs nothing per batch;
- Jupyter kernel: a ``tqdm.auto`` bar (a widget with ipywidgets, text otherwise);
- anything else (nohup, CI, ``> log``): no bar.

In every case one line per epoch (epoch, loss, accuracy, val_loss, val_accuracy, lr, seconds)
goes to stdout, flushed, as Keras does. ``Trainer(progress=False)`` / ``--quiet`` adds no bar.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Any, TextIO

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


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a terminal IPython)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a broken IPython install is just "not a notebook"
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar(Callback):
    """A progress bar per epoch (see the module docstring for which) and one line per epoch.

    Args:
        console: a rich ``Console`` for the terminal bar (default: stderr).
        min_interval: the bar is redrawn at most once per this many seconds; rich's
            auto-refresh thread is off, so a fast epoch costs one clock read per batch.
        stream: where the per-epoch lines go (default: ``sys.stdout`` at train start).
        notebook: force (True) or forbid (False) the notebook bar; None detects it.
    """

    def __init__(
        self,
        console: Any = None,
        min_interval: float = 0.1,
        stream: TextIO | None = None,
        notebook: bool | None = None,
    ) -> None:
        self.console = console
        self.min_interval = min_interval
        self.stream = stream
        self.notebook = notebook
        self.refreshes = 0  # display updates made; lets tests check the throttling
        self._progress: Any = None  # the rich bar
        self._tqdm: Any = None  # the notebook bar of the current epoch
        self._task: Any = None
        self._done = 0
        self._out: Any = None

    # -- which display ------------------------------------------------------------
    def on_train_begin(self, trainer: Any) -> None:
        self._out = self.stream if self.stream is not None else sys.stdout
        self._progress = None
        self._notebook = in_notebook() if self.notebook is None else self.notebook
        if self._notebook:
            return
        from rich.console import Console

        console = self.console if self.console is not None else Console(stderr=True)
        if not console.is_terminal:
            return
        from rich import progress as rp

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
            redirect_stdout=False,  # stdout may be a log file: keep it plain
            redirect_stderr=False,
        )
        self._progress.start()

    def _epoch_label(self, trainer: Any, epoch: int) -> str:
        total = getattr(trainer, "epochs", None)
        return f"epoch {epoch}/{total}" if total else f"epoch {epoch}"

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        label = self._epoch_label(trainer, epoch)
        total = getattr(trainer, "steps_per_epoch", None)
        self._last = _clock()
        self._done = 0
        if self._notebook:
            with warnings.catch_warnings():  # "IProgress not found": tqdm falls back to text
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm

                self._tqdm = tqdm(total=total, desc=label, leave=False, mininterval=0)
            return
        if self._progress is None:
            return
        self._task = self._progress.add_task(label, total=total, info="")
        self._refresh()

    def _refresh(self) -> None:
        self._progress.refresh()
        self.refreshes += 1

    def on_batch_end(self, trainer: Any, batch: int, logs: Logs) -> None:
        if self._progress is None and self._tqdm is None:
            return
        now = _clock()
        if now - self._last < self.min_interval:
            return
        self._last = now
        info = f"loss {logs.get('loss', math.nan):.4f}"
        if "accuracy" in logs:
            info += f"  acc {logs['accuracy']:.4f}"
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(info, refresh=False)
            self._tqdm.update(batch - self._done)
            self._done = batch
            self.refreshes += 1
            return
        self._progress.update(self._task, completed=batch, info=info)
        self._refresh()

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        line = f"{self._epoch_label(trainer, epoch)}  {format_logs(logs)}"
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        if self._progress is not None:
            self._progress.remove_task(self._task)
            self._refresh()
            if _is_tty(self._out) and self._progress.console.is_terminal:
                # the same terminal as the bar: print through rich so the bar stays below
                self._progress.console.print(line, highlight=False, markup=False)
                return
        print(line, file=self._out, flush=True)

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
