"""The search config: a base run config, a space over dotted config keys, and the options.

A space maps any config key (``optim.lr``, ``model.sizes``, ...) to either a list of values
(categorical; the grid sampler's axes) or a range ``{low, high, log, type, step}``. The
pseudo-key ``model.hidden`` sets the hidden layers of an MLP: ``500`` or ``[256, 128]`` become
``model.sizes = [inputs, 500, classes]`` or ``[inputs, 256, 128, classes]``.

Everything is checked before any trial runs: unknown keys, empty or repeated lists,
``low > high``, log ranges with ``low <= 0``, values the run schema rejects. Errors are
:class:`~barenet.config.ConfigError` with one line.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from ..config import (
    Config,
    ConfigError,
    Strict,
    check_kind,
    load_base,
    read_yaml,
    set_path,
    to_dict,
    validate,
)
from ..rundir import check_name

HIDDEN_KEY = "model.hidden"
SAMPLERS = ("grid", "random", "tpe")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class RangeSpec(Strict):
    """A numeric range. ``log`` samples uniformly in log space; ``step`` quantises."""

    low: float
    high: float
    log: bool = False
    type: Literal["float", "int"] = "float"
    step: float | None = Field(None, gt=0)


class PrunerSpec(Strict):
    """Stops hopeless trials early from their per-epoch validation metric."""

    type: Literal["median", "percentile", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(5, ge=0, description="median/percentile: trials before pruning")
    n_warmup_steps: int = Field(
        1, ge=0, description="median/percentile: the first epoch (step, from 1) that may be pruned"
    )
    percentile: float = Field(25.0, gt=0, lt=100, description="percentile: keep the top p%")


class SearchConfig(Strict):
    """The YAML schema of ``barenet search``."""

    base: str | None = Field(None, description="run config, relative to the search file")
    base_config: dict[str, Any] | None = Field(None, description="inline run config")
    study: str | None = Field(None, min_length=1, description="default: the file's stem")
    sampler: Literal["grid", "random", "tpe"] = "tpe"
    pruner: PrunerSpec | None = Field(None, description="default: median; none for grid")
    objective: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    trials: int | None = Field(None, ge=1, description="total for the study; grid: grid size")
    seed: int = Field(0, ge=0)
    subset: float | None = Field(None, gt=0, le=1, description="data.subset for each trial")
    epochs: int | None = Field(None, ge=1, description="train.epochs for each trial")
    top_k: int = Field(10, ge=1, description="rows in leaderboard.md")
    space: dict[str, list[Any] | RangeSpec]

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner_name(cls, v: Any) -> Any:
        return {"type": v} if isinstance(v, str) else v


@dataclass(frozen=True)
class Param:
    """One searched key. Categorical values that Optuna cannot store (lists) are stored as
    their compact JSON text (``labels``) and decoded back to ``choices``."""

    name: str
    kind: Literal["categorical", "float", "int"]
    choices: tuple[Any, ...] = ()
    labels: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this key; returns the config value."""
        if self.kind == "categorical":
            label = trial.suggest_categorical(self.name, list(self.labels))
            return self.decode(label)
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def decode(self, stored: Any) -> Any:
        """The config value for a value as Optuna stores it."""
        if self.kind == "categorical" and stored in self.labels:
            return copy.deepcopy(self.choices[self.labels.index(stored)])
        return stored

    def samples(self) -> list[Any]:
        """Values to validate against the run schema before any trial."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


def _label(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _coerce(value: Any) -> Any:
    # PyYAML reads 1e-4 (no dot) as a string; nobody searches over such strings.
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_coerce(v) for v in value]
    return value


def _param(name: str, spec: list[Any] | RangeSpec) -> Param:
    where = f"search space '{name}'"
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: empty list; give at least one value")
        choices = tuple(_coerce(v) for v in spec)
        labels = tuple(_label(v) for v in choices)
        if len(set(map(json.dumps, labels))) != len(labels):
            raise ConfigError(f"{where}: repeated values in {list(choices)}")
        return Param(name, "categorical", choices=choices, labels=labels)
    low, high = spec.low, spec.high
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"{where}: low and high must be finite numbers")
    if low > high:
        raise ConfigError(f"{where}: low ({low:g}) > high ({high:g})")
    if spec.log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0 (got low={low:g})")
    if spec.log and spec.step is not None:
        raise ConfigError(f"{where}: step cannot be combined with log: true")
    if spec.type == "int":
        for what, v in (("low", low), ("high", high), ("step", spec.step)):
            if v is not None and v != int(v):
                raise ConfigError(f"{where}: type int needs whole numbers, got {what}={v:g}")
    return Param(name, spec.type, low=low, high=high, log=spec.log, step=spec.step)


@dataclass
class Search:
    """A resolved search: the validated config, the base run config and the space."""

    config: SearchConfig
    base: dict[str, Any]
    params: list[Param]
    study_name: str
    source: str = ""
    root: Path = field(default_factory=Path.cwd)

    @property
    def direction(self) -> str:
        return "maximize" if self.config.objective == "val_accuracy" else "minimize"

    @property
    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's space (stored labels)."""
        return {p.name: list(p.labels) for p in self.params}

    @property
    def grid_size(self) -> int:
        return math.prod(len(p.labels) for p in self.params)

    @property
    def pruner(self) -> PrunerSpec:
        if self.config.pruner is not None:
            return self.config.pruner
        return PrunerSpec(type="none" if self.config.sampler == "grid" else "median")

    def budget(self, trials: int | None = None) -> int:
        """Total trials for the study: ``trials`` (or the config's); a grid never exceeds its
        size."""
        if trials is not None and trials < 1:
            raise ConfigError(f"--trials must be at least 1, got {trials}")
        n = trials if trials is not None else self.config.trials
        if self.config.sampler == "grid":
            return min(n, self.grid_size) if n is not None else self.grid_size
        if n is None:
            raise ConfigError(
                f"trials: required for the {self.config.sampler} sampler "
                "(set 'trials:' in the search config or pass --trials)"
            )
        if n < 1:
            raise ConfigError(f"trials must be at least 1, got {n}")
        return n

    def decode(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Config values from Optuna's stored params."""
        by_name = {p.name: p for p in self.params}
        return {k: by_name[k].decode(v) if k in by_name else v for k, v in stored.items()}

    def run_dict(self, values: dict[str, Any], trial: bool = True) -> dict[str, Any]:
        """The base config with ``values`` applied; ``trial`` also applies subset/epochs."""
        data = copy.deepcopy(self.base)
        if trial and self.config.subset is not None:
            set_path(data, "data.subset", self.config.subset)
        if trial and self.config.epochs is not None:
            set_path(data, "train.epochs", self.config.epochs)
        for key, value in values.items():
            if key == HIDDEN_KEY:
                sizes = data.get("model", {}).get("sizes") or [784, 10]
                hidden = value if isinstance(value, list) else [value]
                set_path(data, "model.sizes", [sizes[0], *hidden, sizes[-1]])
            else:
                set_path(data, key, value)
        return data

    def make_config(self, values: dict[str, Any], trial: bool = True) -> Config:
        return validate(self.run_dict(values, trial))

    def resolved(self) -> dict[str, Any]:
        """The search config with the base config inlined (a self-contained search.yaml)."""
        data = self.config.model_dump(mode="json", exclude_none=True)
        data.pop("base", None)
        data["study"] = self.study_name
        data["base_config"] = self.base
        data["pruner"] = self.pruner.model_dump(mode="json")
        return data

    def fingerprint(self) -> dict[str, Any]:
        """What must not change while a study is resumed or shared."""
        c = self.config
        return {
            "sampler": c.sampler,
            "objective": c.objective,
            "seed": c.seed,
            "subset": c.subset,
            "epochs": c.epochs,
            # where the data lives may differ between machines; what it is may not
            "base": {
                **self.base,
                "data": {k: v for k, v in self.base["data"].items() if k != "data_dir"},
            },
            "space": {
                k: (v if isinstance(v, list) else v.model_dump(mode="json"))
                for k, v in c.space.items()
            },
        }


_SPACE_HINT = "expected a list of values or a range {low, high, log, type, step}"


def _format(err: ValidationError) -> str:
    """One line. A space entry fails both union members; report the range member's error
    for a mapping and a hint otherwise."""
    parts: dict[str, str] = {}
    for e in err.errors():
        loc = e["loc"]
        msg = e["msg"]
        if loc[:1] == ("space",) and len(loc) >= 3:
            key = f"space.{loc[1]}"
            if str(loc[2]).startswith("list["):
                continue  # the list member's complaint: covered by the range member or hint
            if len(loc) == 3:  # not a mapping either
                parts.setdefault(key, f"{key}: {_SPACE_HINT}")
                continue
            field_name = str(loc[3])
            if e["type"] == "extra_forbidden":
                msg = f"unknown key (allowed: {', '.join(sorted(RangeSpec.model_fields))})"
            parts[f"{key}.{field_name}"] = f"{key}.{field_name}: {msg}"
            continue
        where = ".".join(str(x) for x in loc) or "search config"
        if e["type"] == "extra_forbidden" and len(loc) == 1:
            msg = f"unknown key (allowed: {', '.join(sorted(SearchConfig.model_fields))})"
        parts.setdefault(where, f"{where}: {msg}")
    return "invalid search config: " + "; ".join(parts.values())


def _check_values(search: Search) -> None:
    """Every key exists in the run schema and every listed value (range ends) is accepted."""
    model_type = search.base.get("model", {}).get("type", "mlp")
    for p in search.params:
        if p.name == HIDDEN_KEY and model_type != "mlp":
            raise ConfigError(
                f"search space '{HIDDEN_KEY}': only for mlp models "
                f"(base model.type is {model_type})"
            )
        for value in p.samples():
            try:
                search.make_config({p.name: value})
            except ConfigError as err:
                msg = str(err).removeprefix("invalid config: ")
                raise ConfigError(f"search space '{p.name}' = {value!r}: {msg}") from None


def resolve_search(data: Any, root: str | Path = ".", source: str = "search") -> Search:
    """Validate a search config (``base`` paths are relative to ``root``) into a Search."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        cfg = SearchConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err)) from None
    root = Path(root)
    raw = load_base(cfg.base, cfg.base_config, root, "search config")
    base = to_dict(validate(raw))  # the base alone must be a valid run
    if base["data"]["val_fraction"] <= 0:
        raise ConfigError(
            "search needs a validation split: set data.val_fraction > 0 in the "
            "base config (trials are never scored on the test set)"
        )
    if not cfg.space:
        raise ConfigError("search config: 'space' is empty; name at least one config key")
    params = [_param(name, spec) for name, spec in cfg.space.items()]
    if cfg.sampler == "grid":
        ranges = [p.name for p in params if p.kind != "categorical"]
        if ranges:
            raise ConfigError(
                f"the grid sampler needs lists of values, not ranges: {', '.join(ranges)}"
            )
        if cfg.pruner is not None and cfg.pruner.type != "none":
            raise ConfigError(
                "pruner: the grid sampler evaluates every point fully; "
                "use 'pruner: none' (or random/tpe to prune)"
            )
    name = cfg.study or (Path(source).stem if source != "search" else "search")
    check_name(name, "study name")
    search = Search(cfg, base, params, name, source=source, root=root)
    _check_values(search)
    return search


def load_search(path: str | Path, study: str | None = None) -> Search:
    """Read and validate a search YAML; ``study`` overrides its study name."""
    path = Path(path)
    data = read_yaml(path)
    check_kind(data, path, "search")
    search = resolve_search(data, root=path.parent, source=str(path))
    if study is not None:
        search.study_name = check_name(study, "study name")
    return search
