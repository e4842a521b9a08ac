"""Build a network from a ``ModelConfig``: an MLP from a list of sizes, or a CNN from conv blocks
followed by dense sizes. MLPs take flat (N, 784) batches; CNNs take (N, C, H, W)."""

from __future__ import annotations

import numpy as np

from . import nn
from .config import ModelConfig


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


def conv_output_shape(cfg: ModelConfig) -> tuple[int, int, int]:
    """(C, H, W) after the conv blocks (``ModelConfig.feature_shapes``, checked at validation)."""
    return cfg.feature_shapes()[-1]


def build_model(
    cfg: ModelConfig, rng: np.random.Generator | int = 0, dtype: str | type = "float32"
) -> nn.Sequential:
    """The network the config describes, with weights drawn from ``rng``."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    dt = np.dtype(dtype).type
    if cfg.type == "mlp":
        model = nn.Sequential(*_dense_stack(list(cfg.sizes), cfg, rng, dt))
    else:
        model = _cnn(cfg, rng, dt)
    if dt is not np.float32:
        model.to(dt)  # norm layers are built float32; one cast makes the whole model agree
    # Nobody needs dL/d(input images): skip the first layer's largest backward GEMM.
    first = next(m for m in model.layers if m.parameters())
    first.needs_input_grad = False
    return model


def _cnn(cfg: ModelConfig, rng: np.random.Generator, dt: type) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = cfg.input_shape[0]
    for b in cfg.blocks:
        layers.append(
            nn.Conv2d(
                in_ch,
                b.channels,
                b.kernel,
                stride=b.stride,
                padding=b.padding,
                bias=not b.batch_norm,
                init=cfg.init,
                rng=rng,
                dtype=dt,
            )
        )
        if b.batch_norm:
            layers.append(nn.BatchNorm2d(b.channels))
        layers.append(_act(cfg))
        if b.pool > 1:
            pool = nn.MaxPool2d if b.pool_type == "max" else nn.AvgPool2d
            layers.append(pool(b.pool))
        if b.dropout > 0:
            layers.append(nn.Dropout2d(b.dropout, rng=rng.spawn(1)[0]))
        in_ch = b.channels
    c, h, w = conv_output_shape(cfg)
    layers.append(nn.Flatten())
    layers.extend(_dense_stack([c * h * w, *cfg.dense], cfg, rng, dt))
    return nn.Sequential(*layers)


def input_shape(cfg: ModelConfig) -> tuple[int, ...]:
    """Per-sample input shape the model expects: (784,) for an MLP, (C, H, W) for a CNN."""
    return (cfg.sizes[0],) if cfg.type == "mlp" else tuple(cfg.input_shape)
