"""PyTorch parity (float64, seeded random shapes) for Linear, activations, losses, an MLP,
plus dropout statistics and init fans."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from barenet import nn

SEEDS = range(5)
RTOL, ATOL = 1e-6, 1e-10


def close(a: np.ndarray | float, b: torch.Tensor, name: str = "", atol: float = ATOL) -> None:
    np.testing.assert_allclose(a, b.detach().numpy(), rtol=RTOL, atol=atol, err_msg=name)


def t(x: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(seed: int, bias: bool) -> None:
    rng = np.random.default_rng(seed)
    n, fin, fout = (int(v) for v in rng.integers(1, 40, 3))
    ours = nn.Linear(fin, fout, bias=bias, init="default", rng=rng, dtype=np.float64)
    ref = torch.nn.Linear(fin, fout, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ours.weight.data))
        if bias:
            ref.bias.copy_(torch.from_numpy(ours.bias.data))
    x, g = rng.standard_normal((n, fin)), rng.standard_normal((n, fout))
    xt = t(x, grad=True)
    yt = ref(xt)
    yt.backward(t(g))
    close(ours.forward(x), yt, "forward")
    close(ours.backward(g), xt.grad, "input grad")
    close(ours.weight.grad, ref.weight.grad, "weight grad")
    if bias:
        close(ours.bias.grad, ref.bias.grad, "bias grad")


ACTIVATIONS = [
    ("relu", lambda: nn.ReLU(), torch.relu),
    ("leaky_0.01", lambda: nn.LeakyReLU(), lambda z: F.leaky_relu(z, 0.01)),
    ("leaky_0.2", lambda: nn.LeakyReLU(0.2), lambda z: F.leaky_relu(z, 0.2)),
    ("sigmoid", lambda: nn.Sigmoid(), torch.sigmoid),
    ("tanh", lambda: nn.Tanh(), torch.tanh),
    ("identity", lambda: nn.Identity(), lambda z: z * 1.0),
    # torch code's inplace=True: the same values (computed out of place here)
    ("relu_inplace", lambda: nn.ReLU(inplace=True), lambda z: F.relu(z.clone(), inplace=True)),
    ("leaky_inplace", lambda: nn.LeakyReLU(0.2, inplace=True), lambda z: F.leaky_relu(z, 0.2)),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "make", "ref"), ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation(seed: int, name: str, make, ref) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 12, rng.integers(1, 4)))
    # wide range and a purely relative forward tolerance: checks the tails of sigmoid/tanh
    # (values down to ~1e-20) as well as the bulk
    x = rng.standard_normal(shape) * 15
    g = rng.standard_normal(shape)
    layer = make()
    xt = t(x, grad=True)
    yt = ref(xt)
    yt.backward(t(g))
    close(layer.forward(x), yt, f"{name} forward", atol=0.0)
    # backward 1 - y^2 / y (1 - y) cancels near saturation in both libraries: absolute tolerance
    close(layer.backward(g), xt.grad, f"{name} input grad")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_cross_entropy(seed: int, eps: float) -> None:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 64)), int(rng.integers(2, 20))
    z, y = rng.standard_normal((n, c)) * 4, rng.integers(0, c, n)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=eps)
    zt = t(z, grad=True)
    lt = F.cross_entropy(zt, torch.from_numpy(y), label_smoothing=eps)
    lt.backward()
    close(loss_fn(z, y), lt, "loss")
    close(loss_fn.backward(), zt.grad, "grad")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_cross_entropy_reductions(seed: int, reduction: str, eps: float) -> None:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 64)), int(rng.integers(2, 20))
    z, y = rng.standard_normal((n, c)) * 4, rng.integers(0, c, n)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=eps, reduction=reduction)
    zt = t(z, grad=True)
    lt = F.cross_entropy(zt, torch.from_numpy(y), label_smoothing=eps, reduction=reduction)
    g = rng.standard_normal(n) if reduction == "none" else None
    lt.backward(None if g is None else t(g))
    close(loss_fn(z, y), lt, "loss")
    close(loss_fn.backward(g), zt.grad, "grad")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_mse_reductions(seed: int, reduction: str) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 10, rng.integers(1, 4)))
    p, q = rng.standard_normal(shape), rng.standard_normal(shape)
    loss_fn = nn.MSELoss(reduction=reduction)
    pt = t(p, grad=True)
    lt = F.mse_loss(pt, t(q), reduction=reduction)
    g = rng.standard_normal(shape) if reduction == "none" else None
    lt.backward(None if g is None else t(g))
    close(loss_fn(p, q), lt, "loss")
    close(loss_fn.backward(g), pt.grad, "grad")


@pytest.mark.parametrize("seed", SEEDS)
def test_mse(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 10, rng.integers(1, 4)))
    p, q = rng.standard_normal(shape), rng.standard_normal(shape)
    loss_fn = nn.MSELoss()
    pt = t(p, grad=True)
    lt = F.mse_loss(pt, t(q))
    lt.backward()
    close(loss_fn(p, q), lt, "loss")
    close(loss_fn.backward(), pt.grad, "grad")


@pytest.mark.parametrize("seed", SEEDS)
def test_mlp_all_grads(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d0, d1, d2, c = (int(v) for v in rng.integers(2, 30, 5))
    ours = nn.Sequential(
        nn.Flatten(),
        nn.Linear(d0, d1, init="he_normal", rng=rng, dtype=np.float64),
        nn.ReLU(),
        nn.Linear(d1, d2, init="xavier_uniform", rng=rng, dtype=np.float64),
        nn.Tanh(),
        nn.Linear(d2, c, init="default", rng=rng, dtype=np.float64),
    )
    ref = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(d0, d1, dtype=torch.float64),
        torch.nn.ReLU(),
        torch.nn.Linear(d1, d2, dtype=torch.float64),
        torch.nn.Tanh(),
        torch.nn.Linear(d2, c, dtype=torch.float64),
    )
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.copy_(torch.from_numpy(ours.state_dict()[name]))
    assert set(ours.state_dict()) == set(ref.state_dict())
    x, y = rng.standard_normal((n, 1, d0)), rng.integers(0, c, n)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    ours.zero_grad()
    loss = loss_fn(ours(x), y)
    dx = ours.backward(loss_fn.backward(), input_grad=True)
    xt = t(x, grad=True)
    lt = F.cross_entropy(ref(xt), torch.from_numpy(y), label_smoothing=0.05)
    lt.backward()
    close(loss, lt, "loss")
    close(dx, xt.grad, "input grad")
    for name, p in ours.named_parameters():
        close(p.grad, dict(ref.named_parameters())[name].grad, name)


def test_init_fans_match_torch() -> None:
    from barenet.nn.init import fans

    for shape in [(10, 784), (256, 784), (6, 1, 5, 5), (64, 32, 3, 3), (4, 3, 2, 5, 7)]:
        expect = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert fans(shape) == expect, shape


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.Linear(300, 200),
        lambda m: m.Conv2d(16, 32, 3),
        lambda m: m.Conv2d(3, 64, (5, 3)),
    ],
    ids=["linear", "conv3x3", "conv5x3"],
)
def test_default_init_is_torchs(make) -> None:
    """nn.Linear / nn.Conv2d built without ``init`` start like torch's: weight and bias
    uniform on the same interval (bounds, spread and a two-sample KS test on the draws)."""
    from scipy.stats import ks_2samp

    torch.manual_seed(0)
    ours, ref = make(nn), make(torch.nn)
    bound = 1 / np.sqrt(torch.nn.init._calculate_fan_in_and_fan_out(ref.weight)[0])
    for name in ("weight", "bias"):
        a = getattr(ours, name).data.ravel().astype(np.float64)
        b = getattr(ref, name).detach().numpy().ravel().astype(np.float64)
        assert a.shape == b.shape and np.abs(b).max() <= bound, name
        assert np.abs(a).max() <= bound, name
        if a.size > 1000:
            assert np.abs(a).max() > 0.99 * bound, name  # the whole interval is used
            np.testing.assert_allclose(a.std(), b.std(), rtol=0.03, err_msg=name)
            assert ks_2samp(a, b).pvalue > 1e-3, name
        else:  # a few dozen biases: drawn (not zeros), spread like torch's
            np.testing.assert_allclose(a.std(), bound / np.sqrt(3), rtol=0.4, err_msg=name)


# -- dropout: statistics against torch's dropout and reproducibility --------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.75])
def test_dropout_statistics(p: float) -> None:
    x = np.ones((400, 500))
    d = nn.Dropout(p, rng=np.random.default_rng(0))
    y = d(x)
    keep = y != 0
    # keep-rate 1-p to within 5 standard errors; survivors scaled by 1/(1-p), like torch
    se = np.sqrt(p * (1 - p) / x.size)
    assert abs(keep.mean() - (1 - p)) < 5 * se
    np.testing.assert_allclose(np.unique(y[keep]), [1 / (1 - p)])
    torch.manual_seed(0)
    yt = F.dropout(t(x), p=p, training=True).numpy()
    np.testing.assert_allclose(np.unique(yt[yt != 0]), np.unique(y[keep]), rtol=1e-12)
    # inverted dropout keeps the expectation: E[y] = x
    assert abs(y.mean() - 1.0) < 5 * se / (1 - p)
    # eval: identity, as torch
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(F.dropout(t(x), p=p, training=False).numpy(), x)


def test_dropout_takes_torchs_inplace_keyword() -> None:
    x = np.ones((4, 5))
    layer = nn.Dropout(0.5, inplace=True).eval()
    assert np.array_equal(layer(x), x) and np.array_equal(
        torch.nn.Dropout(0.5, inplace=True).eval()(t(x)).numpy(), x
    )
    assert nn.Dropout2d(0.2, inplace=True).p == 0.2


def test_dropout_seed_reproducibility() -> None:
    x = np.random.default_rng(1).standard_normal((64, 32)).astype(np.float32)
    a, b = nn.Dropout(0.5, rng=123), nn.Dropout(0.5, rng=np.random.default_rng(123))
    ya1, ya2 = a(x), a(x)
    np.testing.assert_array_equal(ya1, b(x))
    np.testing.assert_array_equal(ya2, b(x))  # the sequence of masks repeats too
    assert not np.array_equal(ya1, ya2)  # successive calls draw fresh masks
    assert not np.array_equal(ya1, nn.Dropout(0.5, rng=124)(x))


@pytest.mark.parametrize(("start", "end"), [(1, -1), (0, -1), (2, 3), (1, 2), (-2, -1), (0, 0)])
def test_flatten_dims(start: int, end: int) -> None:
    rng = np.random.default_rng((start + 5) * 10 + end + 5)
    x = rng.standard_normal((2, 3, 4, 5))
    ours, ref = nn.Flatten(start, end), torch.nn.Flatten(start, end)
    xt = t(x, grad=True)
    yt = ref(xt)
    y = ours(x)
    assert y.shape == tuple(yt.shape)
    g = rng.standard_normal(y.shape)
    yt.backward(t(g))
    close(y, yt, "forward")
    close(ours.backward(g), xt.grad, "grad")


def test_flatten_refuses_dims_outside_input() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        nn.Flatten(2, 5)(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        nn.Flatten(2, 1)(np.zeros((2, 3, 4)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [True, False])
def test_cross_entropy_weight_and_ignore_index(
    seed: int, reduction: str, eps: float, weighted: bool
) -> None:
    """Class weights and ignored samples (label -100, torch's default ignore_index)."""
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 64)), int(rng.integers(2, 20))
    z, y = rng.standard_normal((n, c)) * 4, rng.integers(0, c, n)
    y[rng.random(n) < 0.3] = -100
    y[0] = 0  # at least one kept
    w = rng.uniform(0.1, 3.0, c) if weighted else None
    loss_fn = nn.CrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=eps)
    zt = t(z, grad=True)
    lt = F.cross_entropy(
        zt,
        torch.from_numpy(y),
        weight=None if w is None else t(w),
        reduction=reduction,
        label_smoothing=eps,
    )
    g = rng.standard_normal(n) if reduction == "none" else None
    lt.backward(None if g is None else t(g))
    close(loss_fn(z, y), lt, "loss")
    close(loss_fn.backward(g), zt.grad, "grad")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [True, False])
