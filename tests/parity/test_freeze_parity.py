"""Frozen parameters (requires_grad False) against torch: fine-tuning a CNN whose first
layers are frozen trains the rest to the same weights, leaves the frozen ones untouched,
and barenet does no backward below the first layer that still trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from barenet import nn, optim
from barenet.interop import to_torch

STEPS = 5


def cnn(rng: np.random.Generator) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, rng=rng, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, rng=rng, dtype=np.float64), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 3 * 3, 8, rng=rng, dtype=np.float64), nn.Tanh(),
        nn.Linear(8, 5, rng=rng, dtype=np.float64),
    )  # fmt: skip


@pytest.mark.parametrize("frozen", [[0], [0, 3], [3], [6], [0, 3, 6]])
@pytest.mark.parametrize("opt_name", ["SGD", "AdamW"])
def test_frozen_layers_match_torch(frozen: list[int], opt_name: str) -> None:
    rng = np.random.default_rng(len(frozen) * 7 + frozen[0])
    ours = cnn(rng)
    ref = to_torch(ours).double()
    for i in frozen:
        ours[i].requires_grad_(False)
        ref[i].requires_grad_(False)
    kw = {"lr": 0.05, "weight_decay": 0.1}
    if opt_name == "SGD":
        kw["momentum"] = 0.9
    opt = getattr(optim, opt_name)(ours.parameters(), **kw)
    topt = getattr(torch.optim, opt_name)(ref.parameters(), **kw)
    before = {n: p.data.copy() for n, p in ours.named_parameters()}
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(STEPS):
        x, y = rng.standard_normal((7, 1, 12, 12)), rng.integers(0, 5, 7)
        loss_fn(ours(x), y)
        ours.backward(loss_fn.backward())
        opt.step()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
        topt.zero_grad()
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.data, theirs[name].detach().numpy(), rtol=1e-9, atol=1e-12)
        if int(name.split(".")[0]) in frozen:
            np.testing.assert_array_equal(p.data, before[name])  # untouched, decay included
        else:
            assert not np.array_equal(p.data, before[name])


def test_no_backward_below_the_first_layer_that_trains(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    model = cnn(rng)
    model[0].requires_grad_(False)
    model[3].requires_grad_(False)
    called = []
    for i in range(6):
        layer = model[i]
        monkeypatch.setattr(layer, "backward", lambda g, i=i: called.append(i))
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(model(rng.standard_normal((2, 1, 12, 12))), np.array([0, 1]))
    assert model.backward(loss_fn.backward()) is None
    assert called == []  # Linear 6 is the first trainable layer: nothing below it runs
    model[3].requires_grad_(True)  # unfrozen: the cached plan follows
    loss_fn(model(rng.standard_normal((2, 1, 12, 12))), np.array([0, 1]))
    monkeypatch.undo()
    model.backward(loss_fn.backward())
    assert model[3].weight.grad.any() and not model[0].weight.grad.any()


def test_everything_frozen_is_a_no_op() -> None:
    rng = np.random.default_rng(1)
    model = cnn(rng).requires_grad_(False)
    before = [p.data.copy() for p in model.parameters()]
    opt = optim.SGD(model.parameters(), lr=0.1, weight_decay=0.1)
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(model(rng.standard_normal((2, 1, 12, 12))), np.array([0, 1]))
    assert model.backward(loss_fn.backward()) is None
    opt.step()
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, b)


def test_clip_and_norm_skip_frozen() -> None:
    a, b = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(4))
    a.grad[...] = 100.0
    b.grad[...] = 1.0
    a.requires_grad = False
    assert optim.grad_norm([a, b]) == pytest.approx(2.0)
    optim.clip_grad_norm_([a, b], 1.0)
    np.testing.assert_array_equal(a.grad, 100.0)  # left alone
    np.testing.assert_allclose(np.linalg.norm(b.grad), 1.0, rtol=1e-5)
