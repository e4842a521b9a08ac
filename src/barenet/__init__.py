"""barenet: a from-scratch NumPy deep-learning toolkit."""

from .runtime import apply_defaults as _apply_runtime_defaults

__version__ = "0.1.0"

_apply_runtime_defaults()


def __getattr__(name: str):
    # ``barenet.predict(run_dir, images)`` without importing Pillow on every ``import barenet``
    if name == "predict":
        from .serve.predict import predict

        return predict
    raise AttributeError(f"module 'barenet' has no attribute {name!r}")
