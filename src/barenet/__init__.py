"""barenet: a from-scratch NumPy deep-learning toolkit."""

from .runtime import apply_defaults as _apply_runtime_defaults

__version__ = "0.1.0"

_apply_runtime_defaults()
