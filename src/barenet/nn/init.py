"""Weight initialisers. Each takes a shape, fans and an explicit Generator.

For a weight of shape ``(out, in, *kernel)``: fan_in = in * prod(kernel),
fan_out = out * prod(kernel), as in ``torch.nn.init``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

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


# -- torch's in-place initialisers (``model.apply(fn)`` code) ---------------------------------
# Each fills ``p.data`` (a Parameter or an array) in place and returns it. ``generator``: a
# Generator or a seed; None is seed 0, as the layers' ``rng`` (pass one Generator to all
# calls so that layers of the same shape get different draws).


def _fill(p: Any, values: np.ndarray) -> Any:
    data = p.data if hasattr(p, "data") and not isinstance(p, np.ndarray) else p
    data[...] = values.astype(data.dtype, copy=False)
    return p


def _shape(p: Any) -> tuple[int, ...]:
    return tuple(np.shape(p.data if not isinstance(p, np.ndarray) else p))


def _fans(p: Any) -> tuple[int, int]:
    shape = _shape(p)
    if len(shape) < 2:  # as torch: a bias has no fans
        raise ValueError(f"fan in and fan out need a weight of 2 or more dimensions, got {shape}")
    return fans(shape)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch's gains: 1 for linear/conv/sigmoid, 5/3 tanh, sqrt(2) relu,
    sqrt(2 / (1 + a^2)) leaky_relu (a = param, default 0.01), 3/4 selu."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def uniform_(p: Any, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Any:
    return _fill(p, as_rng(generator).uniform(a, b, _shape(p)))


def normal_(p: Any, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Any:
    return _fill(p, as_rng(generator).normal(mean, std, _shape(p)))


def constant_(p: Any, val: float) -> Any:
    return _fill(p, np.full(_shape(p), float(val)))


def zeros_(p: Any) -> Any:
    return constant_(p, 0.0)


def ones_(p: Any) -> Any:
    return constant_(p, 1.0)


def xavier_uniform_(p: Any, gain: float = 1.0, generator: Any = None) -> Any:
    """U(-a, a), a = gain sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(p)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(p, -a, a, generator)


def xavier_normal_(p: Any, gain: float = 1.0, generator: Any = None) -> Any:
    """N(0, gain^2 2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(p)
    return normal_(p, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(p: Any, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(p)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(
    p: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Any:
    """U(-b, b), b = sqrt(3) gain / sqrt(fan): torch's defaults (a=sqrt(5) is its layers')."""
    bound = math.sqrt(3.0) * _kaiming_std(p, a, mode, nonlinearity)
    return uniform_(p, -bound, bound, generator)


def kaiming_normal_(
    p: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Any:
    """N(0, (gain / sqrt(fan))^2)."""
    return normal_(p, 0.0, _kaiming_std(p, a, mode, nonlinearity), generator)


def trunc_normal_(
    p: Any,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Any = None,
) -> Any:
    """N(mean, std^2) truncated to [a, b] (absolute bounds, as torch's; scipy's truncnorm)."""
    from scipy.stats import truncnorm

    if not a < b or std <= 0:
        raise ValueError(f"trunc_normal_ needs a < b and std > 0, got a={a}, b={b}, std={std}")
    lo, hi = (a - mean) / std, (b - mean) / std
    values = truncnorm.rvs(
        lo, hi, loc=mean, scale=std, size=_shape(p), random_state=as_rng(generator)
    )
    return _fill(p, np.clip(values, a, b))


def orthogonal_(p: Any, gain: float = 1.0, generator: Any = None) -> Any:
    """A (semi-)orthogonal matrix times ``gain`` over (shape[0], rest), as torch's: Q of the
    QR of a normal matrix, its signs fixed by R's diagonal (so Q is uniformly distributed)."""
    shape = _shape(p)
    if len(shape) < 2:
        raise ValueError("orthogonal_ needs at least 2 dimensions")
    rows, cols = shape[0], math.prod(shape[1:])
    flat = as_rng(generator).normal(size=(rows, cols))
    q, r = np.linalg.qr(flat.T if rows < cols else flat)
    q *= np.sign(np.diag(r))
    return _fill(p, gain * (q.T if rows < cols else q).reshape(shape))


def eye_(p: Any) -> Any:
    """The identity (ones on the diagonal of a 2-D array, as torch's)."""
    shape = _shape(p)
    if len(shape) != 2:
        raise ValueError("eye_ needs a 2-D array")
    return _fill(p, np.eye(*shape))
