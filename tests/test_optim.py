"""Optimizers and clipping without torch: dtypes, groups, state dicts, convergence."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from barenet.nn.module import Parameter
from barenet.optim import SGD, Adam, AdamW, RMSprop, clip_grad_norm_, grad_norm, param_groups

# Settings that create every kind of state buffer.
CONFIGS = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.01, "weight_decay": 0.01, "amsgrad": True}),
    (AdamW, {"lr": 0.01}),
    (RMSprop, {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
]
IDS = [f"{cls.__name__}{i}" for i, (cls, _) in enumerate(CONFIGS)]


def make_params(rng: np.random.Generator, dtype=np.float64) -> list[Parameter]:
    return [
        Parameter(rng.standard_normal((4, 3)).astype(dtype)),
        Parameter(rng.standard_normal(4).astype(dtype), no_decay=True),
        Parameter(rng.standard_normal((2, 4)).astype(dtype)),
        Parameter(rng.standard_normal(2).astype(dtype), no_decay=True),
    ]


def clone(params: list[Parameter]) -> list[Parameter]:
    return [Parameter(p.data.copy(), no_decay=p.no_decay) for p in params]


def feed(params: list[Parameter], rng: np.random.Generator) -> None:
    for p in params:
        p.grad[...] = rng.standard_normal(p.data.shape)


@pytest.mark.parametrize("cls,kw", CONFIGS, ids=IDS)
def test_float32_preserved_in_place(cls, kw) -> None:
    rng = np.random.default_rng(0)
    params = make_params(rng, np.float32)
    arrays = [p.data for p in params]
    before = [p.data.copy() for p in params]
    opt = cls(params, **kw)
    for _ in range(3):
        feed(params, rng)
        grads = [p.grad.copy() for p in params]
        opt.step()
        for p, g in zip(params, grads, strict=True):
            np.testing.assert_array_equal(p.grad, g)  # step never touches the grads
    for p, arr, b in zip(params, arrays, before, strict=True):
        assert p.data is arr  # updated in place, not rebound
        assert p.data.dtype == np.float32
        assert not np.array_equal(p.data, b)
    for s in opt.state.values():
        for v in s.values():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32


@pytest.mark.parametrize("cls,kw", CONFIGS, ids=IDS)
def test_state_dict_round_trip_continues_identically(cls, kw) -> None:
    rng = np.random.default_rng(1)
    params = make_params(rng)
    grads = [[rng.standard_normal(p.data.shape) for p in params] for _ in range(5)]

    def run(ps, opt, steps):
        for gs in steps:
            for p, g in zip(ps, gs, strict=True):
                p.grad[...] = g
            opt.step()

    straight = clone(params)
    run(straight, cls(straight, **kw), grads)

    first = clone(params)
    opt = cls(first, **kw)
    run(first, opt, grads[:3])
    saved = opt.state_dict()
    resumed = clone(first)  # the parameters as saved alongside the optimizer state
    snapshot = {i: {k: np.copy(v) for k, v in s.items()} for i, s in saved["state"].items()}
    run(first, opt, grads[3:4])  # the saved dict must not follow later steps
    for i, s in snapshot.items():
        for k, v in s.items():
            np.testing.assert_array_equal(saved["state"][i][k], v)

    fresh = cls(resumed, **{**kw, "lr": 123.0})
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == kw["lr"]
    run(resumed, fresh, grads[3:])
    for a, b in zip(resumed, straight, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_rejects_mismatch() -> None:
    rng = np.random.default_rng(2)
    params = make_params(rng)
    opt = Adam(param_groups(params, 0.1), lr=0.01)  # two groups (weights, biases)
    feed(params, rng)
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match="groups"):
        Adam(clone(params), lr=0.01).load_state_dict(state)  # one group
    other = [Parameter(np.zeros((5, 3))), *clone(params)[1:]]
    with pytest.raises(ValueError, match="shape"):
        Adam(param_groups(other, 0.1), lr=0.01).load_state_dict(state)


def test_zero_grad_and_lr_property() -> None:
    rng = np.random.default_rng(3)
    params = make_params(rng)
    opt = SGD([{"params": params[:2], "lr": 0.5}, {"params": params[2:]}], lr=0.1, momentum=0.9)
    assert opt.lr == 0.5
    assert opt.param_groups[1]["lr"] == 0.1
    opt.lr = 0.02
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.02]
    feed(params, rng)
    grads = [p.grad for p in params]
    opt.zero_grad()
    for p, g in zip(params, grads, strict=True):
        assert p.grad is g
        assert not p.grad.any()


def test_param_groups_helper_and_torch_default() -> None:
    """A plain list is one group decayed as a whole (torch); param_groups spares no_decay
    parameters, or whatever the predicate names; explicit groups are used as given."""
    from barenet import nn

    rng = np.random.default_rng(4)
    params = make_params(rng)
    weights, biases = [params[0], params[2]], [params[1], params[3]]
    assert len(SGD(params, lr=0.1, weight_decay=0.01).param_groups) == 1
    assert len(AdamW(params).param_groups) == 1  # decoupled decay 1e-2 on everything
    groups = param_groups(params, 0.01)
    assert [g["params"] for g in groups] == [weights, biases]
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert len(param_groups(weights, 0.01)) == 1  # no empty group
    opt = SGD(groups, lr=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    named = param_groups(model, 1e-4)
    assert [len(g["params"]) for g in named] == [2, 4]  # two weights; 2 biases + BN w, b
    only_last = param_groups(model, 1e-4, no_decay=lambda name, p: name.startswith("3."))
    assert [len(g["params"]) for g in only_last] == [4, 2]
    explicit = SGD([{"params": params, "weight_decay": 0.3}], lr=0.1)
    assert len(explicit.param_groups) == 1 and explicit.param_groups[0]["weight_decay"] == 0.3


def test_weight_decay_acts_on_biases_too() -> None:
    rng = np.random.default_rng(5)
    params = make_params(rng)
    before = [p.data.copy() for p in params]
    SGD(params, lr=0.1, weight_decay=0.5).step()  # zero grads: only the decay acts
    for p, b in zip(params, before, strict=True):
        np.testing.assert_allclose(p.data, b * (1 - 0.1 * 0.5))
    params = make_params(rng)
    before = [p.data.copy() for p in params]
    SGD(param_groups(params, 0.5), lr=0.1).step()
    np.testing.assert_allclose(params[0].data, before[0] * (1 - 0.1 * 0.5))
    np.testing.assert_array_equal(params[1].data, before[1])


@pytest.mark.parametrize(
    "build,exc",
    [
        (lambda ps: SGD([], lr=0.1), ValueError),
        (lambda ps: SGD(ps, lr=-1.0), ValueError),
        (lambda ps: SGD(ps, lr=0.1, nesterov=True), ValueError),
        (lambda ps: SGD([ps[0], ps[0]], lr=0.1), ValueError),
        (lambda ps: SGD([{"params": ps[:1]}, {"params": ps[:2]}], lr=0.1), ValueError),
        (lambda ps: SGD([ps[0], {"params": ps[1:]}], lr=0.1), TypeError),
        (lambda ps: SGD([np.zeros(3)], lr=0.1), TypeError),
        (lambda ps: Adam(ps, betas=(1.0, 0.999)), ValueError),
        (lambda ps: RMSprop(ps, momentum=-0.1), ValueError),
    ],
)
def test_invalid_arguments(build, exc) -> None:
    with pytest.raises(exc):
        build(make_params(np.random.default_rng(6)))


@pytest.mark.parametrize(
    "cls,kw,steps",
    [
        (SGD, {"lr": 0.1}, 300),
        (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}, 200),
        (Adam, {"lr": 0.05}, 400),
        (AdamW, {"lr": 0.05, "weight_decay": 1e-4}, 400),
        (RMSprop, {"lr": 0.01, "momentum": 0.5}, 400),
    ],
)
def test_minimises_a_quadratic(cls, kw, steps) -> None:
    """f(x) = 0.5 (x - c)^T A (x - c), A SPD with condition number 10: x -> c."""
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a = q @ np.diag(np.linspace(0.1, 1.0, 6)) @ q.T * 2.0
    c = rng.standard_normal(6)
    x = Parameter(np.zeros(6))
    opt = cls([x], **kw)
    start = np.linalg.norm(x.data - c)
    for _ in range(steps):
        opt.zero_grad()
        x.grad += a @ (x.data - c)
        opt.step()
    assert np.linalg.norm(x.data - c) < 0.05 * start


def test_grad_norm_and_clipping() -> None:
    rng = np.random.default_rng(8)
    params = make_params(rng, np.float32)
    feed(params, rng)
    flat = np.concatenate([p.grad.ravel() for p in params]).astype(np.float64)
    expected = float(np.sqrt((flat**2).sum()))
    assert grad_norm(params) == pytest.approx(expected, rel=1e-5)
    assert grad_norm(params, float("inf")) == pytest.approx(np.abs(flat).max(), rel=1e-6)
    assert grad_norm([]) == 0.0

    untouched = [p.grad.copy() for p in params]
    assert clip_grad_norm_(params, expected * 2) == pytest.approx(expected, rel=1e-5)
    for p, g in zip(params, untouched, strict=True):
        np.testing.assert_array_equal(p.grad, g)

    total = clip_grad_norm_(params, 1.0)
    assert total == pytest.approx(expected, rel=1e-5)
    assert grad_norm(params) == pytest.approx(1.0, rel=1e-5)
    for p, g in zip(params, untouched, strict=True):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, g / expected, rtol=1e-5)

    single = Parameter(np.array([3.0, 4.0]))
    single.grad[...] = [3.0, 4.0]
    assert clip_grad_norm_(single, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(single.grad, [0.6, 0.8], rtol=1e-6)

    single.grad[0] = np.nan
    with pytest.raises(RuntimeError):
        clip_grad_norm_(single, 1.0, error_if_nonfinite=True)


def test_closure_and_set_to_none_like_torch() -> None:
    from barenet import nn

    model = nn.Sequential(nn.Linear(3, 2, rng=0))
    opt = SGD(model.parameters(), lr=0.1)
    x, y = np.ones((4, 3), np.float32), np.array([0, 1, 0, 1])
    loss_fn = nn.CrossEntropyLoss()
    before = model[0].weight.data.copy()

    def closure() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, float) and loss > 0
    assert not np.array_equal(model[0].weight.data, before)  # the closure's gradient was used
    model.zero_grad(set_to_none=False)
    assert not model[0].weight.grad.any()
    assert opt.step() is None


def test_torch_module_paths() -> None:
    """torch.optim.lr_scheduler.X and torch.nn.utils.clip_grad_norm_ have barenet twins."""
    from barenet import nn, optim
    from barenet.optim import lr_scheduler

    # as torch.optim.lr_scheduler: an attribute once barenet.optim is imported
    code = "import barenet.optim as o; print(o.lr_scheduler.StepLR is o.StepLR)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr[-500:]
    for name in ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "CyclicLR",
                 "ConstantLR", "ReduceLROnPlateau"):  # fmt: skip
        assert getattr(lr_scheduler, name) is getattr(optim, name)
    lin = nn.Linear(3, 2, rng=0)
    lin.weight.grad[...] = 10.0
    total = nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
    assert total == pytest.approx(np.sqrt(6 * 100))
    assert np.linalg.norm(lin.weight.grad) == pytest.approx(1.0, rel=1e-5)
