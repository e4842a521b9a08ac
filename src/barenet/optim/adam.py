"""Adam (L2 weight decay in the gradient) and AdamW (decoupled weight decay), as torch.optim."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, ParamsArg, refuse_torch_only


class Adam(Optimizer):
    """torch.optim.Adam. At step t, with g = grad (-grad with ``maximize``), plus wd * p
    unless ``decoupled_weight_decay`` (AdamW's ``p <- p (1 - lr wd)`` first instead):

    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,   vmax <- max(vmax, v) (amsgrad)
    p <- p - lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)

    ``foreach`` and ``fused`` are accepted and change nothing (torch's kernel choices).
    """

    _elementwise = True  # may run on parts of a parameter (Optimizer.step)

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        refuse_torch_only(capturable, differentiable)
        defaults = {
            "lr": float(lr),
            "betas": (float(betas[0]), float(betas[1])),
            "eps": float(eps),
            "weight_decay": float(weight_decay),
            "amsgrad": bool(amsgrad),
            "maximize": bool(maximize),
            "decoupled_weight_decay": bool(decoupled_weight_decay),
        }
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        b1, b2 = group["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"invalid betas: {group['betas']}")
        if group["eps"] < 0:
            raise ValueError(f"invalid eps: {group['eps']}")

    def _update(self, p: Parameter, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        b1, b2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        a, b = self._temps(p, 2)
        maximize = group.get("maximize", False)
        if group.get("decoupled_weight_decay", False):
            g = np.negative(p.grad, out=a) if maximize else p.grad
            if wd != 0:
                p.data *= 1.0 - lr * wd
        else:
            g = self._l2(p, wd, a, maximize)
        # m.lerp_(g, 1 - b1) and v = b2 v + (1 - b2) g^2, without temporaries.
        np.subtract(g, m, out=b)
        b *= 1.0 - b1
        m += b
        v *= b2
        np.multiply(g, g, out=b)
        b *= 1.0 - b2
        v += b
        second = v
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            second = state["max_exp_avg_sq"]
        step_size = lr / (1.0 - b1**t)
        np.sqrt(second, out=b)
        b /= math.sqrt(1.0 - b2**t)
        b += eps
        np.divide(m, b, out=b)
        b *= -step_size
        p.data += b


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled decay ``p <- p (1 - lr wd)`` before the step
    (on every parameter given; see ``param_groups`` to spare biases)."""

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            decoupled_weight_decay=True,
        )
