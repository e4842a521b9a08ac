"""Batched forward passes that keep what plots need: probabilities, hidden features, feature maps.

The model is an ``nn.Sequential`` in eval mode; layers run one by one so intermediate outputs
can be taken. Inputs go through in batches (never a whole test set through a CNN at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn

BATCH = 1000


def _is(layer: nn.Module, name: str) -> bool:
    cls = getattr(nn, name, None)
    return cls is not None and isinstance(layer, cls)


def layers_of(model: nn.Module) -> list[nn.Module]:
    """The top-level layers of a Sequential (a lone module is its own single layer)."""
    return list(getattr(model, "layers", [model]))


def last_linear_index(model: nn.Module) -> int:
    """Index of the final Linear layer (the classifier)."""
    idx = [i for i, layer in enumerate(layers_of(model)) if _is(layer, "Linear")]
    if not idx:
        raise ValueError("the model has no Linear layer")
    return idx[-1]


def conv_indices(model: nn.Module) -> list[int]:
    """Indices of the Conv2d layers, in order."""
    return [i for i, layer in enumerate(layers_of(model)) if _is(layer, "Conv2d")]


@dataclass
class Outputs:
    """``probs`` (N, K) softmax outputs; ``features`` (N, D) input of the final Linear."""

    probs: np.ndarray
    features: np.ndarray


def run_batches(model: nn.Module, x: np.ndarray, batch_size: int = BATCH) -> Outputs:
    """Softmax probabilities and last-hidden-layer features of ``x``, ``batch_size`` at a time."""
    layers = layers_of(model)
    cut = last_linear_index(model)
    probs, feats = [], []
    for start in range(0, len(x), batch_size):
        h = x[start : start + batch_size]
        for layer in layers[:cut]:
            h = layer.forward(h)
        feats.append(np.array(h.reshape(len(h), -1), dtype=np.float32))
        for layer in layers[cut:]:
            h = layer.forward(h)
        probs.append(nn.softmax(np.asarray(h, dtype=np.float64)))
    k = 0 if not probs else probs[0].shape[1]
    return Outputs(
        probs=np.concatenate(probs) if probs else np.zeros((0, k)),
        features=np.concatenate(feats) if feats else np.zeros((0, 0), np.float32),
    )


def conv_feature_maps(model: nn.Module, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """For each conv layer, the maps after its block's activation: ``[(name, (N, C, H, W))]``.

    A block is conv -> [batch norm] -> activation; the map is taken after the activation (what
    the next layer sees, before pooling), or after the conv itself if nothing follows it.
    ``x`` should be a few images: everything is kept in memory.
    """
    layers = layers_of(model)
    convs = set(conv_indices(model))
    out: list[tuple[str, np.ndarray]] = []
    h = x
    current: int | None = None
    for i, layer in enumerate(layers):
        h = layer.forward(h)
        if i in convs:
            current = i
            out.append((f"conv{len(out) + 1} (layer {i})", np.array(h)))
        elif (
            current is not None
            and h.ndim == 4
            and (_is(layer, "BatchNorm2d") or not _is_structural(layer))
        ):
            out[-1] = (out[-1][0], np.array(h))  # still inside the block: keep the later map
        else:
            current = None
    return out


def _is_structural(layer: nn.Module) -> bool:
    """Pooling, dropout, flatten and linear layers end a conv block."""
    names = ("MaxPool2d", "AvgPool2d", "Dropout", "Dropout2d", "Flatten", "Linear", "Conv2d")
    return any(_is(layer, n) for n in names) or "Pool" in type(layer).__name__
