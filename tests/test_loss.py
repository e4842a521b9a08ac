"""Losses: values against direct formulas, finite-difference gradients, stability, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad

from barenet.nn import CrossEntropyLoss, MSELoss, log_softmax, softmax


def reference_ce(z: np.ndarray, y: np.ndarray, eps: float) -> float:
    """-(1/N) sum_n sum_c q_nc log softmax(z)_nc with q = (1-eps) onehot + eps/C, written out
    with a float64 log-sum-exp per row (no shared code with the implementation)."""
    n, c = z.shape
    total = 0.0
    for i in range(n):
        m = max(z[i])
        lse = m + np.log(sum(np.exp(v - m) for v in z[i]))
        for k in range(c):
            q = (1 - eps) * (k == y[i]) + eps / c
            total -= q * (z[i, k] - lse)
    return total / n


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 1.0])
def test_cross_entropy_value_and_numeric_grad(eps: float) -> None:
    rng = np.random.default_rng(int(eps * 10))
    z = 3 * rng.standard_normal((6, 5))
    y = rng.integers(0, 5, 6)
    loss_fn = CrossEntropyLoss(label_smoothing=eps)
    loss = loss_fn(z, y)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, reference_ce(z, y, eps), rtol=1e-12)
    grad = loss_fn.backward()
    np.testing.assert_allclose(grad, numeric_grad(lambda: loss_fn(z, y), z), rtol=1e-6, atol=1e-9)
    # each row of dL/dz sums to zero (softmax and q both sum to one)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)


def test_cross_entropy_accepts_uint8_labels() -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 10))
    y = np.array([0, 9, 3, 3], np.uint8)
    loss_fn = CrossEntropyLoss()
    np.testing.assert_allclose(loss_fn(z, y), reference_ce(z, y, 0.0), rtol=1e-12)


def test_loss_is_a_float_with_item_like_torchs() -> None:
    z, y = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), np.arange(4) % 3
    for loss in (CrossEntropyLoss()(z, y), MSELoss()(z, np.zeros_like(z))):
        assert isinstance(loss, float) and isinstance(loss.item(), float)
        assert loss.item() == float(loss) and np.isfinite(loss)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, 1, -1]), r"\[0, 3\)"),  # NumPy would silently read -1 as class 2
        (np.array([0, 1, 3]), r"\[0, 3\)"),
        (np.array([0.0, 1.0, 2.0]), "integers"),
        (np.array([0, 1]), "3 integers"),
    ],
)
def test_cross_entropy_rejects_bad_labels(labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CrossEntropyLoss()(np.zeros((3, 3)), labels)


def test_reduction_checked_and_none_grad_shape() -> None:
    with pytest.raises(ValueError, match="reduction"):
        CrossEntropyLoss(reduction="avg")
    loss_fn = MSELoss(reduction="none")
    per = loss_fn(np.ones((2, 3)), np.zeros((2, 3)))
    assert per.shape == (2, 3)
    np.testing.assert_array_equal(loss_fn.backward(), np.full((2, 3), 2.0))  # grad of sum
    with pytest.raises(ValueError, match="shape"):
        loss_fn.backward(np.ones(2))


def test_cross_entropy_rejects_bad_smoothing() -> None:
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError):
            CrossEntropyLoss(label_smoothing=bad)


def test_mse_value_and_numeric_grad() -> None:
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss_fn = MSELoss()
    np.testing.assert_allclose(loss_fn(pred, target), ((pred - target) ** 2).sum() / 12)
    grad = loss_fn.backward()
    np.testing.assert_allclose(grad, numeric_grad(lambda: loss_fn(pred, target), pred), rtol=1e-6)


def test_mse_rejects_shape_mismatch() -> None:
    # (N, 1) vs (N,) would broadcast to (N, N) and return a gradient of the wrong shape
    with pytest.raises(ValueError, match="shape"):
        MSELoss()(np.zeros((5, 1)), np.zeros(5))


def test_softmax_and_log_softmax_formulas() -> None:
    z = np.random.default_rng(3).standard_normal((3, 4))
    e = np.exp(z)
    np.testing.assert_allclose(softmax(z), e / e.sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(log_softmax(z), np.log(e / e.sum(axis=1, keepdims=True)), atol=1e-14)


# -- numerical stability ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_huge_logits_finite(dtype: type, eps: float) -> None:
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [1e4, 1e4, -1e4]], dtype=dtype)
    y = np.array([1, 1, 0])
    loss_fn = CrossEntropyLoss(label_smoothing=eps)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = loss_fn(z, y)
        grad = loss_fn.backward()
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # row 0 is wrong by 2e4, row 1 right, row 2 a tie between two classes: ln 2 (eps = 0)
    if eps == 0.0:
        np.testing.assert_allclose(loss, (2e4 + 0.0 + np.log(2.0)) / 3, rtol=1e-6)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)


def test_log_softmax_huge_logits() -> None:
    z = np.array([[1e4, 0.0], [-1e4, -1e4]], np.float32)
    out = log_softmax(z)
    np.testing.assert_allclose(out, [[0.0, -1e4], [-np.log(2), -np.log(2)]], rtol=1e-6)
    np.testing.assert_allclose(softmax(z).sum(axis=1), 1.0, rtol=1e-6)


# -- dtype -------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_cross_entropy_float32_grad(eps: float) -> None:
    z = np.random.default_rng(4).standard_normal((8, 10)).astype(np.float32)
    loss_fn = CrossEntropyLoss(label_smoothing=eps)
    loss_fn(z, np.arange(8) % 10)
    assert loss_fn.backward().dtype == np.float32


@pytest.mark.parametrize("target_dtype", [np.float32, np.float64, np.int64])
def test_mse_float32_grad(target_dtype: type) -> None:
    # a float64 one-hot (np.eye) or an int target must not promote the backward pass to float64
    pred = np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32)
    target = np.eye(4, dtype=target_dtype)[np.arange(6) % 4]
    loss_fn = MSELoss()
    loss = loss_fn(pred, target)
    grad = loss_fn.backward()
    assert grad.dtype == np.float32 and grad.shape == pred.shape
    np.testing.assert_allclose(loss, np.mean((pred.astype(np.float64) - target) ** 2), rtol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_weighted_ignored_numeric_grad_and_dtype(eps: float) -> None:
    rng = np.random.default_rng(7)
    z, y = 2 * rng.standard_normal((7, 4)), np.array([0, 3, -100, 1, 2, -100, 3])
    loss_fn = CrossEntropyLoss(weight=[0.5, 2.0, 1.0, 3.0], label_smoothing=eps)
    loss_fn(z, y)
    grad = loss_fn.backward()
    np.testing.assert_allclose(grad, numeric_grad(lambda: loss_fn(z, y), z), rtol=1e-6, atol=1e-9)
    assert not grad[[2, 5]].any()  # ignored samples get no gradient
    loss32 = loss_fn(z.astype(np.float32), y)
    assert loss_fn.backward().dtype == np.float32 and np.isfinite(loss32)
    with pytest.raises(ValueError, match="classes"):
        CrossEntropyLoss(weight=[1.0, 2.0])(z, np.zeros(7, int))
    with pytest.raises(TypeError, match="label_smoothing"):
        CrossEntropyLoss(0.1)


def test_loss_backward_explains_there_is_no_autograd() -> None:
    loss = CrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(TypeError, match=r"model.backward\(loss_fn.backward\(\)\)"):
        loss.backward()
    assert isinstance(loss, float) and float(loss) == pytest.approx(np.log(3))


def test_labels_of_any_integer_type_and_byte_order() -> None:
    z = np.random.default_rng(0).standard_normal((4, 3))
    ref = CrossEntropyLoss()(z, np.array([0, 2, 1, 2]))
    for dtype in (np.uint8, np.int16, ">i8", "<i4", np.uint64):
        labels = np.array([0, 2, 1, 2], dtype=dtype)
        assert CrossEntropyLoss()(z, labels) == ref, dtype
        assert CrossEntropyLoss()(z, labels[::-1][::-1]) == ref  # a view, not a copy
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        CrossEntropyLoss()(z, np.array([0, 2, -1, 2], dtype=">i8"))
