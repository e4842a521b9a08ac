"""torch's ``nn.utils`` path for gradient clipping (``torch.nn.utils.clip_grad_norm_`` ->
``barenet.nn.utils.clip_grad_norm_``); the functions live in ``barenet.optim.clip``."""

from __future__ import annotations

from typing import Any


def clip_grad_norm_(parameters: Any, max_norm: float, norm_type: float = 2.0, **kw: Any) -> Any:
    """``barenet.optim.clip_grad_norm_`` (imported here on use: ``optim`` imports ``nn``)."""
    from ..optim.clip import clip_grad_norm_ as clip

    return clip(parameters, max_norm, norm_type, **kw)
