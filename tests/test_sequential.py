"""Sequential's one rewrite: a ReLU followed by a MaxPool2d runs after the pooling, with the
same output and gradient bits as the plain order (layer by layer, forward then reverse)."""

from __future__ import annotations

import numpy as np
import pytest

from barenet.nn import (
    Conv2d,
    CrossEntropyLoss,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)
from barenet.nn.sequential import _plan

POOLS = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 3, "stride": 1, "padding": 1},  # overlapping windows, same size out
    {"kernel_size": (2, 3), "stride": (2, 1)},
]


def convnet(pool: dict, seed: int) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(2, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2d(**pool),
        Conv2d(4, 3, 3, padding=1, rng=rng), ReLU(), MaxPool2d(**pool), Flatten(),
    )  # fmt: skip


def plain(model: Sequential, x: np.ndarray, y: np.ndarray, loss_fn) -> tuple:
    """Forward layer by layer in the written order, backward in reverse: the reference."""
    h = x
    for layer in model:
        h = layer.forward(h)
    out = h.copy()
    loss_fn(h.reshape(len(h), -1), y)
    g = loss_fn.backward().reshape(h.shape)
    for layer in reversed(model.layers):
        layer.needs_input_grad = True
        g = layer.backward(g)
    return out, g


def grads(model: Sequential) -> dict[str, np.ndarray]:
    return {n: p.grad.copy() for n, p in model.named_parameters()}


