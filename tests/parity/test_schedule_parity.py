"""LR schedules against torch.optim.lr_scheduler over 50 steps, with two param groups.

Two groups with different initial lrs check that each group is scheduled from
its own initial lr. After k calls to ``step()`` our optimizer's lrs (and
``lrs_at(k)``) must equal torch's ``get_last_lr()`` after k scheduler steps.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tsched

from barenet.nn.module import Parameter
from barenet.optim import (
    SGD,
    Adadelta,
    Adam,
    ConstantLR,
    CosineAnnealingLR,
    CyclicLR,
    ExponentialLR,
    MultiStepLR,
    ReduceLROnPlateau,
    StepLR,
)

STEPS = 50
LRS = (0.1, 0.025)


def ours_optimizer() -> SGD:
    rng = np.random.default_rng(0)
    groups = [{"params": [Parameter(rng.standard_normal(3))], "lr": lr} for lr in LRS]
    return SGD(groups, lr=1.0)


def torch_optimizer() -> torch.optim.SGD:
    groups = [
        {"params": [torch.zeros(3, dtype=torch.float64, requires_grad=True)], "lr": lr}
        for lr in LRS
    ]
    return torch.optim.SGD(groups, lr=1.0)


def torch_lrs(make_sched, steps: int = STEPS) -> list[list[float]]:
    opt = torch_optimizer()
    sched = make_sched(opt)
    out = [list(sched.get_last_lr())]
    for _ in range(steps):
        opt.step()  # no grads: a no-op that keeps torch's call-order check quiet
        sched.step()
        out.append(list(sched.get_last_lr()))
    return [[float(v) for v in row] for row in out]


def ours_lrs(make_sched, steps: int = STEPS) -> list[list[float]]:
    """Group lrs written into the optimizer after 0..steps calls; also checks lrs_at/lr_at."""
    opt = ours_optimizer()
    sched = make_sched(opt)
    out = [[g["lr"] for g in opt.param_groups]]
    for _ in range(steps):
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
    for k, row in enumerate(out):
        assert sched.lrs_at(k) == row
        assert sched.lr_at(k) == row[0]
    return out


def assert_lrs_equal(ours: list[list[float]], theirs: list[list[float]]) -> None:
    # Torch's recursive forms accumulate rounding: compare relative, with a floor near 0.
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-9, atol=1e-15)


def _cyclic_torch(**kw):
    base = [lr / 100 for lr in LRS]
    return lambda o: tsched.CyclicLR(o, base, list(LRS), cycle_momentum=False, **kw)


def _cyclic_ours(**kw):
    base = [lr / 100 for lr in LRS]
    return lambda o, **w: CyclicLR(o, base, list(LRS), **kw, **w)


# name -> (ours(optimizer, **warmup), torch(optimizer))
PAIRS = {
    "constant": (
        lambda o, **w: ConstantLR(o, factor=1.0, total_iters=0, **w),
        lambda o: tsched.LambdaLR(o, lambda k: 1.0),
    ),
    "constant-torch-defaults": (lambda o, **w: ConstantLR(o, **w), tsched.ConstantLR),
    "constant-factor": (
        lambda o, **w: ConstantLR(o, 0.25, 12, **w),
        lambda o: tsched.ConstantLR(o, 0.25, 12),
    ),
    "step": (lambda o, **w: StepLR(o, 7, 0.5, **w), lambda o: tsched.StepLR(o, 7, 0.5)),
    "multistep": (
        lambda o, **w: MultiStepLR(o, [12, 5, 30, 12], 0.3, **w),
        lambda o: tsched.MultiStepLR(o, [5, 12, 12, 30], 0.3),
    ),
    "exponential": (
        lambda o, **w: ExponentialLR(o, 0.93, **w),
        lambda o: tsched.ExponentialLR(o, 0.93),
    ),
    "cosine": (
        lambda o, **w: CosineAnnealingLR(o, T_max=20, eta_min=1e-3, **w),
        lambda o: tsched.CosineAnnealingLR(o, T_max=20, eta_min=1e-3),
    ),
    "cosine-eta0": (
        lambda o, **w: CosineAnnealingLR(o, T_max=50, **w),
        lambda o: tsched.CosineAnnealingLR(o, T_max=50),
    ),
    "cyclic": (_cyclic_ours(step_size_up=7), _cyclic_torch(step_size_up=7)),
    "cyclic-asym": (
        _cyclic_ours(step_size_up=6, step_size_down=3),
        _cyclic_torch(step_size_up=6, step_size_down=3),
    ),
    "cyclic-tri2": (
        _cyclic_ours(step_size_up=4, mode="triangular2"),
        _cyclic_torch(step_size_up=4, mode="triangular2"),
    ),
    "cyclic-exp": (
        _cyclic_ours(step_size_up=5, mode="exp_range", gamma=0.97),
        _cyclic_torch(step_size_up=5, mode="exp_range", gamma=0.97),
    ),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_schedule_matches_torch(name: str) -> None:
    ours, theirs = PAIRS[name]
    assert_lrs_equal(ours_lrs(ours), torch_lrs(theirs))


@pytest.mark.parametrize(
    "name,warmup,start",
    [
        ("constant", 5, 0.1),
        ("step", 6, 0.1),
        ("multistep", 4, 0.25),
        ("exponential", 10, 0.05),
        ("cosine", 8, 0.1),
    ],
)
def test_warmup_matches_torch_sequential_linear(name: str, warmup: int, start: float) -> None:
    """Warm-up then X(k - W) equals SequentialLR([LinearLR, X], milestones=[W])."""
    ours_make, torch_make = PAIRS[name]

    def theirs(o):
        lin = tsched.LinearLR(o, start_factor=start, end_factor=1.0, total_iters=warmup)
        return tsched.SequentialLR(o, [lin, torch_make(o)], milestones=[warmup])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR uses torch's deprecated step(epoch) path
        expected = torch_lrs(theirs)
    got = ours_lrs(lambda o: ours_make(o, warmup_steps=warmup, warmup_start_factor=start))
    assert_lrs_equal(got, expected)
    assert got[warmup - 1] != got[warmup + 1]  # the warm-up really happened and ended


METRIC_CASES = {
    "min-rel": {"mode": "min", "patience": 2},
    "min-abs-cooldown": {
        "mode": "min",
        "threshold_mode": "abs",
        "threshold": 0.05,
        "cooldown": 3,
        "patience": 3,
    },
    "max-rel-minlr": {"mode": "max", "patience": 1, "factor": 0.5, "min_lr": [0.02, 0.001]},
    "max-abs": {"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "patience": 0},
}


@pytest.mark.parametrize("case", list(METRIC_CASES))
def test_plateau_matches_torch(case: str) -> None:
    kw = METRIC_CASES[case]
    rng = np.random.default_rng(len(case))
    # A noisy metric that improves, stalls, then improves again: several reductions.
    trend = np.concatenate([np.linspace(1.0, 0.5, 10), np.full(25, 0.5), np.linspace(0.5, 0.3, 15)])
    metrics = trend + 0.02 * rng.standard_normal(trend.size)
    if kw["mode"] == "max":
        metrics = -metrics
    ours_opt, torch_opt = ours_optimizer(), torch_optimizer()
    ours, theirs = ReduceLROnPlateau(ours_opt, **kw), tsched.ReduceLROnPlateau(torch_opt, **kw)
    reductions = 0
    for m in metrics:
        reductions += ours.step(metrics=float(m))  # torch's keyword (was `metric`)
        theirs.step(metrics=float(m))
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        assert ours.num_bad_epochs == theirs.num_bad_epochs
        assert ours.best == theirs.best
    assert reductions >= 2
    assert math.isclose(ours_opt.lr, torch_opt.param_groups[0]["lr"], rel_tol=1e-12)


def test_last_epoch_counts_steps_as_torchs() -> None:
    p = torch.zeros(1, requires_grad=True)
    theirs = tsched.StepLR(torch.optim.SGD([p], lr=0.1), 2, 0.5)
    ours = StepLR(SGD([Parameter(np.zeros(1))], lr=0.1), 2, 0.5)
    for _ in range(3):
        assert ours.last_epoch == theirs.last_epoch
        ours.optimizer.step(), theirs.optimizer.step()
        ours.step(), theirs.step()
    assert ours.last_epoch == theirs.last_epoch == 3


CHAINABLE = {
    "step": (lambda o: StepLR(o, 3, 0.5), lambda o: tsched.StepLR(o, 3, 0.5)),
    "multistep": (
        lambda o: MultiStepLR(o, [4, 9], 0.3),
        lambda o: tsched.MultiStepLR(o, [4, 9], 0.3),
    ),
    "exponential": (lambda o: ExponentialLR(o, 0.9), lambda o: tsched.ExponentialLR(o, 0.9)),
}


@pytest.mark.parametrize("name", list(CHAINABLE))
def test_an_lr_set_by_hand_carries_on_as_in_torch(name: str) -> None:
    """torch's schedules build on the lr they find: an lr set by hand mid-run is scaled by
    the later decays instead of being overwritten by the schedule's closed form."""
    make_ours, make_theirs = CHAINABLE[name]
    opt, topt = ours_optimizer(), torch_optimizer()
    sched, tsch = make_ours(opt), make_theirs(topt)
    ours, theirs = [], []
    for k in range(14):
        if k == 5:
            for g, tg in zip(opt.param_groups, topt.param_groups, strict=True):
                g["lr"] = tg["lr"] = 0.004
        topt.step()
        sched.step()
        tsch.step()
        ours.append([g["lr"] for g in opt.param_groups])
        theirs.append([float(v) for v in tsch.get_last_lr()])
    assert_lrs_equal(ours, theirs)


