"""Gradient checking of any Module or Loss: float64 central finite differences.

For a module f and a fixed random R (same shape as the output) the scalar checked is
L(x, theta) = sum(f(x; theta) * R), so dL/dy = R is what ``backward`` receives. Each analytic
gradient (``backward``'s return value, every ``Parameter.grad``) is compared elementwise with

    dL/dz_i ~ (L(z + eps e_i) - L(z - eps e_i)) / (2 eps)       (error O(eps^2))

and passes when ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere (numpy's
``assert_allclose`` rule). A loss (``Loss.forward(pred, target)``, ``backward()``) is checked on
L = loss(x, target) with a random target: integer labels for CrossEntropyLoss and NLLLoss,
else an array shaped like x.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from ..nn import CrossEntropyLoss, Dropout, Loss, Module, NLLLoss

__all__ = [
    "GradcheckError",
    "GradcheckReport",
    "TensorCheck",
    "check_module_grads",
    "compare",
    "gradcheck",
    "numeric_grad",
]


REL_FLOOR = 1e-6


class GradcheckError(UserError):
    """The module cannot be checked: not a Module, a bad input shape, a failing forward."""


def numeric_grad(
    f: Callable[[], float], x: np.ndarray, eps: float = 1e-6, index: np.ndarray | None = None
) -> np.ndarray:
    """Central differences of scalar ``f()`` w.r.t. array ``x`` (changed in place, restored).

    ``index``: flat positions to probe (default all); the others stay 0 in the result.
    """
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numeric_grad needs a contiguous array (it perturbs x in place)")
    for i in range(flat.size) if index is None else index:
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


@dataclass
class TensorCheck:
    """One gradient compared with finite differences (and with torch, when it could be)."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    worst_index: tuple[int, ...]
    passed: bool
    checked: int  # elements probed by finite differences
    torch_diff: float | None = None  # max |barenet - torch| of this gradient
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["shape"], d["worst_index"] = list(self.shape), list(self.worst_index)
        return d


@dataclass
class GradcheckReport:
    """Every tensor's check; ``passed`` when all passed. ``torch`` says what was compared."""

    module: str
    input_shape: tuple[int, ...]
    rows: list[TensorCheck] = field(default_factory=list)
    torch: str = "not compared"
    output_torch_diff: float | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def failed(self) -> list[str]:
        return [r.name for r in self.rows if not r.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "input_shape": list(self.input_shape),
            "passed": self.passed,
            "failed": self.failed(),
            "torch": self.torch,
            "output_torch_diff": self.output_torch_diff,
            "tensors": [r.as_dict() for r in self.rows],
        }

    def table(self) -> str:
        """A fixed-width table, one row per tensor, then a verdict line."""
        head = ("tensor", "shape", "max abs err", "max rel err", "worst index", "result")
        with_torch = any(r.torch_diff is not None for r in self.rows)
        if with_torch:
            head = (*head[:5], "vs torch", head[5])
        lines = []
        for r in self.rows:
            res = "pass" if r.passed else "FAIL"
            if r.note:
                res += f" ({r.note})"
            cells = [
                r.name,
                "x".join(map(str, r.shape)) or "scalar",
                f"{r.max_abs:.2e}",
                f"{r.max_rel:.2e}",
                str(r.worst_index),
            ]
            if with_torch:
                cells.append("-" if r.torch_diff is None else f"{r.torch_diff:.1e}")
            lines.append([*cells, res])
        widths = [max(len(str(c)) for c in col) for col in zip(head, *lines, strict=True)]

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        out = [f"gradcheck {self.module} on input {tuple(self.input_shape)} (float64)"]
        out += [fmt(head), fmt(["-" * w for w in widths])] + [fmt(c) for c in lines]
        out.append(f"torch: {self.torch}")
        bad = self.failed()
        out.append(
            "all gradients match finite differences"
            if not bad
            else f"FAILED: {', '.join(bad)} (the backward of these tensors is wrong)"
        )
        return "\n".join(out)


