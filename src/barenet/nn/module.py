"""Parameter and Module: the contract every layer follows (Sequential: ``sequential.py``).

A layer's ``forward(x)`` caches what its backward needs; ``backward(g)`` takes
dL/d(output), *adds* dL/d(param) into each ``Parameter.grad`` and returns
dL/d(input). There is no autograd: the chain rule is written out per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

DEFAULT_DTYPE = np.float32


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` did not load (torch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def match_dtype(x: np.ndarray, dtype: np.dtype, layer: object) -> np.ndarray:
    """``x`` in the layer's parameter dtype: cast once (the first layer does it, so the rest
    of the network computes in the model's dtype, never silently in float64)."""
    x = np.asarray(x)
    if x.dtype == dtype:
        return x
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{type(layer).__name__} takes numbers, got an array of {x.dtype}")
    return x.astype(dtype)


FREEZES = 0  # counts requires_grad changes, so caches that depend on them know when to renew


class Parameter:
    """A trainable array with its gradient. ``grad`` has the shape and dtype of ``data``.

    ``zero_grad()`` is lazy, like torch's ``set_to_none``: it only marks the gradient as
    cleared, and the array reads as zeros from then on (filled on the next read). A layer
    whose backward would add its whole gradient into zeros asks ``grad_to_write()`` for
    the array and writes it instead: no fill, no temporary for the sum (the MLP's
    784 -> 256 dW GEMM writes into ``grad`` in place).
    """

    __slots__ = ("data", "_grad", "_cleared", "no_decay", "_requires_grad")

    def __init__(self, data: np.ndarray, no_decay: bool = False) -> None:
        # asarray(order="C"), not ascontiguousarray: the latter turns a 0-d scalar into shape (1,).
        self.data = np.asarray(data, order="C")
        self._grad = np.zeros_like(self.data)
        self._cleared = True  # _grad's values are to be read as zeros
        # Biases and norm scales: optim.param_groups puts them in a group without weight
        # decay (the config's default); optimizers themselves decay what they are given.
        self.no_decay = no_decay
        self._requires_grad = True

    @property
    def requires_grad(self) -> bool:
        """False freezes the parameter, as in torch: layers skip its gradient where they
        can, optimizers and gradient clipping leave it alone, and a ``Sequential`` does no
        backward below its first layer that still trains."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        global FREEZES
        if bool(value) != self._requires_grad:
            self._requires_grad = bool(value)
            FREEZES += 1  # Sequential's cached "first trainable layer" is stale

    def requires_grad_(self, requires_grad: bool = True) -> Parameter:
        self.requires_grad = requires_grad
        return self

    @property
    def grad(self) -> np.ndarray:
        """dL/d(data), summed over the backward passes since the last ``zero_grad``."""
        if self._cleared:
            self._grad.fill(0)
            self._cleared = False
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray | None) -> None:
        if value is None:  # torch's way to clear a gradient: the same as zero_grad here
            if self._grad.shape != self.data.shape or self._grad.dtype != self.data.dtype:
                self._grad = np.zeros_like(self.data)  # data was replaced (e.g. Module.to)
            self._cleared = True
            return
        value = np.asarray(value)
        if value.shape != self.data.shape:
            raise ValueError(f"grad of shape {value.shape} for a parameter of shape {self.shape}")
        self._grad, self._cleared = value, False

    def grad_to_write(self) -> np.ndarray | None:
        """The gradient array if it holds zeros since ``zero_grad``, for a backward that
        then WRITES its whole gradient into it (and must); else None: add into ``grad``."""
        if not self._cleared:
            return None
        self._cleared = False
        return self._grad

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        """Number of elements, as torch's (``sum(p.numel() for p in model.parameters())``)."""
        return self.data.size

    def zero_grad(self) -> None:
        self._cleared = True

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Parameters(list):
    """What ``Module.parameters()`` returns: a list (``len``, indexing, truth value) that
    ``next()`` also walks, item by item, as the generator torch returns."""

    _next = 0

    def __next__(self) -> Parameter:
        if self._next >= len(self):
            raise StopIteration
        self._next += 1
        return self[self._next - 1]


