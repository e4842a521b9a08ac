"""Optimizer base class: parameter groups, per-parameter state, state dicts.

The update rules live in ``sgd.py``, ``adam.py`` (Adam, AdamW) and
``rmsprop.py``; they follow ``torch.optim`` equation for equation so the parity
tests hold to 1e-6.

Parameter groups work as in torch: ``params`` is either an iterable of
``Parameter`` (one group) or a list of dicts ``{"params": [...], "lr": ..., ...}`` whose
missing hyperparameters are filled from the optimizer's defaults. As in torch, weight
decay applies to EVERY parameter given; ``param_groups(model, weight_decay)`` builds the
usual two groups in which biases and norm parameters skip it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import numpy as np

from .. import threads
from ..nn import parallel
from ..nn.module import Module, Parameter

ParamsArg = Iterable[Parameter] | Iterable[dict[str, Any]]

# Parameters from this many elements update in one part per thread (Optimizer.step).
PARTS_FROM = 1 << 16


def refuse_torch_only(capturable: bool = False, differentiable: bool = False) -> None:
    """torch's ``capturable`` (CUDA graphs; torch refuses it on the CPU too) and
    ``differentiable`` (autograd through the step) have no meaning here: TypeError rather
    than an update that silently differs. ``foreach`` and ``fused`` only choose torch's
    kernels for the same maths, so the optimizers accept and ignore them."""
    if capturable:
        raise TypeError("capturable=True is for CUDA graphs; barenet runs on the CPU")
    if differentiable:
        raise TypeError("differentiable=True needs autograd through the step; barenet has none")


class _Slice:
    """A contiguous part of a parameter, as the update rules see it."""

    __slots__ = ("data", "grad", "scratch")

    def __init__(self, data: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> None:
        self.data, self.grad, self.scratch = data, grad, scratch


def _sliceable(p: Parameter) -> bool:
    """Large enough to cut, and data and grad flatten to views."""
    return p.data.size >= PARTS_FROM and p.data.flags.c_contiguous and p.grad.flags.c_contiguous


def param_groups(
    params: Module | Iterable[Parameter],
    weight_decay: float,
    no_decay: Callable[[str, Parameter], bool] | None = None,
) -> list[dict[str, Any]]:
    """Two parameter groups: ``{"params": decayed, "weight_decay": weight_decay}`` and
    ``{"params": skipped, "weight_decay": 0.0}`` (an empty one is left out).

    ``no_decay(name, param)`` picks the skipped ones; by default the parameters flagged
    ``no_decay`` (biases and BatchNorm weights and biases, as the layers create them).
    ``params`` is a Module (names are its dotted ``named_parameters``) or Parameters
    (names are their positions). ``optim.SGD(param_groups(model, 1e-4), lr=0.1)``.
    """
    named = (
        list(params.named_parameters())
        if isinstance(params, Module)
        else [(str(i), p) for i, p in enumerate(params)]
    )
    skip = no_decay or (lambda name, p: p.no_decay)
    decayed = [p for n, p in named if not skip(n, p)]
    skipped = [p for n, p in named if skip(n, p)]
    groups = [{"params": decayed, "weight_decay": float(weight_decay)}] if decayed else []
    return groups + ([{"params": skipped, "weight_decay": 0.0}] if skipped else [])


class Optimizer:
    """Base class. Subclasses implement ``_update(p, state, group)``.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` (list of Parameter),
            ``"lr"`` and the optimizer's other hyperparameters.
        state: per-parameter state keyed by the parameter's position in the
            concatenation of all groups' ``params`` (torch's state-dict indexing).
    """

    def __init__(self, params: ParamsArg, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        # One flat float buffer per dtype, sliced into temporaries by step():
        # the update needs no full-size allocation per parameter per batch.
        self._scratch: dict[np.dtype, np.ndarray] = {}
        self._part_scratch: dict[int, np.ndarray] = {}  # per parameter, for threaded steps
        self._warm: set[int] = set()  # parameters updated whole once (their state exists)
        items = list(params)
        if not items:
            raise ValueError("optimizer got an empty parameter list")
        if all(isinstance(g, dict) for g in items):
            groups = items
        elif all(isinstance(p, Parameter) for p in items):
            groups = [{"params": items}]
        else:
            raise TypeError("params must be Parameters or param-group dicts, not a mix")
        for group in groups:
            self.add_param_group(group)

    # -- groups ----------------------------------------------------------------
    def add_param_group(self, group: dict[str, Any]) -> None:
        """Append a group; missing hyperparameters come from the defaults."""
        if "params" not in group:
            raise ValueError("a parameter group needs a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        if not params:
            raise ValueError("a parameter group has an empty 'params' list")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizer can only take Parameter, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter appears in more than one group")
        new = {**self.defaults, **group, "params": params}
        self._check_hyper(new)
        self.param_groups.append(new)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        """Validate one group's hyperparameters (subclasses extend)."""
        if group["lr"] < 0:
            raise ValueError(f"invalid learning rate: {group['lr']}")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(f"invalid weight_decay: {group['weight_decay']}")

    def _params(self) -> list[Parameter]:
        return [p for g in self.param_groups for p in g["params"]]

    @property
    def lr(self) -> float:
        """The first group's learning rate; setting it sets every group's."""
        return float(self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = float(value)

    # -- the update ------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every parameter's gradient to zero (lazily: ``Parameter.zero_grad``; torch's
        ``set_to_none`` is accepted, and either way ``p.grad`` then reads as zeros)."""
        for p in self._params():
            p.zero_grad()

    def _temps(self, p: Parameter, count: int) -> list[np.ndarray]:
        """``count`` scratch arrays shaped like ``p`` (views into a shared buffer)."""
        n = p.data.size
        if isinstance(p, _Slice):  # a part of a parameter: its own scratch (threads)
            return [p.scratch[i * n : (i + 1) * n] for i in range(count)]
        buf = self._scratch.get(p.data.dtype)
        if buf is None or buf.size < count * n:
            buf = np.empty(max(count * n, 3 * n), dtype=p.data.dtype)
            self._scratch[p.data.dtype] = buf
        return [buf[i * n : (i + 1) * n].reshape(p.data.shape) for i in range(count)]

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Apply one update to every parameter from its current ``.grad``. ``closure``
        (torch's): called first, it recomputes the loss and gradients; its loss is returned.

        With several threads, element-wise rules (``_elementwise``) update each large
        parameter in one contiguous part per thread, run by barenet's threads. Every
        element gets the same arithmetic however it is cut, so the bits do not change. A
        parameter's first update is whole: it creates the state that the parts slice.
        """
        loss = None if closure is None else closure()
        index, tasks = 0, []
        parts = parallel.get_threads() if self._elementwise else 1
        for group in self.param_groups:
            for p in group["params"]:
                if not p.requires_grad:  # frozen: torch skips a parameter without a grad
                    index += 1
                    continue
                state = self.state.setdefault(index, {})
                if parts > 1 and index in self._warm and _sliceable(p):
                    tasks += self._part_tasks(index, p, state, group, parts)
                else:
                    self._update(p, state, group)
                    self._warm.add(index)
                index += 1
        if tasks:
            parallel.run(tasks)
        threads.tick()  # one training step ended: "auto" threads time it
        return loss

    def _part_tasks(
        self, index: int, p: Parameter, state: dict[str, Any], group: dict[str, Any], parts: int
    ) -> list[Callable[[], None]]:
        n = p.data.size
        scratch = self._part_scratch.get(index)
        if scratch is None or scratch.size != 3 * n or scratch.dtype != p.data.dtype:
            scratch = self._part_scratch[index] = np.empty(3 * n, dtype=p.data.dtype)
        data, grad = p.data.reshape(-1), p.grad.reshape(-1)
        arrays = {k: v.reshape(-1) for k, v in state.items() if isinstance(v, np.ndarray)}
        bounds = parallel.split(n, parts, 16)
        views = [{**state, **{k: v[lo:hi] for k, v in arrays.items()}} for lo, hi in bounds]

        def task(i: int) -> None:
            lo, hi = bounds[i]
            self._update(
                _Slice(data[lo:hi], grad[lo:hi], scratch[3 * lo : 3 * hi]), views[i], group
            )
            if i == 0:  # counters (Adam's "step") advance once, as in a whole update
                state.update({k: v for k, v in views[0].items() if k not in arrays})

        return [partial(task, i) for i in range(len(bounds))]

    # True for rules made only of element-wise operations on p.data, p.grad, the
    # temporaries and the state arrays: they may then run on parts of a parameter.
    _elementwise = False

    def _update(
        self, p: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _l2(p: Parameter, wd: float, out: np.ndarray, maximize: bool = False) -> np.ndarray:
        """The gradient with L2 decay, ``grad + wd * p`` (written into ``out``), or ``grad``
        itself when ``wd`` is 0: the coupled weight decay of SGD, Adam, RMSprop and
        Adadelta. ``maximize`` (torch's): ``-grad + wd * p``, i.e. gradient ascent."""
        if wd == 0:
            return np.negative(p.grad, out=out) if maximize else p.grad
        np.multiply(p.data, wd, out=out)
        if maximize:
            out -= p.grad  # wd p - grad: the bits of torch's (-grad) + wd p
        else:
            out += p.grad
        return out

    # -- persistence -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: array|int}}, "param_groups": [{..., "params": [index]}]}``.

        Arrays are copies, so the dict is a snapshot that later steps don't change.
        """
        groups = []
        index = 0
        for group in self.param_groups:
            n = len(group["params"])
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = list(range(index, index + n))
            groups.append(entry)
            index += n
        state = {
            i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for i, s in self.state.items()
            if s
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` (arrays are copied).

        Raises ValueError if the group structure or any array shape differs.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state dict has {len(saved_groups)} parameter groups, "
                f"optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"group {i} has {len(saved['params'])} parameters in the state dict, "
                    f"{len(group['params'])} in the optimizer"
                )
        params = self._params()
        new_state: dict[int, dict[str, Any]] = {}
        for key, saved in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"state for parameter {i}, optimizer has {len(params)}")
            entry: dict[str, Any] = {}
            for name, value in saved.items():
                if isinstance(value, np.ndarray):
                    if value.shape != params[i].data.shape:
                        raise ValueError(
                            f"state '{name}' of parameter {i} has shape {value.shape}, "
                            f"parameter has {params[i].data.shape}"
                        )
                    entry[name] = value.astype(params[i].data.dtype, copy=True)
                else:
                    entry[name] = int(value) if name == "step" else value
            new_state[i] = entry
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            for k, v in saved.items():
                if k != "params":
                    # JSON-style round trips turn tuples into lists.
                    group[k] = tuple(v) if k == "betas" else v
        self.state = new_state
        self._warm = set()

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i} ({len(group['params'])} params): {hyper}")
        return "\n".join(lines) + "\n)"
