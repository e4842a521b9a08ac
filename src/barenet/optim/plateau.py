"""ReduceLROnPlateau: cut the lr when a monitored metric stops improving (torch semantics)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .optimizer import Optimizer


class ReduceLROnPlateau:
    """Multiply every group's lr by ``factor`` after more than ``patience`` bad epochs.

    Call ``step(metrics)`` (torch's argument name) once per epoch. An epoch is good if the
    metric beats the best so far by the threshold: "rel" min mode means
    ``metric < best * (1 - threshold)``, "abs" min mode ``metric < best - threshold``
    (mirrored for "max"). After a reduction, ``cooldown`` epochs pass with the
    bad-epoch counter held at zero. lrs never drop below ``min_lr`` (float or
    one per group), and reductions smaller than ``eps`` are skipped.
    """

    needs_metric = True

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if factor >= 1.0:
            raise ValueError(f"factor must be < 1, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (int, float)):
            self.min_lrs = [float(min_lr)] * n
        else:
            self.min_lrs = [float(v) for v in min_lr]
            if len(self.min_lrs) != n:
                raise ValueError(f"expected {n} min_lr values, got {len(self.min_lrs)}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.eps = int(cooldown), float(eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (1.0 + self.threshold)
        return a > best + self.threshold

    def step(self, metrics: float) -> bool:
        """Record one epoch's metric; returns True if the lr was reduced."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs <= self.patience:
            return False
        reduced = False
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new
                reduced = True
        self.cooldown_counter = self.cooldown
        self.num_bad_epochs = 0
        return reduced

    def get_last_lr(self) -> list[float]:
        """Every group's current lr."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Counters and best metric (the lrs themselves live in the optimizer's state)."""
        return {
            "type": type(self).__name__,
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            "last_epoch": self.last_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("type", type(self).__name__) != type(self).__name__:
            raise ValueError(f"state dict is for {state['type']}, not {type(self).__name__}")
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.last_epoch = int(state["last_epoch"])
