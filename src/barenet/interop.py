"""PyTorch interop: ``to_torch(model)`` and ``from_torch(module)``, weights copied both ways.

Layers map one to one at the same positions, so state-dict names agree (``0.weight``,
``1.running_mean``...) and a run's ``model.safetensors`` loads straight into the torch
model with ``safetensors.torch.load_file``. Supported: Linear, Conv2d, MaxPool2d,
AvgPool2d, AdaptiveAvgPool2d, BatchNorm1d/2d, ReLU, LeakyReLU, Sigmoid, Tanh, Identity,
Flatten, Dropout, Dropout2d, Softmax, LogSoftmax. torch is imported here only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import nn
from .errors import UserError


class InteropError(UserError):
    """A layer (or a setting of one) that has no counterpart on the other side."""


def _torch():
    try:
        import torch
    except ImportError as e:  # the light install: say what to install, as barenet.sklearn does
        raise ImportError(
            f"barenet.interop needs PyTorch ({e}): pip install torch, or pip install -e "
            "'.[test]' in barenet's folder"
        ) from None
    return torch


def _torch_layer(layer: nn.Module) -> Any:
    tnn = _torch().nn
    if isinstance(layer, nn.Linear):
        return tnn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    if isinstance(layer, nn.Conv2d):
        return tnn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            bias=layer.bias is not None,
        )
    if isinstance(layer, nn.MaxPool2d):
        return tnn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
    if isinstance(layer, nn.AvgPool2d):
        return tnn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, count_include_pad=True)
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return tnn.AdaptiveAvgPool2d(layer.output_size)
    if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
        cls = tnn.BatchNorm1d if isinstance(layer, nn.BatchNorm1d) else tnn.BatchNorm2d
        return cls(layer.num_features, layer.eps, layer.momentum, affine=layer.weight is not None)
    if isinstance(layer, nn.LeakyReLU):
        return tnn.LeakyReLU(layer.negative_slope)
    if isinstance(layer, nn.LogSoftmax | nn.Softmax):
        return getattr(tnn, type(layer).__name__)(layer.dim)
    if isinstance(layer, nn.Dropout2d):  # before Dropout: it is a subclass
        return tnn.Dropout2d(layer.p)
    if isinstance(layer, nn.Dropout):
        return tnn.Dropout(layer.p)
    simple = {
        nn.ReLU: tnn.ReLU,
        nn.Sigmoid: tnn.Sigmoid,
        nn.Tanh: tnn.Tanh,
        nn.Identity: tnn.Identity,
    }
    if type(layer) is nn.Flatten:
        return tnn.Flatten(layer.start_dim, layer.end_dim)
    if type(layer) in simple:
        return simple[type(layer)]()
    raise InteropError(f"{type(layer).__name__} has no torch counterpart")


def to_torch(model: nn.Module) -> Any:
    """An equivalent ``torch.nn.Sequential`` with the weights and buffers copied, in the
    same train/eval mode, dtype of the barenet weights."""
    torch = _torch()
    single = not hasattr(model, "layers")  # a lone layer: position 0 of the Sequential
    layers = [model] if single else list(model.layers)
    module = torch.nn.Sequential(*(_torch_layer(layer) for layer in layers))
    params = model.parameters()
    if params:
        module.to(torch.from_numpy(np.asarray(params[0].data)).dtype)
    state = {
        ("0." if single else "") + k: torch.from_numpy(np.array(v))
        for k, v in model.state_dict().items()
    }
    module.load_state_dict(state, strict=True)
    module.train(model.training)
    return module


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _barenet_layer(m: Any, i: int, rng: np.random.Generator) -> nn.Module:
    tnn = _torch().nn

    def refuse(what: str) -> InteropError:
        return InteropError(f"layer {i} ({type(m).__name__}): {what} is not supported")

    if isinstance(m, tnn.Linear):
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, rng=rng)
    if isinstance(m, tnn.Conv2d):
        if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise refuse("groups, padding modes other than zeros, or string padding")
        return nn.Conv2d(
            m.in_channels,
            m.out_channels,
            m.kernel_size,
            stride=m.stride,
            padding=m.padding,
            dilation=m.dilation,
            bias=m.bias is not None,
            rng=rng,
        )
    if isinstance(m, tnn.MaxPool2d):
        if m.ceil_mode or m.return_indices or _pair(m.dilation) != (1, 1):
            raise refuse("ceil_mode, return_indices or dilation")
        return nn.MaxPool2d(_pair(m.kernel_size), _pair(m.stride), _pair(m.padding))
    if isinstance(m, tnn.AvgPool2d):
        if m.ceil_mode or not m.count_include_pad or m.divisor_override is not None:
            raise refuse("ceil_mode, count_include_pad=False or divisor_override")
        return nn.AvgPool2d(_pair(m.kernel_size), _pair(m.stride), _pair(m.padding))
    if isinstance(m, tnn.AdaptiveAvgPool2d):
        size = m.output_size
        return nn.AdaptiveAvgPool2d(size if isinstance(size, int) else tuple(size))
    if isinstance(m, tnn.BatchNorm1d | tnn.BatchNorm2d):
        if not m.track_running_stats:
            raise refuse("track_running_stats=False")
        cls = nn.BatchNorm1d if isinstance(m, tnn.BatchNorm1d) else nn.BatchNorm2d
        return cls(m.num_features, m.eps, m.momentum, affine=m.affine)
    if isinstance(m, tnn.LeakyReLU):
        return nn.LeakyReLU(m.negative_slope)
    if isinstance(m, tnn.Flatten):
        return nn.Flatten(m.start_dim, m.end_dim)
    if isinstance(m, tnn.LogSoftmax | tnn.Softmax):
        return getattr(nn, type(m).__name__)(m.dim)
    if isinstance(m, tnn.Dropout2d):
        return nn.Dropout2d(m.p, rng=rng.spawn(1)[0])
    if isinstance(m, tnn.Dropout):
        return nn.Dropout(m.p, rng=rng.spawn(1)[0])
    simple = {
        tnn.ReLU: nn.ReLU,
        tnn.Sigmoid: nn.Sigmoid,
        tnn.Tanh: nn.Tanh,
        tnn.Identity: nn.Identity,
    }
    if type(m) in simple:
        return simple[type(m)]()
    raise InteropError(f"layer {i}: torch.nn.{type(m).__name__} has no barenet counterpart")


def from_torch(module: Any, rng: np.random.Generator | int = 0) -> nn.Sequential:
    """The barenet ``Sequential`` of a ``torch.nn.Sequential`` of supported layers, weights
    and buffers copied, same mode; ``rng`` seeds only the dropout masks."""
    torch = _torch()
    if not isinstance(module, torch.nn.Sequential):
        raise InteropError(f"from_torch takes a torch.nn.Sequential, got {type(module).__name__}")
    for name, v in module.state_dict().items():
        if v.dtype == torch.bfloat16:  # NumPy has no bfloat16
            raise InteropError(f"{name} is bfloat16, which NumPy lacks: convert with .float()")
    rng = np.random.default_rng(rng)
    model = nn.Sequential(*(_barenet_layer(m, i, rng) for i, m in enumerate(module)))
    state = {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}
    dtype = next((v.dtype for v in state.values() if np.issubdtype(v.dtype, np.floating)), None)
    if dtype is not None and dtype != np.float32:
        model.to(dtype)
    model.load_state_dict(state)
    model.train(module.training)
    return model
