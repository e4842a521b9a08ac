"""Learning-rate schedules: pure functions of the step count that write the optimizer's lr.

Counting follows torch's ``LRScheduler``: building a schedule sets every group's
lr to its value at step 0; after ``k`` calls to ``step()`` the lr is
``lr_at(k)``. The trainer calls ``step()`` once per batch, so ``k`` counts
iterations (the config layer converts epochs to iterations).

Each group is scheduled from its own ``initial_lr`` (set once per optimizer,
as torch's ``group.setdefault("initial_lr", group["lr"])``), so groups with
different learning rates keep their ratio.

Warm-up (every schedule here, ``warmup_steps=W``): for ``k < W`` the lr rises
linearly from ``warmup_start_factor * X(0)`` towards ``X(0)``, ``X`` being the
underlying schedule; from ``k = W`` on it is ``X(k - W)``: the schedule starts
after the warm-up, so e.g. a cosine decay still reaches ``eta_min`` at
``W + T_max``. This equals torch's
``SequentialLR([LinearLR(start_factor, total_iters=W), X], milestones=[W])``.
The default start factor is 0.1 (one tenth of the target lr).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

from .optimizer import Optimizer
from .plateau import ReduceLROnPlateau


class LRSchedule:
    """Base class: subclasses implement ``_value(k, i)``, the lr of group ``i`` at step ``k``."""

    needs_metric = False  # the trainer calls step() per batch; plateau wants step(metric)

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if not 0.0 <= warmup_start_factor <= 1.0:
            raise ValueError(f"warmup_start_factor must be in [0, 1], got {warmup_start_factor}")
        if last_epoch < -1:
            raise ValueError(f"last_epoch must be >= -1, got {last_epoch}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:  # torch's KeyError, with its advice
                raise KeyError(
                    f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                    "a schedule with last_epoch >= 0: load the optimizer's state dict first"
                )
        self.base_lrs = [float(g["initial_lr"]) for g in optimizer.param_groups]
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        # torch's last_epoch=e resumes after e + 1 steps (its constructor takes one step).
        self.last_step = last_epoch + 1
        self._write()

    def _value(self, k: int, i: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _group_lr(self, k: int, i: int) -> float:
        if k < 0:
            raise ValueError(f"step must be >= 0, got {k}")
        w = self.warmup_steps
        if k < w:
            s = self.warmup_start_factor
            return self._value(0, i) * (s + (1.0 - s) * k / w)
        return self._value(k - w, i)

    def lr_at(self, step: int) -> float:
        """The first group's lr after ``step`` calls to ``step()`` (no side effects)."""
        return self._group_lr(int(step), 0)

    def lrs_at(self, step: int) -> list[float]:
        """Every group's lr after ``step`` calls to ``step()``."""
        return [self._group_lr(int(step), i) for i in range(len(self.optimizer.param_groups))]

    def _write(self) -> None:
        lrs = self.lrs_at(self.last_step)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._written = lrs

    def _adopt_outside_changes(self) -> None:
        """torch's schedules build on the lr they find in the optimizer (chainable): an lr
        set by hand, or by a second schedule stepping the same optimizer, since this
        schedule last wrote it carries on. Here that rescales the group's base, so the
        schedule's factor applies to the new value (StepLR after ``lr = 0.01``: 0.005 at the
        next decay, as torch)."""
        written = self.__dict__.get("_written")
        if written is None:
            return
        for i, (group, lr) in enumerate(zip(self.optimizer.param_groups, written, strict=True)):
            if group["lr"] != lr and lr != 0:
                self.base_lrs[i] *= group["lr"] / lr

    def step(self) -> None:
        """Advance one iteration and write each group's lr."""
        self._adopt_outside_changes()
        self.last_step += 1
        self._write()

    @property
    def last_epoch(self) -> int:
        """torch's name for the count of ``step()`` calls (``last_step``)."""
        return self.last_step

    def get_last_lr(self) -> list[float]:
        """The lrs written by the latest ``step()`` (torch's name)."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """``{"type", "last_step", "base_lrs"}``; hyperparameters come from the config."""
        return {
            "type": type(self).__name__,
            "last_step": self.last_step,
            "base_lrs": list(self.base_lrs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the step count and base lrs, then write the lr for that step."""
        if state.get("type", type(self).__name__) != type(self).__name__:
            raise ValueError(f"state dict is for {state['type']}, not {type(self).__name__}")
        if len(state["base_lrs"]) != len(self.base_lrs):
            raise ValueError(
                f"state dict has {len(state['base_lrs'])} groups, optimizer has "
                f"{len(self.base_lrs)}"
            )
        self.last_step = int(state["last_step"])
        self.base_lrs = [float(x) for x in state["base_lrs"]]
        self._write()


