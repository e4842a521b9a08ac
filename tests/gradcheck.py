"""The layer tests' gradient checker: barenet's own (``barenet.diagnose.gradcheck``)."""

from barenet.diagnose.gradcheck import check_module_grads, numeric_grad

__all__ = ["check_module_grads", "numeric_grad"]
