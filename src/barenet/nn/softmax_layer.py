"""Softmax and LogSoftmax as layers along one axis (torch's ``nn.Softmax(dim)``,
``nn.LogSoftmax(dim)``). For training a classifier, ``CrossEntropyLoss`` on the logits is
the same loss in one step; these are for ``LogSoftmax`` + ``NLLLoss`` code and probabilities."""

from __future__ import annotations

import numpy as np

from .module import Module


def _dim(dim: int | None, x: np.ndarray) -> int:
    if dim is None:
        raise TypeError("pass dim= explicitly (torch's implicit dim is deprecated)")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim {dim} is out of range for an input of shape {x.shape}")
    return dim


class LogSoftmax(Module):
    """y = x - log(sum_j exp(x_j)) along ``dim`` (stable: the max is subtracted first).
    dL/dx = g - softmax(x) * sum_j g_j.  x: any shape."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        d = _dim(self.dim, x)
        shifted = x - x.max(axis=d, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=d, keepdims=True))
        self._y = y
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        d = _dim(self.dim, self._y)
        return grad_out - np.exp(self._y) * grad_out.sum(axis=d, keepdims=True)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(Module):
    """y = exp(x) / sum_j exp(x_j) along ``dim``.  dL/dx = y * (g - sum_j g_j y_j)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        d = _dim(self.dim, x)
        e = np.exp(x - x.max(axis=d, keepdims=True))
        self._y = e / e.sum(axis=d, keepdims=True)
        return self._y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._y
        return y * (grad_out - (grad_out * y).sum(axis=_dim(self.dim, y), keepdims=True))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
