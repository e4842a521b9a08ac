"""The run configuration: a pydantic schema, YAML loading and ``--set key=value`` overrides.

Unknown keys, wrong types and out-of-range values are rejected with the key path and
what is allowed, in one line (``ConfigError``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The names each registry holds are the values the config allows (no fallback anywhere).
from .builders import MODELS, OPTIMIZERS, SCHEDULES


class ConfigError(ValueError):
    """A config value, file or override that cannot be used. The message is one line."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(Strict):
    """Random affine augmentation of training images, drawn per batch."""

    enabled: bool = False
    degrees: float = Field(10.0, ge=0, le=180)
    translate: float = Field(0.1, ge=0, le=0.5)
    scale: tuple[float, float] = (0.9, 1.1)


class DataConfig(Strict):
    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    data_dir: str | None = None
    preprocess: Literal["standardize", "scale", "center"] = "standardize"
    val_fraction: float = Field(0.1, ge=0, lt=1)
    subset: float = Field(1.0, gt=0, le=1, description="fraction of the training set used")
    augment: AugmentConfig = AugmentConfig()


class ConvBlock(Strict):
    """conv(k x k, channels) -> [batch norm] -> activation -> [pool]."""

    channels: int = Field(gt=0)
    kernel: int = Field(3, gt=0)
    stride: int = Field(1, gt=0)
    padding: int = Field(0, ge=0)
    pool: int = Field(2, ge=0, description="max-pool size; 0 or 1 for none")
    pool_type: Literal["max", "avg"] = "max"
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)


Activation = Literal["relu", "leaky_relu", "sigmoid", "tanh"]
Init = Literal[
    "zeros", "normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "default"
]


class ModelConfig(Strict):
    """``mlp``: ``sizes`` from input to classes. ``cnn``: ``blocks`` then ``dense`` sizes."""

    type: Literal[tuple(MODELS)] = "mlp"  # type: ignore[valid-type]
    sizes: list[int] = Field(default_factory=lambda: [784, 256, 10])
    blocks: list[ConvBlock] = Field(default_factory=list)
    dense: list[int] = Field(default_factory=lambda: [10])
    input_shape: tuple[int, int, int] = (1, 28, 28)
    activation: Activation = "relu"
    negative_slope: float = Field(0.01, ge=0)
    init: Init = "he_normal"
    init_std: float = Field(0.02, gt=0, description="std of the 'normal' init")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each hidden dense layer")
    batch_norm: bool = Field(False, description="BatchNorm1d after each hidden dense layer")

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
        return self

    @property
    def num_classes(self) -> int:
        return self.sizes[-1] if self.type == "mlp" else self.dense[-1]


class OptimConfig(Strict):
    name: Literal[tuple(OPTIMIZERS)] = "sgd"  # type: ignore[valid-type]
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    decay_bias: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    alpha: float = Field(0.99, gt=0, lt=1, description="RMSprop smoothing")


class ScheduleConfig(Strict):
    """Learning-rate schedule. Periods are in epochs (fractions allowed); stepped per batch."""

    name: Literal[tuple(SCHEDULES)] = "constant"  # type: ignore[valid-type]
    warmup_epochs: float = Field(0.0, ge=0)
    step_size: float = Field(1.0, gt=0, description="step: epochs between decays")
    milestones: list[float] = Field(default_factory=list, description="multistep: epochs")
    gamma: float = Field(
        0.1, gt=0, le=1, description="decay factor (exponential: per epoch, applied per batch)"
    )
    min_lr: float = Field(0.0, ge=0, description="cosine eta_min / plateau floor")
    base_lr_factor: float = Field(0.01, gt=0, le=1, description="cyclic: base lr = factor * lr")
    cycle_epochs: float = Field(2.0, gt=0, description="cyclic: epochs per full cycle")
    patience: int = Field(2, ge=0, description="plateau: epochs without improvement")

    @model_validator(mode="after")
    def _check_plateau(self) -> ScheduleConfig:
        if self.name == "plateau" and self.gamma >= 1:
            raise ValueError(
                "schedule.gamma must be < 1 for the plateau schedule (it is the lr factor)"
            )
        return self


class EarlyStoppingConfig(Strict):
    enabled: bool = False
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


class TrainConfig(Strict):
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(128, ge=1, le=65_536)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    clip_grad_norm: float | None = Field(None, gt=0)
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    checkpoint_every_epoch: bool = False
    dtype: Literal["float32", "float64"] = "float32"
    threads: Literal["auto"] | int = Field(
        "auto", description="compute threads: auto (measured while training) or a count >= 1"
    )

    @model_validator(mode="after")
    def _check_threads(self) -> TrainConfig:
        if self.threads != "auto" and (isinstance(self.threads, bool) or self.threads < 1):
            raise ValueError("train.threads must be 'auto' or an integer >= 1")
        return self


class Config(Strict):
    """A complete run: data, model, optimiser, schedule and training loop, and one seed."""

    name: str = "run"
    seed: int = Field(0, ge=0)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()


def _format_error(err: ValidationError) -> str:
    """One line: every failing key path with pydantic's reason."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "config"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            parent = e["loc"][:-1]
            msg = f"unknown key (allowed: {', '.join(_allowed_keys(parent))})"
        parts.append(f"{loc}: {msg}")
    return "invalid config: " + "; ".join(parts)


def _allowed_keys(path: tuple[Any, ...]) -> list[str]:
    model: Any = Config
    for key in path:
        if isinstance(key, int):
            continue
        field = model.model_fields.get(str(key))
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        model = next(
            (a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if model is None:
            return []
    return sorted(model.model_fields)


def validate(data: dict[str, Any]) -> Config:
    """Build a Config from plain data or raise ConfigError with one line."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"invalid config: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err)) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing or malformed file raises ConfigError naming it."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        return yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p}: cannot read: {err}") from None


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (value parsed as YAML) to a copy of ``data``."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"bad override '{item}': expected key=value, e.g. optim.lr=0.05")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"bad override '{item}': value is not valid YAML") from None
        set_path(out, key.strip(), value)
    return out


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = 'a.b.c'``, creating mappings as needed."""
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"bad override '{dotted}': '{k}' is not a section")
        node = nxt
    node[keys[-1]] = value


# What `barenet train` runs without a config (mirrored by configs/mnist_mlp.yaml): 98.4% on MNIST.
DEFAULT_RUN: dict[str, Any] = {
    "name": "mnist-mlp",
    "model": {"sizes": [784, 512, 256, 10]},
    "optim": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    "schedule": {"name": "cosine", "warmup_epochs": 0.5},
    "train": {"epochs": 10, "batch_size": 128},
}


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """The YAML file (or, without one, ``DEFAULT_RUN``) over the schema defaults, then overrides."""
    data = read_yaml(path) if path is not None else copy.deepcopy(DEFAULT_RUN)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level")
    return validate(apply_overrides(data, overrides))


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain, YAML-safe data (tuples become lists)."""
    return cfg.model_dump(mode="json")
