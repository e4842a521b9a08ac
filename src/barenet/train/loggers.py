"""History loggers: ``CSVLogger`` and ``JSONLogger`` rewrite their file atomically after
every epoch, so it is always complete; their rows are part of the training state, so a
resumed ``fit`` continues the same file."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from .. import fileio
from ..errors import FileError
from .callbacks import Callback, Logs

__all__ = ["CSVLogger", "JSONLogger", "read_csv_history"]


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
        try:  # now, not at the first epoch's end, after an epoch of training
            csv.writer(io.StringIO(), delimiter=separator, lineterminator="\n")
        except (TypeError, csv.Error) as e:
            raise ValueError(f"CSVLogger separator {separator!r}: {e}") from None
        if separator in ('"', "\n", "\r"):
            raise ValueError(f"CSVLogger separator {separator!r} cannot separate CSV fields")
        self.separator = separator
        self.append = append

    def on_train_begin(self, trainer: Any) -> None:
        self.rows = []
        if self.append and os.path.lexists(self.path):
            self.rows = read_csv_history(self.path, self.separator)

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


def read_csv_history(path: str | Path, separator: str = ",") -> list[Logs]:
    """The rows (column -> text) of a CSV history such as ``CSVLogger`` writes, for
    ``append``. Bounded (a regular file of at most ``fileio.MAX_SIDE_FILE`` bytes, never a
    FIFO or a folder); FileError, one line naming the file, unless it is UTF-8 CSV with a
    header of distinct names holding ``epoch`` and rows of the header's length (another
    separator, binary data or a torn line would otherwise be rewritten garbled or lost)."""
    what = "CSV history"
    data = fileio.read_bytes(path, what)
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (spreadsheets) is not a name
    except UnicodeDecodeError as e:
        raise FileError(
            f"cannot append to {what} {path}: not UTF-8 text (byte {e.start})"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    try:
        lines = [(reader.line_num, r) for r in reader if r]  # blank lines: no rows
    except csv.Error as e:
        raise FileError(f"cannot append to {what} {path}: line {reader.line_num}: {e}") from None
    if not lines:
        return []
    (_, header), body = lines[0], lines[1:]
    if "epoch" not in header:
        raise FileError(
            f"cannot append to {what} {path}: its header has no 'epoch' column "
            f"(not a history, or written with another separator than {separator!r})"
        )
    if len(set(header)) != len(header):
        twice = sorted({c for c in header if header.count(c) > 1})
        raise FileError(f"cannot append to {what} {path}: column(s) {twice} appear twice")
    for line, row in body:
        if len(row) != len(header):
            raise FileError(
                f"cannot append to {what} {path}: line {line} has {len(row)} fields, "
                f"the header {len(header)}"
            )
    return [dict(zip(header, row, strict=True)) for _, row in body]


class JSONLogger(_HistoryLogger):
    """Write ``{"epochs": [logs, ...], "stop_reason": str | null}`` to ``path`` as strict JSON
    (NaN -> null), rewritten atomically every epoch and once more at train end."""

    def on_train_begin(self, trainer: Any) -> None:
        super().on_train_begin(trainer)
        self._wrote = False

    def _write(self) -> None:
        fileio.save_json(self.path, {"epochs": self.rows, "stop_reason": None})
        self._wrote = True

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        # a fit that ended before its first epoch leaves an earlier file as it was
        if getattr(self, "_wrote", False) or self.rows:
            reason = getattr(trainer, "stop_reason", None)
            fileio.save_json(self.path, {"epochs": self.rows, "stop_reason": reason})
