"""barenet.nn: layers, losses and initialisers with explicit forward and backward passes."""

from . import utils  # noqa: E402 - torch's nn.utils path
from .activation import ACTIVATIONS, Identity, LeakyReLU, ReLU, Sigmoid, Tanh, activation
from .conv import Conv2d
from .dropout import Dropout, Dropout2d
from .init import INITS, init_weight
from .linear import Flatten, Linear
from .loss import CrossEntropyLoss, Loss, MSELoss, NLLLoss, log_softmax, softmax
from .module import DEFAULT_DTYPE, Module, Parameter
from .modulelist import ModuleList
from .norm import BatchNorm1d, BatchNorm2d
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .sequential import Sequential
from .softmax_layer import LogSoftmax, Softmax

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_DTYPE",
    "INITS",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "Loss",
    "MaxPool2d",
    "MSELoss",
    "NLLLoss",
    "Module",
    "ModuleList",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "activation",
    "init_weight",
    "log_softmax",
    "softmax",
    "utils",
]
