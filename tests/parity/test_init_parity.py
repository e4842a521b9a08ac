"""torch's in-place initialisers (nn.init.xavier_uniform_ and friends) against torch's own:
the same interval or spread on a large draw, in place on a Parameter, for model.apply code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from barenet import nn
from barenet.nn import init

SHAPE = (256, 64, 3, 3)


TI = torch.nn.init
CASES = [
    (lambda p: init.xavier_uniform_(p, gain=2.0), lambda t: TI.xavier_uniform_(t, 2.0)),
    (init.xavier_normal_, TI.xavier_normal_),
    (lambda p: init.kaiming_uniform_(p, a=5**0.5), lambda t: TI.kaiming_uniform_(t, a=5**0.5)),
    (
        lambda p: init.kaiming_normal_(p, mode="fan_out", nonlinearity="relu"),
        lambda t: TI.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
    ),
    (lambda p: init.uniform_(p, -0.3, 0.1), lambda t: TI.uniform_(t, -0.3, 0.1)),
    (lambda p: init.normal_(p, 0.5, 0.2), lambda t: TI.normal_(t, 0.5, 0.2)),
    (
        lambda p: init.trunc_normal_(p, 0.1, 0.5, -0.5, 1.0),
        lambda t: TI.trunc_normal_(t, 0.1, 0.5, -0.5, 1.0),
    ),
    (lambda p: init.orthogonal_(p, gain=2.0), lambda t: TI.orthogonal_(t, gain=2.0)),
]


@pytest.mark.parametrize(("ours", "theirs"), CASES)
def test_spread_matches_torch(ours, theirs) -> None:
    torch.manual_seed(0)
    p = nn.Parameter(np.zeros(SHAPE, np.float32))
    assert ours(p) is p and p.data.dtype == np.float32
    t = theirs(torch.empty(SHAPE)).numpy()
    a = p.data
    np.testing.assert_allclose(a.mean(), t.mean(), atol=0.02 * t.std() + 1e-6)
    np.testing.assert_allclose(a.std(), t.std(), rtol=0.01)
    np.testing.assert_allclose([a.min(), a.max()], [t.min(), t.max()], rtol=0.5, atol=0.02)


def test_constants_gains_and_refusals() -> None:
    lin = nn.Linear(4, 3, rng=0)
    init.zeros_(lin.bias)
    init.constant_(lin.weight, 0.25)
    assert not lin.bias.data.any() and (lin.weight.data == 0.25).all()
    init.ones_(lin.bias)
    assert (lin.bias.data == 1).all()
    for name, param in [("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("linear", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param)
        )
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.xavier_uniform_(lin.bias)
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(lin.weight, mode="fan")
    g = np.random.default_rng(3)  # one Generator: same-shaped layers get different draws
    a, b = nn.Linear(5, 5), nn.Linear(5, 5)
    init.xavier_uniform_(a.weight, generator=g)
    init.xavier_uniform_(b.weight, generator=g)
    assert not np.array_equal(a.weight.data, b.weight.data)


def test_model_apply_with_an_initialiser() -> None:
    g = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))

    def init_fn(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            init.kaiming_normal_(m.weight, nonlinearity="relu", generator=g)
            init.zeros_(m.bias)

    assert model.apply(init_fn) is model
    assert all(not m.bias.data.any() for m in model if isinstance(m, nn.Linear))


def test_trunc_normal_matches_torchs_distribution() -> None:
    """torch's trunc_normal_ (absolute bounds a, b); a two-sample KS test on seeded draws."""
    from scipy.stats import ks_2samp

    ours = init.trunc_normal_(np.empty(20000, np.float32), 0.5, 2.0, -1.0, 3.0, generator=0)
    theirs = torch.nn.init.trunc_normal_(
        torch.empty(20000), 0.5, 2.0, -1.0, 3.0, generator=torch.Generator().manual_seed(0)
    ).numpy()
    assert ours.min() >= -1.0 and ours.max() <= 3.0 and ours.dtype == np.float32
    assert ks_2samp(ours, theirs).pvalue > 1e-3
    assert ks_2samp(ours, np.random.default_rng(0).normal(0.5, 2.0, 20000)).pvalue < 1e-6
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(np.empty(3), a=1.0, b=1.0)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 2, 3, 3), (6, 6)])
def test_orthogonal_rows_or_columns_orthonormal_times_gain(shape) -> None:
    w = init.orthogonal_(np.empty(shape), gain=1.5, generator=1)
    t = torch.nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=1.5).numpy()
    for m in (w, t):  # the same property as torch's
        flat = m.reshape(shape[0], -1)
        small = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
        np.testing.assert_allclose(small, 2.25 * np.eye(len(small)), atol=1e-12)
    np.testing.assert_array_equal(w, init.orthogonal_(np.empty(shape), 1.5, generator=1))
    with pytest.raises(ValueError):
        init.orthogonal_(np.empty(4))


def test_eye_as_torch() -> None:
    np.testing.assert_array_equal(
        init.eye_(np.empty((3, 5))), torch.nn.init.eye_(torch.empty(3, 5)).numpy()
    )
