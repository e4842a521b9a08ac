"""The learning rate at every optimizer step of a run, rebuilt from its config.

The history logs one lr per epoch (at its start), which hides warm-up peaks and cycles inside
an epoch. Schedules are pure functions of the step (``lr_at``), so the exact per-step curve can
be recomputed; it needs the number of steps per epoch, i.e. the size of the training split,
which is recomputed the way the run made it (seeded stratified subset, then validation split).
The result is only trusted if it reproduces every logged per-epoch value.
"""

from __future__ import annotations

import numpy as np

from ..config import Config
from .rundata import History, has_values


def steps_per_epoch(cfg: Config, data_dir: str | None = None) -> int:
    """Batches per epoch of the run's training split (reads the training labels)."""
    from ..data import load
    from ..runner import split_indices

    _, labels = load(cfg.data.dataset, split="train", data_dir=data_dir or cfg.data.data_dir)
    train, _ = split_indices(cfg, labels)
    return -(-len(train) // cfg.train.batch_size)


def lr_per_step(
    cfg: Config, history: History, spe: int, rtol: float = 1e-6
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, lr)`` for every step of the epochs in ``history``: ``x = (step + 1) / spe`` (epoch
    e's updates span (e - 1, e]), ``lr`` the rate of that update. None for reduce-on-plateau
    (it depends on validation results) or if the rebuilt schedule disagrees with the lr
    logged at the start of any epoch."""
    if cfg.schedule.name == "plateau" or not has_values(history, "lr"):
        return None
    from ..builders import build_optimizer, build_schedule_from_config
    from ..nn import Parameter

    epochs = int(np.nanmax(history["epoch"]))
    opt = build_optimizer([Parameter(np.zeros(1, np.float32))], cfg.optim)
    sched = build_schedule_from_config(opt, cfg.schedule, spe, cfg.train.epochs)
    steps = np.arange(epochs * spe)
    lr = np.array([sched.lr_at(int(s)) for s in steps])
    logged = history["lr"]
    ok = np.isfinite(logged) & np.isfinite(history["epoch"])
    starts = ((history["epoch"][ok] - 1) * spe).astype(int)
    if not np.allclose(lr[starts], logged[ok], rtol=rtol, atol=0.0):
        return None
    return (steps + 1) / spe, lr