class ConstantLR(LRSchedule):
    """torch's ConstantLR: lr = initial * factor for k < total_iters, then the initial lr.
    (The config's "constant" schedule is ``factor=1``: the initial lr throughout, after the
    optional warm-up.)"""

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
        **warmup: Any,
    ) -> None:
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"factor must be in [0, 1], got {factor}")
        if total_iters < 0:
            raise ValueError(f"total_iters must be >= 0, got {total_iters}")
        self.factor, self.total_iters = float(factor), int(total_iters)
        super().__init__(optimizer, last_epoch=last_epoch, **warmup)

    def _value(self, k: int, i: int) -> float:
        return self.base_lrs[i] * self.factor if k < self.total_iters else self.base_lrs[i]


class StepLR(LRSchedule):
    """lr = initial * gamma ** (k // step_size)."""

    def __init__(
        self,
        optimizer: Optimizer,
        step_size: int,
        gamma: float = 0.1,
        last_epoch: int = -1,
        **warmup: Any,
    ) -> None:
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch=last_epoch, **warmup)

    def _value(self, k: int, i: int) -> float:
        return self.base_lrs[i] * self.gamma ** (k // self.step_size)


class MultiStepLR(LRSchedule):
    """lr = initial * gamma ** (number of milestones <= k); repeated milestones count twice."""

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
        **warmup: Any,
    ) -> None:
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer, last_epoch=last_epoch, **warmup)

    def _value(self, k: int, i: int) -> float:
        return self.base_lrs[i] * self.gamma ** bisect.bisect_right(self.milestones, k)


class ExponentialLR(LRSchedule):
    """lr = initial * gamma ** k."""

    def __init__(
        self, optimizer: Optimizer, gamma: float, last_epoch: int = -1, **warmup: Any
    ) -> None:
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch=last_epoch, **warmup)

    def _value(self, k: int, i: int) -> float:
        return self.base_lrs[i] * self.gamma**k


class CosineAnnealingLR(LRSchedule):
    """lr = eta_min + (initial - eta_min) * (1 + cos(pi k / T_max)) / 2 (closed form;
    past T_max it rises again with period 2 T_max, as torch)."""

    def __init__(
        self,
        optimizer: Optimizer,
        T_max: int,
        eta_min: float = 0.0,
        last_epoch: int = -1,
        **warmup: Any,
    ) -> None:
        if T_max < 1:
            raise ValueError(f"T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch=last_epoch, **warmup)

    def _value(self, k: int, i: int) -> float:
        cos = math.cos(math.pi * k / self.T_max)
        return self.eta_min + (self.base_lrs[i] - self.eta_min) * (1.0 + cos) / 2.0


def _per_group(name: str, value: float | Sequence[float], n: int) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)] * n
    values = [float(v) for v in value]
    if len(values) != n:
        raise ValueError(f"expected {n} values for {name}, got {len(values)}")
    return values


