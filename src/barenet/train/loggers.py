"""History loggers: ``CSVLogger`` and ``JSONLogger`` rewrite their file atomically after
every epoch, so it is always complete; their rows are part of the training state, so a
resumed ``fit`` continues the same file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .. import fileio
from .callbacks import Callback, Logs

__all__ = ["CSVLogger", "JSONLogger"]


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(fileio.to_jsonable(value))
    return value


class _HistoryLogger(Callback):
    """Keeps every epoch's logs and rewrites ``path`` (via ``_write``) after each epoch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: list[Logs] = []

    def on_train_begin(self, trainer: Any) -> None:
        self.rows = []

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        self.rows.append(dict(logs))
        self._write()

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state["rows"]]

    def _write(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class CSVLogger(_HistoryLogger):
    """Write the per-epoch logs to ``path`` as CSV, rewritten atomically every epoch.

    Columns are every key seen so far, in first-seen order; a missing value is empty.
    ``separator`` and ``append`` are Keras': with ``append`` the rows already in ``path``
    are kept and this fit's rows follow them (for a second ``fit`` that continues the
    training; ``fit(resume_from=...)`` continues the file without it).
    """

    def __init__(self, path: str | Path, separator: str = ",", append: bool = False) -> None:
        super().__init__(path)
        self.separator = separator
        self.append = append

    def on_train_begin(self, trainer: Any) -> None:
        self.rows = []
        if self.append and self.path.exists():
            with open(self.path, newline="", encoding="utf-8") as f:
                self.rows = [dict(r) for r in csv.DictReader(f, delimiter=self.separator)]

    def _write(self) -> None:
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=columns, restval="", delimiter=self.separator, lineterminator="\n"
        )
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
        fileio.atomic_write_text(self.path, buf.getvalue())


class JSONLogger(_HistoryLogger):
    """Write ``{"epochs": [logs, ...], "stop_reason": str | null}`` to ``path`` as strict JSON
    (NaN -> null), rewritten atomically every epoch and once more at train end."""

    def _write(self) -> None:
        fileio.save_json(self.path, {"epochs": self.rows, "stop_reason": None})

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        reason = getattr(trainer, "stop_reason", None)
        fileio.save_json(self.path, {"epochs": self.rows, "stop_reason": reason})
