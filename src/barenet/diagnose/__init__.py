"""Tools for finding out why a network does not learn: gradient checks, the training doctor,
the learning-rate range test."""

from .gradcheck import (
    GradcheckError,
    GradcheckReport,
    TensorCheck,
    check_module_grads,
    gradcheck,
    numeric_grad,
)

__all__ = [
    "GradcheckError",
    "GradcheckReport",
    "TensorCheck",
    "check_module_grads",
    "gradcheck",
    "numeric_grad",
]
