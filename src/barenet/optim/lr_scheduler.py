"""torch's module path for the schedules (``torch.optim.lr_scheduler.StepLR`` ->
``barenet.optim.lr_scheduler.StepLR``): the same classes as ``barenet.optim``'s, defined in
``schedule.py`` and ``plateau.py``."""

from .plateau import ReduceLROnPlateau
from .schedule import (
    ConstantLR,
    CosineAnnealingLR,
    CyclicLR,
    ExponentialLR,
    LRSchedule,
    MultiStepLR,
    StepLR,
)

LRScheduler = LRSchedule  # torch's base-class name

__all__ = [
    "ConstantLR",
    "CosineAnnealingLR",
    "CyclicLR",
    "ExponentialLR",
    "LRSchedule",
    "LRScheduler",
    "MultiStepLR",
    "ReduceLROnPlateau",
    "StepLR",
]
