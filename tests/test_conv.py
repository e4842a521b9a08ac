"""Conv2d: finite-difference gradients, shapes, dtypes and a direct-sum reference."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_module_grads

import barenet.nn.conv as conv_module
from barenet.nn import Conv2d, Sequential, parallel
from barenet.nn.layout import memory_order

CONFIGS = [
    # (C, O, kernel, stride, padding, dilation, bias, input H, W)
    (2, 3, 3, 1, 0, 1, True, 5, 6),
    (2, 3, 3, 2, 1, 1, True, 7, 7),  # stride 2, padding 1, odd size
    (1, 2, 3, 1, 2, 1, True, 4, 5),  # padding 2
    (2, 2, 3, 1, 1, 2, True, 7, 6),  # dilation 2
    (2, 3, (3, 2), (2, 1), (1, 0), 1, False, 6, 5),  # rectangular kernel, no bias
    (3, 2, (2, 3), (1, 3), (0, 1), (2, 1), True, 7, 8),  # strided along W only
]


@pytest.mark.parametrize("blocking", ["none", "rows+columns"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"cfg{i}" for i in range(len(CONFIGS))])
def test_conv_gradients(cfg, blocking, monkeypatch):
    if blocking != "none":  # one output row per im2col block, dx in channel groups
        monkeypatch.setattr(conv_module, "BLOCK_BYTES", 1)
        monkeypatch.setattr(parallel, "SERIAL_MNK", 64)
        monkeypatch.setattr(parallel, "TASK_MNK", 16)
        monkeypatch.setattr(conv_module, "DX_ROWS", 1)
    c, o, k, s, p, d, bias, h, w = cfg
    rng = np.random.default_rng(10)
    conv = Conv2d(c, o, k, s, p, d, bias=bias, init="default", rng=rng, dtype=np.float64)
    if bias:
        assert conv.bias.no_decay
    check_module_grads(conv, rng.standard_normal((2, c, h, w)), rng)


def reference_conv(x, weight, bias, stride, padding, dilation):
    """Direct sum over output pixels and taps: slow but obviously the definition."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, o, oh, ow))
    for r in range(oh):
        for q in range(ow):
            for i in range(kh):
                for j in range(kw):
                    patch = xp[:, :, r * sh + i * dh, q * sw + j * dw]  # (n, c)
                    y[:, :, r, q] += patch @ weight[:, :, i, j].T
    return y if bias is None else y + bias[None, :, None, None]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"cfg{i}" for i in range(len(CONFIGS))])
def test_conv_forward_matches_direct_sum(cfg):
    c, o, k, s, p, d, bias, h, w = cfg
    rng = np.random.default_rng(11)
    conv = Conv2d(c, o, k, s, p, d, bias=bias, init="default", rng=rng, dtype=np.float64)
    x = rng.standard_normal((3, c, h, w))
    b = conv.bias.data if bias else None
    expected = reference_conv(x, conv.weight.data, b, conv.stride, conv.padding, conv.dilation)
    y = conv.forward(x)
    assert y.shape == expected.shape
    assert y.transpose(1, 2, 3, 0).flags.c_contiguous  # (C, H, W, N) memory
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block_rows", [None, 1, 2, 4])
def test_row_blocks_and_batch_slices_agree(block_rows, monkeypatch):
    # im2col is built and multiplied in blocks of output rows (the last one partial);
    # results must not depend on the blocking or on how the batch is split.
    rng = np.random.default_rng(12)
    if block_rows is not None:  # 9 output rows of 9 * N columns, K = 27 rows of float64
        monkeypatch.setattr(conv_module, "BLOCK_BYTES", block_rows * 27 * 9 * 13 * 8)
    conv = Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    x = rng.standard_normal((13, 3, 9, 9))
    full = conv.forward(x)
    expected = reference_conv(x, conv.weight.data, conv.bias.data, (1, 1), (1, 1), (1, 1))
    np.testing.assert_allclose(full, expected, rtol=1e-12, atol=1e-12)
    for sl in (slice(0, 1), slice(2, 9), slice(12, 13)):
        np.testing.assert_allclose(conv.forward(x[sl]), full[sl], rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(full.shape)
    conv.zero_grad()
    conv.forward(x)
    dx = conv.backward(g)
    dw = conv.weight.grad.copy()
    conv.zero_grad()
    dx_parts = []
    for sl in (slice(0, 5), slice(5, 13)):
        conv.forward(x[sl])
        dx_parts.append(conv.backward(g[sl]))
    np.testing.assert_allclose(np.concatenate(dx_parts), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, dw, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("c", "o", "k", "size"), [(32, 64, 3, 13), (1, 32, 3, 28), (6, 16, 5, 14), (3, 4, 3, 5)]
)
def test_row_blocks_cover_the_output_once_in_an_even_count(c, o, k, size):
    conv = Conv2d(c, o, k, rng=0)
    oh, ow = conv.output_shape(size, size)
    blocks = conv._row_blocks(oh, ow, 128)
    assert len(blocks) == 1 or len(blocks) % 2 == 0
    seen = np.zeros((oh, ow), dtype=int)
    for r0, r1, q0, q1 in blocks:
        assert q1 - q0 == ow or r1 - r0 == 1  # partial columns only within one row
        seen[r0:r1, q0:q1] += 1
    assert np.all(seen == 1)


def test_float32_stays_float32():
    rng = np.random.default_rng(13)
    conv = Conv2d(2, 3, 3, padding=1, rng=rng)
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    y = conv.forward(x)
    dx = conv.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == conv.weight.grad.dtype == conv.bias.grad.dtype == np.float32


def test_backward_accumulates_into_grads():
    rng = np.random.default_rng(14)
    conv = Conv2d(1, 2, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 1, 5, 5))
    g = rng.standard_normal((2, 2, 3, 3))
    conv.forward(x)
    conv.backward(g)
    once = conv.weight.grad.copy()
    conv.forward(x)
    conv.backward(g)
    np.testing.assert_allclose(conv.weight.grad, 2 * once)