class CyclicLR(LRSchedule):
    """torch's CyclicLR (Smith 2017) between absolute ``base_lr`` and ``max_lr``.

    A cycle is ``step_size_up`` steps rising then ``step_size_down`` falling: at step k,
    lr = base + (max - base) * s(k) * a, with s the triangle in [0, 1] and a the
    amplitude: 1 ("triangular"), 1 / 2^(cycle - 1) ("triangular2"), gamma^k ("exp_range"),
    or ``scale_fn(cycle)`` / ``scale_fn(k)`` (``scale_mode`` "cycle" / "iterations").
    ``base_lr``/``max_lr`` are floats or one value per group. ``cycle_momentum`` (torch's
    default) moves each group's momentum (Adam's beta1) the other way, from
    ``max_momentum`` down to ``base_momentum`` at the lr's peak; the config's "cyclic"
    schedule (``build_schedule``) leaves momentum alone.
    """

    MODES = ("triangular", "triangular2", "exp_range")

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | Sequence[float],
        max_lr: float | Sequence[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.8,
        max_momentum: float | Sequence[float] = 0.9,
        last_epoch: int = -1,
        **warmup: Any,
    ) -> None:
        if mode not in self.MODES and scale_fn is None:
            raise ValueError(f"unknown CyclicLR mode {mode!r}; allowed: {', '.join(self.MODES)}")
        if scale_fn is None:  # the modes' own scale functions fix the mode, as in torch
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        elif scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        if up <= 0 or down < 0:
            raise ValueError("step_size_up must be > 0 and step_size_down >= 0")
        n = len(optimizer.param_groups)
        self.cycle_base = _per_group("base_lr", base_lr, n)
        self.cycle_max = _per_group("max_lr", max_lr, n)
        self.total_size, self.step_ratio = up + down, up / (up + down)
        self.mode, self.gamma = mode, float(gamma)
        self.scale_fn, self.scale_mode = scale_fn, scale_mode
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"{type(optimizer).__name__} has no momentum or beta1 to cycle: "
                    "pass cycle_momentum=False"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("base_momentum", base_momentum, n)
            self.max_momentums = _per_group("max_momentum", max_momentum, n)
        super().__init__(optimizer, last_epoch=last_epoch, **warmup)

    def _shape(self, k: int) -> tuple[float, float]:
        """(s(k), a(k)): the triangle's height at step k and the amplitude."""
        cycle = math.floor(1 + k / self.total_size)
        x = 1.0 + k / self.total_size - cycle
        if x <= self.step_ratio:
            scale = x / self.step_ratio
        else:
            scale = (x - 1) / (self.step_ratio - 1)
        arg = cycle if self.scale_mode == "cycle" else k
        if self.scale_fn is not None:
            amp = self.scale_fn(arg)
        elif self.mode == "triangular":
            amp = 1.0
        elif self.mode == "triangular2":
            amp = 1 / (2.0 ** (arg - 1))
        else:
            amp = self.gamma**arg
        return scale, amp

    def _value(self, k: int, i: int) -> float:
        scale, amp = self._shape(k)
        return self.cycle_base[i] + (self.cycle_max[i] - self.cycle_base[i]) * scale * amp

    def _write(self) -> None:
        super()._write()
        if not self.cycle_momentum:
            return
        scale, amp = self._shape(max(self.last_step - self.warmup_steps, 0))
        for i, group in enumerate(self.optimizer.param_groups):
            top = self.max_momentums[i]
            m = top - (top - self.base_momentums[i]) * scale * amp
            if self.use_beta1:
                group["betas"] = (m, *group["betas"][1:])
            else:
                group["momentum"] = m


# name -> class: the names the config accepts (barenet.config derives them from here)
SCHEDULES: dict[str, type] = {
    "constant": ConstantLR,
    "step": StepLR,
    "multistep": MultiStepLR,
    "exponential": ExponentialLR,
    "cosine": CosineAnnealingLR,
    "cyclic": CyclicLR,
    "plateau": ReduceLROnPlateau,
}


def build_schedule(
    name: str, optimizer: Optimizer, total_steps: int, **kwargs: Any
) -> LRSchedule | ReduceLROnPlateau:
    """Build a schedule by name; ``total_steps`` (iterations) sets the defaults below.

    ``warmup_steps`` / ``warmup_start_factor`` pass through to every schedule
    except "plateau" (which ignores ``total_steps``; step it once per epoch
    with the metric). With ``R = total_steps - warmup_steps`` iterations left:

    - "constant": ``factor=1`` (the initial lr throughout)
    - "step": ``step_size=max(1, R // 3)``, ``gamma=0.1``
    - "multistep": ``milestones=[R // 2, 3 R // 4]``, ``gamma=0.1``
    - "exponential": ``gamma`` (per step, as torch) so that the lr falls to 1% over R steps
    - "cosine": ``T_max=max(1, R)``, ``eta_min=0``
    - "cyclic": per group ``base_lr=initial/100``, ``max_lr=initial``, one
      triangle over the run (``step_size_up=max(1, R // 2)``), momentum not cycled

    Raises ValueError for an unknown name, TypeError for unknown keyword arguments.
    """
    key = name.lower()
    if key not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; allowed: {', '.join(SCHEDULES)}")
    if total_steps < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    rest = max(1, int(total_steps) - int(kwargs.get("warmup_steps", 0)))
    if key == "constant":
        kwargs.setdefault("factor", 1.0)
        kwargs.setdefault("total_iters", 0)
    elif key == "step":
        kwargs.setdefault("step_size", max(1, rest // 3))
    elif key == "multistep":
        kwargs.setdefault("milestones", [rest // 2, 3 * rest // 4])
    elif key == "exponential":
        kwargs.setdefault("gamma", 0.01 ** (1.0 / rest))
    elif key == "cosine":
        kwargs.setdefault("T_max", rest)
    elif key == "cyclic":
        initial = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        kwargs.setdefault("base_lr", [lr / 100.0 for lr in initial])
        kwargs.setdefault("max_lr", initial)
        kwargs.setdefault("step_size_up", max(1, rest // 2))
        kwargs.setdefault("cycle_momentum", False)
    return SCHEDULES[key](optimizer, **kwargs)
