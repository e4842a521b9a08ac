"""Losses. ``loss = loss_fn(pred, target)`` returns a float and caches what
``loss_fn.backward()`` needs to return dL/d(pred)."""

from __future__ import annotations

import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log softmax, stable: z - max - log(sum(exp(z - max)))."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Loss:
    """Base: ``__call__`` = ``forward``."""

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        return self.forward(pred, target)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:  # pragma: no cover
        raise NotImplementedError

    def backward(self) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits with integer labels, mean over the batch.

    logits z: (N, C), labels y: (N,) ints in [0, C). With smoothing e the target is
    q = (1 - e) onehot(y) + e / C, and L = -(1/N) sum_n sum_c q_nc log softmax(z)_nc.
    dL/dz = (softmax(z) - q) / N.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        n, c = logits.shape
        logp = log_softmax(logits)
        rows = np.arange(n)
        eps = self.label_smoothing
        nll = -logp[rows, labels]
        if eps:
            loss = (1 - eps) * nll.mean() - eps * logp.mean(axis=1).mean()
        else:
            loss = nll.mean()
        self._cache = (logp, labels)
        return float(loss)

    def backward(self) -> np.ndarray:
        logp, labels = self._cache
        n, c = logp.shape
        grad = np.exp(logp)  # softmax
        eps = self.label_smoothing
        grad[np.arange(n), labels] -= 1 - eps
        if eps:
            grad -= eps / c
        grad /= n
        return grad


class MSELoss(Loss):
    """L = mean((pred - target)^2) over all elements; dL/dpred = 2 (pred - target) / numel."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        # Same shape required: broadcasting (N, 1) against (N,) would silently give an (N, N)
        # loss and a gradient of the wrong shape. Cast so float32 predictions keep float32 grads.
        target = np.asarray(target, dtype=pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(f"MSELoss: pred shape {pred.shape} != target shape {target.shape}")
        self._diff = pred - target
        return float(np.mean(self._diff * self._diff))

    def backward(self) -> np.ndarray:
        return self._diff * (2.0 / self._diff.size)
