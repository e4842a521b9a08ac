"""The run configuration: a pydantic schema and ``load_config`` (file, defaults, overrides).

Reading YAML and the one merge rule of overrides live in :mod:`barenet.overrides` (also
importable from here).

Unknown keys, wrong types and out-of-range values are rejected with the key path and
what is allowed, in one line (``ConfigError``). The schema means what it says: integers
are integers (``true`` is not ``1``), floats are finite, booleans are ``true``/``false``,
names stay inside the output folder, the network fits the data (784 inputs, 10 classes),
and a config whose training would not fit in memory is refused with its estimated size
(:func:`memory_estimate`, cap :func:`memory_limit`).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic import Strict as _Strict

from . import config_keys

# The names each registry holds are the values the config allows (no fallback anywhere).
from .builders import MODELS, OPTIMIZERS, SCHEDULES
from .errors import ConfigError
from .overrides import (  # noqa: F401 - part of this module's API
    apply_overrides,
    load_base,
    merge_into,
    parse_overrides,
    read_yaml,
    set_path,
)


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads True as 1.0; in a config that is always a mistake.
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


# Integers and booleans must be written as such; floats accept integers (and YAML's
# "1e-3", which YAML 1.1 reads as a string) but not booleans, and must be finite.
Int = Annotated[int, _Strict()]
Bool = Annotated[bool, _Strict()]
Float = Annotated[float, BeforeValidator(_not_bool)]

# A name becomes a folder name (runs/NAME-TIMESTAMP, runs/search/STUDY): one path
# component, no separators, not hidden, no control characters.
_NAME = re.compile(r"\w[^/\\\x00-\x1f\x7f]{0,99}")


def safe_name(name: Any, what: str = "name") -> str:
    """``name`` if it can be a folder name inside the output root, else ConfigError.

    Allowed: 1-100 characters, starting with a letter, digit or ``_`` (any script), with no ``/`` or
    ``\\`` and no control characters (so ``..``, ``/abs`` and ``.hidden`` are refused).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.strip() != name:
        raise ConfigError(
            f"{what} {name!r} cannot be a folder name: use 1-100 characters starting with a "
            "letter, digit or '_', without '/', '\\' or surrounding spaces"
        )
    return name


def _name(value: Any) -> Any:
    try:
        return safe_name(value)
    except ConfigError as e:
        raise ValueError(str(e).removeprefix("name ")) from None


def _threads(value: Any) -> Any:
    # checked before pydantic's lax int, which reads true, 2.0 and "2" as counts
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"{value!r}: use 'auto' or an integer >= 1")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class AugmentConfig(Strict):
    """Random affine augmentation of training images, drawn per batch."""

    enabled: Bool = False
    degrees: Float = Field(10.0, ge=0, le=180)
    translate: Float = Field(0.1, ge=0, le=0.5)
    scale: tuple[Float, Float] = (0.9, 1.1)

    @model_validator(mode="after")
    def _check_scale(self) -> AugmentConfig:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 10:
            raise ValueError("data.augment.scale must be [low, high] with 0 < low <= high <= 10")
        return self


class DataConfig(Strict):
    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    data_dir: str | None = Field(
        None, description="folder holding the data; authoritative: no fallback elsewhere"
    )
    preprocess: Literal["standardize", "scale", "center"] = "standardize"
    val_fraction: Float = Field(0.1, ge=0, lt=1)
    subset: Float = Field(1.0, gt=0, le=1, description="fraction of the training set used")
    augment: AugmentConfig = AugmentConfig()


class ConvBlock(Strict):
    """conv(k x k, channels) -> [batch norm] -> activation -> [pool]."""

    channels: Int = Field(gt=0)
    kernel: Int = Field(3, gt=0)
    stride: Int = Field(1, gt=0)
    padding: Int = Field(0, ge=0)
    pool: Int = Field(2, ge=0, description="max-pool size; 0 or 1 for none")
    pool_type: Literal["max", "avg"] = "max"
    batch_norm: Bool = False
    dropout: Float = Field(0.0, ge=0, lt=1)

    def conv_size(self, h: int, w: int) -> tuple[int, int]:
        """(H, W) after the convolution (before pooling): floor((H + 2p - k) / s) + 1."""
        k, s, p = self.kernel, self.stride, self.padding
        return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1


Activation = Literal["relu", "leaky_relu", "sigmoid", "tanh", "identity"]
Init = Literal[
    "zeros", "normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "default"
]


