"""Optimizers and gradient clipping against torch.optim / torch.nn.utils, in float64.

Both sides start from the same parameters and receive the same random gradients
for several steps; parameters (and optimizer state) must agree after every step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from barenet.nn.module import Parameter
from barenet.optim import (
    SGD,
    Adadelta,
    Adam,
    AdamW,
    RMSprop,
    clip_grad_norm_,
    grad_norm,
    param_groups,
)

STEPS = 5
RTOL = 1e-6


def make_params(rng: np.random.Generator) -> list[Parameter]:
    """Two weight matrices and two biases (no_decay) of random sizes, interleaved like a model."""
    n0, n1, n2 = (int(v) for v in rng.integers(2, 9, size=3))
    return [
        Parameter(rng.standard_normal((n1, n0)), no_decay=False),
        Parameter(rng.standard_normal(n1), no_decay=True),
        Parameter(rng.standard_normal((n2, n1)), no_decay=False),
        Parameter(rng.standard_normal(n2), no_decay=True),
    ]


def to_torch(params: list[Parameter]) -> list[torch.Tensor]:
    return [torch.tensor(p.data.copy(), dtype=torch.float64, requires_grad=True) for p in params]


def torch_groups(tparams: list[torch.Tensor], spec: list[dict]) -> list[dict]:
    """Translate index-based group specs to torch param groups."""
    return [{**g, "params": [tparams[i] for i in g["params"]]} for g in spec]


def run_side_by_side(ours, theirs, params, tparams, rng, lr_change=None):
    for step in range(STEPS):
        if lr_change is not None:
            ours.lr = lr_change(step)
            for g in theirs.param_groups:
                g["lr"] = lr_change(step)
        for p, t in zip(params, tparams, strict=True):
            g = rng.standard_normal(p.data.shape)
            p.grad[...] = g
            t.grad = torch.from_numpy(g.copy())
        ours.step()
        theirs.step()
        for i, (p, t) in enumerate(zip(params, tparams, strict=True)):
            np.testing.assert_allclose(
                p.data, t.detach().numpy(), rtol=RTOL, atol=1e-12, err_msg=f"step {step} param {i}"
            )


def compare_state(ours, theirs) -> None:
    """Our state dict and torch's hold the same tensors under the same indices and names."""
    ts = theirs.state_dict()["state"]
    os_ = ours.state_dict()["state"]
    assert set(ts) == set(os_)
    for i, tstate in ts.items():
        for name, value in tstate.items():
            if name == "step":
                assert os_[i]["step"] == int(value)
            elif isinstance(value, torch.Tensor):
                np.testing.assert_allclose(os_[i][name], value.numpy(), rtol=RTOL, atol=1e-12)


CASES = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.2}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}),
    (Adam, torch.optim.Adam, {}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05}),
    (AdamW, torch.optim.AdamW, {"lr": 0.01}),
    (AdamW, torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}),
    (RMSprop, torch.optim.RMSprop, {}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.9}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "centered": True}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5, "alpha": 0.9}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "weight_decay": 0.1, "momentum": 0.3}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "weight_decay": 0.1, "centered": True}),
    (AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (Adadelta, torch.optim.Adadelta, {}),
    (Adadelta, torch.optim.Adadelta, {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1}),
    # torch's keyword-only options: gradient ascent, Adam's decoupled decay, kernel choices
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "maximize": True}),
    (SGD, torch.optim.SGD, {"lr": 0.1, "maximize": True, "foreach": False}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "maximize": True, "amsgrad": True, "fused": True}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.2, "decoupled_weight_decay": True}),
    (AdamW, torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.3, "maximize": True}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    (RMSprop, torch.optim.RMSprop, {"centered": True, "momentum": 0.5, "maximize": True}),
    (Adadelta, torch.optim.Adadelta, {"weight_decay": 0.1, "maximize": True, "foreach": True}),
]


def case_id(case) -> str:
    ours, _, kw = case
    return ours.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("seed", range(len(CASES)), ids=[case_id(c) for c in CASES])
def test_optimizer_matches_torch(seed: int) -> None:
    """Same arguments, same parameter list: weight decay on every parameter, biases
    included, exactly as torch; one group, so get_last_lr() has one value."""
    ours_cls, torch_cls, kw = CASES[seed]
    rng = np.random.default_rng(seed)
    params = make_params(rng)
    tparams = to_torch(params)
    ours = ours_cls(params, **kw)
    assert len(ours.param_groups) == 1
    theirs = torch_cls(tparams, **kw)
    run_side_by_side(ours, theirs, params, tparams, rng)
    compare_state(ours, theirs)


WD_CASES = [c for c in CASES if c[2].get("weight_decay", 0) > 0 or c[0] is AdamW]


@pytest.mark.parametrize("case", WD_CASES, ids=[case_id(c) for c in WD_CASES])
def test_param_groups_without_bias_decay_match_torch(case) -> None:
    """param_groups(...) (the config's decay_bias: false) == torch with the same groups."""
    ours_cls, torch_cls, kw = case
    kw = dict(kw)
    wd = kw.pop("weight_decay", 1e-2)
    rng = np.random.default_rng(17)
    params = make_params(rng)
    tparams = to_torch(params)
    ours = ours_cls(param_groups(params, wd), **kw)
    spec = [{"params": [0, 2], "weight_decay": wd}, {"params": [1, 3], "weight_decay": 0.0}]
    theirs = torch_cls(torch_groups(tparams, spec), **kw)
    run_side_by_side(ours, theirs, params, tparams, rng)
    compare_state(ours, theirs)


