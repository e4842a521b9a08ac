"""2-D convolution (NCHW) as GEMMs over an im2col matrix built from strided window views."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .init import as_rng, init_bias, init_weight
from .module import DEFAULT_DTYPE, Module, Parameter

IntPair = int | tuple[int, int]

# Target size of one im2col block (see Conv2d._row_blocks): small enough to stay in L2
# between being written and being read by its GEMM. 128 KB - 1 MB measured equally fast
# on LeNet-5, 4 MB 1.6x slower per step.
BLOCK_BYTES = 512 * 1024


# OpenBLAS runs a GEMM on more threads once m*n*k reaches 2**19 (two threads; its
# GEMM_MULTITHREAD_THRESHOLD). For GEMMs this small the hand-off gains little on a quiet
# machine and costs up to a scheduler time slice per call on a busy one, so small conv GEMMs
# are split into column chunks below it. Measured on LeNet-5 with other jobs holding the
# cores: 60 -> 39 ms per step at 2 BLAS threads, unchanged (~12 ms) at 1 thread.
SERIAL_MNK = 1 << 19
# From this size on (~0.2 ms of single-core work) a GEMM is left whole: threads pay off,
# and chunks of under 2**19 would be too thin to run fast even on one core. Measured on
# the Fashion CNN's 32 -> 64 conv (GEMMs of 33M and 154M m*n*k) at 2 threads: forward
# 15.0 -> 7.8 ms, backward 34.6 -> 18.5 ms; 1 thread: 15.5 -> 12.5 and 36.6 -> 28.3 ms.
PARALLEL_MNK = 1 << 23


def _chunked(a: np.ndarray, n_chunks: int) -> np.ndarray:
    """View (n_chunks, rows, cols / n_chunks) of a (rows, cols) matrix: one matmul call
    then runs one GEMM per column chunk."""
    return a.reshape(a.shape[0], n_chunks, -1).transpose(1, 0, 2)


def _n_chunks(cols: int, mn: int) -> int:
    """Number of equal column chunks keeping each GEMM's m*n*k below SERIAL_MNK (1 if no
    divisor of ``cols`` near the minimum does, or if the GEMM reaches PARALLEL_MNK)."""
    if cols * mn >= PARALLEL_MNK:
        return 1
    least = -(-cols * mn // SERIAL_MNK)
    return next((s for s in range(least, 4 * least + 1) if cols % s == 0), 1)


def pair(v: IntPair, name: str = "value") -> tuple[int, int]:
    """An int or a 2-tuple of ints as ``(h, w)``."""
    t = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(t[0]), int(t[1])


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
        padding: IntPair = 0,
        dilation: IntPair = 1,
        bias: bool = True,
        init: str = "he_normal",
        rng: np.random.Generator | int | None = None,
        dtype: np.dtype | type = DEFAULT_DTYPE,
    ) -> None:
        super().__init__()
        rng = as_rng(rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        self.dilation = pair(dilation, "dilation")
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

    def _windows(self, buf: np.ndarray, oh: int, ow: int) -> np.ndarray:
        """View (C, kh, kw, OH, OW, N) of the padded (C, Hp, Wp, N) input:
        [c, i, j, r, q, n] = buf[c, sh r + dh i, sw q + dw j, n]."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        win = sliding_window_view(buf, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
        win = win[:, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw, :, ::dh, ::dw]
        return win.transpose(0, 4, 5, 1, 2, 3)

    def _row_blocks(self, oh: int, ow: int, n: int) -> list[tuple[int, int]]:
        """Output-row ranges whose im2col block (C*kh*kw, rows*OW*N) is about BLOCK_BYTES."""
        kh, kw = self.kernel_size
        row_bytes = self.in_channels * kh * kw * ow * n * self.weight.dtype.itemsize
        rb = max(1, BLOCK_BYTES // row_bytes)
        return [(r, min(oh, r + rb)) for r in range(0, oh, rb)]

    @staticmethod
    def _span(tap: int, n_out: int, stride: int, dilation: int) -> slice:
        """Padded-input rows (or columns) read by kernel row (column) ``tap``."""
        return slice(tap * dilation, tap * dilation + stride * (n_out - 1) + 1, stride)

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {c}")
        (kh, kw), (ph, pw), o = self.kernel_size, self.padding, self.out_channels
        dtype, k = self.weight.dtype, c * kh * kw
        oh, ow = self.output_shape(h, w)
        # (C, H, W, N) memory; free when x came from a conv-family layer (see class doc).
        if ph or pw:
            buf = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=dtype)
            buf[:, ph : ph + h, pw : pw + w] = x.transpose(1, 2, 3, 0)
        else:
            buf = np.ascontiguousarray(x.transpose(1, 2, 3, 0), dtype=dtype)
        self._cache = (x.shape, buf, (oh, ow))
        win = self._windows(buf, oh, ow)
        wmat = self.weight.data.reshape(o, k)
        blocks = self._row_blocks(oh, ow, n)
        cols = np.empty((c, kh, kw, blocks[0][1], ow, n), dtype=dtype)
        y = np.empty((o, oh, ow, n), dtype=dtype)
        for r0, r1 in blocks:
            cb = cols[:, :, :, : r1 - r0]
            cb[...] = win[:, :, :, r0:r1]  # im2col of this block, cache-resident
            cb, yb = cb.reshape(k, -1), y[:, r0:r1].reshape(o, -1)
            parts = _n_chunks(cb.shape[1], o * k)
            np.matmul(wmat, _chunked(cb, parts), out=_chunked(yb, parts))
            if self.bias is not None:
                yb += self.bias.data[:, None]
        return y.transpose(3, 0, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Adds dW, db; returns dx, or None when ``needs_input_grad`` is False (Module)."""
        (n, c, h, w), buf, (oh, ow) = self._cache
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        o, dtype, k = self.out_channels, buf.dtype, c * kh * kw
        win = self._windows(buf, oh, ow)
        blocks = self._row_blocks(oh, ow, n)
        cols = np.empty((c, kh, kw, blocks[0][1], ow, n), dtype=dtype)
        # images innermost, like y; free when grad_out has forward's layout
        g = np.ascontiguousarray(grad_out.transpose(1, 2, 3, 0), dtype=dtype)
        dw_t = np.zeros((k, o), dtype=dtype)
        for r0, r1 in blocks:
            cb, gb = cols[:, :, :, : r1 - r0], g[:, r0:r1]
            cb[...] = win[:, :, :, r0:r1]  # recomputed rather than cached: cheaper here
            # dW^T = cols g^T: OpenBLAS is ~2x faster this way round than g cols^T.
            cb, gb = cb.reshape(k, -1), gb.reshape(o, -1)
            parts = _n_chunks(cb.shape[1], o * k)
            dw_t += (_chunked(cb, parts) @ _chunked(gb, parts).transpose(0, 2, 1)).sum(axis=0)
        self.weight.grad += dw_t.T.reshape(self.weight.shape)
        if self.bias is not None:
            self.bias.grad += g.sum(axis=(1, 2, 3))
        if not self.needs_input_grad:
            return None
        # dx: taps overlap, so they are summed one at a time. Per kernel column j:
        # dcols_j = W[..., j]^T g holds taps (c, i, j) for all i (C*kh rows: kw times less
        # memory traffic than all of dcols at once); its kh taps go into a full-height
        # strip (for stride 1, shifts by whole rows: contiguous adds of OH*OW*N elements),
        # then the strip into the input columns that kernel column j reads.
        g = g.reshape(o, -1)
        dbuf = np.zeros(buf.shape, dtype=dtype)
        strip = np.empty((c, dbuf.shape[1], ow, n), dtype=dtype)
        dcols = np.empty((c * kh, oh * ow * n), dtype=dtype)
        parts = _n_chunks(g.shape[1], o * c * kh)
        for j in range(kw):
            w_j = np.ascontiguousarray(self.weight.data[..., j].reshape(o, c * kh).T)
            np.matmul(w_j, _chunked(g, parts), out=_chunked(dcols, parts))
            taps = dcols.reshape(c, kh, oh, ow, n)
            strip[...] = 0
            for i in range(kh):
                strip[:, self._span(i, oh, sh, dh)] += taps[:, i]
            dbuf[:, :, self._span(j, ow, sw, dw)] += strip
        return dbuf[:, ph : ph + h, pw : pw + w].transpose(3, 0, 1, 2)  # x's layout

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.bias is not None}"
        )
