"""Everything the diagnostics build from a config, imported from the rest of barenet here only
(the builders' names may move; this file is the one place to follow them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import nn
from ..builders import build_model, build_optimizer, build_schedule_from_config
from ..config import Config
from ..optim import Optimizer, clip_grad_norm_, grad_norm
from ..runner import Data, make_loader, prepare_data, seeds

__all__ = ["Data", "Setup", "batches", "fresh", "load_data", "train_step"]


@dataclass
class Setup:
    """A freshly initialised model with its optimizer and loss, as ``barenet train`` builds."""

    model: nn.Sequential
    optimizer: Optimizer
    loss_fn: nn.CrossEntropyLoss
    schedule: Any = None  # an iteration schedule stepped after each update, or None


def load_data(cfg: Config, data_dir: str | None = None) -> Data:
    return prepare_data(cfg, data_dir)


def fresh(cfg: Config, data: Data | None = None) -> Setup:
    """Model (initialised from the config's seed, as training would) and optimizer; with
    ``data``, also the configured lr schedule (warm-up included) per iteration."""
    model = build_model(cfg.model, seeds(cfg)["init"], cfg.train.dtype)
    opt = build_optimizer(model.parameters(), cfg.optim)
    loss = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)
    schedule = None
    if data is not None:
        spe = -(-len(data.train) // cfg.train.batch_size)
        schedule = build_schedule_from_config(opt, cfg.schedule, spe, cfg.train.epochs)
        if getattr(schedule, "needs_metric", False):  # per-epoch (plateau): not in a few steps
            schedule = None
    return Setup(model, opt, loss, schedule)


def batches(cfg: Config, data: Data, batch_size: int | None = None) -> Iterator[tuple]:
    """Shuffled training batches from the config's shuffle seed, epoch after epoch."""
    loader = make_loader(
        data.train, batch_size or cfg.train.batch_size, shuffle=True, rng=seeds(cfg)["shuffle"]
    )
    while True:
        yield from loader


def train_step(
    s: Setup,
    xb: np.ndarray,
    yb: np.ndarray,
    clip: float | None = None,
    on_grads: Callable[[], None] | None = None,
) -> float:
    """One step as the trainer takes it; returns the batch loss (the step is skipped when the
    loss or gradient is not finite). ``on_grads`` runs between backward and the update."""
    out = s.model.forward(xb)
    loss = float(s.loss_fn(out, yb))
    if np.isfinite(loss):
        s.model.backward(s.loss_fn.backward())
        if on_grads is not None:
            on_grads()
        params = s.model.parameters()
        norm = clip_grad_norm_(params, clip) if clip else grad_norm(params)
        if np.isfinite(norm):
            s.optimizer.step()
    s.optimizer.zero_grad()
    if s.schedule is not None:
        s.schedule.step()
    return loss
