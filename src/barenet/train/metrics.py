"""Classification metrics, vectorised: no Python loop over samples."""

from __future__ import annotations

import numpy as np

__all__ = ["MeanMetric", "accuracy", "confusion_matrix", "num_correct", "per_class_accuracy"]


def _predictions(logits_or_pred: np.ndarray) -> np.ndarray:
    """(N, C) scores -> (N,) argmax; (N,) class indices pass through."""
    a = np.asarray(logits_or_pred)
    return a.argmax(axis=1) if a.ndim == 2 else a


def num_correct(logits: np.ndarray, labels: np.ndarray) -> int:
    """Number of rows whose argmax equals the label. logits: (N, C) or predictions (N,)."""
    return int(np.count_nonzero(_predictions(logits) == np.asarray(labels)))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of correct argmax predictions; logits (N, C) or predictions (N,). NaN if N = 0."""
    n = len(labels)
    return num_correct(logits, labels) / n if n else float("nan")


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; ``cm[t, p]`` = samples of true class t predicted as p.

    ``pred`` may be class indices (N,) or scores (N, C). One ``np.bincount`` over
    the flattened pair index ``t * C + p``.
    """
    p = _predictions(pred).astype(np.int64, copy=False).ravel()
    t = np.asarray(labels).astype(np.int64, copy=False).ravel()
    if p.shape != t.shape:
        raise ValueError(f"pred has {p.size} entries, labels {t.size}")
    c = int(num_classes)
    if p.size and (min(p.min(), t.min()) < 0 or max(p.max(), t.max()) >= c):
        raise ValueError(f"class indices must lie in [0, {c})")
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per true class: ``diag(cm) / cm.sum(axis=1)``; NaN for a class with no samples."""
    cm = np.asarray(cm)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


class MeanMetric:
    """Running weighted mean: ``update(value, weight)``; ``result()`` = sum(w v) / sum(w).

    Used for epoch loss/accuracy with the batch size as the weight, so a short
    last batch counts for what it holds.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update(self, value: float, weight: float = 1.0) -> None:
        self.total += float(value) * weight
        self.count += weight

    def result(self) -> float:
        """The mean so far; NaN before any update."""
        return self.total / self.count if self.count else float("nan")

    def __repr__(self) -> str:
        return f"MeanMetric(result={self.result():.6g}, count={self.count:g})"
