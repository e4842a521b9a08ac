"""LR schedules without torch: counting convention, warm-up, factory, state, plateau."""

from __future__ import annotations

import math

import numpy as np
import pytest

from barenet.nn.module import Parameter
from barenet.optim import (
    SCHEDULES,
    SGD,
    Adam,
    ConstantLR,
    CosineAnnealingLR,
    CyclicLR,
    ReduceLROnPlateau,
    StepLR,
    build_schedule,
)

TOTAL = 40


def make_optimizer(lrs=(0.1,)) -> SGD:
    rng = np.random.default_rng(0)
    groups = [{"params": [Parameter(rng.standard_normal(2))], "lr": lr} for lr in lrs]
    return SGD(groups, lr=1.0, momentum=0.9)


PER_STEP = [n for n in SCHEDULES if n != "plateau"]


@pytest.mark.parametrize("warmup", [0, 5])
@pytest.mark.parametrize("name", PER_STEP)
def test_lr_at_equals_optimizer_lr_after_k_steps(name: str, warmup: int) -> None:
    opt = make_optimizer((0.1, 0.02))
    sched = build_schedule(name, opt, TOTAL, warmup_steps=warmup)
    plotted = [sched.lr_at(k) for k in range(TOTAL + 1)]
    assert opt.lr == plotted[0]  # plotting has no side effects
    seen = [opt.lr]
    for _ in range(TOTAL):
        sched.step()
        seen.append(opt.lr)
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    assert seen == plotted
    # The second group follows its own initial lr in the same ratio.
    np.testing.assert_allclose(
        [sched.lrs_at(k)[1] for k in range(TOTAL + 1)], np.array(plotted) * 0.2, rtol=1e-12
    )
    if name != "constant":
        assert len(set(plotted)) > 2