def test_log_softmax_then_nll_loss(seed: int, reduction: str, weighted: bool) -> None:
    """The official MNIST example's head: LogSoftmax(dim=1) + NLLLoss, forward and backward
    through both, with class weights and ignored samples."""
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 64)), int(rng.integers(2, 20))
    z, y = rng.standard_normal((n, c)) * 4, rng.integers(0, c, n)
    y[rng.random(n) < 0.3] = -100
    y[0] = 0  # at least one kept
    w = rng.uniform(0.1, 3.0, c) if weighted else None
    head, loss_fn = nn.LogSoftmax(dim=1), nn.NLLLoss(weight=w, reduction=reduction)
    zt = t(z, grad=True)
    lt = F.nll_loss(
        F.log_softmax(zt, dim=1),
        torch.from_numpy(y),
        weight=None if w is None else t(w),
        reduction=reduction,
    )
    g = rng.standard_normal(n) if reduction == "none" else None
    lt.backward(None if g is None else t(g))
    close(loss_fn(head(z), y), lt, "loss")
    close(head.backward(loss_fn.backward(g)), zt.grad, "grad")


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("cls", ["Softmax", "LogSoftmax"])
def test_softmax_layers(dim: int, cls: str) -> None:
    rng = np.random.default_rng(dim + 7)
    x, g = rng.standard_normal((3, 4, 5)) * 5, rng.standard_normal((3, 4, 5))
    ours, xt = getattr(nn, cls)(dim=dim), t(x, grad=True)
    yt = getattr(torch.nn, cls)(dim=dim)(xt)
    yt.backward(t(g))
    close(ours(x), yt, "forward")
    close(ours.backward(g), xt.grad, "grad")


def test_nll_loss_refuses_bad_labels_and_softmax_needs_dim() -> None:
    with pytest.raises(ValueError, match=r"NLLLoss: labels must lie in \[0, 3\), got 3"):
        nn.NLLLoss()(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="dim="):
        nn.LogSoftmax()(np.zeros((2, 3)))
