"""Linear (fully connected) layer and Flatten."""

from __future__ import annotations

import numpy as np

from . import parallel
from .init import as_rng, init_bias, init_weight
from .layout import as_order, memory_order
from .module import DEFAULT_DTYPE, Module, Parameter, match_dtype
from .parallel import matmul


class Linear(Module):
    """y = x W^T + b.  x: (N, in), W: (out, in), b: (out,), y: (N, out).

    Backward: dW += g^T x, db += sum_n g, dx = g W (None if ``needs_input_grad`` is False).
    The GEMMs run on barenet's threads (``nn.parallel``): the same bits on any thread count.
    W and b start as torch's ``nn.Linear`` (``init="default"``: U(-1/sqrt(in), 1/sqrt(in)));
    ``init="he_normal"`` and the others of ``nn.init`` choose another start (biases zero).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str = "default",
        rng: np.random.Generator | int | None = None,
        dtype: np.dtype | type = DEFAULT_DTYPE,
        std: float = 0.02,
    ) -> None:
        super().__init__()
        rng = as_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init_weight((out_features, in_features), init, rng, dtype, std=std))
        self.bias = (
            Parameter(init_bias(in_features, out_features, init, rng, dtype), no_decay=True)
            if bias
            else None
        )
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = match_dtype(x, self.weight.data.dtype, self)
        self._x = x
        return matmul(x, self.weight.data.T, bias=None if self.bias is None else self.bias.data)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        x = self._x
        grad_out = match_dtype(grad_out, x.dtype, self)  # e.g. a float64 loss gradient
        tasks: list = []  # dW's and dx's GEMM blocks, run together: one wake-up of the threads
        if not self.weight.requires_grad:  # frozen (fine-tuning): no dW product at all
            pass
        elif (dw := self.weight.grad_to_write()) is not None:  # zeros since zero_grad
            matmul(grad_out.T, x, out=dw, rows=True, defer=tasks)  # dW = g^T x, rows in place
        else:  # dW += g^T x, inside the GEMM's tasks
            matmul(grad_out.T, x, acc=self.weight.grad, defer=tasks)
        dx = None
        if not self.needs_input_grad:
            pass
        elif x.ndim == 2 and not x.flags.c_contiguous and x.T.flags.c_contiguous:
            # x is a conv stack's (C, H, W, N) memory flattened: dx^T = W^T g^T gives dx in
            # that layout, so Flatten's backward is a view, not a transposing copy (the
            # convnet's Linear(1600, 10): 175 -> 70 us with the copy).
            dx = matmul(self.weight.data.T, grad_out.T, defer=tasks).T
        else:
            dx = matmul(grad_out, self.weight.data, defer=tasks)
        if x.shape[0] * self.in_features * self.out_features < parallel.SERIAL_MNK:
            for task in tasks:  # one block each, too small to wake another thread for
                task()
        else:
            parallel.run(tasks)
        if self.bias is not None and self.bias.requires_grad:
            db = self.bias.grad_to_write()
            if db is not None:
                np.sum(grad_out, axis=0, out=db)
            else:
                self.bias.grad += grad_out.sum(axis=0)
        return dx

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Axes ``start_dim..end_dim`` merged into one, as torch's: by default (N, *dims) ->
    (N, prod(dims)). A view when the memory allows. Backward restores the shape and the
    input's memory layout (a conv stack's (C, H, W, N); see ``layout``), so the layers
    below get their gradient in the order of what they cached: the convnet's ReLU after
    pool2 multiplied a C-ordered gradient by a (C, H, W, N) mask, 0.6 ms a step."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        self._shape: tuple[int, ...] | None = None
        self._order: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        self._order = memory_order(x) if x.ndim > 2 else None
        if (self.start_dim, self.end_dim) == (1, -1):
            return x.reshape(x.shape[0], -1)
        nd = max(x.ndim, 1)
        lo, hi = self.start_dim % nd, self.end_dim % nd
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd) or lo > hi:
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) does not fit "
                f"an input of shape {x.shape}"
            )
        return x.reshape(*x.shape[:lo], -1, *x.shape[hi + 1 :])

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        g = grad_out.reshape(self._shape)
        return g if self._order is None else as_order(g, self._order)

    def extra_repr(self) -> str:
        return (
            ""
            if (self.start_dim, self.end_dim) == (1, -1)
            else (f"start_dim={self.start_dim}, end_dim={self.end_dim}")
        )
