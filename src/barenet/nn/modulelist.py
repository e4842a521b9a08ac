"""ModuleList: modules held in a list and registered as children, as torch's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import overload

import numpy as np

from .module import Module


class ModuleList(Module):
    """A list of modules whose parameters belong to the module holding it: children
    "0", "1", ... (``self.blocks = nn.ModuleList([...])`` saves ``blocks.0.weight``). It has
    no forward or backward: the holding module's own ``forward``/``backward`` call the
    items, in order and in reverse (barenet has no autograd)."""

    _positional = "_items"

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        self._items: list[Module] = []
        self.extend(modules)

    @staticmethod
    def _checked(m: object) -> Module:
        if not isinstance(m, Module):
            raise TypeError(f"ModuleList holds Modules, got {type(m).__name__}")
        return m

    def append(self, module: Module) -> ModuleList:
        self._items.append(self._checked(module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        self._items.insert(index, self._checked(module))

    @overload
    def __getitem__(self, i: int) -> Module: ...
    @overload
    def __getitem__(self, i: slice) -> ModuleList: ...
    def __getitem__(self, i: int | slice) -> Module | ModuleList:
        return ModuleList(self._items[i]) if isinstance(i, slice) else self._items[i]

    def __setitem__(self, i: int, module: Module) -> None:
        self._items[i] = self._checked(module)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            "ModuleList has no forward (as in torch): call its items in your module's forward"
        )

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError(
            "ModuleList has no backward: call its items' backward in reverse in your module's"
        )
