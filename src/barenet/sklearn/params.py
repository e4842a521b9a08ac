"""The estimators' parameters checked as scikit-learn checks them, named as they name them."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def is_int(v: Any) -> bool:
    """An int as scikit-learn's parameter checks take it: NumPy's too (a grid over
    np.arange), never a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_real(name: str, value: Any, low: float, high: float, low_ok: bool = True) -> None:
    """scikit-learn's parameter check: a real number in [low, high) (or (low, high)), named
    by the estimator's parameter, not the config key it becomes."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (real and (low <= value if low_ok else low < value) and value < high):
        interval = f"{'[' if low_ok else '('}{low:g}, {high:g})"
        raise ValueError(f"{name} must be a real number in {interval}, got {value!r}")


ACTIVATIONS = ("relu", "tanh", "logistic", "identity", "sigmoid", "leaky_relu")


def sizes(v: Any) -> list[int]:
    """Layer sizes from a tuple, list, NumPy array or a single int; None or empty: none."""
    return [] if v is None or np.size(v) == 0 else [int(h) for h in np.atleast_1d(v)]


def activation(name: Any) -> Any:
    """scikit-learn's activation names to barenet's: ``logistic`` is ``sigmoid``."""
    return "sigmoid" if name == "logistic" else name


def store_params(estimator: Any, params: dict[str, Any]) -> None:
    """scikit-learn's rule for ``__init__``: each parameter stored untouched under its own
    name (``params``: the ``__init__``'s ``locals()``), nothing else, no validation."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)
