"""barenet.train.metrics against brute-force Python computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from barenet.train.metrics import (
    MeanMetric,
    accuracy,
    confusion_matrix,
    num_correct,
    per_class_accuracy,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_matches_loop(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 60)), int(rng.integers(2, 8))
    logits = rng.standard_normal((n, c))
    labels = rng.integers(0, c, n)
    hits = sum(int(max(range(c), key=lambda j: logits[i, j]) == labels[i]) for i in range(n))
    assert num_correct(logits, labels) == hits
    assert accuracy(logits, labels) == pytest.approx(hits / n)
    assert accuracy(logits.argmax(1), labels) == pytest.approx(hits / n)  # predictions accepted


def test_accuracy_empty_is_nan():
    assert math.isnan(accuracy(np.zeros((0, 3)), np.zeros(0, dtype=int)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_matches_loop(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 9))
    n = int(rng.integers(1, 200))
    pred, labels = rng.integers(0, c, n), rng.integers(0, c, n)
    brute = [[0] * c for _ in range(c)]
    for p, t in zip(pred.tolist(), labels.tolist(), strict=True):
        brute[t][p] += 1
    cm = confusion_matrix(pred, labels, c)
    assert cm.shape == (c, c) and cm.dtype == np.int64
    assert cm.tolist() == brute
    # Scores give the same matrix as their argmax.
    scores = np.eye(c)[pred] + 0.01 * rng.random((n, c))
    assert confusion_matrix(scores, labels, c).tolist() == brute


def test_confusion_matrix_rejects_out_of_range():
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1]), np.array([-1, 1]), 3)
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1, 2]), np.array([0, 1]), 3)


def test_per_class_accuracy():
    cm = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    got = per_class_accuracy(cm)
    assert got[0] == pytest.approx(0.75)
    assert math.isnan(got[1])  # no samples of class 1
    assert got[2] == pytest.approx(0.5)


def test_mean_metric_weighted():
    m = MeanMetric()
    assert math.isnan(m.result())
    values, weights = [0.5, 1.5, 3.0], [32, 32, 4]
    for v, w in zip(values, weights, strict=True):
        m.update(v, w)
    expect = sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)
    assert m.result() == pytest.approx(expect)
    assert m.count == 68
    m.reset()
    m.update(2.0)
    assert m.result() == 2.0
