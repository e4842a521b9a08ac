"""barenet.optim: optimizers, gradient clipping and learning-rate schedules (torch semantics)."""

from . import lr_scheduler  # torch's optim.lr_scheduler path
from .adadelta import Adadelta
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, grad_norm
from .optimizer import Optimizer, param_groups
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

# name -> class: the optimizer names the config accepts (barenet.config derives them)
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adadelta",
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
    "lr_scheduler",
    "param_groups",
]