def test_shapes_init_and_errors():
    conv = Conv2d(3, 8, (5, 3), stride=2, padding=(2, 1), rng=0)
    assert conv.weight.shape == (8, 3, 5, 3) and conv.bias.shape == (8,)
    assert conv.output_shape(28, 28) == (14, 14)
    # torch's default: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C * kh * kw
    big, bound = Conv2d(64, 64, 3, rng=0), 1 / np.sqrt(64 * 9)
    np.testing.assert_allclose(big.weight.data.std(), bound / np.sqrt(3), rtol=0.03)
    assert np.abs(big.weight.data).max() <= bound and np.abs(big.bias.data).max() <= bound
    assert np.abs(big.bias.data).max() > bound / 2  # drawn, not zero
    # He normal on request: std sqrt(2 / fan_in), zero bias
    he = Conv2d(64, 64, 3, init="he_normal", rng=0)
    np.testing.assert_allclose(he.weight.data.std(), np.sqrt(2 / (64 * 9)), rtol=0.03)
    assert np.all(he.bias.data == 0)
    with pytest.raises(ValueError, match="input channels"):
        conv.forward(np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="smaller"):
        Conv2d(1, 1, 5).forward(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError):
        Conv2d(1, 1, 3, stride=0)


def test_same_seed_same_weights_and_state_dict_round_trip():
    a = Sequential(Conv2d(1, 4, 3, rng=5), Conv2d(4, 2, 3, rng=6))
    b = Sequential(Conv2d(1, 4, 3, rng=5), Conv2d(4, 2, 3, rng=6))
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_array_equal(pa.data, pb.data)
    c = Sequential(Conv2d(1, 4, 3, rng=7), Conv2d(4, 2, 3, rng=8))
    c.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(c.forward(x), a.forward(x))


def test_needs_input_grad_false_skips_dx_only():
    rng = np.random.default_rng(15)
    a = Conv2d(1, 3, 5, padding=2, rng=1, dtype=np.float64)
    b = Conv2d(1, 3, 5, padding=2, rng=1, dtype=np.float64)
    b.needs_input_grad = False
    x = rng.standard_normal((3, 1, 9, 9))
    g = rng.standard_normal((3, 3, 9, 9))
    a.forward(x)
    b.forward(x)
    assert a.backward(g).shape == x.shape
    assert b.backward(g) is None
    np.testing.assert_array_equal(b.weight.grad, a.weight.grad)
    np.testing.assert_array_equal(b.bias.grad, a.bias.grad)


def test_conv_accepts_and_returns_batch_innermost_layout():
    # Conv2d's output is an (N, C, H, W) view of (C, H, W, N) memory, and its input may
    # be one: same numbers whatever the layouts of x and of the incoming gradient.
    rng = np.random.default_rng(13)
    conv = Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    x = rng.standard_normal((5, 3, 6, 7))
    g = rng.standard_normal((5, 4, 6, 7))
    y_ref, dx_ref = conv.forward(x), conv.backward(g)
    dw_ref = conv.weight.grad.copy()
    conv.zero_grad()

    def chwn(a):
        return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)

    y, dx = conv.forward(chwn(x)), conv.backward(chwn(g))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_array_equal(conv.weight.grad, dw_ref)
    assert memory_order(y) == memory_order(dx) == (1, 2, 3, 0)