class ModelConfig(Strict):
    """``mlp``: ``sizes`` from input to classes. ``cnn``: ``blocks`` then ``dense`` sizes."""

    type: Literal[tuple(MODELS)] = "mlp"  # type: ignore[valid-type]
    sizes: list[Int] = Field(default_factory=lambda: [784, 256, 10])
    blocks: list[ConvBlock] = Field(default_factory=list)
    dense: list[Int] = Field(default_factory=lambda: [10])
    input_shape: tuple[Int, Int, Int] = (1, 28, 28)
    activation: Activation = "relu"
    negative_slope: Float = Field(0.01, ge=0)
    init: Init = "he_normal"
    init_std: Float = Field(0.02, gt=0, description="std of the 'normal' init")
    dropout: Float = Field(0.0, ge=0, lt=1, description="dropout after each hidden dense layer")
    batch_norm: Bool = Field(False, description="BatchNorm1d after each hidden dense layer")

    @model_validator(mode="after")
    def _check_shapes(self) -> ModelConfig:
        if self.type == "mlp":
            if len(self.sizes) < 2 or min(self.sizes) < 1:
                raise ValueError("model.sizes needs at least [inputs, classes], all positive")
        else:
            if not self.blocks:
                raise ValueError("a cnn model needs at least one entry in model.blocks")
            if not self.dense or min(self.dense) < 1:
                raise ValueError("model.dense needs at least [classes], all positive")
            if min(self.input_shape) < 1:
                raise ValueError("model.input_shape must be positive (C, H, W)")
            self.feature_shapes()  # blocks that shrink the image to nothing are refused here
        return self

    @property
    def num_classes(self) -> int:
        return self.sizes[-1] if self.type == "mlp" else self.dense[-1]

    def feature_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) after each conv block: ``conv_size``, then // pool."""
        c, h, w = self.input_shape
        shapes = []
        for b in self.blocks:
            c = b.channels
            h, w = b.conv_size(h, w)
            if b.pool > 1:
                h, w = h // b.pool, w // b.pool
            if h < 1 or w < 1:
                raise ValueError(
                    f"model.blocks shrink the {self.input_shape} input to nothing: "
                    "use fewer blocks, smaller kernels or more padding"
                )
            shapes.append((c, h, w))
        return shapes


class OptimConfig(Strict):
    name: Literal[tuple(OPTIMIZERS)] = "sgd"  # type: ignore[valid-type]
    lr: Float = Field(0.1, gt=0)
    momentum: Float = Field(0.9, ge=0, lt=1)
    nesterov: Bool = False
    weight_decay: Float = Field(0.0, ge=0)
    decay_bias: Bool = False
    betas: tuple[Float, Float] = (0.9, 0.999)
    eps: Float = Field(1e-8, gt=0)
    alpha: Float = Field(0.99, gt=0, lt=1, description="RMSprop smoothing")

    @model_validator(mode="after")
    def _check_betas(self) -> OptimConfig:
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError("optim.betas must both be in [0, 1)")
        return self


# Schedule periods, in epochs: 100x train.epochs' cap, so epochs x steps per epoch stays an int.
MAX_PERIOD = 1_000_000


class ScheduleConfig(Strict):
    """Learning-rate schedule. Periods are in epochs (fractions allowed); stepped per batch."""

    name: Literal[tuple(SCHEDULES)] = "constant"  # type: ignore[valid-type]
    warmup_epochs: Float = Field(0.0, ge=0, le=MAX_PERIOD)
    step_size: Float = Field(1.0, gt=0, le=MAX_PERIOD, description="step: epochs between decays")
    milestones: list[Float] = Field(default_factory=list, description="multistep: epochs")
    gamma: Float = Field(
        0.1, gt=0, le=1, description="decay factor (exponential: per epoch, applied per batch)"
    )
    min_lr: Float = Field(0.0, ge=0, description="cosine eta_min / plateau floor")
    base_lr_factor: Float = Field(0.01, gt=0, le=1, description="cyclic: base lr = factor * lr")
    cycle_epochs: Float = Field(
        2.0, gt=0, le=MAX_PERIOD, description="cyclic: epochs per full cycle"
    )
    patience: Int = Field(2, ge=0, description="plateau: epochs without improvement")

    @model_validator(mode="after")
    def _check_plateau(self) -> ScheduleConfig:
        if self.name == "plateau" and self.gamma >= 1:
            raise ValueError(
                "schedule.gamma must be < 1 for the plateau schedule (it is the lr factor)"
            )
        if any(not 0 <= m <= MAX_PERIOD for m in self.milestones):
            raise ValueError(f"schedule.milestones must be in [0, {MAX_PERIOD:g}] (epochs)")
        return self


class EarlyStoppingConfig(Strict):
    enabled: Bool = False
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    patience: Int = Field(5, ge=1)
    min_delta: Float = Field(0.0, ge=0)
    restore_best: Bool = True


class TrainConfig(Strict):
    epochs: Int = Field(10, ge=1, le=10_000)
    batch_size: Int = Field(128, ge=1, le=65_536)
    label_smoothing: Float = Field(0.0, ge=0, lt=1)
    clip_grad_norm: Float | None = Field(None, gt=0)
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    checkpoint_every_epoch: Bool = False
    dtype: Literal["float32", "float64"] = "float32"
    watch: Bool = Field(False, description="record per-layer internals per epoch (watch.json)")
    tensorboard: Bool = False  # event files in RUN_DIR/tensorboard (needs tensorboardX)
    threads: Annotated[Literal["auto"] | int, BeforeValidator(_threads)] = Field(
        "auto", description="compute threads: auto (measured while training) or a count >= 1"
    )


