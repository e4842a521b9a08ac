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


class LossValue(np.float64):
    """The loss a loss function returns: a NumPy float64 (a ``float``, with ``.item()``)
    whose ``backward()`` explains, instead of numpy's "no attribute 'backward'", that
    barenet has no autograd."""

    __slots__ = ()

    def backward(self, *args: object, **kwargs: object) -> None:
        raise TypeError(
            "barenet has no autograd: the loss is a number; backpropagate with "
            "model.backward(loss_fn.backward()) (README: 'Use it from Python')"
        )


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
        return LossValue(per.mean() if self.reduction == "mean" else per.sum())

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

    logits z: (N, C), labels y: (N,) ints in [0, C) or ``ignore_index``. With class weights
    w (default ones) and smoothing e, for each sample not ignored:

        l_n = (1 - e) w_{y_n} (-log p_{n,y_n}) + (e / C) sum_c w_c (-log p_nc),  p = softmax(z_n)

    and the loss is sum_n l_n / sum_n w_{y_n} (``reduction="mean"``: with no weights, the
    mean over the samples not ignored), sum_n l_n (``"sum"``) or l itself (``"none"``).
    dl_n/dz_n = (1 - e) w_{y_n} (p - onehot(y_n)) + (e / C) (sum_c w_c p - w).

    Or, as torch, class probabilities t: (N, C) floats (soft labels, mixup) with
    t' = (1 - e) t + e / C:  l_n = -sum_c w_c t'_nc log p_nc, the mean over all N samples
    (not weighted), and dl_n/dz_n = p sum_c w_c t'_nc - w t'_n; no ``ignore_index`` there.
    """

    def __init__(
        self,
        weight: np.ndarray | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction)
        self.weight = _class_weight(weight, "CrossEntropyLoss")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = label_smoothing

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> np.floating | np.ndarray:
        self._soft = None
        target = np.asarray(labels)
        if target.dtype.kind == "f" and target.ndim == 2:
            return self._soft_forward(logits, target)
        labels, ignored = _check_labels(self, logits, labels)
        n, c = logits.shape
        logp = log_softmax(logits)
        eps = self.label_smoothing
        if self.weight is None and ignored is None:  # the common case, in its original bits
            nll = -logp[np.arange(n), labels]
            self._cache = (logp, labels, None)
            if self.reduction == "mean":
                loss = nll.mean()
                if eps:
                    loss = (1 - eps) * loss - eps * logp.mean(axis=1).mean()
                return LossValue(loss)
            return self._reduce((1 - eps) * nll - eps * logp.mean(axis=1) if eps else nll)
        # class weights and/or ignored samples: torch's weighted form, float64 sums
        w = np.ones(c) if self.weight is None else self.weight
        keep = np.ones(n) if ignored is None else (~ignored).astype(np.float64)
        safe = labels if ignored is None else np.where(ignored, 0, labels)
        wy = w[safe] * keep  # w_{y_n}, 0 for ignored samples
        per = (1 - eps) * wy * -logp[np.arange(n), safe]
        if eps:
            per = per + (eps / c) * keep * -(logp @ w.astype(logp.dtype))
        self._cache = (logp, safe, (w, keep, wy, wy.sum()))
        if self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):  # torch: nan, no warning
                return LossValue(per.sum() / wy.sum())
        return self._reduce(per.astype(logp.dtype) if self.reduction == "none" else per)

    def _soft_forward(self, logits: np.ndarray, target: np.ndarray) -> np.floating | np.ndarray:
        if logits.ndim != 2 or target.shape != logits.shape:
            raise ValueError(
                f"CrossEntropyLoss: class probabilities must have the input's shape "
                f"{logits.shape}, got {target.shape}"
            )
        if self.weight is not None and self.weight.shape != (logits.shape[1],):
            raise ValueError(
                f"CrossEntropyLoss: weight has {self.weight.size} classes, input {logits.shape[1]}"
            )
        logp = log_softmax(logits)
        t = target.astype(logp.dtype)
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / logits.shape[1]
        wt = t if self.weight is None else t * self.weight.astype(logp.dtype)
        self._soft = (logp, wt)
        return self._reduce(-(wt * logp).sum(axis=1))

    def backward(self, grad: np.ndarray | None = None) -> np.ndarray:
        """dL/d(logits), (N, C); ``grad`` (N,) only with ``reduction="none"``."""
        if getattr(self, "_soft", None) is not None:
            logp, wt = self._soft
            out = np.exp(logp) * wt.sum(axis=1, keepdims=True) - wt
            scale = self._scale(grad, len(out), (len(out),))
            return out * (scale if np.isscalar(scale) else scale[:, None].astype(out.dtype))
        logp, labels, weighted = self._cache
        n, c = logp.shape
        out = np.exp(logp)  # softmax
        eps = self.label_smoothing
        scale = self._scale(grad, n, (n,))
        if weighted is None:
            out[np.arange(n), labels] -= 1 - eps
            if eps:
                out -= eps / c
            if self.reduction == "mean":
                out /= n  # a division, as always (bit-identical to earlier releases)
            elif not np.isscalar(scale):
                out *= scale[:, None].astype(out.dtype, copy=False)
            return out
        w, keep, wy, total = weighted
        p = out.astype(np.float64)
        g = (1 - eps) * wy[:, None] * p
        g[np.arange(n), labels] -= (1 - eps) * wy
        if eps:
            g += (eps / c) * keep[:, None] * (w.sum() * p - w)
        if self.reduction == "mean" and keep.any():  # all ignored: zero gradient, as torch
            with np.errstate(invalid="ignore", divide="ignore"):  # zero total weight: nan
                g /= total
        elif not np.isscalar(scale):
            g *= scale[:, None]
        return g.astype(logp.dtype)


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities (torch's ``NLLLoss``; after
    ``LogSoftmax(dim=1)`` it is ``CrossEntropyLoss``, which is cheaper in one step).

    logp: (N, C), labels y: (N,) ints in [0, C) or ``ignore_index``; class weights w:
    l_n = -w_{y_n} logp_{n,y_n} (0 if ignored); mean = sum_n l_n / sum_n w_{y_n}.
    dL/dlogp_{n,c} = -w_{y_n} [c = y_n] / sum_n w_{y_n} for the mean.
    """

    def __init__(
        self, weight: np.ndarray | None = None, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.weight = _class_weight(weight, "NLLLoss")
        self.ignore_index = int(ignore_index)

    def forward(self, logp: np.ndarray, labels: np.ndarray) -> np.floating | np.ndarray:
        labels, ignored = _check_labels(self, logp, labels)
        n, c = logp.shape
        safe = labels if ignored is None else np.where(ignored, 0, labels)
        wy = np.ones(n) if self.weight is None else self.weight[safe]
        if ignored is not None:
            wy = wy * ~ignored
        per = -wy * logp[np.arange(n), safe]
        self._cache = (logp.shape, logp.dtype, safe, wy, ignored)
        if self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):  # torch: nan, no warning
                return LossValue(per.sum() / wy.sum())
        return self._reduce(per.astype(logp.dtype) if self.reduction == "none" else per)

    def backward(self, grad: np.ndarray | None = None) -> np.ndarray:
        """dL/d(logp), (N, C); ``grad`` (N,) only with ``reduction="none"``."""
        shape, dtype, safe, wy, ignored = self._cache
        n = shape[0]
        everything_ignored = ignored is not None and ignored.all()  # torch: zero gradient
        scale = wy.sum() if self.reduction == "mean" and not everything_ignored else 1.0
        with np.errstate(invalid="ignore", divide="ignore"):  # zero total weight: nan, as torch
            per = -wy / scale
        if self.reduction == "none":
            per = per * self._scale(grad, n, (n,))
        out = np.zeros(shape, dtype=np.float64)
        out[np.arange(n), safe] = per
        return out.astype(dtype)


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


