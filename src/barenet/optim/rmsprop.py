"""RMSprop with optional momentum and centring (torch.optim.RMSprop)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, ParamsArg, refuse_torch_only


class RMSprop(Optimizer):
    """torch.optim.RMSprop. With g = grad + wd * p (``maximize``: -grad + wd * p):

    s <- alpha s + (1 - alpha) g^2;   centered: m <- alpha m + (1 - alpha) g, s' = s - m^2
    d = sqrt(s or s') + eps;   momentum: b <- momentum b + g / d, p <- p - lr b
    else p <- p - lr g / d
    """

    _elementwise = True  # may run on parts of a parameter (Optimizer.step)

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        refuse_torch_only(capturable, differentiable)
        defaults = {
            "lr": float(lr),
            "alpha": float(alpha),
            "eps": float(eps),
            "weight_decay": float(weight_decay),
            "momentum": float(momentum),
            "centered": bool(centered),
            "maximize": bool(maximize),
        }
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        if not 0.0 <= group["alpha"]:
            raise ValueError(f"invalid alpha: {group['alpha']}")
        if group["eps"] < 0:
            raise ValueError(f"invalid eps: {group['eps']}")
        if group["momentum"] < 0:
            raise ValueError(f"invalid momentum: {group['momentum']}")

    def _update(self, p: Parameter, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, wd, alpha, mom = group["lr"], group["weight_decay"], group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            if mom > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        a, b = self._temps(p, 2)
        g = self._l2(p, wd, a, group.get("maximize", False))
        sq = state["square_avg"]
        sq *= alpha
        np.multiply(g, g, out=b)
        b *= 1.0 - alpha
        sq += b
        if group["centered"]:
            ga = state["grad_avg"]
            np.subtract(g, ga, out=b)
            b *= 1.0 - alpha
            ga += b
            np.multiply(ga, ga, out=b)
            np.subtract(sq, b, out=b)
            np.sqrt(b, out=b)
        else:
            np.sqrt(sq, out=b)
        b += group["eps"]
        np.divide(g, b, out=b)
        if mom > 0:
            buf = state["momentum_buffer"]
            buf *= mom
            buf += b
            np.multiply(buf, -lr, out=b)
        else:
            b *= -lr
        p.data += b
