"""Conv2d, pooling and BatchNorm against torch.nn in float64 on seeded random shapes."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from barenet import nn

RTOL, ATOL = 1e-6, 1e-9


def close(actual: np.ndarray, expected: torch.Tensor, what: str) -> None:
    want = expected.detach().numpy()
    np.testing.assert_allclose(actual, want, rtol=RTOL, atol=ATOL, err_msg=what)


def run_both(ours, theirs, x: np.ndarray, rng: np.random.Generator):
    """Forward both on x, backward a random upstream gradient; return (y, dx, y_t, x_t)."""
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    y = ours.forward(x)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(g))
    dx = ours.backward(g, input_grad=True) if isinstance(ours, nn.Sequential) else ours.backward(g)
    return y, dx, yt, xt


CONV = [
    # (C, O, kernel, stride, padding, dilation, bias)
    (3, 4, 3, 1, 1, 1, True),
    (2, 5, 5, 1, 2, 1, True),
    (3, 2, 3, 2, 1, 1, True),
    (2, 3, 3, 1, 2, 2, False),
    (4, 3, (3, 2), (2, 1), (1, 0), 1, True),
    (1, 6, (1, 4), (3, 2), (0, 2), (1, 2), True),
    (6, 16, 5, 1, 0, 1, True),  # LeNet conv2
    (1, 32, 3, 1, 0, 1, True),  # Keras mnist_convnet conv1: many outputs, short K
    (32, 64, 3, 1, 1, 1, True),  # its conv2 (padded here): the transposed forward GEMM
]


@pytest.mark.parametrize("cfg", CONV, ids=[f"conv{i}" for i in range(len(CONV))])
def test_conv2d_parity(cfg):
    c, o, k, s, p, d, bias = cfg
    rng = np.random.default_rng(zlib.crc32(repr(cfg).encode()))
    n, h, w = rng.integers(1, 6), rng.integers(9, 16), rng.integers(9, 16)
    ours = nn.Conv2d(c, o, k, s, p, d, bias=bias, init="default", rng=rng, dtype=np.float64)
    theirs = torch.nn.Conv2d(c, o, k, s, p, d, bias=bias).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        if bias:
            theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    y, dx, yt, xt = run_both(ours, theirs, rng.standard_normal((n, c, h, w)), rng)
    close(y, yt, "output")
    close(dx, xt.grad, "input grad")
    close(ours.weight.grad, theirs.weight.grad, "weight grad")
    if bias:
        close(ours.bias.grad, theirs.bias.grad, "bias grad")


POOL = [
    # (kernel, stride, padding)
    (2, None, 0),
    (3, 2, 0),
    (3, 2, 1),
    ((2, 3), (1, 2), (1, 1)),
    (3, 3, 1),
]


@pytest.mark.parametrize("cfg", POOL, ids=[f"pool{i}" for i in range(len(POOL))])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_parity(cfg, kind):
    k, s, p = cfg
    rng = np.random.default_rng(zlib.crc32(repr((kind, cfg)).encode()))
    ours = (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(k, s, p)
    theirs = (torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d)(k, s, p)
    for h, w in [(8, 8), tuple(rng.integers(6, 14, 2))]:
        x = rng.standard_normal((3, 2, h, w))
        y, dx, yt, xt = run_both(ours, theirs, x, rng)
        close(y, yt, "output")
        close(dx, xt.grad, "input grad")


@pytest.mark.parametrize("cfg", [(2, None, 0), (3, 2, 1), (2, 1, 0)])
def test_maxpool_parity_with_ties(cfg):
    # Quantised post-ReLU-like input: many windows hold equal maxima (often all zeros).
    k, s, p = cfg
    rng = np.random.default_rng(300)
    x = np.maximum(rng.integers(-2, 3, (4, 3, 9, 10)), 0).astype(np.float64)
    y, dx, yt, xt = run_both(nn.MaxPool2d(k, s, p), torch.nn.MaxPool2d(k, s, p), x, rng)
    close(y, yt, "output")
    close(dx, xt.grad, "input grad")


@pytest.mark.parametrize("size", [1, 2, (3, 2), (4, None), (5, 3)])
def test_adaptive_avgpool_parity(size):
    rng = np.random.default_rng(400)
    x = rng.standard_normal((2, 3, 9, 7))
    y, dx, yt, xt = run_both(nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), x, rng)
    close(y, yt, "output")
    close(dx, xt.grad, "input grad")


@pytest.mark.parametrize(
    "ours_cls, torch_cls, shape, momentum",
    [
        (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 6), 0.1),
        (nn.BatchNorm2d, torch.nn.BatchNorm2d, (2, 5, 3, 3), None),
        (nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 6), 0.3),
        (nn.BatchNorm1d, torch.nn.BatchNorm1d, (5, 4, 7), 0.1),
    ],
)
def test_batchnorm_parity(ours_cls, torch_cls, shape, momentum):
    rng = np.random.default_rng(500 + shape[1])
    c = shape[1]
    ours = ours_cls(c, momentum=momentum, dtype=np.float64)
    theirs = torch_cls(c, momentum=momentum).double()
    ours.weight.data[:] = rng.uniform(0.5, 1.5, c)
    ours.bias.data[:] = rng.standard_normal(c)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    for _ in range(4):  # train steps: batch statistics, grads, running statistics
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
        ours.zero_grad()
        theirs.zero_grad()
        y, dx, yt, xt = run_both(ours, theirs, x, rng)
        close(y, yt, "train output")
        close(dx, xt.grad, "train input grad")
        close(ours.weight.grad, theirs.weight.grad, "gamma grad")
        close(ours.bias.grad, theirs.bias.grad, "beta grad")
    state = ours.state_dict()
    close(state["running_mean"], theirs.running_mean, "running mean")
    close(state["running_var"], theirs.running_var, "running var")
    assert int(state["num_batches_tracked"]) == int(theirs.num_batches_tracked)
    ours.eval()
    theirs.eval()
    y, dx, yt, xt = run_both(ours, theirs, rng.standard_normal(shape), rng)
    close(y, yt, "eval output")
    close(dx, xt.grad, "eval input grad")


def test_small_cnn_end_to_end_parity():
    """Conv -> BN -> ReLU -> MaxPool -> Conv -> ReLU -> AvgPool -> Flatten -> Linear."""
    rng = np.random.default_rng(600)
    ours = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, init="default", rng=rng, dtype=np.float64),
        nn.BatchNorm2d(4, dtype=np.float64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 3, 3, stride=2, padding=1, init="default", rng=rng, dtype=np.float64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 5, init="default", rng=rng, dtype=np.float64),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 3, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(12, 5),
    ).double()
    torch_params = dict(theirs.named_parameters())
    with torch.no_grad():
        for name, p in ours.named_parameters():
            torch_params[name].copy_(torch.from_numpy(p.data))
    y, dx, yt, xt = run_both(ours, theirs, rng.standard_normal((4, 2, 10, 10)), rng)
    close(y, yt, "output")
    close(dx, xt.grad, "input grad")
    for name, p in ours.named_parameters():
        close(p.grad, torch_params[name].grad, name)


@pytest.mark.parametrize(
    ("kernel", "dilation", "padding"),
    [
        (3, 1, "same"),
        ((5, 3), 1, "same"),
        (3, 2, "same"),
        ((2, 4), 1, "valid"),
        ((2, 4), 2, "same"),
    ],
)
def test_conv_string_padding(kernel, dilation, padding) -> None:
    rng = np.random.default_rng(3)
    ours = nn.Conv2d(2, 3, kernel, padding=padding, dilation=dilation, rng=rng, dtype=np.float64)
    ref = torch.nn.Conv2d(2, 3, kernel, padding=padding, dilation=dilation, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ours.weight.data))
        ref.bias.copy_(torch.from_numpy(ours.bias.data))
    x = rng.standard_normal((2, 2, 9, 8))
    np.testing.assert_allclose(ours(x), ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-10)


def test_conv_string_padding_refusals() -> None:
    with pytest.raises(ValueError, match="even kernel"):
        nn.Conv2d(1, 1, 2, padding="same")
    with pytest.raises(ValueError, match="stride 1"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="'valid' or 'same'"):
        nn.Conv2d(1, 1, 3, padding="full")
