"""Optimizer and learning-rate schedule from their config sections.

Schedule periods in the config are in epochs; the trainer steps schedules once per batch,
so they are converted to iterations here with ``steps_per_epoch``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .config import OptimConfig, ScheduleConfig
from .nn import Parameter
from .optim import (
    SGD,
    Adam,
    AdamW,
    LRSchedule,
    Optimizer,
    ReduceLROnPlateau,
    RMSprop,
    StepLR,
    build_schedule,
)


def build_optimizer(params: Iterable[Parameter], cfg: OptimConfig) -> Optimizer:
    """SGD / Adam / AdamW / RMSprop with the config's settings (biases skip weight decay
    unless ``decay_bias``)."""
    params = list(params)
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "decay_bias": cfg.decay_bias}
    if cfg.name == "sgd":
        return SGD(
            params, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0, **common
        )
    if cfg.name == "adam":
        return Adam(params, betas=cfg.betas, eps=cfg.eps, **common)
    if cfg.name == "adamw":
        return AdamW(params, betas=cfg.betas, eps=cfg.eps, **common)
    return RMSprop(params, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum, **common)


def build_schedule_from_config(
    optimizer: Optimizer, cfg: ScheduleConfig, steps_per_epoch: int, epochs: int
) -> LRSchedule | ReduceLROnPlateau:
    """The configured schedule, its epoch periods converted to iterations."""
    spe = max(1, int(steps_per_epoch))

    def iters(e: float) -> int:
        return max(1, round(e * spe))

    total = spe * epochs
    warm = round(cfg.warmup_epochs * spe)
    warmup = {"warmup_steps": warm} if warm else {}
    if cfg.name == "plateau":
        return ReduceLROnPlateau(
            optimizer, factor=cfg.gamma, patience=cfg.patience, min_lr=cfg.min_lr
        )
    if cfg.name == "step":
        return build_schedule(
            "step", optimizer, total, step_size=iters(cfg.step_size), gamma=cfg.gamma, **warmup
        )
    if cfg.name == "multistep":
        return build_schedule(
            "multistep",
            optimizer,
            total,
            milestones=[iters(m) for m in cfg.milestones],
            gamma=cfg.gamma,
            **warmup,
        )
    if cfg.name == "exponential":
        # decay by gamma once per epoch (torch's ExponentialLR stepped per epoch)
        return StepLR(optimizer, step_size=spe, gamma=cfg.gamma, **warmup)
    if cfg.name == "cosine":
        return build_schedule("cosine", optimizer, total, eta_min=cfg.min_lr, **warmup)
    if cfg.name == "cyclic":
        lr = optimizer.param_groups[0]["lr"]
        half = iters(cfg.cycle_epochs / 2)
        return build_schedule(
            "cyclic",
            optimizer,
            total,
            base_lr=lr * cfg.base_lr_factor,
            max_lr=lr,
            step_size_up=half,
            **warmup,
        )
    return build_schedule("constant", optimizer, total, **warmup)
