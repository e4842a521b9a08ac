"""barenet: a from-scratch NumPy deep-learning toolkit."""

from . import startup as _startup

_startup.install()  # the `barenet` command: a Ctrl-C while NumPy and the rest load is one line

# isort: split
from typing import Any

from . import threads
from .runtime import apply_defaults as _apply_runtime_defaults
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"
__all__ = ["get_num_threads", "set_num_threads", "threads"]

_apply_runtime_defaults()
threads.apply_defaults()
_startup.done()  # barenet.cli installs them again while it loads


def __getattr__(name: str) -> Any:
    # barenet.gradcheck(module, x): imported on first use, so `import barenet` stays light.
    if name == "gradcheck":
        from .diagnose.gradcheck import gradcheck

        return gradcheck
    # barenet.predict(run_dir, images), without importing Pillow on every `import barenet`
    if name == "predict":
        from .serve.predict import predict

        return predict
    raise AttributeError(f"module 'barenet' has no attribute {name!r}")
