"""Finite-difference gradient checks (float64) and dtype/stability checks for the MLP layers."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_module_grads

from barenet.nn import (
    Dropout,
    Dropout2d,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    activation,
)
from barenet.nn.layout import memory_order


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal values with |x| >= 0.05, so finite differences never straddle a kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.5, x)


class Reseeded(Module):
    """Wraps a dropout layer and resets its Generator before every forward, so the mask repeats
    across the finite-difference calls while the layer stays in training mode."""

    def __init__(self, inner: Dropout, seed: int) -> None:
        super().__init__()
        self.inner, self.seed = inner, seed

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inner.rng = np.random.default_rng(self.seed)
        return self.inner.forward(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return self.inner.backward(grad_out)


# -- gradient checks ------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_linear_grads(bias: bool) -> None:
    rng = np.random.default_rng(0)
    layer = Linear(5, 4, bias=bias, init="default", rng=rng, dtype=np.float64)
    assert (layer.bias is None) == (not bias)
    assert len(layer.parameters()) == (2 if bias else 1)
    check_module_grads(layer, rng.standard_normal((3, 5)), rng)


def test_linear_on_a_conv_stacks_memory_returns_dx_in_that_layout() -> None:
    # After a conv stack, Flatten gives an F-ordered (N, features) view of (C, H, W, N)
    # memory; Linear's dx comes back in that layout, so Flatten's backward is a view.
    rng = np.random.default_rng(2)
    layer = Linear(12, 4, rng=rng, dtype=np.float64)
    maps = rng.standard_normal((3, 2, 2, 7)).transpose(3, 0, 1, 2)  # (N, C, H, W) of (C, H, W, N)
    flat = Flatten()
    x = flat.forward(maps)
    assert x.flags.f_contiguous and not x.flags.c_contiguous
    g = rng.standard_normal((7, 4))
    layer.forward(x)
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, g @ layer.weight.data, rtol=1e-12)
    assert dx.T.flags.c_contiguous
    dmaps = flat.backward(dx)
    assert np.shares_memory(dmaps, dx) and memory_order(dmaps) == memory_order(maps)
    check_module_grads(layer, np.asfortranarray(rng.standard_normal((3, 12))), rng)


def test_flatten_grads_and_shapes() -> None:
    rng = np.random.default_rng(1)
    layer = Flatten()
    x = rng.standard_normal((3, 2, 2, 3))
    assert layer.forward(x).shape == (3, 12)
    assert layer.backward(np.ones((3, 12))).shape == x.shape
    check_module_grads(layer, x, rng)


@pytest.mark.parametrize(
    "layer",
    [ReLU(), LeakyReLU(0.01), LeakyReLU(0.2), LeakyReLU(1.7), LeakyReLU(-0.3), Sigmoid(), Tanh()]
    + [Identity()],
    ids=lambda m: repr(m),
)
def test_activation_grads(layer: Module) -> None:
    rng = np.random.default_rng(2)
    check_module_grads(layer, away_from_zero(rng, (4, 6)), rng)


def test_activation_values_against_formulas() -> None:
    rng = np.random.default_rng(3)
    x = away_from_zero(rng, (5, 7))
    np.testing.assert_allclose(ReLU()(x), np.where(x > 0, x, 0.0))
    np.testing.assert_allclose(LeakyReLU(0.2)(x), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(Tanh()(x), np.tanh(x))
    assert Identity()(x) is x


def test_activation_factory() -> None:
    assert isinstance(activation("relu"), ReLU)
    leaky = activation("leaky_relu", negative_slope=0.3)
    assert isinstance(leaky, LeakyReLU) and leaky.negative_slope == 0.3
    for name, cls in [("sigmoid", Sigmoid), ("tanh", Tanh), ("identity", Identity)]:
        assert isinstance(activation(name), cls)
    with pytest.raises(ValueError, match="swish"):
        activation("swish")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_train_grads_with_fixed_mask(p: float) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 8))
    layer = Reseeded(Dropout(p), seed=11)
    y = layer.forward(x)
    mask = layer.inner._mask
    # the mask is 0 or 1/(1-p) and the output is x * mask
    np.testing.assert_allclose(np.unique(mask), [0.0, 1.0 / (1.0 - p)])
    np.testing.assert_allclose(y, x * mask)
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(g), g * (y != 0) / (1.0 - p))
    check_module_grads(layer, x, rng)


def test_dropout2d_drops_whole_channels_and_grads() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 3, 3))
    layer = Reseeded(Dropout2d(0.5), seed=3)
    y = layer.forward(x)
    kept = y.reshape(4, 6, -1) != 0
    # each (n, c) feature map is either fully kept or fully dropped, and both happen
    assert np.all(kept.all(axis=2) | (~kept).all(axis=2))
    assert 0 < kept.all(axis=2).sum() < 24
    check_module_grads(layer, x, rng)


@pytest.mark.parametrize("cls", [Dropout, Dropout2d])
def test_dropout_same_mask_whatever_the_memory_layout(cls) -> None:
    # A conv feature map arrives as an (N, C, H, W) view of (C, H, W, N) memory: the same
    # seed must drop the same units, and the output keeps that layout.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    x_chwn = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y, dx = (d := cls(0.4, rng=9)).forward(x), d.backward(g)
    y2, dx2 = (d2 := cls(0.4, rng=9)).forward(x_chwn), d2.backward(g)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(dx2, dx)
    assert memory_order(y2) == (1, 2, 3, 0) and y2.dtype == np.float32


def test_dropout_eval_and_p0_are_identity() -> None:
    x = np.random.default_rng(6).standard_normal((5, 5))
    g = np.ones_like(x)
    d = Dropout(0.5, rng=0).eval()
    assert d(x) is x and d.backward(g) is g
    d0 = Dropout(0.0, rng=0)
    assert d0.training and d0(x) is x and d0.backward(g) is g
    for bad in (-0.1, 1.5):  # p = 1 zeroes everything, as torch (tests/parity)
        with pytest.raises(ValueError):
            Dropout(bad)


def test_sequential_grads() -> None:
    rng = np.random.default_rng(7)
    model = Sequential(
        Flatten(),
        Linear(6, 5, init="default", rng=rng, dtype=np.float64),
        Tanh(),
        Sequential(Linear(5, 4, init="xavier_normal", rng=rng, dtype=np.float64), Sigmoid()),
        Linear(4, 4, init="default", rng=rng, dtype=np.float64),
        LeakyReLU(0.1),
        Dropout(0.5).eval(),
        Linear(4, 3, init="default", rng=rng, dtype=np.float64),
    )
    names = [n for n, _ in model.named_parameters()]
    assert names == ["1.weight", "1.bias", "3.0.weight", "3.0.bias", "4.weight", "4.bias"] + [
        "7.weight",
        "7.bias",
    ]
    model.input_grad = True  # gradcheck compares dx too (nested: computed without asking)
    check_module_grads(model, rng.standard_normal((3, 2, 3)), rng)


def test_linear_relu_sequential_grads() -> None:
    # ReLU between layers: keep the check away from hidden pre-activations at exactly 0
    rng = np.random.default_rng(8)
    model = Sequential(
        Linear(4, 6, init="default", rng=rng, dtype=np.float64),
        ReLU(),
        Linear(6, 2, init="default", rng=rng, dtype=np.float64),
    )
    x = rng.standard_normal((5, 4))
    pre = model[0](x)
    assert np.abs(pre).min() > 1e-4
    model.input_grad = True
    check_module_grads(model, x, rng)


# -- dtype and numerical stability ----------------------------------------------------------


def float32_layers() -> list[Module]:
    rng = np.random.default_rng(9)
    return [
        Linear(12, 5, rng=rng),
        Linear(12, 5, bias=False, init="default", rng=rng),
        Flatten(),
        ReLU(),
        LeakyReLU(0.1),
        Sigmoid(),
        Tanh(),
        Identity(),
        Dropout(0.3, rng=1),
        Dropout(0.3, rng=1).eval(),
        Sequential(Linear(12, 7, rng=rng), ReLU(), Dropout(0.2, rng=2), Linear(7, 3, rng=rng)),
    ]


@pytest.mark.parametrize("layer", float32_layers(), ids=lambda m: type(m).__name__)
def test_float32_stays_float32(layer: Module) -> None:
    x = np.random.default_rng(10).standard_normal((4, 12)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    layer.input_grad = True  # Sequential: return dx too
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    for name, p in layer.named_parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, name


def test_dropout2d_float32() -> None:
    x = np.ones((2, 3, 4, 4), np.float32)
    d = Dropout2d(0.5, rng=0)
    assert d(x).dtype == np.float32 and d.backward(x).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_extremes_finite_and_accurate(dtype: type) -> None:
    x = np.array([-1e4, -80.0, -30.0, -17.0, -5.0, 0.0, 5.0, 30.0, 1e4], dtype=dtype)
    s = Sigmoid()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = s(x)
        g = s.backward(np.ones_like(x))
    assert y.dtype == dtype and np.all(np.isfinite(y)) and np.all(np.isfinite(g))
    assert y[0] == 0.0 and y[-1] == 1.0
    # relative accuracy in the negative tail (exp(-|x|) is representable down to about -80)
    ref = np.exp(-np.logaddexp(0.0, -x.astype(np.float64)))
    tiny = np.finfo(dtype).tiny
    mask = ref > tiny
    np.testing.assert_allclose(y[mask], ref[mask], rtol=10 * np.finfo(dtype).eps)


def test_tanh_extremes_finite() -> None:
    t = Tanh()
    y = t(np.array([-1e4, 1e4], np.float32))
    np.testing.assert_array_equal(y, [-1.0, 1.0])
    np.testing.assert_array_equal(t.backward(np.ones(2, np.float32)), [0.0, 0.0])
