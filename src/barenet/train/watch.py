"""``train.watch: true``: per layer and epoch, what happens inside the network.

At initialisation (epoch 0) and after every epoch, the ``Watch`` callback runs one probe pass
(``barenet.diagnose.probe``: training mode, no side effects on BatchNorm statistics, Dropout
generators or gradients) on a fixed batch of training samples and records, per weight layer
group: activation mean and std, the per-unit std over the batch, dead (ReLU) and saturated
(sigmoid/tanh) fractions, weight and gradient norms. During the first ``ratio_steps``
optimizer steps of each epoch it also measures the update-to-weight ratio ||dW|| / ||W||.
The record is rewritten (atomically) after every epoch, so a killed run keeps what it saw.

Watching does not change training: the same seed gives the same weights with or without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import fileio, nn
from ..diagnose.probe import groups_of, probe
from .callbacks import Callback

WATCH_FORMAT = "barenet-watch-1"


class Watch(Callback):
    """Record the internals of ``trainer.model`` per epoch into ``path`` (JSON)."""

    def __init__(
        self, path: str | Path, x: np.ndarray, y: np.ndarray, ratio_steps: int = 10
    ) -> None:
        self.path = Path(path)
        self.x, self.y = x, np.asarray(y)
        self.ratio_steps = int(ratio_steps)
        self.loss_fn = nn.CrossEntropyLoss()
        self.records: list[dict[str, Any]] = []
        self._snap: list[np.ndarray] = []
        self._ratios: list[list[float]] = []

    @classmethod
    def for_data(
        cls, path: str | Path, x: np.ndarray, y: np.ndarray, seed: int, size: int = 256
    ) -> Watch:
        """A Watch probing ``size`` training samples drawn from ``seed``."""
        rng = np.random.default_rng([seed, 15])
        idx = np.sort(rng.choice(len(y), size=min(size, len(y)), replace=False))
        return cls(path, x[idx], np.asarray(y)[idx])

    def _record(self, model: nn.Module, epoch: int) -> None:
        res = probe(model, self.loss_fn, self.x, self.y)
        layers = [g.as_dict() for g in res.groups]
        for k, layer in enumerate(layers):
            r = self._ratios[k] if k < len(self._ratios) else []
            layer["update_ratio"] = float(np.mean(r)) if r else None
        self.records.append(
            {"epoch": epoch, "loss": res.loss, "accuracy": res.accuracy, "layers": layers}
        )
        fileio.save_json(
            self.path,
            {
                "format": WATCH_FORMAT,
                "layers": [g["label"] for g in layers],
                "ratio_steps": self.ratio_steps,
                "records": self.records,
            },
        )

    def on_train_begin(self, trainer: Any) -> None:
        self.records = []
        self._ratios = []
        self._record(trainer.model, 0)

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        groups = groups_of(trainer.model)
        self._snap = [g.weight.data.copy() for g in groups]
        self._ratios = [[] for _ in groups]

    def on_batch_end(self, trainer: Any, batch: int, logs: dict[str, Any]) -> None:
        if batch > self.ratio_steps or not self._snap:
            return
        for k, g in enumerate(groups_of(trainer.model)):
            w = g.weight.data
            norm = float(np.linalg.norm(self._snap[k]))
            if norm > 0:
                self._ratios[k].append(float(np.linalg.norm(w - self._snap[k])) / norm)
            self._snap[k][...] = w
        if batch == self.ratio_steps:
            self._snap = []

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        self._record(trainer.model, epoch)