def test_two_schedules_on_one_optimizer_multiply_as_in_torch() -> None:
    opt, topt = ours_optimizer(), torch_optimizer()
    a, b = StepLR(opt, 4, 0.5), ExponentialLR(opt, 0.95)
    ta, tb = tsched.StepLR(topt, 4, 0.5), tsched.ExponentialLR(topt, 0.95)
    ours, theirs = [], []
    for _ in range(15):
        topt.step()
        a.step()
        b.step()
        ta.step()
        tb.step()
        ours.append([g["lr"] for g in opt.param_groups])
        theirs.append([float(g["lr"]) for g in topt.param_groups])
    assert_lrs_equal(ours, theirs)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"mode": "triangular2", "step_size_down": 3, "base_momentum": 0.5, "max_momentum": 0.95},
        {"mode": "exp_range", "gamma": 0.97},
        {"scale_fn": lambda c: 0.7 ** (c - 1)},
        {"scale_fn": lambda k: 1 / (1 + 0.05 * k), "scale_mode": "iterations"},
    ],
    ids=["defaults", "tri2", "exp", "scale_fn-cycle", "scale_fn-iterations"],
)
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_cyclic_with_torch_defaults_cycles_momentum(kw: dict, opt: str) -> None:
    """torch's CyclicLR cycles momentum by default (SGD's momentum, Adam's beta1), in
    antiphase with the lr; custom scale functions in both scale modes."""
    p, tp = Parameter(np.zeros(3)), torch.zeros(3, requires_grad=True)
    if opt == "sgd":
        ours_opt, torch_opt = SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([tp], 0.1, 0.9)
    else:
        ours_opt, torch_opt = Adam([p], lr=0.1), torch.optim.Adam([tp], lr=0.1)
    ours = CyclicLR(ours_opt, [0.01], 0.1, 4, **kw)
    theirs = tsched.CyclicLR(torch_opt, [0.01], 0.1, 4, **kw)
    key = "momentum" if opt == "sgd" else "betas"
    for _ in range(30):
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(theirs.get_last_lr()[0], rel=1e-12)
        np.testing.assert_allclose(
            ours_opt.param_groups[0][key], torch_opt.param_groups[0][key], rtol=1e-12
        )
        torch_opt.step()
        ours.step()
        theirs.step()


