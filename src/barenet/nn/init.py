"""Weight initialisers. Each takes a shape, fans and an explicit Generator.

For a weight of shape ``(out, in, *kernel)``: fan_in = in * prod(kernel),
fan_out = out * prod(kernel), as in ``torch.nn.init``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

INITS = ("zeros", "normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "default")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped ``(out, in, *kernel)``."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def init_weight(
    shape: tuple[int, ...],
    method: str,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float32,
    std: float = 0.02,
    gain: float = 1.0,
) -> np.ndarray:
    """Draw a weight array.

    - ``zeros``: all 0 (the reference studies' failure case: symmetric units never separate).
    - ``normal``: N(0, std^2).
    - ``xavier_uniform``: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).
    - ``xavier_normal``: N(0, gain^2 * 2 / (fan_in + fan_out)).
    - ``he_uniform`` / ``he_normal``: Kaiming for ReLU, std = sqrt(2 / fan_in).
    - ``default``: PyTorch's Linear/Conv default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """
    fan_in, fan_out = fans(shape)
    draw: dict[str, Callable[[], np.ndarray]] = {
        "zeros": lambda: np.zeros(shape),
        "normal": lambda: rng.normal(0.0, std, shape),
        "xavier_uniform": lambda: (
            rng.uniform(-1, 1, shape) * gain * math.sqrt(6.0 / (fan_in + fan_out))
        ),
        "xavier_normal": lambda: rng.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape),
        "he_uniform": lambda: rng.uniform(-1, 1, shape) * math.sqrt(6.0 / fan_in),
        "he_normal": lambda: rng.normal(0.0, math.sqrt(2.0 / fan_in), shape),
        "default": lambda: rng.uniform(-1, 1, shape) / math.sqrt(fan_in),
    }
    if method not in draw:
        raise ValueError(f"unknown init '{method}'; choose one of {', '.join(INITS)}")
    return draw[method]().astype(dtype)


def init_bias(
    fan_in: int, n: int, method: str, rng: np.random.Generator, dtype: np.dtype | type = np.float32
) -> np.ndarray:
    """Biases start at zero, except ``default`` (PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)))."""
    if method == "default":
        return (rng.uniform(-1, 1, n) / math.sqrt(fan_in)).astype(dtype)
    return np.zeros(n, dtype=dtype)


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator or a seed. ``None`` means seed 0, never the global state."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)