def compare(
    name: str,
    analytic: np.ndarray | None,
    numeric: np.ndarray,
    index: np.ndarray | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> TensorCheck:
    """Elementwise comparison at the probed flat ``index`` (default all)."""
    shape = tuple(numeric.shape)
    checked = numeric.size if index is None else len(index)
    if analytic is None:
        return TensorCheck(name, shape, math.inf, math.inf, (), False, checked, note="no gradient")
    analytic = np.asarray(analytic)
    if analytic.shape != numeric.shape:
        note = f"backward gave shape {analytic.shape}"
        return TensorCheck(name, shape, math.inf, math.inf, (), False, checked, note=note)
    a = analytic.reshape(-1).astype(np.float64)
    n = numeric.reshape(-1)
    if index is not None:
        a, n = a[index], n[index]
    if a.size == 0:
        return TensorCheck(name, shape, 0.0, 0.0, (), True, 0)
    err = np.abs(a - n)
    if not np.all(np.isfinite(err)):
        bad = int(np.argmin(np.isfinite(err)))
        worst = _unravel(bad, index, shape)
        return TensorCheck(
            name, shape, math.inf, math.inf, worst, False, checked, note="not finite"
        )
    excess = err - (atol + rtol * np.abs(n))
    k = int(np.argmax(excess))
    # relative to the larger of the two, floored: near-zero gradients have no relative error
    scale = np.maximum(np.maximum(np.abs(a), np.abs(n)), REL_FLOOR)
    return TensorCheck(
        name,
        shape,
        float(err.max()),
        float((err / scale).max()),
        _unravel(k, index, shape),
        bool(excess[k] <= 0),
        checked,
    )


def _unravel(k: int, index: np.ndarray | None, shape: tuple[int, ...]) -> tuple[int, ...]:
    flat = int(k if index is None else index[k])
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _probe(size: int, limit: int | None, rng: np.random.Generator) -> np.ndarray | None:
    if limit is None or size <= limit:
        return None
    return np.sort(rng.choice(size, size=limit, replace=False))


def _request_input_grad(module: Module) -> Callable[[np.ndarray], Any]:
    """``backward`` that returns dL/dx: every layer asked for its input gradient (builders
    switch it off on a network's first layer), and an explicit opt-in passed where the
    ``backward`` signature has one."""
    for m in module.modules():
        m.needs_input_grad = True
    params = inspect.signature(module.backward).parameters
    for opt_in in ("input_grad", "needs_input_grad"):
        if opt_in in params:
            return lambda g: module.backward(g, **{opt_in: True})
    return module.backward


def _as_input(x_or_shape: np.ndarray | Sequence[int], rng: np.random.Generator) -> np.ndarray:
    if isinstance(x_or_shape, np.ndarray):
        x = x_or_shape
    else:
        try:
            shape = tuple(int(s) for s in x_or_shape)
        except (TypeError, ValueError):
            raise GradcheckError(f"input shape must be integers, got {x_or_shape!r}") from None
        if not shape or min(shape) < 1 or math.prod(shape) > 1_000_000:
            raise GradcheckError(
                f"bad input shape {shape}: give 1 to a million elements, all sizes >= 1"
            )
        x = rng.standard_normal(shape)
    if x.dtype.kind not in "biuf" or x.size == 0:
        raise GradcheckError(f"the input must be a non-empty numeric array, got {x.dtype}")
    return np.array(x, dtype=np.float64, order="C")


def gradcheck(
    module: Module | Loss,
    x: np.ndarray | Sequence[int],
    *,
    target: np.ndarray | None = None,
    seed: int = 0,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    max_per_tensor: int | None = 1000,
    train: bool | None = True,
    torch: bool = True,
) -> GradcheckReport:
    """Check ``backward`` of ``module`` (a copy cast to float64) on input ``x`` (an array, or
    a shape to draw a standard-normal input for).

    The copy runs in training mode (``train=False``: eval) except Dropout, whose random mask
    makes finite differences meaningless: it is checked in eval mode (``train=None``: every
    module keeps its mode; the caller made it deterministic). At most
    ``max_per_tensor`` random elements of each tensor are probed (None: all). With
    ``torch`` and PyTorch installed, barenet layers are also compared with their torch twins.
    Raises ``GradcheckError`` when the module cannot be run on ``x``.
    """
    rng = np.random.default_rng(seed)
    if not isinstance(module, (Module, Loss)):
        raise GradcheckError(f"{type(module).__name__} is not a barenet Module or Loss")
    x = _as_input(x, rng)
    mod = _float64_copy(module, train)
    name = type(module).__name__
    report = GradcheckReport(name, tuple(x.shape))
    if isinstance(mod, Loss):
        target = _loss_target(mod, x, target, rng)

        def loss() -> float:
            return float(mod.forward(x, target))

        _run(loss, x.shape)
        analytic_x = mod.backward()
        params: list[tuple[str, Any]] = []
        r = None
    else:
        y = _run(lambda: mod.forward(x), x.shape)
        if not isinstance(y, np.ndarray) or y.size == 0:
            raise GradcheckError(f"{name}.forward must return a non-empty array")
        if y.dtype != np.float64:
            raise GradcheckError(
                f"{name}.forward returned {y.dtype} for a float64 input: finite differences "
                "need float64 throughout (Parameters and buffers are cast; cast your own arrays)"
            )
        bad = int(np.size(y) - np.isfinite(y).sum())
        if bad:  # NaN != NaN: the randomness check below would blame randomness
            raise GradcheckError(
                f"{name}.forward gives {bad} non-finite outputs (NaN or inf) on the input of "
                f"shape {x.shape}: finite differences need finite values; give an input in "
                "its domain (barenet.gradcheck(module, x))"
            )
        r = rng.standard_normal(y.shape)
        again = mod.forward(x)
        if again.shape != y.shape or not np.allclose(again, y, rtol=0, atol=1e-12):
            raise GradcheckError(
                f"{name}.forward gives different outputs for the same input (random?): "
                "check it in eval mode (--eval) or fix its randomness"
            )

        def loss() -> float:
            return float(np.sum(mod.forward(x) * r))

        params = list(mod.named_parameters())
        mod.zero_grad()
        mod.forward(x)
        analytic_x = _request_input_grad(mod)(r.copy())
    analytic = [("input", analytic_x)] + [(n, p.grad.copy()) for n, p in params]
    tensors = [x] + [p.data for _, p in params]
    for (tname, a), z in zip(analytic, tensors, strict=True):
        index = _probe(z.size, max_per_tensor, rng)
        num = numeric_grad(loss, z, eps, index)
        report.rows.append(compare(tname, a, num, index, rtol, atol))
    if torch:
        from .torch_ref import compare_with_torch

        compare_with_torch(mod, x, report, target=target, r=r)
    return report


def _run(fn: Callable[[], Any], shape: tuple[int, ...]) -> Any:
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - a user's layer may raise anything on a bad shape
        raise GradcheckError(
            f"forward failed on an input of shape {shape}: {type(err).__name__}: {err}"
        ) from None


def _float64_copy(module: Module | Loss, train: bool | None) -> Module | Loss:
    """A float64 copy in the requested mode (Dropout then eval); the original is untouched."""
    try:
        mod = copy.deepcopy(module)
    except Exception:  # noqa: BLE001 - an uncopyable user module is checked in place
        mod = module
    if isinstance(mod, Module):
        mod.to(np.float64)
        if train is None:
            return mod
        mod.train(train)
        for m in mod.modules():
            if isinstance(m, Dropout):
                m.training = False
    return mod


def _loss_target(
    loss: Loss, x: np.ndarray, target: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    if target is not None:
        return np.asarray(target)
    if isinstance(loss, CrossEntropyLoss | NLLLoss):
        if x.ndim != 2:
            name = type(loss).__name__
            raise GradcheckError(f"{name} takes (N, C) scores, got shape {x.shape}")
        return rng.integers(0, x.shape[1], size=x.shape[0])
    return rng.standard_normal(x.shape)


def check_module_grads(
    layer: Module, x: np.ndarray, rng: np.random.Generator, rtol: float = 1e-5, atol: float = 1e-7
) -> None:
    """Assert every gradient of ``layer`` (already float64, deterministic) on ``x`` passes:
    the test-suite form of ``gradcheck``, in the layer's current mode, every element."""
    assert x.dtype == np.float64
    seed = int(rng.integers(2**31))
    rep = gradcheck(
        layer,
        x,
        seed=seed,
        rtol=rtol,
        atol=atol,
        max_per_tensor=None,
        train=None,
        torch=False,
    )
    assert rep.passed, rep.table()
