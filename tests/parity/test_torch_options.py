"""torch's layer and clipping options: each one barenet implements gives torch's result,
and each one it does not is refused with a TypeError naming it, never silently ignored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from barenet import nn
from barenet.nn.module import Parameter
from barenet.optim import clip_grad_norm_


@pytest.mark.parametrize(
    ("make", "option", "value"),
    [
        (lambda **kw: nn.Conv2d(2, 3, 3, **kw), "groups", 2),
        (lambda **kw: nn.Conv2d(2, 3, 3, **kw), "padding_mode", "reflect"),
        (lambda **kw: nn.MaxPool2d(2, **kw), "dilation", 2),
        (lambda **kw: nn.MaxPool2d(2, **kw), "return_indices", True),
        (lambda **kw: nn.MaxPool2d(2, **kw), "ceil_mode", True),
        (lambda **kw: nn.AvgPool2d(2, **kw), "ceil_mode", True),
        (lambda **kw: nn.AvgPool2d(2, **kw), "count_include_pad", False),
        (lambda **kw: nn.AvgPool2d(2, **kw), "divisor_override", 3),
        (lambda **kw: nn.BatchNorm2d(3, **kw), "track_running_stats", False),
    ],
)
def test_unimplemented_options_are_refused(make, option: str, value) -> None:
    with pytest.raises(TypeError, match=option):
        make(**{option: value})


@pytest.mark.parametrize(
    ("ours", "theirs", "args"),
    [
        (nn.Conv2d, torch.nn.Conv2d, (2, 3, 3)),
        (nn.MaxPool2d, torch.nn.MaxPool2d, (2,)),
        (nn.AvgPool2d, torch.nn.AvgPool2d, (2,)),
    ],
)
def test_torch_defaults_are_accepted_and_give_torchs_output(ours, theirs, args) -> None:
    """Every option torch's layer has (device and dtype aside), passed at torch's default
    by name: accepted, and the output is torch's."""
    import inspect

    spec = inspect.signature(theirs).parameters
    defaults = {
        n: p.default
        for n, p in spec.items()
        if p.default is not p.empty and n not in ("device", "dtype", "bias")
    }
    x = np.random.default_rng(len(args)).standard_normal((2, 2, 7, 6))
    y, want = ours(*args, **defaults)(x), theirs(*args, **defaults).double()(torch.from_numpy(x))
    if ours is nn.Conv2d:  # random weights on both sides (values: test_cnn_parity.py)
        assert y.shape == tuple(want.shape)
    else:
        np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-9)


def test_dropout_p_one_zeroes_everything_as_torch() -> None:
    x = np.random.default_rng(0).standard_normal((4, 5))
    layer = nn.Dropout(1.0)
    y = layer(x)
    np.testing.assert_array_equal(y, torch.nn.Dropout(1.0)(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.zeros_like(x))
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
def test_dropout_second_positional_is_torchs_inplace(cls) -> None:
    """torch's Dropout(p, inplace): Dropout(0.5, True) seeded barenet's generator with True
    (that is, 1) and was not in place; now it is inplace, the generator the default one."""
    layer, plain = cls(0.5, True), cls(0.5)
    assert layer.inplace and not cls(0.5, False).inplace
    x = np.random.default_rng(2).standard_normal((4, 3, 2, 2))
    np.testing.assert_array_equal(layer(x), plain(x))  # the same default seed-0 stream


@pytest.mark.parametrize("foreach", [None, False, True])
def test_clip_grad_norm_takes_foreach(foreach) -> None:
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    params = [Parameter(np.zeros_like(g)) for g in grads]
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, t, g in zip(params, tparams, grads, strict=True):
        p.grad[...] = g
        t.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_(params, 0.5, foreach=foreach)
    expected = torch.nn.utils.clip_grad_norm_(tparams, 0.5, foreach=foreach)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    for p, t in zip(params, tparams, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
