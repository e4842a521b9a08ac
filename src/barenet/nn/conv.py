"""2-D convolution (NCHW) as GEMMs over an im2col matrix built from strided window views."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import parallel
from .init import as_rng, init_bias, init_weight
from .module import DEFAULT_DTYPE, Module, Parameter, match_dtype

IntPair = int | tuple[int, int]

# Target size of one im2col block (see Conv2d._row_blocks): small enough to stay in L2
# between being written and being read by its GEMM. 128 KB - 1 MB measured equally fast
# on LeNet-5, 4 MB 1.6x slower per step.
BLOCK_BYTES = 512 * 1024
# From this many output channels on, and this many GEMM rows (C*kh*kw), forward computes
# each block's GEMM transposed.
TRANSPOSED_FROM = 32
TRANSPOSED_MIN_K = 64
# Fewest GEMM rows (input channels x kernel rows) per dx task.
DX_ROWS = 48


def pair(v: IntPair, name: str = "value") -> tuple[int, int]:
    """An int or a 2-tuple of ints as ``(h, w)``."""
    t = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(t[0]), int(t[1])


def refuse_options(layer: Module, **used: bool) -> None:
    """TypeError for a torch option ``layer`` does not implement that was given a value
    other than torch's default (``used[name]`` True), rather than silently ignoring it."""
    for name, value in used.items():
        if value:
            raise TypeError(
                f"{type(layer).__name__}: torch's {name} is not implemented in barenet; "
                "only its default is accepted"
            )


