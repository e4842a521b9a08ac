"""Element-wise activations. Each caches only what its derivative needs."""

from __future__ import annotations

import numpy as np

from . import parallel
from .module import Module


class ReLU(Module):
    """y = max(x, 0);  dy/dx = 1[x > 0]. Large arrays are split between barenet's threads
    (exact: the same bits on any count); outputs keep the input's memory layout.
    ``inplace`` is accepted for torch code; the output is always a new array (x is kept)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: np.ndarray) -> np.ndarray:
        parts = parallel.outer_slices(x)
        if len(parts) == 1:
            self._mask = x > 0
            return x * self._mask
        mask, y = np.empty_like(x, dtype=bool), np.empty_like(x)

        def part(sl: tuple[slice, ...]) -> None:
            np.greater(x[sl], 0, out=mask[sl])
            np.multiply(x[sl], mask[sl], out=y[sl])

        parallel.run([lambda sl=sl: part(sl) for sl in parts])
        self._mask = mask
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        mask = self._mask
        parts = parallel.outer_slices(mask)
        if len(parts) == 1:
            return grad_out * mask
        dx = np.empty_like(mask, dtype=grad_out.dtype)  # mask's (= x's) layout
        parallel.run(
            [lambda sl=sl: np.multiply(grad_out[sl], mask[sl], out=dx[sl]) for sl in parts]
        )
        return dx


class LeakyReLU(Module):
    """y = x if x > 0 else a*x;  dy/dx = 1 or a. ``inplace`` as ReLU's (accepted, out of place)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x: np.ndarray) -> np.ndarray:
        # slope per element, cast to x's dtype so float32 stays float32
        self._slope = np.where(x > 0, 1, self.negative_slope).astype(x.dtype, copy=False)
        return x * self._slope

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self._slope

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """y = 1 / (1 + e^-x);  dy/dx = y (1 - y).

    Computed as 1/(1+e) for x >= 0 and e/(1+e) for x < 0 with e = exp(-|x|): never
    overflows, and keeps full relative precision in the negative tail (0.5*(1+tanh(x/2))
    cancels to 0 there, e.g. for x < -17 in float32).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1, e)
        y /= 1 + e
        self._y = y
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._y
        return grad_out * y * (1 - y)


class Tanh(Module):
    """y = tanh(x);  dy/dx = 1 - y^2."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * (1 - self._y * self._y)


class Identity(Module):
    """y = x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out


ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
}


def activation(name: str, negative_slope: float = 0.01) -> Module:
    """Build an activation by name: relu, leaky_relu, sigmoid, tanh or identity."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}'; choose one of {', '.join(ACTIVATIONS)}")
    if name == "leaky_relu":
        return LeakyReLU(negative_slope)
    return ACTIVATIONS[name]()
