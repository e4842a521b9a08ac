"""CrossEntropyLoss and NLLLoss against torch (float64, seeded random shapes) where the
labels are unusual: ``ignore_index`` naming a real class, every sample ignored, labels as
int32 / uint8 arrays or a Python list. (The common cases: ``test_nn_parity.py``.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from barenet import nn

RTOL, ATOL = 1e-6, 1e-10


def both(kind: str, z: np.ndarray, y, w, ignore_index: int, reduction: str, eps: float, g):
    """(loss, dL/dz) from barenet and from torch, for ``kind`` "ce" or "nll"."""
    if kind == "ce":
        ours = nn.CrossEntropyLoss(w, ignore_index, reduction, label_smoothing=eps)
    else:
        ours = nn.NLLLoss(w, ignore_index, reduction)
    zt = torch.tensor(z, requires_grad=True)
    kw = {"weight": None if w is None else torch.tensor(w), "reduction": reduction}
    yt = torch.tensor(np.asarray(y, dtype=np.int64))
    if kind == "ce":
        lt = F.cross_entropy(zt, yt, ignore_index=ignore_index, label_smoothing=eps, **kw)
    else:
        lt = F.nll_loss(zt, yt, ignore_index=ignore_index, **kw)
    lt.backward(None if g is None else torch.tensor(g))
    loss = ours(z, y)
    return (loss, ours.backward(g)), (lt.detach().numpy(), zt.grad.numpy())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["ce", "nll"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [True, False])
def test_ignore_index_that_is_a_class(seed: int, kind: str, reduction: str, weighted: bool):
    """torch skips samples labelled ``ignore_index`` also when it lies in [0, C) (e.g. a
    background class 0): they add nothing to the loss, the mean's divisor or the gradient."""
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(3, 40)), int(rng.integers(2, 12))
    z, y = rng.standard_normal((n, c)) * 3, rng.integers(0, c, n)
    ignore_index = int(rng.integers(0, c))
    y[rng.random(n) < 0.3] = ignore_index
    y[0] = ignore_index
    y[1] = (ignore_index + 1) % c  # at least one kept
    w = rng.uniform(0.1, 3.0, c) if weighted else None
    g = rng.standard_normal(n) if reduction == "none" else None
    eps = 0.1 * seed
    (loss, grad), (lt, gt) = both(kind, z, y, w, ignore_index, reduction, eps, g)
    np.testing.assert_allclose(loss, lt, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, gt, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", ["ce", "nll"])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_every_sample_ignored(kind: str, weighted: bool, ignore_index: int) -> None:
    """torch: the mean is nan (0/0) and the gradient zeros, not nan."""
    rng = np.random.default_rng(abs(ignore_index))
    z, y = rng.standard_normal((5, 4)), np.full(5, ignore_index)
    w = rng.uniform(0.5, 2.0, 4) if weighted else None
    (loss, grad), (lt, gt) = both(kind, z, y, w, ignore_index, "mean", 0.1, None)
    assert np.isnan(loss) and np.isnan(lt)
    np.testing.assert_array_equal(grad, gt)


@pytest.mark.parametrize("labels", ["int32", "uint8", "int16", "list"])
@pytest.mark.parametrize("kind", ["ce", "nll"])
def test_label_types(labels: str, kind: str) -> None:
    """Narrow label types (uint8 labels can only skip a class: ignore_index=1 here) give
    torch's int64 result."""
    rng = np.random.default_rng(3)
    n, c = 9, 5
    z, y = rng.standard_normal((n, c)), rng.integers(0, c, n)
    ours_y = y.tolist() if labels == "list" else y.astype(labels)
    w = rng.uniform(0.5, 2.0, c)
    (loss, grad), (lt, gt) = both(kind, z, ours_y, w, 1, "mean", 0.0, None)
    np.testing.assert_allclose(loss, lt, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, gt, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_class_probability_targets(seed: int, reduction: str, weighted: bool, eps: float):
    """torch takes (N, C) float targets (soft labels, mixup); barenet refused them as
    'labels must be N integers'. Normalised or not, weighted, smoothed, every reduction."""
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 9)), int(rng.integers(2, 7))
    z, t = rng.standard_normal((n, c)), rng.random((n, c))
    if seed:
        t /= t.sum(axis=1, keepdims=True)
    w = rng.random(c) + 0.1 if weighted else None
    g = rng.standard_normal(n) if reduction == "none" else None
    ours = nn.CrossEntropyLoss(w, reduction=reduction, label_smoothing=eps)
    loss, dz = ours(z, t), ours.backward(g)
    zt = torch.tensor(z, requires_grad=True)
    kw = {"weight": None if w is None else torch.tensor(w), "label_smoothing": eps}
    lt = F.cross_entropy(zt, torch.tensor(t), reduction=reduction, **kw)
    lt.backward(None if g is None else torch.tensor(g))
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=RTOL, atol=ATOL)
    # and against finite differences of barenet's own loss
    fd = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        d = np.zeros_like(z)
        d[i] = 1e-6
        up, down = ours(z + d, t), ours(z - d, t)
        fd[i] = ((up - down) if g is None else (up - down) @ g) / 2e-6
    np.testing.assert_allclose(dz, fd, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="class probabilities must have the input's shape"):
        ours(z, t[:, :1])
