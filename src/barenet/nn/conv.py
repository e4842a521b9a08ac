"""2-D convolution (NCHW) as GEMMs over an im2col matrix built from strided window views."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .init import as_rng, init_bias, init_weight
from .module import DEFAULT_DTYPE, Module, Parameter

IntPair = int | tuple[int, int]

# Target size of one GEMM column block of cols (see Conv2d._chunk). Measured on LeNet-5
# shapes: 64-512 KB blocks are 2-5x faster than one GEMM; small blocks also stay under
# OpenBLAS's threading threshold, which avoids its thread hand-offs on a busy machine.
CHUNK_BYTES = 64 * 1024


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
    stride and dilation) into an im2col matrix ``cols`` (C*kh*kw, OH*OW*N), then
    y = W.reshape(O, -1) @ cols in one matmul call (over cache-sized column blocks).
    Backward:  dW += g @ cols^T,  db += sum g,  dcols = W^T g  (two more blocked GEMMs),
    and dx sums dcols back over the kernel taps with strided ``+=`` (a loop over the
    kh*kw taps, never ``np.add.at``).

    Internally images are the innermost axis (C, H, W, N): then every kernel tap is a view
    whose contiguous runs are OW*N (stride 1) or N elements long, so the im2col copy and the
    tap sums are long vector loops, for any stride or dilation, without padding the GEMM
    with unused columns. Only the input, output and their gradients are transposed
    (cheap next to the K-times larger cols).
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
        # False for a network's first layer: its input gradient is never used, and
        # backward then skips computing it (returns None), as autograd does for inputs
        # that do not require grad. Nearly half the backward cost of a 1-channel conv.
        self.needs_input_grad = True
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

    def _chunk(self, m: int) -> int:
        """GEMM column block: the M = OH*OW*N columns are split into equal cache-sized
        blocks (OpenBLAS is several times slower on one huge skinny GEMM with K = C*kh*kw
        rows than on blocks, measured on LeNet shapes); the last block is zero-padded."""
        kh, kw = self.kernel_size
        chunk = max(256, CHUNK_BYTES // (self.in_channels * kh * kw * self.weight.dtype.itemsize))
        chunk = -(-m // -(-m // chunk))  # equal blocks
        return -(-chunk // 16) * 16  # 64-byte aligned block starts

    @staticmethod
    def _blocks(a: np.ndarray, chunk: int) -> np.ndarray:
        """View (B, rows, chunk) of a (rows, B*chunk) matrix: B GEMMs in one matmul call."""
        return a.reshape(a.shape[0], -1, chunk).transpose(1, 0, 2)

    @staticmethod
    def _span(tap: int, n_out: int, stride: int, dilation: int) -> slice:
        """Padded-input rows (or columns) read by kernel row (column) ``tap``."""
        return slice(tap * dilation, tap * dilation + stride * (n_out - 1) + 1, stride)

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {c}")
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        o, dtype = self.out_channels, self.weight.dtype
        oh, ow = self.output_shape(h, w)
        m = oh * ow * n
        chunk = self._chunk(m)
        if ph or pw:
            buf = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=dtype)
            buf[:, ph : ph + h, pw : pw + w] = x.transpose(1, 2, 3, 0)
        else:
            buf = np.ascontiguousarray(x.transpose(1, 2, 3, 0), dtype=dtype)
        win = sliding_window_view(buf, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
        win = win[:, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw, :, ::dh, ::dw]
        cols = np.empty((c * kh * kw, -(-m // chunk) * chunk), dtype=dtype)
        cols[:, m:] = 0
        cols[:, :m].reshape(c, kh, kw, oh, ow, n)[...] = win.transpose(0, 4, 5, 1, 2, 3)
        out = np.empty((o, cols.shape[1]), dtype=dtype)
        wmat = self.weight.data.reshape(o, -1)
        np.matmul(wmat, self._blocks(cols, chunk), out=self._blocks(out, chunk))
        self._cache = (x.shape, cols, (oh, ow, m, chunk))
        out = out[:, :m].reshape(o, oh, ow, n).transpose(3, 0, 1, 2)
        if self.bias is None:
            return np.ascontiguousarray(out)
        # The bias add doubles as the copy back to contiguous NCHW.
        return np.add(out, self.bias.data[:, None, None], out=np.empty(out.shape, dtype=dtype))

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        (n, c, h, w), cols, (oh, ow, m, chunk) = self._cache
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        o, dtype = self.out_channels, cols.dtype
        g = np.empty((o, cols.shape[1]), dtype=dtype)
        g[:, m:] = 0  # padding columns: no gradient
        g[:, :m].reshape(o, oh, ow, n)[...] = grad_out.transpose(1, 2, 3, 0)
        gb = self._blocks(g, chunk)
        dweight = (gb @ self._blocks(cols, chunk).transpose(0, 2, 1)).sum(axis=0)
        self.weight.grad += dweight.reshape(self.weight.shape)
        if self.bias is not None:
            self.bias.grad += g.sum(axis=1)
        if not self.needs_input_grad:
            return None
        dcols = np.empty(cols.shape, dtype=dtype)
        wmat = self.weight.data.reshape(o, -1)
        np.matmul(wmat.T, gb, out=self._blocks(dcols, chunk))
        dcols = dcols[:, :m].reshape(c, kh, kw, oh, ow, n)
        dbuf = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=dtype)
        # Taps overlap, so they are summed one at a time: first the kh taps of each kernel
        # column into a full-height strip (for stride 1 these are shifts by whole rows,
        # i.e. contiguous adds of OH*OW*N elements), then each strip into its columns.
        strip = np.empty((c, dbuf.shape[1], ow, n), dtype=dtype)
        for j in range(kw):
            strip[...] = 0
            for i in range(kh):
                strip[:, self._span(i, oh, sh, dh)] += dcols[:, i, j]
            dbuf[:, :, self._span(j, ow, sw, dw)] += strip
        return np.ascontiguousarray(dbuf[:, ph : ph + h, pw : pw + w].transpose(3, 0, 1, 2))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.bias is not None}"
        )
