"""Stochastic gradient descent with momentum, Nesterov and L2 weight decay (torch.optim.SGD)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, ParamsArg, refuse_torch_only


class SGD(Optimizer):
    """torch.optim.SGD. With g = grad + wd * p (L2 added to the gradient; ``maximize``:
    -grad + wd * p):

    b_1 = g,  b_t = momentum * b_{t-1} + (1 - dampening) * g
    d = g + momentum * b_t (nesterov) | b_t (momentum > 0) | g
    p <- p - lr * d
    """

    _elementwise = True  # may run on parts of a parameter (Optimizer.step)

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        refuse_torch_only(differentiable=differentiable)
        defaults = {
            "lr": float(lr),
            "momentum": float(momentum),
            "dampening": float(dampening),
            "nesterov": bool(nesterov),
            "weight_decay": float(weight_decay),
            "maximize": bool(maximize),
        }
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        if group["momentum"] < 0:
            raise ValueError(f"invalid momentum: {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and zero dampening")

    def _update(self, p: Parameter, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, wd, mom = group["lr"], group["weight_decay"], group["momentum"]
        a, b = self._temps(p, 2)
        g = self._l2(p, wd, a, group.get("maximize", False))
        if mom != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # torch starts the buffer at the first gradient, undamped.
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= mom
                if group["dampening"] != 0:
                    np.multiply(g, 1.0 - group["dampening"], out=b)
                    buf += b
                else:
                    buf += g
            if group["nesterov"]:
                np.multiply(buf, mom, out=b)
                b += g
                g = b
            else:
                g = buf
        np.multiply(g, -lr, out=b)
        p.data += b
