"""Pooling over NCHW feature maps: max, average and adaptive average.

Max and average pooling are separable: reduce each row's windows along W first, then the
resulting columns along H. Each stage loops over the kernel taps of one axis (kw, then kh
Python iterations), each tap a strided view of its input; nothing loops over samples or
pixels. Along W the taps of consecutive rows join into one long strided run, so the
larger stage is a few long vector loops. Max pooling keeps, per stage, the index of the
winning tap (uint8) for backward, which retraces the two stages in reverse.

Non-overlapping windows (2x2 stride 2 and the like) take the same code: their taps are
exactly the axes of the reshape (N, C, H/2, 2, W/2, 2), and backward then writes each tap
once into an uninitialised array instead of accumulating. (``reshape(...).max(axis=(3, 5))``
measured ~15x slower than these element-wise passes on LeNet's pool1, and has no argmax.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import parallel
from .conv import IntPair, pair, refuse_options
from .layout import as_order, empty_in_order, memory_order
from .module import Module


class _Pool2d(Module):
    """Shared geometry: kernel, stride (default: kernel), padding, and the tap views."""

    def __init__(
        self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
    ) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = pair(padding, "padding")
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if min(self.kernel_size + self.stride) < 1 or min(self.padding) < 0:
            raise ValueError("kernel_size and stride must be >= 1, padding >= 0")
        if 2 * ph > kh or 2 * pw > kw:
            raise ValueError("padding must be at most half the kernel size (as in PyTorch)")
        self._cache: tuple | None = None

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """(OH, OW) for an (H, W) input: (H + 2 ph - kh) // sh + 1, likewise W."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh = (h + 2 * ph - kh) // sh + 1
        ow = (w + 2 * pw - kw) // sw + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"input {h}x{w} is smaller than the pooling window")
        return oh, ow

    def _padded(self, x: np.ndarray, fill: float) -> np.ndarray:
        """x surrounded by ``padding`` cells of ``fill`` (x itself when there is none)."""
        ph, pw = self.padding
        if ph == pw == 0:
            return x
        n, c, h, w = x.shape
        buf = empty_in_order((n, c, h + 2 * ph, w + 2 * pw), memory_order(x), x.dtype, fill)
        buf[:, :, ph : ph + h, pw : pw + w] = x
        return buf

    def _taps(self, a: np.ndarray, axis: int, n_out: int, dense: bool = False) -> list[np.ndarray]:
        """Views of ``a`` along ``axis`` (2: H, 3: W) read by each kernel tap, in order;
        with ``dense``, views of short runs come as dense copies (see ``_short_runs``)."""
        k, s = self.kernel_size[axis - 2], self.stride[axis - 2]
        index = [slice(None)] * 4
        views = []
        for t in range(k):
            index[axis] = slice(t, t + s * (n_out - 1) + 1, s)
            v = a[tuple(index)]
            views.append(v.copy(order="K") if dense and _short_runs(v) else v)
        return views

    def _spread(
        self,
        parts: Callable[[int, np.ndarray | None], np.ndarray | None],
        shape: tuple[int, ...],
        order: tuple[int, ...],
        axis: int,
        n_out: int,
        dtype: np.dtype,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Backward of one stage: an array of ``shape`` (memory ``order``; ``out`` if given)
        whose tap-t view receives tap t's gradient ``parts(t, view)`` (written into ``view``
        if given, else returned).

        Disjoint taps (kernel <= stride) are written in place, overlapping ones accumulated.
        """
        k, s = self.kernel_size[axis - 2], self.stride[axis - 2]
        covered = k == s and shape[axis] == n_out * k
        if out is None:
            out = empty_in_order(shape, order, dtype, None if covered else 0)
        elif not covered:
            out.fill(0)
        for t, view in enumerate(self._taps(out, axis, n_out)):
            if k <= s:
                parts(t, view)
            else:
                view += parts(t, None)
        return out

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _short_runs(v: np.ndarray) -> bool:
    """Whether ``v`` is made of contiguous runs of 2..4095 elements: the W taps of a
    (C, H, W, N)-stored map (runs of N). NumPy's ufuncs call their inner loop once per
    run, ~5x slower per element there than on dense arrays, while a strided copy is fast;
    so forward copies such taps dense first. (Backward writing its taps dense and copying
    them in measured no faster.)"""
    run = 1
    for ax in reversed(memory_order(v)):
        if v.strides[ax] != run * v.itemsize:
            break
        run *= v.shape[ax]
    return 1 < run < 4096 and run < v.size


def _argmax_taps(taps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise max over the tap views and the index of the FIRST maximal tap."""
    if len(taps) == 1:
        return taps[0].copy(order="K"), np.zeros_like(taps[0], dtype=np.uint8)
    # Outputs take the input's memory layout (NumPy's default order "K"; see layout.py).
    # Taps 0 and 1 in two passes: the index is the comparison itself (0 or 1).
    better = taps[1] > taps[0]  # strict: a later equal value does not take over
    out = np.maximum(taps[0], taps[1])
    idx = better.view(np.uint8) if len(taps) <= 256 else better.astype(np.int32)
    for t, v in enumerate(taps[2:], start=2):
        better = v > out  # strict: a later equal value does not take over
        np.maximum(out, v, out=out)
        # t exceeds every earlier index, so max(idx, t * better) sets idx = t where better
        # (masked assignment is ~50x slower in NumPy).
        np.maximum(idx, better * idx.dtype.type(t), out=idx)
    return out, idx


