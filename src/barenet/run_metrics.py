"""``RunMetrics``: the typed contents of a run's ``metrics.json``; every key is a field here.

Written once, last, when a run ends, so its presence marks a finished run: ``status`` is
"complete" (left out of the file) or "diverged" (an experiment records diverged runs). Read
back tolerantly: keys an older or newer barenet wrote that are not fields are ignored; a
value of the wrong type is refused with one line naming the file and the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FileError

__all__ = ["RunMetrics"]

COMPLETE = "complete"
DIVERGED = "diverged"


@dataclass
class RunMetrics:
    """Final numbers of one run. ``None`` means "not measured" and is left out of the file.

    ``val_*``/``best_epoch`` are the best epoch's by validation accuracy (the weights kept in
    ``model.safetensors``); ``final_val_accuracy`` is the last epoch's; ``test`` holds
    ``loss``, ``n``, ``accuracy``, ``per_class_accuracy`` and ``confusion_matrix``.
    ``train_seconds`` sums the epochs' times over every session of a resumed run.
    """

    name: str | None = None
    status: str = COMPLETE
    dataset: str | None = None
    parameters: int | None = None
    epochs_run: int | None = None
    steps_per_epoch: int | None = None
    train_seconds: float | None = None
    seconds_per_epoch: float | None = None
    train_loss: float | None = None
    train_accuracy: float | None = None
    best_epoch: int | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    final_val_accuracy: float | None = None
    test_accuracy: float | None = None
    test: dict[str, Any] | None = None
    error: str | None = None  # why a diverged run stopped
    threads: str | None = None  # train.threads as asked: "auto" or a count
    threads_used: dict[str, Any] | None = None  # thread count -> training steps run with it

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in field order, without the ``None`` entries; ``status`` only
        when it is not "complete" (so a finished run's file is as it always was)."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if data["status"] == COMPLETE:
            del data["status"]
        return data

    @classmethod
    def scalar_keys(cls) -> list[str]:
        """The one-value keys, in file order (for summary tables)."""
        return [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in ("test", "error", "threads_used")
        ]

    @classmethod
    def from_dict(cls, data: Any, path: str | Path = "metrics.json") -> RunMetrics:
        """Parse and type-check a ``metrics.json`` object (FileError naming ``path``)."""
        if not isinstance(data, dict):
            raise FileError(f"{path}: expected a JSON object, got {type(data).__name__}")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data or data[f.name] is None:
                continue
            value = data[f.name]
            kind = str(f.type).split("[")[0].split(" ")[0]  # "float | None" -> "float"
            if not _is(kind, value):
                raise FileError(
                    f"{path}: '{f.name}' should be {_NAMES[kind]}, got {type(value).__name__}"
                )
            values[f.name] = float(value) if kind == "float" else value
        return cls(**values)


_NAMES = {"str": "text", "int": "an integer", "float": "a number", "dict": "an object"}


def _is(kind: str, value: Any) -> bool:
    if isinstance(value, bool):  # JSON true/false are not counts or measurements
        return False
    types = {"str": str, "int": int, "float": (int, float), "dict": dict}[kind]
    return isinstance(value, types)