def test_factory_defaults() -> None:
    lr = 0.1
    cos = build_schedule("cosine", make_optimizer((lr,)), TOTAL)
    assert cos.lr_at(0) == lr
    assert cos.lr_at(TOTAL) == pytest.approx(0.0, abs=1e-15)
    assert cos.lr_at(TOTAL // 2) == pytest.approx(lr / 2)
    exp = build_schedule("exponential", make_optimizer((lr,)), TOTAL)
    assert exp.lr_at(TOTAL) == pytest.approx(lr / 100)
    cyc = build_schedule("cyclic", make_optimizer((lr,)), TOTAL)
    lrs = [cyc.lr_at(k) for k in range(TOTAL + 1)]
    assert lrs[0] == pytest.approx(lr / 100)
    assert max(lrs) == pytest.approx(lr) and lrs[TOTAL // 2] == pytest.approx(lr)
    assert lrs[TOTAL] == pytest.approx(lr / 100)
    step = build_schedule("step", make_optimizer((lr,)), 30, gamma=0.5)
    assert [step.lr_at(k) for k in (9, 10, 20)] == pytest.approx([lr, lr / 2, lr / 4])
    multi = build_schedule("multistep", make_optimizer((lr,)), 40)
    assert [multi.lr_at(k) for k in (19, 20, 29, 30)] == pytest.approx(
        [lr, lr / 10, lr / 10, lr / 100]
    )
    warm_cos = build_schedule("cosine", make_optimizer((lr,)), TOTAL, warmup_steps=10)
    assert warm_cos.lr_at(10) == pytest.approx(lr)
    assert warm_cos.lr_at(TOTAL) == pytest.approx(0.0, abs=1e-15)  # decay ends with the run
    assert isinstance(build_schedule("plateau", make_optimizer(), TOTAL), ReduceLROnPlateau)


def test_factory_errors() -> None:
    with pytest.raises(ValueError) as err:
        build_schedule("linear", make_optimizer(), TOTAL)
    for name in SCHEDULES:
        assert name in str(err.value)
    with pytest.raises(TypeError):
        build_schedule("cosine", make_optimizer(), TOTAL, bogus=1)
    with pytest.raises(ValueError):
        build_schedule("cyclic", make_optimizer(), TOTAL, mode="sawtooth")
    with pytest.raises(ValueError):
        CosineAnnealingLR(make_optimizer(), T_max=0)
    with pytest.raises(ValueError):
        StepLR(make_optimizer(), step_size=0)
    with pytest.raises(ValueError):
        ConstantLR(make_optimizer(), warmup_steps=-1)
    with pytest.raises(ValueError):
        ConstantLR(make_optimizer()).lr_at(-1)


@pytest.mark.parametrize("start", [0.0, 0.1, 0.5])
def test_warmup_then_cosine_numpy_expectation(start: float) -> None:
    """lr(k) = base (s + (1 - s) k / W) for k < W, then the cosine at k - W."""
    base, w, t_max, eta = 0.2, 6, 20, 0.01
    sched = CosineAnnealingLR(
        make_optimizer((base,)), T_max=t_max, eta_min=eta, warmup_steps=w, warmup_start_factor=start
    )
    k = np.arange(40)
    expected = np.where(
        k < w,
        base * (start + (1 - start) * k / w),
        eta + (base - eta) * (1 + np.cos(np.pi * (k - w) / t_max)) / 2,
    )
    np.testing.assert_allclose([sched.lr_at(int(i)) for i in k], expected, rtol=1e-12)
    assert sched.optimizer.lr == pytest.approx(base * start)


def test_cyclic_triangle_numpy_expectation() -> None:
    base, top, up, down = 0.001, 0.1, 4, 6
    sched = CyclicLR(make_optimizer((top,)), base, top, step_size_up=up, step_size_down=down)
    k = np.arange(35)
    pos = k % (up + down)
    frac = np.where(pos <= up, pos / up, 1 - (pos - up) / down)
    np.testing.assert_allclose([sched.lr_at(int(i)) for i in k], base + (top - base) * frac)


def test_schedule_state_dict_round_trip() -> None:
    opt = make_optimizer((0.1, 0.05))
    sched = build_schedule("cosine", opt, TOTAL, warmup_steps=4)
    for _ in range(7):
        sched.step()
    state = sched.state_dict()
    opt_state = opt.state_dict()

    opt2 = make_optimizer((0.1, 0.05))
    opt2.load_state_dict(opt_state)
    sched2 = build_schedule("cosine", opt2, TOTAL, warmup_steps=4)
    sched2.load_state_dict(state)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    for _ in range(5):
        sched.step()
        sched2.step()
        assert opt2.lr == opt.lr
    with pytest.raises(ValueError):
        build_schedule("step", make_optimizer((0.1, 0.05)), TOTAL).load_state_dict(state)


def test_initial_lr_is_kept_like_torch() -> None:
    """A second schedule on the same optimizer starts from the original lr, not the decayed one."""
    opt = make_optimizer((0.1,))
    first = StepLR(opt, step_size=1, gamma=0.5)
    first.step()
    assert opt.lr == pytest.approx(0.05)
    second = ConstantLR(opt, factor=1.0)
    assert second.lr_at(3) == pytest.approx(0.1)
    assert opt.lr == pytest.approx(0.1)


def test_needs_metric_flags() -> None:
    assert not build_schedule("cosine", make_optimizer(), TOTAL).needs_metric
    assert build_schedule("plateau", make_optimizer(), TOTAL).needs_metric


def test_plateau_reduces_after_patience_and_cools_down() -> None:
    opt = make_optimizer((1.0, 0.5))
    plateau = ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=[0.2, 0.2])
    history = []
    for m in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]:
        plateau.step(m)
        history.append([g["lr"] for g in opt.param_groups])
    # Bad epochs at 3, 4, 5 -> cut after the 3rd (epoch 5); cooldown eats epoch 6;
    # bad epochs 7, 8, 9 -> cut at epoch 9, where group 1 stops at its floor 0.2.
    expected = [[1.0, 0.5]] * 4 + [[0.5, 0.25]] * 4 + [[0.25, 0.2]] * 2
    assert history == expected


def test_plateau_threshold_and_max_mode() -> None:
    opt = make_optimizer((1.0,))
    plateau = ReduceLROnPlateau(opt, mode="max", patience=0, threshold=0.1)
    assert not plateau.step(1.0)  # first value always improves on -inf
    assert not plateau.step(1.2)  # +20% > 10%: better
    assert plateau.step(1.3)  # +8% < 10%: bad, patience 0 -> cut
    assert opt.lr == pytest.approx(0.1)
    plateau_abs = ReduceLROnPlateau(make_optimizer(), threshold_mode="abs", threshold=0.5)
    assert plateau_abs.is_better(0.4, 1.0) and not plateau_abs.is_better(0.6, 1.0)
    with pytest.raises(ValueError):
        ReduceLROnPlateau(make_optimizer(), factor=1.0)
    with pytest.raises(ValueError):
        ReduceLROnPlateau(make_optimizer(), mode="up")


def test_plateau_state_dict_round_trip() -> None:
    metrics = [1.0, 0.8, 0.85, 0.9, 0.81, 0.95, 0.7, 0.72, 0.75, 0.74, 0.73]
    opt = make_optimizer()
    plateau = ReduceLROnPlateau(opt, patience=1, cooldown=1)
    for m in metrics[:5]:
        plateau.step(m)
    opt2 = Adam(make_optimizer().param_groups[0]["params"], lr=opt.lr)
    resumed = ReduceLROnPlateau(opt2, patience=1, cooldown=1)
    resumed.load_state_dict(plateau.state_dict())
    for m in metrics[5:]:
        plateau.step(m)
        resumed.step(m)
        assert opt2.lr == opt.lr
    assert math.isclose(resumed.best, 0.7)
