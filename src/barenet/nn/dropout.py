"""Inverted dropout: at train time zero each unit with probability p and scale the rest by 1/(1-p),
so evaluation is the identity. The mask comes from an explicit Generator."""

from __future__ import annotations

import numpy as np

from .init import as_rng
from .layout import empty_in_order, memory_order
from .module import Module


class Dropout(Module):
    """Element-wise inverted dropout. x: any shape. ``inplace`` is accepted for torch code
    (by name; the output is always a new array)."""

    def __init__(
        self,
        p: float = 0.5,
        rng: np.random.Generator | int | None = None,
        *,
        inplace: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(rng, bool):  # torch's second positional: Dropout(0.5, True) is inplace
            inplace, rng = rng, None
        self.inplace = inplace
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self.rng = as_rng(rng)
        self._mask: np.ndarray | None = None

    def _mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return x.shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(self._mask_shape(x), dtype=np.float32) >= self.p
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0  # p = 1: all zero, as torch
        # The mask is stored in x's memory layout (see layout.py): for a conv feature map
        # held as (C, H, W, N), a C-ordered (N, C, 1, 1) mask makes x * mask 4-5x slower.
        self._mask = empty_in_order(keep.shape, memory_order(x), x.dtype)
        np.multiply(keep, x.dtype.type(scale), out=self._mask)
        return x * self._mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out if self._mask is None else grad_out * self._mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Channel-wise dropout for NCHW input: whole feature maps are zeroed together."""

    def _mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return x.shape[:2] + (1,) * (x.ndim - 2)
