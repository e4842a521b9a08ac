"""Adadelta (Zeiler 2012): the optimizer of pytorch/examples' MNIST script, as torch.optim."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, ParamsArg, refuse_torch_only


class Adadelta(Optimizer):
    """torch.optim.Adadelta. With g = grad + wd * p (L2 added to the gradient; ``maximize``:
    -grad + wd * p):

    s <- rho s + (1 - rho) g^2
    d = sqrt(u + eps) / sqrt(s + eps) * g
    u <- rho u + (1 - rho) d^2
    p <- p - lr d

    ``s`` and ``u`` are the state's ``square_avg`` and ``acc_delta``, as torch names them.
    """

    _elementwise = True  # may run on parts of a parameter (Optimizer.step)

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        refuse_torch_only(capturable, differentiable)
        defaults = {
            "lr": float(lr),
            "rho": float(rho),
            "eps": float(eps),
            "weight_decay": float(weight_decay),
            "maximize": bool(maximize),
        }
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"invalid rho: {group['rho']}")
        if group["eps"] < 0:
            raise ValueError(f"invalid eps: {group['eps']}")

    def _update(self, p: Parameter, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, wd, rho, eps = group["lr"], group["weight_decay"], group["rho"], group["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            state["acc_delta"] = np.zeros_like(p.data)
        state["step"] += 1
        a, b, d = self._temps(p, 3)
        g = self._l2(p, wd, a, group.get("maximize", False))
        sq, acc = state["square_avg"], state["acc_delta"]
        sq *= rho
        np.multiply(g, g, out=b)
        b *= 1.0 - rho
        sq += b
        np.add(sq, eps, out=b)
        np.sqrt(b, out=b)  # std
        np.add(acc, eps, out=d)
        np.sqrt(d, out=d)
        d /= b
        d *= g  # the step d
        acc *= rho
        np.multiply(d, d, out=b)
        b *= 1.0 - rho
        acc += b
        d *= -lr
        p.data += d