def tie_heavy_input(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Many exact ties (zeros, repeated values) and non-positive windows."""
    return rng.integers(-2, 3, size=shape).astype(np.float32) * 0.5


@pytest.mark.parametrize("pool", POOLS, ids=["2x2", "3x3s2p1", "3x3s1p1", "2x3s21"])
def test_relu_then_max_pool_gives_the_plain_order_bits(pool: dict) -> None:
    rng = np.random.default_rng(0)
    x = tie_heavy_input(rng, (5, 2, 8, 7))
    reference, fast = convnet(pool, 1), convnet(pool, 1)
    loss_fn = CrossEntropyLoss()
    h = reference.forward(x)  # only to size the labels
    y = rng.integers(0, h.reshape(len(h), -1).shape[1], size=len(x))
    out_ref, dx_ref = plain(reference, x, y, loss_fn)
    assert _plan(fast.layers)[1] == [1, 4]  # both pairs really are swapped
    out = fast.forward(x)
    loss_fn(out.reshape(len(out), -1), y)
    dx = fast.backward(loss_fn.backward().reshape(out.shape), input_grad=True)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    for name, g in grads(reference).items():
        np.testing.assert_array_equal(grads(fast)[name], g, err_msg=name)
    assert (x == 0).mean() > 0.1 and np.any(dx != 0)  # ties present, gradients non-trivial


def test_layer_by_layer_forward_then_sequential_backward_uses_the_plain_order() -> None:
    # what the probes do: layers run one by one, then model.backward
    rng = np.random.default_rng(2)
    x = tie_heavy_input(rng, (4, 2, 6, 6))
    reference, model = convnet(POOLS[0], 3), convnet(POOLS[0], 3)
    loss_fn = CrossEntropyLoss()
    model.forward(x)  # a swapped forward first, whose record must not be reused
    h = x
    for layer in model:
        h = layer.forward(h)
    y = rng.integers(0, h.shape[1], size=len(x))
    loss_fn(h, y)
    model.zero_grad()
    dx = model.backward(loss_fn.backward(), input_grad=True)
    _, dx_ref = plain(reference, x, y, loss_fn)
    np.testing.assert_array_equal(dx, dx_ref)
    for name, g in grads(reference).items():
        np.testing.assert_array_equal(grads(model)[name], g, err_msg=name)


def test_only_exact_relu_max_pool_pairs_are_swapped() -> None:
    class MyReLU(ReLU):
        pass

    layers = [
        Linear(2, 2), ReLU(), MaxPool2d(2), LeakyReLU(), MaxPool2d(2), MyReLU(), MaxPool2d(2),
        ReLU(), ReLU(), MaxPool2d(2), ReLU(),
    ]  # fmt: skip
    order, swapped = _plan(layers)
    assert swapped == [1, 8]
    assert order == [0, 2, 1, 3, 4, 5, 6, 7, 9, 8, 10]


def test_a_replaced_layer_changes_the_plan() -> None:
    rng = np.random.default_rng(4)
    x = tie_heavy_input(rng, (3, 2, 6, 6))
    model = convnet(POOLS[0], 5)
    model(x)
    model.layers[1] = LeakyReLU(0.5)  # not swappable: must run before the pooling again
    reference = convnet(POOLS[0], 5)
    reference.layers[1] = LeakyReLU(0.5)
    h = x
    for layer in reference:
        h = layer.forward(h)
    np.testing.assert_array_equal(model(x), h)
    assert model._cached_plan()[1] == [4]


def test_slicing_setitem_and_children_like_torch() -> None:
    a, r, b = Linear(4, 3, rng=0), ReLU(), Linear(3, 2, rng=1)
    model = Sequential(a, r, b)
    tail = model[1:]
    assert isinstance(tail, Sequential) and tail.layers == [r, b]  # the same instances
    assert list(model.children()) == [a, r, b]
    assert [n for n, _ in model.named_children()] == ["0", "1", "2"]
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    before = model(x)
    model[1] = LeakyReLU(0.5)  # replaced: the forward plan follows the new layer
    after = model(x)
    h = a(x)
    np.testing.assert_array_equal(after, b(np.where(h > 0, h, 0.5 * h)))
    assert not np.array_equal(before, after) or (h > 0).all()
    with pytest.raises(ValueError, match="already in the Sequential"):
        model[0] = b
    with pytest.raises(TypeError):
        model[0] = "relu"
    with pytest.raises(IndexError):
        model[3] = ReLU()


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "no-relu"])
def test_conv_pool_run_block_by_block_gives_the_plain_order_bits(
    threads: int, relu: bool, monkeypatch
) -> None:
    # convpool: the first conv's map pooled per row block in forward, its dW built from
    # the pooled gradient per block in backward. Forced on at a small size (several blocks).
    import barenet
    from barenet.nn import conv as conv_module
    from barenet.nn import convpool

    monkeypatch.setattr(convpool, "MIN_BYTES", 0)
    monkeypatch.setattr(conv_module, "BLOCK_BYTES", 3 * 9 * 8 * 16 * 4)  # blocks of 2-4 rows
    calls = {"forward": 0, "backward": 0}
    for name in calls:
        real = getattr(convpool, name)

        def counted(*a, _real=real, _name=name):
            calls[_name] += 1
            return _real(*a)

        monkeypatch.setattr(convpool, name, counted)

    def build(seed: int) -> Sequential:
        rng = np.random.default_rng(seed)
        act = [ReLU()] if relu else []
        return Sequential(
            Conv2d(1, 5, 3, rng=rng), *act, MaxPool2d(2),
            Conv2d(5, 3, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
        )  # fmt: skip

    rng = np.random.default_rng(7)
    x = tie_heavy_input(rng, (16, 1, 12, 10))  # conv map 10 x 8: 5 row pairs
    reference, fast = build(3), build(3)
    assert len(fast[0]._row_blocks(10, 8, 16)) > 2
    loss_fn = CrossEntropyLoss()
    barenet.set_num_threads(threads)
    try:
        h = x
        for layer in reference:  # the plain order, each layer on its own
            h = layer.forward(h)
        y = rng.integers(0, h.shape[1], size=len(x))
        loss_fn(h, y)
        g = loss_fn.backward()
        for layer in reversed(reference.layers):
            g = layer.backward(g)
        out = fast(x)
        loss_fn(out, y)
        assert fast.backward(loss_fn.backward()) is None
    finally:
        barenet.set_num_threads(1)
    assert calls == {"forward": 1, "backward": 1}
    np.testing.assert_array_equal(out, h)
    for name, grad in grads(reference).items():
        np.testing.assert_array_equal(grads(fast)[name], grad, err_msg=name)
    assert np.any(fast[0].weight.grad != 0)


def test_conv_pool_with_an_input_gradient_runs_layer_by_layer(monkeypatch) -> None:
    from barenet.nn import convpool

    monkeypatch.setattr(convpool, "MIN_BYTES", 0)
    rng = np.random.default_rng(8)
    model = Sequential(Conv2d(1, 4, 3, rng=rng), ReLU(), MaxPool2d(2), Flatten())
    x = tie_heavy_input(rng, (6, 1, 10, 10))
    out = model(x)
    g = rng.standard_normal(out.shape).astype(np.float32)
    dx = model.backward(g, input_grad=True)  # the conv needs dx: no fused backward
    ref = Sequential(Conv2d(1, 4, 3, rng=np.random.default_rng(8)), ReLU(), MaxPool2d(2), Flatten())
    np.testing.assert_array_equal(ref(x), out)
    np.testing.assert_array_equal(ref.backward(g, input_grad=True), dx)
    np.testing.assert_array_equal(ref[0].weight.grad, model[0].weight.grad)


def test_conv_pool_float64_and_list_input_give_the_plain_bits(monkeypatch) -> None:
    # float64: OpenBLAS's dgemm bits depended on the row stride of dL/dy, which differed
    # between the fused blocks and the plain backward's view. A list input broke _fits.
    from barenet.nn import convpool

    monkeypatch.setattr(convpool, "MIN_BYTES", 0)

    def build() -> Sequential:
        rng = np.random.default_rng(11)
        return Sequential(
            Conv2d(3, 16, 3, rng=rng, dtype=np.float64), ReLU(), MaxPool2d(2), Flatten()
        )

    rng = np.random.default_rng(12)
    x = rng.standard_normal((10, 3, 34, 34))
    fused, plain = build(), build()
    out = fused(x)
    g = rng.standard_normal(out.shape)
    assert fused.backward(g) is None  # the fused backward (no input gradient)
    np.testing.assert_array_equal(plain(x.tolist()), out)
    plain.backward(g, input_grad=True)  # layer by layer: the conv computes dx too
    for name, grad in grads(plain).items():
        np.testing.assert_array_equal(grads(fused)[name], grad, err_msg=name)
