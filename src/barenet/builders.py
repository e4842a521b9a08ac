"""Config -> model, optimizer and learning-rate schedule, through name -> builder registries.

``MODELS``, ``optim.OPTIMIZERS`` and ``optim.SCHEDULES`` hold every name the config accepts
(``barenet.config`` derives its allowed values from them), so an unknown name is refused
when the config is read, never replaced by a default here.

Models: an MLP from a list of sizes (flat (N, 784) batches), or a CNN from conv blocks and
dense sizes ((N, C, H, W) batches); the flattened feature size comes from the layers' own
``output_shape``. Schedule periods in the config are in epochs; the trainer steps schedules
once per batch, so they are converted to iterations here with ``steps_per_epoch``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import nn
from .optim import (
    OPTIMIZERS,
    SCHEDULES,
    LRSchedule,
    Optimizer,
    ReduceLROnPlateau,
    build_schedule,
    param_groups,
)

if TYPE_CHECKING:  # config imports this module for the registries
    from .config import ModelConfig, OptimConfig, ScheduleConfig

__all__ = [
    "MODELS",
    "OPTIMIZERS",
    "SCHEDULES",
    "build_model",
    "build_optimizer",
    "build_schedule_from_config",
    "input_shape",
]


# -- models ------------------------------------------------------------------------------------


def _act(cfg: ModelConfig) -> nn.Module:
    return nn.activation(cfg.activation, cfg.negative_slope)


def _dense_stack(
    sizes: list[int], cfg: ModelConfig, rng: np.random.Generator, dtype: type
) -> list[nn.Module]:
    """Linear -> [BatchNorm1d] -> act -> [Dropout] for each hidden size, then a plain Linear."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(
            nn.Linear(fan_in, fan_out, init=cfg.init, rng=rng, dtype=dtype, std=cfg.init_std)
        )
        if i < len(sizes) - 2:
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(_act(cfg))
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout, rng=rng.spawn(1)[0]))
    return layers


def _mlp(cfg: ModelConfig, rng: np.random.Generator, dt: type) -> list[nn.Module]:
    return _dense_stack(list(cfg.sizes), cfg, rng, dt)


def _cnn(cfg: ModelConfig, rng: np.random.Generator, dt: type) -> list[nn.Module]:
    """Conv blocks, Flatten, dense stack; (C, H, W) is tracked through each layer's own
    ``output_shape``, so the first dense layer's fan-in is never re-derived here."""
    layers: list[nn.Module] = []
    c, h, w = cfg.input_shape
    for b in cfg.blocks:
        conv = nn.Conv2d(
            c, b.channels, b.kernel, stride=b.stride, padding=b.padding,
            bias=not b.batch_norm, init=cfg.init, rng=rng, dtype=dt,
        )  # fmt: skip
        block: list[nn.Module] = [conv]
        if b.batch_norm:
            block.append(nn.BatchNorm2d(b.channels))
        block.append(_act(cfg))
        if b.pool > 1:
            block.append((nn.MaxPool2d if b.pool_type == "max" else nn.AvgPool2d)(b.pool))
        if b.dropout > 0:
            block.append(nn.Dropout2d(b.dropout, rng=rng.spawn(1)[0]))
        try:
            c, (h, w) = b.channels, conv.output_shape(h, w)
            for layer in block:
                if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
                    h, w = layer.output_shape(h, w)
        except ValueError:
            raise ValueError(
                f"model.blocks shrink the {tuple(cfg.input_shape)} input to nothing: "
                "use fewer blocks, smaller kernels or more padding"
            ) from None
        layers.extend(block)
    return [*layers, nn.Flatten(), *_dense_stack([c * h * w, *cfg.dense], cfg, rng, dt)]


# model.type -> layers(cfg, rng, dtype)
MODELS: dict[str, Callable[[ModelConfig, np.random.Generator, type], list[nn.Module]]] = {
    "mlp": _mlp,
    "cnn": _cnn,
}