def _check_labels(
    loss: CrossEntropyLoss | NLLLoss, z: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """(labels as an array, the mask of ``ignore_index`` labels or None if there are none),
    after checking z is (N, C), labels N integers in [0, C) and the weight C values."""
    name = type(loss).__name__
    if z.ndim != 2:
        raise ValueError(f"{name}: input must be (N, C), got shape {z.shape}")
    n, c = z.shape
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels must be {n} integers, got {labels.dtype} {labels.shape}")
    if loss.weight is not None and loss.weight.shape != (c,):
        raise ValueError(f"{name}: weight has {loss.weight.size} classes, input {c}")
    # One comparison in the common case: as unsigned, a negative label is huge.
    # (NumPy would read a label -1 as the last class; torch refuses it.)
    if not labels.dtype.isnative:  # a big-endian array viewed as native would misread
        labels = labels.astype(labels.dtype.newbyteorder("="))
    outside = labels.view(f"u{labels.itemsize}") >= c
    ignored = None
    ii = loss.ignore_index
    # torch ignores ignore_index also when it is a class (e.g. 0 for a background class).
    if 0 <= ii < c or (outside.any() and labels.dtype.kind == "i"):
        ignored = labels == ii
        if not ignored.any():
            ignored = None
    if outside.any():
        bad = labels[outside if ignored is None else outside & ~ignored]
        if bad.size:
            raise ValueError(f"{name}: labels must lie in [0, {c}), got {bad[0]}")
    return labels, ignored


def _class_weight(weight: np.ndarray | None, name: str) -> np.ndarray | None:
    """``weight`` as a float64 array, checked to be finite and 1-D (one per class)."""
    if isinstance(weight, (int, float)):  # the old positional label_smoothing
        raise TypeError(f"{name}(weight, ...): pass label_smoothing= by name")
    w = None if weight is None else np.asarray(weight, dtype=np.float64)
    if w is not None and (w.ndim != 1 or not np.isfinite(w).all()):
        raise ValueError(f"{name}: weight must be a finite 1-D array, one per class")
    return w
