"""Losses. ``loss = loss_fn(pred, target)`` returns the loss (a NumPy float64 scalar: a
``float`` with ``.item()``, as torch users write) and caches what ``loss_fn.backward()``
needs to return dL/d(pred)."""

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


REDUCTIONS = ("mean", "sum", "none")


class Loss:
    """Base: ``__call__`` = ``forward``. ``reduction`` as in torch: ``"mean"`` (default) or
    ``"sum"`` give a scalar, ``"none"`` the per-sample losses, whose ``backward(grad)`` takes
    dL/d(loss) of the same shape (default: ones, i.e. the gradient of their sum)."""

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
        self.reduction = reduction

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> np.floating | np.ndarray:
        return self.forward(pred, target)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> np.floating | np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def backward(self, grad: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def _reduce(self, per: np.ndarray) -> np.floating | np.ndarray:
        """The loss returned: a NumPy float64 scalar (a ``float``, with torch's ``.item()``)
        for mean and sum, the array itself for none."""
        if self.reduction == "none":
            return per
        return np.float64(per.mean() if self.reduction == "mean" else per.sum())

    def _scale(
        self, grad: np.ndarray | None, count: int, shape: tuple[int, ...]
    ) -> np.ndarray | float:
        """d(reduced loss)/d(per-element loss): 1/count, 1, or ``grad`` (checked to have
        the per-element losses' shape)."""
        if self.reduction == "mean":
            return 1.0 / count
        if self.reduction == "sum" or grad is None:
            return 1.0
        grad = np.asarray(grad)
        if grad.shape != shape:
            raise ValueError(f"backward: grad shape {grad.shape} != loss shape {shape}")
        return grad


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits with integer labels (torch's ``CrossEntropyLoss``).

    logits z: (N, C), labels y: (N,) ints in [0, C). With smoothing e the target is
    q = (1 - e) onehot(y) + e / C, and l_n = -sum_c q_nc log softmax(z)_nc; the loss is
    mean_n l_n (``reduction="mean"``), sum_n l_n, or l itself (``"none"``).
    dl_n/dz_n = softmax(z_n) - q_n, so dL/dz = (softmax(z) - q) / N for the mean.
    """

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> np.floating | np.ndarray:
        if logits.ndim != 2:
            raise ValueError(f"CrossEntropyLoss: logits must be (N, C), got shape {logits.shape}")
        n, c = logits.shape
        labels = np.asarray(labels)
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"CrossEntropyLoss: labels must be {n} integers, got {labels.dtype} {labels.shape}"
            )
        # NumPy would read a label -1 as the last class; torch refuses it
        if n and (labels.min() < 0 or labels.max() >= c):
            raise ValueError(
                f"CrossEntropyLoss: labels must lie in [0, {c}), got {labels.min()}..{labels.max()}"
            )
        logp = log_softmax(logits)
        rows = np.arange(n)
        eps = self.label_smoothing
        nll = -logp[rows, labels]
        self._cache = (logp, labels)
        if self.reduction == "mean":  # kept as two means: the bits of earlier releases
            loss = nll.mean()
            if eps:
                loss = (1 - eps) * loss - eps * logp.mean(axis=1).mean()
            return np.float64(loss)
        return self._reduce((1 - eps) * nll - eps * logp.mean(axis=1) if eps else nll)

    def backward(self, grad: np.ndarray | None = None) -> np.ndarray:
        """dL/d(logits), (N, C); ``grad`` (N,) only with ``reduction="none"``."""
        logp, labels = self._cache
        n, c = logp.shape
        out = np.exp(logp)  # softmax
        eps = self.label_smoothing
        out[np.arange(n), labels] -= 1 - eps
        if eps:
            out -= eps / c
        scale = self._scale(grad, n, (n,))
        if self.reduction == "mean":
            out /= n  # a division, as always (bit-identical to earlier releases)
        elif not np.isscalar(scale):
            out *= scale[:, None].astype(out.dtype, copy=False)
        return out


class MSELoss(Loss):
    """l = (pred - target)^2 element-wise; L = mean(l) (default), sum(l) or l (``"none"``).
    dL/dpred = 2 (pred - target) / numel for the mean."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> np.floating | np.ndarray:
        # Same shape required: broadcasting (N, 1) against (N,) would silently give an (N, N)
        # loss and a gradient of the wrong shape. Cast so float32 predictions keep float32 grads.
        target = np.asarray(target, dtype=pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(f"MSELoss: pred shape {pred.shape} != target shape {target.shape}")
        self._diff = pred - target
        return self._reduce(self._diff * self._diff)

    def backward(self, grad: np.ndarray | None = None) -> np.ndarray:
        d = self._diff
        if self.reduction == "mean":
            return d * (2.0 / d.size)
        scale = self._scale(grad, d.size, d.shape)
        return d * 2.0 if np.isscalar(scale) else d * (2.0 * scale.astype(d.dtype, copy=False))
