"""barenet.train: the training loop, its callbacks and metrics."""

from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
)
from .metrics import MeanMetric, accuracy, confusion_matrix, num_correct, per_class_accuracy
from .progress import ProgressBar
from .trainer import History, Trainer, TrainingDiverged

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "History",
    "JSONLogger",
    "LambdaCallback",
    "MeanMetric",
    "ModelCheckpoint",
    "ProgressBar",
    "Trainer",
    "TrainingDiverged",
    "accuracy",
    "confusion_matrix",
    "num_correct",
    "per_class_accuracy",
]