class Config(Strict):
    """A complete run: data, model, optimiser, schedule and training loop, and one seed."""

    name: Annotated[str, BeforeValidator(_name)] = "run"
    seed: Int = Field(0, ge=0, lt=2**63)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()


def keys_named(name: str) -> list[str]:
    """Dotted config keys whose last part is ``name`` (see :mod:`barenet.config_keys`)."""
    return config_keys.keys_named(Config, name)


def validate(data: dict[str, Any], check_memory: bool = True, check_data: bool = True) -> Config:
    """Build a Config from plain data or raise ConfigError with one line.

    Beyond the schema: (if ``check_data``) the network must fit the dataset's images and
    classes, and (if ``check_memory``) training it must fit in memory
    (:func:`barenet.memory.check_fits`). ``check_data=False`` is for models trained on other
    data than ``data.dataset`` (the scikit-learn estimators).
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"invalid config: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        cfg = Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(config_keys.format_error(Config, err)) from None
    except RecursionError:
        raise ConfigError("invalid config: nested too deeply") from None
    if check_data:
        _check_fits_data(cfg)
    if check_memory:
        from .memory import check_fits

        check_fits(cfg)
    return cfg


def _check_fits_data(cfg: Config) -> None:
    from .data.datasets import IMAGE_SHAPE, NUM_CLASSES

    m, dataset = cfg.model, cfg.data.dataset
    last = "model.sizes" if m.type == "mlp" else "model.dense"
    if m.num_classes != NUM_CLASSES:
        raise ConfigError(
            f"invalid config: {last} ends in {m.num_classes} outputs but {dataset} has "
            f"{NUM_CLASSES} classes: the last layer size must be {NUM_CLASSES}"
        )
    pixels = math.prod(IMAGE_SHAPE)
    if m.type == "mlp" and m.sizes[0] != pixels:
        raise ConfigError(
            f"invalid config: model.sizes starts with {m.sizes[0]} inputs but {dataset} "
            f"images have {pixels} pixels: the first size must be {pixels}"
        )
    if m.type == "cnn" and tuple(m.input_shape) != (1, *IMAGE_SHAPE):
        raise ConfigError(
            f"invalid config: model.input_shape is {list(m.input_shape)} but {dataset} "
            f"images are {[1, *IMAGE_SHAPE]}"
        )


# What `barenet train` runs without a config (mirrored by configs/mnist_mlp.yaml): 98.4% on MNIST.
DEFAULT_RUN: dict[str, Any] = {
    "name": "mnist-mlp",
    "model": {"sizes": [784, 512, 256, 10]},
    "optim": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    "schedule": {"name": "cosine", "warmup_epochs": 0.5},
    "train": {"epochs": 10, "batch_size": 128},
}


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """The YAML file (or, without one, ``DEFAULT_RUN``) over the schema defaults, then overrides."""
    data = read_yaml(path) if path is not None else copy.deepcopy(DEFAULT_RUN)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level")
    check_kind(data, path, "run")
    return validate(apply_overrides(data, overrides))


# The three kinds of config file, told apart by a key only that kind has, and their command.
_KIND_COMMANDS = {"run": "train", "search": "search", "experiment": "experiment"}
_AN = {"run": "a run", "search": "a search", "experiment": "an experiment"}


def config_kind(data: Any) -> str | None:
    """``"experiment"`` (it has ``variants``), ``"search"`` (``space`` or ``sampler``),
    ``"run"`` (a run section at the top: data, model, optim, schedule, train), else None."""
    if not isinstance(data, dict):
        return None
    if "variants" in data:
        return "experiment"
    if "space" in data or "sampler" in data:
        return "search"
    if any(k in data for k in ("data", "model", "optim", "schedule", "train")):
        return "run"
    return None


def check_kind(data: Any, path: str | Path | None, want: str) -> None:
    """ConfigError in one line when the file at ``path`` is another kind of config than
    ``want`` (a search config given to ``barenet train``, a run config to ``barenet search``),
    naming the command that takes it; before, the schema listed every key as unknown."""
    kind = config_kind(data)
    if kind is None or kind == want:
        return
    hint = f"run it with `barenet {_KIND_COMMANDS[kind]} {path}`"
    if kind == "run":
        folder = "configs/search/" if want == "search" else "configs/experiments/"
        hint = f"train it with `barenet train {path}`, or name it as `base:` in {_AN[want]} config"
        hint += f" (see {folder})"
    raise ConfigError(f"{path} is {_AN[kind]} config, not {_AN[want]} config: {hint}")


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain, YAML-safe data (tuples become lists)."""
    return cfg.model_dump(mode="json")