class MaxPool2d(_Pool2d):
    """y[n,c,oh,ow] = max over the window of x padded with -inf.  x: (N, C, H, W).

    Backward routes each output gradient to ONE input, the first maximum of its window in
    row-major order (PyTorch's tie rule): the W stage keeps the first maximal column of
    each window row, the H stage the first row whose maximum is maximal.

    torch's ``dilation``, ``return_indices`` and ``ceil_mode`` are taken at their defaults
    only (TypeError otherwise).
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        refuse_options(self, dilation=pair(dilation) != (1, 1), return_indices=return_indices)
        refuse_options(self, ceil_mode=ceil_mode)
        super().__init__(kernel_size, stride, padding)

    def forward(self, x: np.ndarray) -> np.ndarray:
        oh, ow = self.output_shape(*x.shape[2:])
        parts = parallel.outer_slices(x, axis=1)  # channel groups, one per thread
        if len(parts) == 1:
            out, iw, ih = self._forward_part(x, oh, ow)
        else:  # exact work: the same bits as in one piece
            n, c, h, _ = x.shape
            order, idx = memory_order(x), np.uint8 if max(self.kernel_size) <= 256 else np.int32
            out = empty_in_order((n, c, oh, ow), order, x.dtype)
            iw = empty_in_order((n, c, h + 2 * self.padding[0], ow), order, idx)
            ih = empty_in_order((n, c, oh, ow), order, idx)

            def part(sl: tuple[slice, ...]) -> None:
                out[sl], iw[sl], ih[sl] = self._forward_part(x[sl], oh, ow)

            parallel.run([lambda sl=sl: part(sl) for sl in parts])
        self._cache = (x.shape, memory_order(x), iw, ih)
        return out

    def _forward_part(self, x: np.ndarray, oh: int, ow: int) -> tuple[np.ndarray, ...]:
        xp = self._padded(x, -np.inf)
        rows, iw = _argmax_taps(self._taps(xp, 3, ow, dense=True))  # (N, C, Hp, OW)
        out, ih = _argmax_taps(self._taps(rows, 2, oh, dense=True))  # (N, C, OH, OW)
        return out, iw, ih

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_shape, order, iw, ih = self._cache
        grad_out = as_order(grad_out, order)
        parts = parallel.outer_slices(grad_out, axis=1, work=int(np.prod(x_shape)))
        if len(parts) == 1:
            return self._backward_part(grad_out, iw, ih, x_shape, order)
        dx = empty_in_order(x_shape, order, grad_out.dtype)

        def part(sl: tuple[slice, ...]) -> None:
            shape = (x_shape[0], iw[sl].shape[1], *x_shape[2:])
            self._backward_part(grad_out[sl], iw[sl], ih[sl], shape, order, out=dx[sl])

        parallel.run([lambda sl=sl: part(sl) for sl in parts])
        return dx

    def _backward_part(
        self,
        grad_out: np.ndarray,
        iw: np.ndarray,
        ih: np.ndarray,
        x_shape: tuple,
        order: tuple,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """dx of one part (returned, or written into ``out``: no copy of a part's result)."""
        oh, ow = ih.shape[2:]
        (ph, pw), dtype = self.padding, grad_out.dtype
        xp_shape = (*x_shape[:2], x_shape[2] + 2 * ph, x_shape[3] + 2 * pw)

        def routed(g: np.ndarray, idx: np.ndarray):
            return lambda t, view: np.multiply(g, idx == t, out=view)

        g_rows = self._spread(routed(grad_out, ih), iw.shape, order, 2, oh, dtype)
        padded = ph or pw
        into = None if padded else out
        dxp = self._spread(routed(g_rows, iw), xp_shape, order, 3, ow, dtype, into)
        dx = _crop(dxp, x_shape, self.padding)
        if out is not None and padded:
            out[...] = dx
        return dx if out is None else out


class AvgPool2d(_Pool2d):
    """y = mean of each window of x zero-padded; the divisor is always kh*kw
    (PyTorch's ``count_include_pad=True``).  Backward spreads g / (kh*kw) over the window.
    torch's ``ceil_mode``, ``count_include_pad`` and ``divisor_override`` are taken at their
    defaults only (TypeError otherwise)."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        refuse_options(self, ceil_mode=ceil_mode, count_include_pad=not count_include_pad)
        refuse_options(self, divisor_override=divisor_override is not None)
        super().__init__(kernel_size, stride, padding)

    def forward(self, x: np.ndarray) -> np.ndarray:
        oh, ow = self.output_shape(*x.shape[2:])
        xp = self._padded(x, 0.0)
        rows = _sum(self._taps(xp, 3, ow, dense=True))
        out = _sum(self._taps(rows, 2, oh, dense=True))
        out *= 1.0 / (self.kernel_size[0] * self.kernel_size[1])  # Python float: keeps float32
        self._cache = (x.shape, xp.shape, memory_order(x), rows.shape)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_shape, xp_shape, order, rows_shape = self._cache
        grad_out = as_order(grad_out, order)
        oh, ow = grad_out.shape[2:]
        share = grad_out * (1.0 / (self.kernel_size[0] * self.kernel_size[1]))

        def copied(g: np.ndarray):
            return lambda t, out: g if out is None else np.copyto(out, g)

        g_rows = self._spread(copied(share), rows_shape, order, 2, oh, share.dtype)
        dxp = self._spread(copied(g_rows), xp_shape, order, 3, ow, share.dtype)
        return _crop(dxp, x_shape, self.padding)


def _sum(taps: list[np.ndarray]) -> np.ndarray:
    out = taps[0].copy(order="K")
    for v in taps[1:]:
        out += v
    return out


def _crop(a: np.ndarray, shape: tuple[int, ...], padding: tuple[int, int]) -> np.ndarray:
    ph, pw = padding
    return a[:, :, ph : ph + shape[2], pw : pw + shape[3]] if ph or pw else a


def adaptive_matrix(n_in: int, n_out: int, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """(n_out, n_in) averaging matrix of adaptive pooling: row i averages
    x[floor(i n_in / n_out) : ceil((i + 1) n_in / n_out)], as PyTorch."""
    a = np.zeros((n_out, n_in), dtype=dtype)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        a[i, lo:hi] = 1.0 / (hi - lo)
    return a


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (OH, OW), any input size.

    Separable: y = A_h x A_w^T with the averaging matrices of ``adaptive_matrix``, so any
    (H, W) -> (OH, OW) works, windows overlapping or not; dx = A_h^T g A_w.
    ``output_size`` 1 is global average pooling. ``None`` in a pair keeps that input size.
    """

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        if isinstance(output_size, (int, np.integer)):
            output_size = (int(output_size), int(output_size))
        if len(output_size) != 2 or any(s is not None and s < 1 for s in output_size):
            raise ValueError(f"output_size must be positive ints (or None), got {output_size}")
        self.output_size = tuple(output_size)
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[-2:]
        oh = h if self.output_size[0] is None else self.output_size[0]
        ow = w if self.output_size[1] is None else self.output_size[1]
        a_h, a_w = adaptive_matrix(h, oh, x.dtype), adaptive_matrix(w, ow, x.dtype)
        self._cache = (a_h, a_w)
        if oh == ow == 1:
            return x.mean(axis=(-2, -1), keepdims=True)
        return a_h @ (x @ a_w.T)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        a_h, a_w = self._cache
        return a_h.T @ (grad_out @ a_w)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
