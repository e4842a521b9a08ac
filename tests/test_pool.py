"""MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: gradients, tie rule, reference values, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_module_grads

from barenet.nn import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from barenet.nn.layout import memory_order


def distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values 0.1 apart in random order: no ties, so max pooling is differentiable at x."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


POOLS = [
    # (kernel, stride, padding, H, W)
    (2, None, 0, 6, 8),  # tiling fast path
    ((2, 3), None, 0, 4, 9),  # tiling, rectangular
    (3, 2, 1, 7, 6),  # overlapping windows with padding
    (3, 2, 0, 9, 7),  # overlapping, odd sizes
    (2, 2, 0, 7, 5),  # stride == kernel but sizes not divisible (general path)
    ((3, 2), (1, 2), (1, 1), 5, 6),
]
IDS = [f"pool{i}" for i in range(len(POOLS))]


def window_max(x, k, s, p):
    """Reference: explicit loops over output pixels (slow, obviously the definition)."""
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    mx = np.empty(x.shape[:2] + (oh, ow))
    av = np.empty_like(mx)
    for r in range(oh):
        for q in range(ow):
            win = xp[:, :, r * sh : r * sh + kh, q * sw : q * sw + kw]
            mx[:, :, r, q] = win.max(axis=(2, 3))
            av[:, :, r, q] = np.where(np.isinf(win), 0.0, win).sum(axis=(2, 3)) / (kh * kw)
    return mx, av


@pytest.mark.parametrize("cfg", POOLS, ids=IDS)
def test_max_and_avg_forward_match_reference(cfg):
    k, s, p, h, w = cfg
    rng = np.random.default_rng(20)
    x = rng.standard_normal((2, 3, h, w))
    mp, ap = MaxPool2d(k, s, p), AvgPool2d(k, s, p)
    mx, av = window_max(x, mp.kernel_size, mp.stride, mp.padding)
    np.testing.assert_array_equal(mp.forward(x), mx)
    np.testing.assert_allclose(ap.forward(x), av, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cfg", POOLS, ids=IDS)
def test_maxpool_gradients(cfg):
    k, s, p, h, w = cfg
    rng = np.random.default_rng(21)
    check_module_grads(MaxPool2d(k, s, p), distinct(rng, (2, 2, h, w)), rng)


@pytest.mark.parametrize("cfg", POOLS, ids=IDS)
def test_avgpool_gradients(cfg):
    k, s, p, h, w = cfg
    rng = np.random.default_rng(22)
    check_module_grads(AvgPool2d(k, s, p), rng.standard_normal((2, 2, h, w)), rng)


@pytest.mark.parametrize("size", [1, (2, 3), (3, None), 4])
def test_adaptive_avgpool_gradients(size):
    rng = np.random.default_rng(23)
    check_module_grads(AdaptiveAvgPool2d(size), rng.standard_normal((2, 3, 7, 9)), rng)


def test_adaptive_avgpool_values():
    rng = np.random.default_rng(24)
    x = rng.standard_normal((2, 3, 6, 8))
    np.testing.assert_allclose(
        AdaptiveAvgPool2d(1).forward(x), x.mean(axis=(2, 3), keepdims=True), rtol=1e-12
    )
    # divisible sizes: plain non-overlapping average pooling
    np.testing.assert_allclose(
        AdaptiveAvgPool2d((3, 2)).forward(x), AvgPool2d((2, 4)).forward(x), rtol=1e-12
    )
    # 5 -> 3 windows: [0, 2), [1, 4), [3, 5)
    x5 = rng.standard_normal((1, 1, 5, 1))
    y = AdaptiveAvgPool2d((3, 1)).forward(x5)[0, 0, :, 0]
    col = x5[0, 0, :, 0]
    np.testing.assert_allclose(y, [col[0:2].mean(), col[1:4].mean(), col[3:5].mean()])


@pytest.mark.parametrize("k, s", [(2, None), (3, 2)])
def test_maxpool_ties_send_gradient_to_first_max(k, s):
    # All-equal input: every window is a tie; the gradient goes to each window's first
    # element in row-major order, i.e. its top-left corner.
    x = np.ones((1, 1, 5, 5)) if s else np.ones((1, 1, 4, 4))
    pool = MaxPool2d(k, s)
    y = pool.forward(x)
    dx = pool.backward(np.ones_like(y))
    stride = pool.stride[0]
    expected = np.zeros_like(x)
    for r in range(y.shape[2]):
        for q in range(y.shape[3]):
            expected[0, 0, r * stride, q * stride] += 1
    np.testing.assert_array_equal(dx, expected)
    assert dx.sum() == y.size


def test_maxpool_tie_inside_window():
    x = np.array([[[[0.0, 3.0], [3.0, 1.0]]]])
    pool = MaxPool2d(2)
    pool.forward(x)
    np.testing.assert_array_equal(pool.backward(np.array([[[[5.0]]]])), [[[[0, 5.0], [0, 0]]]])


def test_maxpool_padding_is_minus_infinity():
    x = -np.ones((1, 1, 3, 3)) * np.arange(1, 10).reshape(3, 3)
    y = MaxPool2d(2, 2, 1).forward(x)  # corner windows see one real value and -inf padding
    np.testing.assert_array_equal(y[0, 0], [[-1, -2], [-4, -5]])


@pytest.mark.parametrize("layer", [MaxPool2d(2), AvgPool2d(3, 2, 1), AdaptiveAvgPool2d((2, 2))])
def test_float32_stays_float32(layer):
    x = np.random.default_rng(25).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32


def test_invalid_arguments():
    with pytest.raises(ValueError, match="half"):
        MaxPool2d(2, padding=2)
    with pytest.raises(ValueError):
        AdaptiveAvgPool2d(0)
    with pytest.raises(ValueError, match="smaller"):
        MaxPool2d(3).forward(np.zeros((1, 1, 2, 2)))


@pytest.mark.parametrize("layer", [MaxPool2d(2), MaxPool2d(3, 2, 1), AvgPool2d(3, 2, 1)])
def test_batch_innermost_layout_is_kept_and_changes_nothing(layer):
    # Conv2d hands on (N, C, H, W) views of (C, H, W, N) memory (nn/layout.py): pooling
    # must give the same numbers, keep that layout for its output and its input gradient.
    rng = np.random.default_rng(23)
    x = distinct(rng, (3, 2, 7, 6))
    g_shape = layer.forward(x).shape
    g = rng.standard_normal(g_shape)
    y_ref, dx_ref = layer.forward(x), layer.backward(g)
    x_chwn = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    g_chwn = np.ascontiguousarray(g.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    y, dx = layer.forward(x_chwn), layer.backward(g_chwn)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    assert memory_order(y) == memory_order(dx) == (1, 2, 3, 0)
    assert memory_order(layer.forward(x)) == memory_order(layer.backward(g)) == (0, 1, 2, 3)


@pytest.mark.parametrize("make", [lambda: MaxPool2d(2), lambda: MaxPool2d(3, 2, 1)])
def test_max_pool_split_between_threads_is_exact(make, monkeypatch) -> None:
    """Channel groups on several threads: the same output and dx bits as in one piece."""
    import barenet
    from barenet.nn import parallel

    monkeypatch.setattr(parallel, "ELEMENTWISE_MIN", 16)
    rng = np.random.default_rng(4)
    x = np.ascontiguousarray(
        rng.standard_normal((6, 5, 9, 8)).astype(np.float32).transpose(1, 2, 3, 0)
    )
    x = x.transpose(3, 0, 1, 2)  # conv layout: channels outermost
    results = []
    try:
        for n in (1, 2, 3):
            barenet.set_num_threads(n)
            pool = make()
            y = pool(x)
            results.append((y, pool.backward(np.arange(y.size, dtype=np.float32).reshape(y.shape))))
    finally:
        barenet.set_num_threads("auto")
    for y, dx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


@pytest.mark.parametrize("layer", [MaxPool2d(2), MaxPool2d(3, 2, 1), AvgPool2d(2)])
def test_gradient_in_another_layout_than_the_input(layer):
    # Flatten's backward hands a C-ordered gradient to a pool whose input was (C, H, W, N)
    # memory: same bits as the gradient in the input's layout, dx in the input's layout.
    rng = np.random.default_rng(5)
    x = np.ascontiguousarray(distinct(rng, (4, 3, 9, 8)).transpose(1, 2, 3, 0))
    x = x.transpose(3, 0, 1, 2)
    g = rng.standard_normal(layer.forward(x).shape)  # C-ordered
    dx = layer.backward(g)
    g_like_y = np.ascontiguousarray(g.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    layer.forward(x)
    np.testing.assert_array_equal(dx, layer.backward(g_like_y))
    assert memory_order(dx) == (1, 2, 3, 0)


def test_as_order_copies_only_when_needed():
    from barenet.nn.layout import as_order

    a = np.arange(24.0).reshape(2, 3, 4)
    assert as_order(a, (0, 1, 2)) is a
    b = as_order(a, (2, 0, 1))
    assert b is not a and memory_order(b) == (2, 0, 1)
    np.testing.assert_array_equal(b, a)
