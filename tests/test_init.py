"""Initialisers: empirical spread on a large draw against each formula, fans, seeds, dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from barenet.nn import INITS, Linear, init_weight
from barenet.nn.init import as_rng, fans, init_bias

SHAPE = (300, 400)  # 120,000 draws: the std estimate is good to ~0.2%
FAN_IN, FAN_OUT = 400, 300


def draw(method: str, shape: tuple[int, ...] = SHAPE, **kw: float) -> np.ndarray:
    return init_weight(shape, method, np.random.default_rng(0), dtype=np.float64, **kw)


@pytest.mark.parametrize(
    ("method", "bound", "kw"),
    [
        ("xavier_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT)), {}),
        ("xavier_uniform", 2.5 * math.sqrt(6 / (FAN_IN + FAN_OUT)), {"gain": 2.5}),
        ("he_uniform", math.sqrt(6 / FAN_IN), {}),
        ("default", 1 / math.sqrt(FAN_IN), {}),
    ],
)
def test_uniform_bounds_and_std(method: str, bound: float, kw: dict) -> None:
    w = draw(method, **kw)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound  # the whole interval is used
    assert abs(w.mean()) < 0.01 * bound
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.01)


@pytest.mark.parametrize(
    ("method", "std", "kw"),
    [
        ("xavier_normal", math.sqrt(2 / (FAN_IN + FAN_OUT)), {}),
        ("xavier_normal", 0.5 * math.sqrt(2 / (FAN_IN + FAN_OUT)), {"gain": 0.5}),
        ("he_normal", math.sqrt(2 / FAN_IN), {}),
        ("normal", 0.02, {}),
        ("normal", 0.3, {"std": 0.3}),
    ],
)
def test_normal_std(method: str, std: float, kw: dict) -> None:
    w = draw(method, **kw)
    np.testing.assert_allclose(w.std(), std, rtol=0.01)
    assert abs(w.mean()) < 0.01 * std
    # a Gaussian, not a uniform: about 4.6% of draws lie beyond 2 std
    np.testing.assert_allclose(np.mean(np.abs(w) > 2 * std), 0.0455, atol=0.003)


def test_conv_shaped_fans() -> None:
    assert fans((64, 32, 3, 3)) == (32 * 9, 64 * 9)
    assert fans((8, 1, 5, 5)) == (25, 200)
    assert fans((10, 784)) == (784, 10)
    w = draw("he_normal", (64, 32, 3, 3))
    np.testing.assert_allclose(w.std(), math.sqrt(2 / 288), rtol=0.02)
    w = draw("xavier_uniform", (64, 32, 3, 3))
    bound = math.sqrt(6 / (288 + 576))
    assert bound * 0.99 < np.abs(w).max() <= bound


def test_zeros() -> None:
    w = init_weight((5, 4), "zeros", np.random.default_rng(0))
    assert w.shape == (5, 4) and w.dtype == np.float32 and not w.any()


@pytest.mark.parametrize("method", INITS)
def test_same_seed_identical_and_dtype(method: str) -> None:
    for dtype in (np.float32, np.float64):
        a = init_weight((7, 6), method, np.random.default_rng(42), dtype=dtype)
        b = init_weight((7, 6), method, np.random.default_rng(42), dtype=dtype)
        assert a.dtype == dtype and a.shape == (7, 6)
        np.testing.assert_array_equal(a, b)
    if method != "zeros":
        c = init_weight((7, 6), method, np.random.default_rng(43))
        assert not np.array_equal(a.astype(np.float32), c)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="orthogonal"):
        init_weight((3, 3), "orthogonal", np.random.default_rng(0))
    with pytest.raises(ValueError):
        Linear(3, 3, init="glorot")


def test_init_bias() -> None:
    rng = np.random.default_rng(0)
    b = init_bias(100, 50_000, "default", rng)
    assert b.dtype == np.float32 and b.shape == (50_000,)
    assert 0.099 < np.abs(b).max() <= 0.1
    for method in ("zeros", "he_normal", "xavier_uniform"):
        z = init_bias(100, 5, method, rng, dtype=np.float64)
        assert z.dtype == np.float64 and not z.any()


def test_linear_uses_init_and_seed() -> None:
    lin = Linear(400, 300, init="xavier_uniform", rng=0)
    bound = math.sqrt(6 / 700)
    assert 0.999 * bound < np.abs(lin.weight.data).max() <= bound
    assert not lin.bias.data.any()
    same = Linear(400, 300, init="xavier_uniform", rng=np.random.default_rng(0))
    np.testing.assert_array_equal(lin.weight.data, same.weight.data)
    default = Linear(400, 300, init="default", rng=1)
    assert default.bias.data.any() and np.abs(default.bias.data).max() <= 1 / 20


def test_as_rng() -> None:
    g = np.random.default_rng(5)
    assert as_rng(g) is g
    np.testing.assert_array_equal(as_rng(None).random(3), np.random.default_rng(0).random(3))
    np.testing.assert_array_equal(as_rng(9).random(3), np.random.default_rng(9).random(3))
