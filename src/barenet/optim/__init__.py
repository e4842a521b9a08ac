"""barenet.optim: optimizers, gradient clipping and learning-rate schedules (torch semantics)."""

from .adam import Adam, AdamW
from .clip import clip_grad_norm_, grad_norm
from .optimizer import Optimizer
from .plateau import ReduceLROnPlateau
from .rmsprop import RMSprop
from .schedule import (
    SCHEDULES,
    ConstantLR,
    CosineAnnealingLR,
    CyclicLR,
    ExponentialLR,
    LRSchedule,
    MultiStepLR,
    StepLR,
    build_schedule,
)
from .sgd import SGD

__all__ = [
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "ConstantLR",
    "CosineAnnealingLR",
    "CyclicLR",
    "ExponentialLR",
    "LRSchedule",
    "MultiStepLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
    "build_schedule",
    "clip_grad_norm_",
    "grad_norm",
]