class Conv2d(Module):
    """Cross-correlation y[n,o] = b[o] + sum_{c,i,j} W[o,c,i,j] x_pad[n, c, s*oh + d*i, s*ow + d*j].

    x: (N, C, H, W), W: (O, C, kh, kw), b: (O,), y: (N, O, OH, OW) with
    OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1 (likewise OW), as ``torch.nn.Conv2d``.

    Forward copies the padded input's kernel windows (``sliding_window_view``, strided by
    stride and dilation) into an im2col matrix ``cols`` (C*kh*kw, OH*OW*N) and computes
    y = W.reshape(O, -1) @ cols.  Backward:  dW += g @ cols^T (computed as (cols g^T)^T,
    ~2x faster in OpenBLAS),  db += sum g,  and dx from dcols = W^T g summed back over the
    kernel taps with strided ``+=`` (a loop over the kh*kw taps, never ``np.add.at``).

    Memory traffic, not FLOPs, dominates these skinny GEMMs (K = C*kh*kw, O rows), so
    ``cols`` is never materialised whole: it is built and consumed in blocks of output rows
    of about BLOCK_BYTES (all images, all channels per block; ~20 blocks for LeNet's
    first layer at batch 128, one block for small inputs) that stay in L2, and backward
    rebuilds each block from the cached padded input instead of caching the K-times larger
    cols. Measured on LeNet-5 (batch 128): 16% faster per training step than one cached
    im2col with column-blocked GEMMs, which was itself 2-5x faster on the GEMMs than
    unblocked.

    The blocks are the tasks barenet's threads share (``nn.parallel``), and dx is computed
    in channel groups, each writing its own channels: blocks and groups depend only on the
    shapes, and partial dW sums are added in block order, so the bits do not depend on the
    number of threads.

    W and b start as torch's ``nn.Conv2d`` (``init="default"``: U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), fan_in = C*kh*kw); ``init="he_normal"`` etc. choose another start.

    Images are the innermost axis in memory (C, H, W, N): every kernel tap is a view
    whose contiguous runs are OW*N (stride 1) or N elements long, so the im2col copies and
    the tap sums are long vector loops, for any stride or dilation. y and dx are returned
    as (N, C, H, W) views of such memory (see ``layout``), and x and grad_out in that
    layout are used without a copy: stacked conv layers never transpose between them
    (measured on LeNet-5: 16.3 -> 13.3 ms per training step).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair | str = 0,
        dilation: IntPair = 1,
        bias: bool = True,
        init: str = "default",
        rng: np.random.Generator | int | None = None,
        dtype: np.dtype | type = DEFAULT_DTYPE,
        *,
        groups: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        refuse_options(self, groups=groups != 1, padding_mode=padding_mode != "zeros")
        rng = as_rng(rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.padding = self._padding(padding)
        if min(self.kernel_size + self.stride + self.dilation) < 1 or min(self.padding) < 0:
            raise ValueError("kernel_size, stride, dilation must be >= 1 and padding >= 0")
        kh, kw = self.kernel_size
        shape = (out_channels, in_channels, kh, kw)
        self.weight = Parameter(init_weight(shape, init, rng, dtype))
        self.bias = (
            Parameter(init_bias(in_channels * kh * kw, out_channels, init, rng, dtype), True)
            if bias
            else None
        )
        self._cache: tuple | None = None

    def _padding(self, padding: IntPair | str) -> tuple[int, int]:
        """torch's ``padding``: ints, or ``"valid"`` (none) or ``"same"`` (output as large as
        the input; stride 1, and an even total padding so both sides get half of it)."""
        if not isinstance(padding, str):
            return pair(padding, "padding")
        if padding == "valid":
            return (0, 0)
        if padding != "same":
            raise ValueError(f"padding must be ints, 'valid' or 'same', got {padding!r}")
        if self.stride != (1, 1):
            raise ValueError("padding='same' needs stride 1 (as in torch)")
        totals = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation, strict=True)]
        if any(t % 2 for t in totals):
            raise ValueError(
                "padding='same' with an even kernel pads one side more (torch does this); "
                "barenet pads both sides equally: use an odd kernel or explicit padding"
            )
        return totals[0] // 2, totals[1] // 2

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """(OH, OW) for an (H, W) input."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"input {h}x{w} is smaller than the (dilated) kernel after padding")
        return oh, ow

    def _windows(
        self, buf: np.ndarray, oh: int, ow: int, stride: tuple[int, int] | None = None
    ) -> np.ndarray:
        """View (C, kh, kw, OH, OW, N) of the padded (C, Hp, Wp, N) input:
        [c, i, j, r, q, n] = buf[c, sh r + dh i, sw q + dw j, n]."""
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation
        sh, sw = stride or self.stride
        win = sliding_window_view(buf, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
        win = win[:, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw, :, ::dh, ::dw]
        return win.transpose(0, 4, 5, 1, 2, 3)

    def _row_blocks(
        self, oh: int, ow: int, n: int, c: int | None = None
    ) -> list[tuple[int, int, int, int]]:
        """Output blocks (r0, r1, q0, q1), rows [r0, r1) x columns [q0, q1), whose im2col
        block (C*kh*kw, rows*cols*N) is about BLOCK_BYTES.

        An even count when there are several: two threads then end together (the convnet's
        32 -> 64 conv had 11 one-row blocks, one thread idle for the last; an odd count of
        one-row blocks has its last row cut in two column halves). Shapes alone decide."""
        kh, kw = self.kernel_size
        row_bytes = (c or self.in_channels) * kh * kw * ow * n * self.weight.dtype.itemsize
        count = -(-oh // max(1, BLOCK_BYTES // row_bytes))
        if count > 1 and count % 2 and count < oh:
            count += 1
        pairs = oh // 2
        if 1 < count <= pairs:  # cuts at even rows: a 2x2 pooling's windows stay in one block
            cuts = [2 * round(i * pairs / count) for i in range(count)] + [oh]  # (convpool)
        else:
            cuts = [round(i * oh / count) for i in range(count + 1)]
        blocks = [(r0, r1, 0, ow) for r0, r1 in zip(cuts, cuts[1:], strict=False)]
        if len(blocks) > 1 and len(blocks) % 2 and ow > 1:  # one row per block: halve one
            r0, r1, _, _ = blocks.pop()
            blocks += [(r0, r1, 0, ow // 2), (r0, r1, ow // 2, ow)]
        return blocks

    @staticmethod
    def _span(tap: int, n_out: int, stride: int, dilation: int) -> slice:
        """Padded-input rows (or columns) read by kernel row (column) ``tap``."""
        return slice(tap * dilation, tap * dilation + stride * (n_out - 1) + 1, stride)

    def forward(self, x: np.ndarray) -> np.ndarray:
        buf, oh, ow = self._take_input(x)
        bias = None if self.bias is None else self.bias.data
        y, tasks = self._correlate(buf, self.weight.data, bias, oh, ow, self.stride)
        parallel.run(tasks)
        return y.transpose(3, 0, 1, 2)

    def _take_input(self, x: np.ndarray) -> tuple[np.ndarray, int, int]:
        """(padded (C, Hp, Wp, N) input, OH, OW), cached for backward."""
        x = match_dtype(x, self.weight.data.dtype, self)
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {c}")
        (ph, pw), dtype = self.padding, self.weight.dtype
        oh, ow = self.output_shape(h, w)
        # (C, H, W, N) memory; free when x came from a conv-family layer (see class doc).
        if ph or pw:
            buf = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=dtype)
            buf[:, ph : ph + h, pw : pw + w] = x.transpose(1, 2, 3, 0)
        else:
            buf = np.ascontiguousarray(x.transpose(1, 2, 3, 0), dtype=dtype)
        self._cache = (x.shape, buf, (oh, ow))
        return buf, oh, ow

    def _correlate(
        self,
        buf: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        oh: int,
        ow: int,
        stride: tuple[int, int],
        sink: Callable[[int, int, int, int, np.ndarray], None] | None = None,
    ) -> tuple[np.ndarray | None, list]:
        """y (O, OH, OW, N) = weight (O, C, kh, kw) correlated with the padded (C, Hp, Wp, N)
        ``buf`` at ``stride`` and this layer's dilation, plus ``bias``; returned with the
        row-block tasks that fill it (for ``parallel.run``, alone or beside other tasks).
        With ``sink``, y is not built: each block's (O, rows, cols, N) result is passed to
        ``sink(r0, r1, q0, q1, block)`` while still in cache (``convpool``)."""
        (kh, kw), dtype = self.kernel_size, buf.dtype
        o, c, n = weight.shape[0], buf.shape[0], buf.shape[3]
        k = c * kh * kw
        win = self._windows(buf, oh, ow, stride)
        wmat = weight.reshape(o, k)
        # Many output channels: (cols^T W^T)^T, i.e. the GEMM with the long side as M,
        # then one transposing copy, is ~1.3x faster in OpenBLAS than W cols (measured on
        # the 32 -> 64 3x3 conv's blocks, 64 x 288 x 1408: 30 against 22 GFLOP/s per core).
        # Not for a short K, where the product is memory-bound and the transposing copy
        # doubles its output traffic (1 -> 32 3x3 conv, K = 9: 8.3 against 4.5 ms).
        transposed = o >= TRANSPOSED_FROM and k >= TRANSPOSED_MIN_K
        w_t = np.ascontiguousarray(wmat.T) if transposed else None
        col = None if bias is None else bias[:, None]
        y = None if sink else np.empty((o, oh, ow, n), dtype=dtype)

        def block(r0: int, r1: int, q0: int, q1: int) -> None:
            cb = np.empty((c, kh, kw, r1 - r0, q1 - q0, n), dtype=dtype)
            cb[...] = win[:, :, :, r0:r1, q0:q1]  # im2col of this block, cache-resident
            own = None if y is not None else np.empty((o, r1 - r0, q1 - q0, n), dtype=dtype)
            # a view of y: partial columns in one row only
            yb = y[:, r0:r1, q0:q1].reshape(o, -1) if own is None else own.reshape(o, -1)
            # np.dot, not @: it never keeps the GIL (see backward); the bias is added in
            # the copy into y.
            if w_t is None:
                prod = np.dot(wmat, cb.reshape(k, -1))
            else:
                prod = np.dot(cb.reshape(k, -1).T, w_t).T
            if col is None:
                yb[...] = prod
            else:
                np.add(prod, col, out=yb)
            if own is not None:
                sink(r0, r1, q0, q1, own)

        return y, [partial(block, *b) for b in self._row_blocks(oh, ow, n, c)]

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Adds dW, db; returns dx, or None when ``needs_input_grad`` is False (Module)."""
        (n, c, h, w), buf, (oh, ow) = self._cache
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        o, dtype, k = self.out_channels, buf.dtype, c * kh * kw
        # images innermost, like y; free when grad_out has forward's layout
        g = np.ascontiguousarray(grad_out.transpose(1, 2, 3, 0), dtype=dtype)
        tasks, add_grads = self._weight_grad_tasks(lambda r0, r1, q0, q1: g[:, r0:r1, q0:q1])
        dbuf = dbuf2 = None
        if self.needs_input_grad:
            dbuf = np.zeros(buf.shape, dtype=dtype)
            # groups of >= DX_ROWS GEMM rows (c * kh): thinner GEMMs stream g once per group
            # for too little work (32 -> 64 3x3 conv at 1 thread: 2 groups 87 ms, 16: 147 ms)
            parts = min(
                parallel.n_tasks(o * k * oh * ow * n, max_tasks=c), max(1, k // kw // DX_ROWS)
            )
            groups = parallel.split(c, parts)
            # dx and dW share one run, dx's (longer) tasks first: with fewer dx groups than
            # threads, the other threads do the dW blocks meanwhile (LeNet's 6 -> 16 conv
            # has one dx group). Each task writes only its own output: the same bits.
            dx_tasks = [partial(self._input_grad, g, dbuf, c0, c1) for c0, c1 in groups]
            if parts == 1 and kw > 1 and o * k * oh * ow * n >= parallel.SERIAL_MNK:
                # one thin group: its kernel columns in two halves, the second half into
                # its own buffer, added after (LeNet's 6 -> 16 conv: 2 tasks, not 1)
                dbuf2 = np.zeros(buf.shape, dtype=dtype)
                half = (kw + 1) // 2
                dx_tasks = [
                    partial(self._input_grad, g, dbuf, 0, c, range(half)),
                    partial(self._input_grad, g, dbuf2, 0, c, range(half, kw)),
                ]
            tasks = dx_tasks + tasks
        parallel.run(tasks)
        if dbuf2 is not None:
            dbuf += dbuf2
        add_grads()
        if dbuf is None:
            return None
        return dbuf[:, ph : ph + h, pw : pw + w].transpose(3, 0, 1, 2)  # x's layout

    def _weight_grad_tasks(
        self, grad_rows: Callable[[int, int, int, int], np.ndarray]
    ) -> tuple[list, Callable[[], None]]:
        """(row-block tasks computing partial dW and db, then a function adding their sum
        to the grads). ``grad_rows(r0, r1, q0, q1)`` gives the (O, rows, cols, N) block of
        dL/dy; ``convpool`` builds it from the pooled gradient, in cache."""
        (n, c, _, _), buf, (oh, ow) = self._cache
        (kh, kw), o, dtype = self.kernel_size, self.out_channels, buf.dtype
        k = c * kh * kw
        win = self._windows(buf, oh, ow)
        blocks = self._row_blocks(oh, ow, n)
        dw_parts: list = [None] * len(blocks)
        # With a bias, cols gets a row of ones, so the dW GEMM also gives db = g 1 (its
        # last row or column) instead of a separate pass over g (1 -> 32 3x3 conv: 0.35 ms
        # of gemvs per step saved for 2% more GEMM).
        kb = k + (self.bias is not None)

        def block(b: int, r0: int, r1: int, q0: int, q1: int) -> None:
            size = (r1 - r0) * (q1 - q0) * n
            cols = np.empty((kb, size), dtype=dtype)
            cols[k:] = 1
            # recomputed rather than cached: cheaper here
            cols[:k].reshape(c, kh, kw, r1 - r0, q1 - q0, n)[...] = win[:, :, :, r0:r1, q0:q1]
            # contiguous whoever built it: OpenBLAS's bits may depend on the row stride
            # (float64 dgemm did), and convpool must give the bits of the plain backward
            gb = np.ascontiguousarray(grad_rows(r0, r1, q0, q1)).reshape(o, -1)
            # The longer of K and O as the GEMM's rows: OpenBLAS is ~2x faster that way
            # round (32 -> 64 3x3 conv, dW^T = cols g^T: 17 against 35 ms; 1 -> 32 3x3,
            # K = 9, dW = g cols^T: 4.0 against 8.4 ms).
            # np.dot, not @: for a small product such as LeNet's first conv (25 x 6) NumPy's
            # matmul keeps the GIL, so the other threads' blocks waited (measured: two
            # threads 0.9x one; np.dot 2.0x).
            dw_parts[b] = np.dot(cols, gb.T).T if k >= o else np.dot(gb, cols.T)  # (O, kb)

        def add_grads() -> None:
            if not tasks:
                return
            dw = _ordered_sum(dw_parts)
            if self.weight.requires_grad:
                self.weight.grad += dw[:, :k].reshape(self.weight.shape)
            if self.bias is not None and self.bias.requires_grad:
                self.bias.grad += dw[:, k]

        # frozen weight and bias (fine-tuning): no dW products at all
        trains = self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad)
        tasks = [partial(block, i, *b) for i, b in enumerate(blocks)] if trains else []
        return tasks, add_grads

    def _input_grad(
        self, g: np.ndarray, dbuf: np.ndarray, c0: int, c1: int, cols: range | None = None
    ) -> None:
        """dx for input channels [c0, c1) into ``dbuf`` (C, Hp, Wp, N), from g (O, OH, OW, N),
        from the kernel columns ``cols`` (default all).

        Taps overlap, so they are summed one at a time. Per kernel column j:
        dcols_j = W[:, c0:c1, :, j]^T g holds taps (c, i, j) for all i (kw times less memory
        traffic than all of dcols at once); its kh taps go into a full-height strip (for
        stride 1, shifts by whole rows: contiguous adds of OH*OW*N elements), then the
        strip into the input columns that kernel column j reads."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        o, oh, ow, n = g.shape
        cg = c1 - c0
        g = g.reshape(o, -1)
        strip = np.empty((cg, dbuf.shape[1], ow, n), dtype=dbuf.dtype)
        dcols = np.empty((cg * kh, oh * ow * n), dtype=dbuf.dtype)
        for j in cols or range(kw):
            w_j = np.ascontiguousarray(self.weight.data[:, c0:c1, :, j].reshape(o, cg * kh).T)
            np.dot(w_j, g, out=dcols)
            taps = dcols.reshape(cg, kh, oh, ow, n)
            strip[...] = 0
            for i in range(kh):
                strip[:, self._span(i, oh, sh, dh)] += taps[:, i]
            dbuf[c0:c1, :, self._span(j, ow, sw, dw)] += strip

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.bias is not None}"
        )


def _ordered_sum(parts: list[np.ndarray]) -> np.ndarray:
    """Sum of per-block partial results, always in block order (thread-count independent)."""
    total = parts[0]
    for p in parts[1:]:
        total += p
    return total