def build_model(
    cfg: ModelConfig, rng: np.random.Generator | int = 0, dtype: str | type = "float32"
) -> nn.Sequential:
    """The network the config describes, with weights drawn from ``rng``."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    dt = np.dtype(dtype).type
    model = nn.Sequential(*MODELS[cfg.type](cfg, rng, dt))
    if dt is not np.float32:
        model.to(dt)  # norm layers are built float32; one cast makes the whole model agree
    return model


def input_shape(cfg: ModelConfig) -> tuple[int, ...]:
    """Per-sample input shape the model expects: (784,) for an MLP, (C, H, W) for a CNN."""
    return (cfg.sizes[0],) if cfg.type == "mlp" else tuple(cfg.input_shape)


# -- optimizers --------------------------------------------------------------------------------


def build_optimizer(params: Iterable[nn.Parameter] | nn.Module, cfg: OptimConfig) -> Optimizer:
    """``OPTIMIZERS[cfg.name]`` with the config's settings that its constructor takes.

    With weight decay and ``decay_bias: false`` (the default) the parameters go in two
    groups, biases and norm parameters without decay (``optim.param_groups``)."""
    cls = OPTIMIZERS[cfg.name]
    accepted = inspect.signature(cls).parameters
    fields = type(cfg).model_fields
    kwargs = {k: getattr(cfg, k) for k in accepted if k not in ("params", "lr") and k in fields}
    if "nesterov" in kwargs:  # torch refuses Nesterov without momentum; the config allows it
        kwargs["nesterov"] = cfg.nesterov and cfg.momentum > 0
    items = params if isinstance(params, nn.Module) else list(params)
    if cfg.weight_decay > 0 and not cfg.decay_bias:
        groups: Any = param_groups(items, cfg.weight_decay)
    else:
        groups = items.parameters() if isinstance(items, nn.Module) else items
    return cls(groups, lr=cfg.lr, **kwargs)


# -- schedules ---------------------------------------------------------------------------------


def _schedule_args(cfg: ScheduleConfig, optimizer: Optimizer, spe: int) -> dict[str, Any]:
    """The config's epoch-based settings as the schedule class's iteration-based arguments."""

    def iters(e: float) -> int:
        return max(1, round(e * spe))

    name = cfg.name
    if name == "step":
        return {"step_size": iters(cfg.step_size), "gamma": cfg.gamma}
    if name == "multistep":
        return {"milestones": [iters(m) for m in cfg.milestones], "gamma": cfg.gamma}
    if name == "exponential":  # torch's ExponentialLR per batch: gamma per epoch overall
        return {"gamma": cfg.gamma ** (1.0 / spe)}
    if name == "cosine":
        return {"eta_min": cfg.min_lr}
    if name == "cyclic":
        lr = optimizer.param_groups[0]["lr"]
        half = iters(cfg.cycle_epochs / 2)
        return {"base_lr": lr * cfg.base_lr_factor, "max_lr": lr, "step_size_up": half}
    return {}


def build_schedule_from_config(
    optimizer: Optimizer, cfg: ScheduleConfig, steps_per_epoch: int, epochs: int
) -> LRSchedule | ReduceLROnPlateau:
    """The configured ``SCHEDULES[cfg.name]``, its epoch periods converted to iterations."""
    if cfg.name == "plateau":  # stepped once per epoch with the monitored metric
        return ReduceLROnPlateau(
            optimizer, factor=cfg.gamma, patience=cfg.patience, min_lr=cfg.min_lr
        )
    spe = max(1, int(steps_per_epoch))
    warm = round(cfg.warmup_epochs * spe)
    kwargs = _schedule_args(cfg, optimizer, spe) | ({"warmup_steps": warm} if warm else {})
    return build_schedule(cfg.name, optimizer, spe * epochs, **kwargs)