def test_cyclic_momentum_needs_an_optimizer_with_momentum() -> None:
    with pytest.raises(ValueError, match="cycle_momentum=False"):
        CyclicLR(Adadelta([Parameter(np.zeros(1))]), 0.01, 0.1)
    CyclicLR(Adadelta([Parameter(np.zeros(1))]), 0.01, 0.1, cycle_momentum=False)


RESUMABLE = {
    "step": (StepLR, tsched.StepLR, (3, 0.5)),
    "multistep": (MultiStepLR, tsched.MultiStepLR, ([4, 6, 9], 0.5)),
    "exponential": (ExponentialLR, tsched.ExponentialLR, (0.9,)),
    "cosine": (CosineAnnealingLR, tsched.CosineAnnealingLR, (10, 0.01)),
    "constant": (ConstantLR, tsched.ConstantLR, (0.5, 6)),
}


@pytest.mark.parametrize("name", list(RESUMABLE))
@pytest.mark.parametrize("last_epoch", [0, 4, 7])
def test_last_epoch_resumes_as_torch(name: str, last_epoch: int) -> None:
    """``Schedule(opt, ..., last_epoch=e)`` on an optimizer that holds ``initial_lr`` and the
    lr reached after e + 1 steps continues as torch's (last_epoch, then the lrs)."""
    ours_cls, torch_cls, args = RESUMABLE[name]
    reference = torch_lrs(lambda o: torch_cls(o, *args), steps=20)
    opt, topt = ours_optimizer(), torch_optimizer()
    resumed = reference[last_epoch + 1]
    for g, tg, lr0, lr in zip(opt.param_groups, topt.param_groups, LRS, resumed, strict=True):
        g["initial_lr"] = tg["initial_lr"] = lr0
        g["lr"] = tg["lr"] = lr
    ours, theirs = ours_cls(opt, *args, last_epoch), torch_cls(topt, *args, last_epoch)
    for _ in range(8):
        assert ours.last_epoch == theirs.last_epoch
        assert_lrs_equal([[g["lr"] for g in opt.param_groups]], [theirs.get_last_lr()])
        topt.step()
        ours.step()
        theirs.step()


def test_last_epoch_needs_initial_lr_as_torch() -> None:
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(ours_optimizer(), 3, last_epoch=2)
    with pytest.raises(KeyError, match="initial_lr"):
        tsched.StepLR(torch_optimizer(), 3, last_epoch=2)


@pytest.mark.parametrize(
    "name",
    [
        "StepLR",
        "MultiStepLR",
        "ExponentialLR",
        "CosineAnnealingLR",
        "CyclicLR",
        "ConstantLR",
        "ReduceLROnPlateau",
    ],
)
def test_schedule_signature_matches_torch(name: str) -> None:
    """torch's arguments in torch's order with torch's defaults (barenet's warm-up keywords
    come after them)."""
    import inspect

    import barenet.optim as bo

    theirs = inspect.signature(getattr(tsched, name)).parameters
    mine = inspect.signature(getattr(bo, name)).parameters
    assert list(mine)[: len(theirs)] == list(theirs)
    for arg in list(theirs)[1:]:
        assert mine[arg].default == theirs[arg].default, arg
