"""A Conv2d and the 2x2 max pooling after it, computed block by block (Sequential's rewrite).

A wide first conv layer writes a feature map far larger than the cache (the Keras convnet's
Conv2d(1, 32, 3) at batch 128: 32 x 26 x 26 x 128 floats, 11 MB), which the pooling then
reads back, and in backward the pooling's gradient of the same size is written and read back
by the conv's dW products. Here each of the conv's row blocks (``Conv2d._row_blocks``, whose
cuts fall on even rows) is pooled as soon as its GEMM has produced it, and in backward each
block's dL/dy is routed from the pooled gradient just before its dW product uses it: the
large map never goes to memory.

Exact to the bit: the blocks, the products and their order are the conv's own, and pooling
a block is pooling those rows of the whole map (max and its first-maximum index are exact).
The layers' caches end as the plain forward leaves them, so any backward order works.
Backward is fused only where the conv needs no input gradient (the first layer of the README
loop); elsewhere the pooling's and the conv's own backward run.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .conv import Conv2d
from .layout import as_order
from .pool import MaxPool2d

# Conv outputs below this many bytes are pooled and routed whole: the per-block passes of a
# narrow map cost more calls than they save traffic (LeNet-5's Conv2d(1, 6, 5), 2.4 MB at
# batch 128: backward 1.2 -> 1.9 ms at two threads; the convnet's 11 MB: 3.6 -> 2.4 ms).
MIN_BYTES = 4 << 20
_ORDER = (1, 2, 3, 0)  # (N, C, H, W) stored as (C, H, W, N): the conv's output layout


def fits(conv: Conv2d, pool: MaxPool2d, n: int, oh: int, ow: int) -> bool:
    """Whether ``conv`` with an (OH, OW) output for ``n`` images and ``pool`` after it can
    run fused: 2x2 windows at stride 2 tiling the map exactly, every conv block whole rows
    starting on an even row, and a map of at least MIN_BYTES."""
    if pool.kernel_size != (2, 2) or pool.stride != (2, 2) or pool.padding != (0, 0):
        return False
    if oh % 2 or ow % 2:
        return False
    if conv.out_channels * oh * ow * n * conv.weight.data.itemsize < MIN_BYTES:
        return False
    return all(r0 % 2 == 0 and (q0, q1) == (0, ow) for r0, _, q0, q1 in conv._row_blocks(oh, ow, n))


def forward(conv: Conv2d, pool: MaxPool2d, x: np.ndarray) -> np.ndarray:
    """``pool.forward(conv.forward(x))``, the same bits and the same layer caches."""
    buf, oh, ow = conv._take_input(x)
    n, o, dtype = buf.shape[3], conv.out_channels, buf.dtype
    ph, pw = oh // 2, ow // 2
    out = np.empty((o, ph, pw, n), dtype=dtype)
    iw = np.empty((o, oh, pw, n), dtype=np.uint8)  # winning column of each window row
    ih = np.empty((o, ph, pw, n), dtype=np.uint8)  # winning row of each window

    def sink(r0: int, r1: int, q0: int, q1: int, yb: np.ndarray) -> None:
        o_b, iw_b, ih_b = pool._forward_part(yb.transpose(3, 0, 1, 2), (r1 - r0) // 2, pw)
        out[:, r0 // 2 : r1 // 2] = o_b.transpose(1, 2, 3, 0)
        iw[:, r0:r1] = iw_b.transpose(1, 2, 3, 0)
        ih[:, r0 // 2 : r1 // 2] = ih_b.transpose(1, 2, 3, 0)

    bias = None if conv.bias is None else conv.bias.data
    _, tasks = conv._correlate(buf, conv.weight.data, bias, oh, ow, conv.stride, sink=sink)
    parallel.run(tasks)
    pool._cache = ((n, o, oh, ow), _ORDER, iw.transpose(3, 0, 1, 2), ih.transpose(3, 0, 1, 2))
    return out.transpose(3, 0, 1, 2)


def backward(conv: Conv2d, pool: MaxPool2d, grad_out: np.ndarray) -> None:
    """``conv.backward(pool.backward(grad_out))`` for a conv without input gradient: adds
    the same dW and db bits, from dL/dy built block by block."""
    (n, o, oh, ow), order, iw, ih = pool._cache
    g = as_order(np.asarray(grad_out, dtype=conv.weight.data.dtype), order)

    def grad_rows(r0: int, r1: int, q0: int, q1: int) -> np.ndarray:
        rows, shape = slice(r0 // 2, r1 // 2), (n, o, r1 - r0, ow)
        gb = pool._backward_part(g[:, :, rows], iw[:, :, r0:r1], ih[:, :, rows], shape, order)
        return gb.transpose(1, 2, 3, 0)  # (O, rows, OW, N), contiguous

    tasks, add_grads = conv._weight_grad_tasks(grad_rows)
    parallel.run(tasks)
    add_grads()