def test_decaying_biases_changes_the_result() -> None:
    """Guard for the tests above: with or without bias decay really differ."""
    rng = np.random.default_rng(3)
    params = make_params(rng)
    spared = [Parameter(p.data.copy(), no_decay=p.no_decay) for p in params]
    AdamW(params, lr=0.05, weight_decay=0.5).step()  # zero grads: only the decay acts
    AdamW(param_groups(spared, 0.5), lr=0.05).step()
    np.testing.assert_allclose(params[0].data, spared[0].data, rtol=RTOL)
    assert not np.allclose(params[1].data, spared[1].data)


def test_get_last_lr_one_value_per_group() -> None:
    from barenet.optim import StepLR

    rng = np.random.default_rng(2)
    params = make_params(rng)
    tparams = to_torch(params)
    ours = StepLR(AdamW(params, lr=0.01, weight_decay=0.1), step_size=2, gamma=0.5)
    theirs = torch.optim.lr_scheduler.StepLR(
        torch.optim.AdamW(tparams, lr=0.01, weight_decay=0.1), step_size=2, gamma=0.5
    )
    for _ in range(3):
        ours.optimizer.step()
        theirs.optimizer.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr())
    assert len(ours.get_last_lr()) == 1


@pytest.mark.parametrize(
    "ours_cls,torch_cls,defaults",
    [
        (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
        (Adam, torch.optim.Adam, {"lr": 0.01}),
        (AdamW, torch.optim.AdamW, {"lr": 0.01}),
        (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.5}),
    ],
)
def test_explicit_groups_match_torch(ours_cls, torch_cls, defaults) -> None:
    """Groups with their own lr / weight decay are used as given (biases included)."""
    rng = np.random.default_rng(11)
    params = make_params(rng)
    tparams = to_torch(params)
    spec = [
        {"params": [0, 1], "lr": 0.03, "weight_decay": 0.1},
        {"params": [2, 3], "weight_decay": 0.0},
    ]
    ours = ours_cls([{**g, "params": [params[i] for i in g["params"]]} for g in spec], **defaults)
    assert ours.param_groups[0]["weight_decay"] == 0.1  # the bias in group 0 is decayed
    theirs = torch_cls(torch_groups(tparams, spec), **defaults)
    run_side_by_side(ours, theirs, params, tparams, rng)
    compare_state(ours, theirs)


@pytest.mark.parametrize("cls,tcls", [(Adam, torch.optim.Adam), (SGD, torch.optim.SGD)])
def test_lr_changed_between_steps_matches_torch(cls, tcls) -> None:
    rng = np.random.default_rng(5)
    params = make_params(rng)
    tparams = to_torch(params)
    kw = {"lr": 0.1, "momentum": 0.9} if cls is SGD else {"lr": 0.1}
    ours, theirs = cls(params, **kw), tcls(tparams, **kw)
    run_side_by_side(ours, theirs, params, tparams, rng, lr_change=lambda s: 0.1 / (1 + s))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type: float, max_norm: float) -> None:
    rng = np.random.default_rng([int(min(norm_type, 99)), int(max_norm)])
    params = make_params(rng)
    tparams = to_torch(params)
    for p, t in zip(params, tparams, strict=True):
        g = rng.standard_normal(p.data.shape)
        p.grad[...] = g
        t.grad = torch.from_numpy(g.copy())
    before = grad_norm(params, norm_type)
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    assert total == pytest.approx(float(expected), rel=RTOL)
    assert before == pytest.approx(float(expected), rel=RTOL)
    # torch returns a 0-d tensor; the logging idiom total.item() works on ours too
    assert total.item() == pytest.approx(expected.item(), rel=RTOL)
    for p, t in zip(params, tparams, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=RTOL, atol=1e-12)
    if max_norm < float(expected):
        assert grad_norm(params, norm_type) == pytest.approx(max_norm, rel=1e-5)


@pytest.mark.parametrize("ours", [SGD, Adam, AdamW, RMSprop, Adadelta], ids=lambda c: c.__name__)
def test_signature_matches_torch(ours: type) -> None:
    """Every argument torch's has, in its order, kind and default: SGD(params, 0.1, 0.9, 0,
    1e-4) written for torch means the same here, and so does every keyword."""
    import inspect

    theirs = inspect.signature(getattr(torch.optim, ours.__name__)).parameters
    mine = inspect.signature(ours).parameters
    assert list(mine) == list(theirs), (list(mine), list(theirs))
    for name in list(mine)[1:]:
        assert mine[name].kind == theirs[name].kind, name
        expect = theirs[name].default
        assert mine[name].default == expect, (name, mine[name].default, expect)


@pytest.mark.parametrize("ours", [Adam, AdamW, RMSprop, Adadelta], ids=lambda c: c.__name__)
@pytest.mark.parametrize("option", ["capturable", "differentiable"])
def test_options_without_meaning_here_are_refused(ours: type, option: str) -> None:
    """torch's CUDA-graph and autograd-through-the-step options: a TypeError saying so,
    never an update that silently differs (torch itself refuses capturable on the CPU)."""
    with pytest.raises(TypeError, match=option):
        ours([Parameter(np.zeros(2))], **{option: True})
    ours([Parameter(np.zeros(2))], **{option: False})  # torch's default is accepted
