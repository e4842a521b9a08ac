"""barenet: a from-scratch NumPy deep-learning toolkit."""

from typing import Any

from .runtime import apply_defaults as _apply_runtime_defaults

__version__ = "0.1.0"

_apply_runtime_defaults()


def __getattr__(name: str) -> Any:
    # barenet.gradcheck(module, x): imported on first use, so `import barenet` stays light.
    if name == "gradcheck":
        from .diagnose.gradcheck import gradcheck

        return gradcheck
    raise AttributeError(f"module 'barenet' has no attribute {name!r}")