class StateDictError(ValueError, RuntimeError):
    """A state dict that does not fit the model: a ValueError, and the RuntimeError
    torch's ``load_state_dict`` raises (``except RuntimeError`` code catches it)."""


class Module:
    """Base class. Sub-modules and parameters are found by walking attributes.

    Buffers (e.g. BatchNorm running statistics) are arrays registered with
    ``register_buffer``: saved in the state dict, never updated by optimizers.
    """

    training: bool = True
    # False when nobody needs dL/d(input) (the input is data): layers that honour it (Linear,
    # Conv2d) skip that product and return None from backward, as torch skips it for inputs
    # that don't require grad. ``Sequential.backward`` sets it on its first trainable layer.
    needs_input_grad: bool = True

    def __init__(self) -> None:
        self.training = True
        self._buffers: dict[str, np.ndarray] = {}

    # -- the maths -----------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            f"{type(self).__name__} has no forward(x): define it, caching what backward needs"
        )

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError(
            f"{type(self).__name__} has no backward(grad_out). barenet has no autograd: write "
            "backward(self, grad_out) that adds dL/dparam into each Parameter's .grad and "
            "returns dL/dinput (see 'Writing your own layer' in the README)"
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- structure -----------------------------------------------------------
    def register_buffer(self, name: str, value: np.ndarray) -> None:
        if "_buffers" not in self.__dict__:
            self._buffers = {}
        self._buffers[name] = value

    # Buffers that a state dict may lack (kept as they are, not reported missing): torch's
    # BatchNorm num_batches_tracked, absent from old checkpoints.
    _optional_buffers: tuple[str, ...] = ()

    # The list attribute whose items are named by position alone ("0.weight"): a
    # Sequential's ``layers``, a ModuleList's items. Other lists of modules are named
    # "attribute.i", as torch names a plain module's ModuleList attribute.
    _positional: str | None = None

    def _children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield str(i) if name == self._positional else f"{name}.{i}", item

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules, with their names (as in PyTorch)."""
        yield from self._children()

    def children(self) -> Iterator[Module]:
        for _, m in self._children():
            yield m

    def named_modules(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Every module, depth-first; a shared one once, under its first name, unless
        ``remove_duplicate`` is False (as in PyTorch)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if remove_duplicate and id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [(f"{name}.{c}" if name else c, m) for c, m in mod._children()]
            stack.extend(reversed(children))  # depth-first, in definition order

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Every Parameter once: a tied (shared) one under its first name, so optimizers
        update it once with its summed gradient, as in PyTorch. ``remove_duplicate=False``
        lists it under every name; ``recurse=False`` only this module's own."""
        seen: set[int] = set()
        mods = self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]
        for mod_name, mod in mods:
            for name, value in vars(mod).items():
                if isinstance(value, Parameter) and not (remove_duplicate and id(value) in seen):
                    seen.add(id(value))
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def parameters(self, recurse: bool = True) -> Parameters:
        """The parameters of ``named_parameters``: a list that ``next()`` also reads, as
        torch's generator (``next(model.parameters()).dtype``)."""
        return Parameters(p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        mods = self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]
        for mod_name, mod in mods:
            for name, value in mod.__dict__.get("_buffers", {}).items():
                yield (f"{mod_name}.{name}" if mod_name else name), value

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self) -> int:
        return int(sum(p.data.size for p in self.parameters()))

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter, as torch's; returns self."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def apply(self, fn: Callable[[Module], object]) -> Module:
        """``fn`` on every sub-module (children first, recursively), then on self, as
        torch's; returns self. E.g. ``model.apply(init_fn)`` to re-draw weights."""
        for _, child in self._children():
            child.apply(fn)
        fn(self)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Every parameter's gradient reads as zeros from now on (lazily; see Parameter)."""
        for p in self.parameters():
            p.zero_grad()

    # -- modes ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Dotted name -> array (a copy), in torch's order: module by module, each one's
        parameters then its buffers. A tied parameter appears under its first name only."""
        first = {id(p): name for name, p in self.named_parameters()}
        state = {}
        for mod_name, mod in self.named_modules():
            for name, p in mod.named_parameters(mod_name, recurse=False):
                if first.get(id(p)) == name:
                    state[name] = p.data.copy()
            for name, b in mod.named_buffers(mod_name, recurse=False):
                state[name] = np.array(b, copy=True)
        return state

    def load_state_dict(
        self, state: dict[str, np.ndarray], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy arrays in after checking every name, shape and dtype kind (``StateDictError``,
        a ValueError and torch's RuntimeError, naming every mismatch). As in PyTorch:
        ``strict=False`` loads the names both sides have and returns the others as
        ``(missing_keys, unexpected_keys)`` (model order, state-dict order); shapes must
        match either way; float64 values load into a float32 model (cast). Unlike a bare
        cast, floats never load into integer buffers, nor non-numbers anywhere."""
        # Every name of every array: a tied parameter (or shared module) has several, as
        # in PyTorch's state dicts; barenet's own state dicts list the first one only.
        names: dict[str, np.ndarray] = {}  # in state_dict order (torch lists keys so)
        optional: set[str] = set()
        for mod_name, mod in self.named_modules(remove_duplicate=False):
            names.update((n, p.data) for n, p in mod.named_parameters(mod_name, recurse=False))
            names.update(mod.named_buffers(mod_name, recurse=False))
            optional.update(f"{mod_name}.{b}" if mod_name else b for b in mod._optional_buffers)
        aliases: dict[int, list[str]] = {}  # array -> its names, the state_dict name first
        for name, arr in names.items():
            aliases.setdefault(id(arr), []).append(name)
        missing = [
            ns[0]
            for ns in aliases.values()
            if not any(n in state for n in ns) and ns[0] not in optional
        ]
        unexpected = [n for n in state if n not in names]
        errors = []
        if strict and (missing or unexpected):
            errors.append(
                f"state dict does not match the model: missing {missing or 'none'}, "
                f"unexpected {unexpected or 'none'}"
            )
        known = [n for n in state if n in names]
        for name in known:
            target, src = names[name], np.asarray(state[name])
            if src.shape != target.shape:
                errors.append(
                    f"shape mismatch for '{name}': checkpoint {src.shape}, model {target.shape}"
                )
            elif src.dtype.kind not in "biuf" or not np.can_cast(
                src.dtype, target.dtype, casting="same_kind"
            ):
                errors.append(
                    f"dtype mismatch for '{name}': checkpoint {src.dtype}, model {target.dtype}"
                )
        if errors:  # every problem at once, as torch's message
            raise StateDictError(
                f"Error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(errors)
            )
        for name in known:  # only after every check passed: all or nothing
            names[name][...] = state[name]
        return IncompatibleKeys(missing, unexpected)

    def to(self, dtype: np.dtype | type | str) -> Module:
        """Cast every parameter (and floating buffer) to ``dtype`` in place; returns self.
        ``to("cpu")`` (torch's device move) is accepted and does nothing: barenet is the CPU."""
        if isinstance(dtype, str) and dtype.split(":")[0] == "cpu":
            return self
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"to({dtype!r}): barenet runs on the CPU; pass a NumPy dtype") from None
        if dtype.kind != "f":
            raise TypeError(f"to({dtype}): parameters must be floating point")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None  # zeros of the new dtype when read
        for m in self.modules():
            bufs = m.__dict__.get("_buffers", {})
            for k, v in bufs.items():
                if np.issubdtype(v.dtype, np.floating):
                    bufs[k] = v.astype(dtype)
        return self

    def float(self) -> Module:
        """``to(np.float32)``, as torch's ``module.float()``."""
        return self.to(np.float32)

    def double(self) -> Module:
        """``to(np.float64)``, as torch's ``module.double()``."""
        return self.to(np.float64)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self._children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        body = "\n".join(f"  ({n}): " + repr(c).replace("\n", "\n  ") for n, c in children)
        return f"{head}\n{body}\n)"
