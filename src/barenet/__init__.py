"""barenet: a from-scratch NumPy deep-learning toolkit."""

from . import threads
from .runtime import apply_defaults as _apply_runtime_defaults
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"
__all__ = ["get_num_threads", "set_num_threads", "threads"]

_apply_runtime_defaults()
threads.apply_defaults()
