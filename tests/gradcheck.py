"""Finite-difference gradient checking shared by the layer tests (float64 only)."""

from __future__ import annotations

import numpy as np

from barenet.nn import Module


def numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of scalar f() w.r.t. array x (modified in place, then restored)."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def check_module_grads(
    layer: Module, x: np.ndarray, rng: np.random.Generator, rtol: float = 1e-5, atol: float = 1e-7
) -> None:
    """Check dL/dx and every dL/dparam of ``layer`` for L = sum(forward(x) * R), R random.

    The layer must be float64 and deterministic between calls (eval mode or fixed masks).
    """
    assert x.dtype == np.float64
    y = layer.forward(x)
    r = rng.standard_normal(y.shape)

    def loss() -> float:
        return float(np.sum(layer.forward(x) * r))

    layer.zero_grad()
    layer.forward(x)
    dx = layer.backward(r.copy())
    np.testing.assert_allclose(
        dx, numeric_grad(loss, x), rtol=rtol, atol=atol, err_msg="input grad"
    )
    for name, p in layer.named_parameters():
        analytic = p.grad.copy()
        np.testing.assert_allclose(
            analytic, numeric_grad(loss, p.data), rtol=rtol, atol=atol, err_msg=name
        )
