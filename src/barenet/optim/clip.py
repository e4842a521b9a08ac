"""Gradient norms and norm clipping over a set of parameters (torch.nn.utils semantics)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..nn.module import Parameter


def _as_list(params: Parameter | Iterable[Parameter]) -> list[Parameter]:
    return [params] if isinstance(params, Parameter) else list(params)


def grad_norm(params: Parameter | Iterable[Parameter], norm_type: float = 2.0) -> np.float64:
    """Total ``norm_type``-norm of all gradients, as if concatenated into one vector: a
    NumPy float64 (a ``float`` with torch's ``.item()``, as the losses return).

    ``norm_type`` may be ``inf`` (largest absolute entry). Returns 0.0 for no parameters.
    """
    plist = [q for q in _as_list(params) if q.requires_grad]  # frozen: no gradient, as torch
    p = float(norm_type)
    if not plist:
        return np.float64(0.0)
    if math.isinf(p):
        return np.float64(max(np.abs(q.grad).max(initial=0.0) for q in plist))
    # Per-tensor norms combined in Python floats: no concatenated copy of all grads.
    norms = [float(np.linalg.norm(q.grad.ravel(), ord=p)) for q in plist]
    return np.float64(np.linalg.norm(np.asarray(norms), ord=p))


def clip_grad_norm_(
    params: Parameter | Iterable[Parameter],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> np.float64:
    """Scale all gradients in place so their total norm is at most ``max_norm``.

    As torch: ``coef = max_norm / (total + 1e-6)``, gradients are multiplied by
    ``min(coef, 1)``. Returns the total norm *before* clipping. A NaN/inf norm
    raises RuntimeError if ``error_if_nonfinite``, else propagates into the
    gradients exactly as torch does. The norm is a NumPy float64, so ``.item()`` works.
    ``foreach`` (torch's kernel choice) is accepted and changes nothing.
    """
    plist = [q for q in _as_list(params) if q.requires_grad]
    total = grad_norm(plist, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {total}")
    coef = max_norm / (total + 1e-6)
    # `not coef >= 1` also catches NaN, which torch multiplies into the grads.
    if not coef >= 1.0:
        for q in plist:
            q.grad *= coef
    return total
