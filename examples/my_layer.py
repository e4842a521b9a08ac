"""A layer of your own, checked with ``barenet gradcheck``.

    barenet gradcheck examples/my_layer.py:Swish --input-shape 4,6       # fails: a term missing
    barenet gradcheck examples/my_layer.py:FixedSwish --input-shape 4,6  # passes
    barenet gradcheck examples/my_layer.py:net                           # the fixed layer in a net

Swish (Ramachandran et al. 2017): y = x * sigmoid(x), so
dy/dx = sigmoid(x) + x * sigmoid(x) * (1 - sigmoid(x)) -- two terms by the product rule.
"""

import numpy as np

from barenet import nn


class Swish(nn.Module):
    """y = x * sigmoid(x), with a backward that forgets the product rule's second term."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x, self._s = x, 1.0 / (1.0 + np.exp(-x))
        return x * self._s

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self._s  # BUG: the term x * s * (1 - s) is missing


class FixedSwish(Swish):
    """The same forward, with both terms of the derivative."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        s = self._s
        return grad_out * (s + self._x * s * (1.0 - s))


def net() -> nn.Sequential:
    """A small MLP using the fixed layer (gradcheck guesses the input shape: (4, 20))."""
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(20, 16, rng=rng), FixedSwish(), nn.Linear(16, 10, rng=rng))
