"""One forward and backward pass on a fixed batch, measured layer by layer.

A network's layers are grouped as a learner draws them: each Linear or Conv2d starts a
group, which also holds what follows it (batch norm, activation, pooling, dropout) up to the
next one. Per group:

- activation statistics of the group's output (after its nonlinearity): mean, std, and the
  mean over units of each unit's std over the batch (~0: the unit ignores its input);
- dead fraction (ReLU-like groups): units (features, or channel x position) whose output is
  0 for every sample of the batch — no gradient reaches their weights;
- saturated fraction (sigmoid/tanh groups): outputs where the derivative is under 10% of its
  maximum (sigmoid s(1-s) < 0.025, tanh 1 - y^2 < 0.1);
- weight norm ||W||_2, gradient norm ||dL/dW||_2 (mean loss over the batch).

The probe runs in training mode and leaves no trace: BatchNorm statistics and Dropout
generators are restored, gradients are zeroed before and after.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .. import nn

RELU_LIKE = (nn.ReLU, nn.LeakyReLU)
# The update-to-weight ratio ||dW|| / ||W|| of a healthy step: around the ~1e-3 rule of
# thumb. ``barenet doctor`` calls a run healthy inside it; the watch plot shades it.
UPDATE_RATIO_HEALTHY = (1e-4, 1e-2)
SATURATING = (nn.Sigmoid, nn.Tanh)


@dataclass
class Group:
    """Layers ``start..stop-1`` of a Sequential: one weight layer and what follows it."""

    index: int  # 1-based position among the weight layers
    start: int
    stop: int
    label: str  # e.g. "Linear 784->512 + ReLU"
    weight: nn.Parameter
    activation: nn.Module | None  # the group's nonlinearity, if any


@dataclass
class GroupStats:
    label: str
    mean: float
    std: float
    unit_std: float
    dead: float | None
    saturated: float | None
    weight_norm: float
    grad_norm: float

    def as_dict(self) -> dict[str, float | str | None]:
        return dict(vars(self))


@dataclass
class ProbeResult:
    loss: float
    accuracy: float
    groups: list[GroupStats] = field(default_factory=list)


def _describe(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return f"Linear {layer.in_features}->{layer.out_features}"
    if isinstance(layer, nn.Conv2d):
        k = "x".join(map(str, layer.kernel_size))
        return f"Conv2d {layer.in_channels}->{layer.out_channels} {k}"
    return type(layer).__name__


def groups_of(model: nn.Module) -> list[Group]:
    """The weight-layer groups of a Sequential (a single layer counts as a Sequential of one)."""
    layers = list(model.layers) if isinstance(model, nn.Sequential) else [model]
    starts = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear | nn.Conv2d)]
    out = []
    for k, s in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(layers)
        acts = [m for m in layers[s:stop] if isinstance(m, RELU_LIKE + SATURATING)]
        act = acts[-1] if acts else None
        label = _describe(layers[s]) + (f" + {type(act).__name__}" if act else "")
        out.append(Group(k + 1, s, stop, label, layers[s].weight, act))
    return out


@contextlib.contextmanager
def no_side_effects(model: nn.Module) -> Iterator[None]:
    """Restore buffers (BatchNorm running statistics) and every layer's random generator."""
    buffers = {n: np.array(b, copy=True) for n, b in model.named_buffers()}
    rngs = [
        (m, copy.deepcopy(m.rng.bit_generator.state))
        for m in model.modules()
        if isinstance(getattr(m, "rng", None), np.random.Generator)
    ]
    was_training = model.training
    try:
        yield
    finally:
        live = dict(model.named_buffers())
        for n, b in buffers.items():
            live[n][...] = b
        for m, state in rngs:
            m.rng.bit_generator.state = state
        model.train(was_training)


def unit_fractions(act: nn.Module, y: np.ndarray) -> tuple[float | None, float | None]:
    """(dead, saturated) fractions of an activation's output ``y`` (N, ...)."""
    flat = y.reshape(len(y), -1)
    if isinstance(act, RELU_LIKE):  # LeakyReLU: 'dead' = never in its positive part
        return float(np.mean(~(flat > 0).any(axis=0))), None
    if isinstance(act, nn.Sigmoid):
        return None, float(np.mean(flat * (1 - flat) < 0.025))
    if isinstance(act, nn.Tanh):
        return None, float(np.mean(1 - flat * flat < 0.1))
    return None, None


def probe(
    model: nn.Module, loss_fn: nn.Loss, x: np.ndarray, y: np.ndarray, train: bool = True
) -> ProbeResult:
    """Per-group statistics of one forward/backward pass on ``(x, y)`` (see module doc)."""
    groups = groups_of(model)
    layers = list(model.layers) if isinstance(model, nn.Sequential) else [model]
    with no_side_effects(model):
        model.train(train)
        model.zero_grad()
        outs = []
        h = x
        for layer in layers:
            h = layer.forward(h)
            outs.append(h)
        loss = float(loss_fn(h, y))
        acc = float(np.mean(h.argmax(axis=1) == y)) if h.ndim == 2 else float("nan")
        model.backward(loss_fn.backward())
        result = ProbeResult(loss, acc)
        for g in groups:
            out = np.asarray(outs[g.stop - 1], dtype=np.float64)
            flat = out.reshape(len(out), -1)
            dead, sat = unit_fractions(g.activation, outs[_last_act(layers, g)])
            result.groups.append(
                GroupStats(
                    g.label,
                    float(flat.mean()),
                    float(flat.std()),
                    float(flat.std(axis=0).mean()),
                    dead,
                    sat,
                    float(np.linalg.norm(g.weight.data)),
                    float(np.linalg.norm(g.weight.grad)),
                )
            )
        model.zero_grad()
    return result


def _last_act(layers: list[nn.Module], g: Group) -> int:
    """Index of the group's activation output (its last layer if it has none)."""
    if g.activation is None:
        return g.stop - 1
    return max(i for i in range(g.start, g.stop) if layers[i] is g.activation)
