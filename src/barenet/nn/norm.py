"""Batch normalisation over the channel axis 1: BatchNorm1d for (N, C) or (N, C, L),
BatchNorm2d for (N, C, H, W)."""

from __future__ import annotations

import numpy as np

from .conv import refuse_options
from .module import DEFAULT_DTYPE, Module, Parameter, match_dtype


class _BatchNorm(Module):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta, per channel c = axis 1.

    Train mode: mu, var are the batch mean and biased variance over the m = N*(spatial)
    values of each channel, and the running statistics move towards them:
    running = (1 - momentum) running + momentum * batch, with the *unbiased* variance
    var * m / (m - 1) (``momentum=None``: cumulative average, factor 1/num_batches_tracked).
    Eval mode normalises with the running statistics. As ``torch.nn.BatchNorm*``.

    Backward (train), with xhat = (x - mu) inv_std and gg = gamma g:
    dx = inv_std / m * (m gg - sum(gg) - xhat sum(gg xhat)),  dgamma = sum(g xhat),
    dbeta = sum(g). In eval mode the statistics are constants: dx = gg inv_std.
    """

    ndims: tuple[int, ...] = ()
    _optional_buffers = ("num_batches_tracked",)  # as torch's: old checkpoints lack it

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        dtype: np.dtype | type = DEFAULT_DTYPE,
        *,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        refuse_options(self, track_running_stats=not track_running_stats)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype), no_decay=True) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype), no_decay=True) if affine else None
        # Read through self._buffers only: Module.to(dtype) swaps the arrays in that dict.
        self.register_buffer("running_mean", np.zeros(num_features, dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        self._cache: tuple | None = None

    def _check(self, x: np.ndarray) -> None:
        if x.ndim not in self.ndims or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) expects input of "
                f"{' or '.join(map(str, self.ndims))} dims with {self.num_features} channels, "
                f"got shape {x.shape}"
            )

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = match_dtype(x, self._buffers["running_mean"].dtype, self)
        self._check(x)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        bufs = self._buffers
        if self.training:
            m = x.size // x.shape[1]
            if m < 2:
                raise ValueError("batch norm needs more than one value per channel in training")
            mean = x.mean(axis=axes)
            xc = x - mean.reshape(shape)
            var = np.mean(xc * xc, axis=axes)
            bufs["num_batches_tracked"] += 1
            f = self.momentum if self.momentum is not None else 1.0 / bufs["num_batches_tracked"]
            f = float(f)  # a Python scalar keeps float32 buffers float32
            rm, rv = bufs["running_mean"], bufs["running_var"]
            rm *= 1.0 - f
            rm += f * mean
            rv *= 1.0 - f
            rv += (f * m / (m - 1)) * var
        else:
            mean, var = bufs["running_mean"], bufs["running_var"]
            xc = x - mean.reshape(shape)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = xc * inv_std.reshape(shape)
        self._cache = (xhat, inv_std, self.training)
        if self.weight is None:
            return xhat
        return xhat * self.weight.data.reshape(shape) + self.bias.data.reshape(shape)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        xhat, inv_std, training = self._cache
        axes = (0,) + tuple(range(2, xhat.ndim))
        shape = (1, -1) + (1,) * (xhat.ndim - 2)
        gg = grad_out
        if self.weight is not None:
            sum_g = grad_out.sum(axis=axes)
            sum_gx = (grad_out * xhat).sum(axis=axes)
            self.bias.grad += sum_g
            self.weight.grad += sum_gx
            gamma = self.weight.data
            gg = grad_out * gamma.reshape(shape)
            sum_gg, sum_ggx = gamma * sum_g, gamma * sum_gx
        elif training:
            sum_gg, sum_ggx = grad_out.sum(axis=axes), (grad_out * xhat).sum(axis=axes)
        if not training:
            return gg * inv_std.reshape(shape)
        m = xhat.size // xhat.shape[1]
        dx = gg * m - sum_gg.reshape(shape)
        dx -= xhat * sum_ggx.reshape(shape)
        dx *= (inv_std / m).reshape(shape)
        return dx

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.weight is not None}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm for (N, C) or (N, C, L) input; statistics per channel C."""

    ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm for (N, C, H, W) input; statistics per channel over N, H, W."""

    ndims = (4,)
