"""The experiment file: a base config and named variants (sets of overrides), several seeds.

An experiment YAML::

    name: init                        # default: the file name
    base: ../mnist_mlp.yaml           # a run config, relative to this file (or base_config: {...})
    overrides: {train.epochs: 10}     # applied to the base for every variant
    seeds: 3                          # seeds 0..2 (or a list); --seeds N overrides
    variants:                         # name -> dotted overrides (nested mappings are merged)
      zero: {model.init: zeros}
      xavier: {model.init: xavier_normal}
      cnn: {base: ../lenet5.yaml}     # 'base:' in a variant: start from another run config
    reference: {xavier: "96.9%"}      # optional: published numbers, shown next to the results

Every (variant, seed) is a run folder ``OUT/runs/<variant>/seed_<k>/`` trained with ``seed: k``
(so init, split and shuffle all change). Everything here is validated before the first run.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import fileio
from ..config import (
    ConfigError,
    check_kind,
    load_base,
    merge_into,
    parse_overrides,
    read_yaml,
    to_dict,
    validate,
)
from ..rundir import RUNS_DIR, check_name, experiment_out

KEYS = ("name", "description", "base", "base_config", "overrides", "seeds", "variants", "reference")


@dataclass(frozen=True)
class RunSpec:
    """One training run of the experiment: a variant, a seed and its resolved config."""

    variant: str
    seed: int
    config: dict[str, Any]

    @property
    def rel_dir(self) -> str:
        return f"{RUNS_DIR}/{self.variant}/seed_{self.seed}"


@dataclass(frozen=True)
class Experiment:
    name: str
    base: dict[str, Any]  # the base run config (without the common overrides)
    overrides: dict[str, Any]  # applied to every variant's base: dotted keys -> values
    variants: dict[str, dict[str, Any]]  # as written: dotted keys -> values, maybe 'base: FILE'
    seeds: tuple[int, ...]
    variant_bases: dict[str, dict[str, Any]] = field(default_factory=dict)  # from 'base: FILE'
    forced: dict[str, Any] = field(default_factory=dict)  # --set: applied last, to every run
    description: str = ""
    reference: dict[str, str] = field(default_factory=dict)
    source: str | None = None

    def config(self, variant: str, seed: int) -> dict[str, Any]:
        """The resolved, validated config of one run, as plain data: the (variant's) base, the
        common overrides, the variant's overrides, then ``seed``."""
        data = copy.deepcopy(self.variant_bases.get(variant, self.base))
        data["name"] = f"{self.name}-{variant}"
        merge_overrides(data, self.overrides, "overrides")
        mine = {k: v for k, v in self.variants[variant].items() if k != "base"}
        merge_overrides(data, mine, f"variant '{variant}'")
        merge_overrides(data, self.forced, "--set")
        data["seed"] = seed
        return fileio.to_jsonable(to_dict(validate(data)))

    def runs(self) -> list[RunSpec]:
        """Seed-major order: every variant of the first seed finishes first, so a partial
        experiment already compares all variants."""
        return [RunSpec(v, s, self.config(v, s)) for s in self.seeds for v in self.variants]

    def resolved(self) -> dict[str, Any]:
        """What the manifest (``OUT/experiment.yaml``) records."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "seeds": list(self.seeds),
            "base_config": self.base,
            "overrides": self.overrides,
            "variants": self.variants,
            "variant_bases": self.variant_bases,
            "set": self.forced,
            "reference": self.reference,
        }


# -- loading and validation -------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ConfigError(
                    f"duplicate key '{key}' (line {key_node.start_mark.line + 1}); "
                    "every variant and key must be unique"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_strict(path: Path) -> Any:
    read_yaml(path)  # missing file / malformed YAML -> ConfigError naming it
    try:
        return yaml.load(path.read_text(), Loader=_StrictLoader) or {}  # noqa: S506
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def merge_overrides(data: dict[str, Any], updates: Mapping[str, Any], where: str) -> None:
    """:func:`barenet.config.merge_into` (the one merge rule), refusing ``seed``: the
    experiment sets it per run."""
    if "seed" in updates:
        raise ConfigError(f"{where}: 'seed' is set per run by the experiment; use 'seeds'")
    merge_into(data, updates, where)


def _mapping(value: Any, what: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, list) and all(isinstance(v, str) and "=" in v for v in value):
        return parse_overrides(value, f"{where}: {what}")  # ["a.b=v", ...] like --set
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {what} must be a mapping of dotted keys to values")
    return dict(value)


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, bool) or not isinstance(value, int | list):
        raise ConfigError(f"{where}: seeds must be a count (e.g. 3) or a list of seeds")
    seeds = list(range(value)) if isinstance(value, int) else value
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"{where}: seeds must be at least one non-negative integer")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds {seeds} repeat a seed")
    return tuple(seeds)


def resolve_experiment(
    raw: Any,
    where: str = "experiment",
    root: Path | None = None,
    seeds: int | None = None,
    sets: Sequence[str] = (),
) -> Experiment:
    """Validate an experiment mapping (``root``: folder that ``base`` is relative to) and every
    run config in it; ConfigError (one line, naming the variant and key) on the first problem.
    ``seeds`` (a count) replaces the file's seeds; ``sets`` (``key=value``, like ``--set``) are
    applied to every run after the variant's overrides, e.g. for a quick smoke run."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with {', '.join(KEYS)}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))} (allowed: {', '.join(KEYS)})"
        )
    name = str(raw.get("name") or Path(where).stem)
    check_name(name, f"{where}: name")
    base = load_base(raw.get("base"), raw.get("base_config"), root or Path("."), where, True)
    base.pop("seed", None)
    overrides = _mapping(raw.get("overrides"), "overrides", where)
    common = copy.deepcopy(base)
    merge_overrides(common, overrides, f"{where}: overrides")
    _check(common, f"{where}: base config with the common overrides")

    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, Mapping) or not variants_raw:
        raise ConfigError(f"{where}: 'variants' must be a non-empty mapping of name -> overrides")
    variants: dict[str, dict[str, Any]] = {}
    variant_bases: dict[str, dict[str, Any]] = {}
    folded: dict[str, str] = {}
    for vname, changes in variants_raw.items():
        vname = check_name(str(vname), f"{where}: variant name")
        if vname.lower() in folded:  # one folder on case-insensitive file systems
            raise ConfigError(
                f"{where}: variant names '{folded[vname.lower()]}' and '{vname}' "
                "differ only in case"
            )
        folded[vname.lower()] = vname
        variants[vname] = _mapping(changes, f"variant '{vname}'", where)
        if "base" in variants[vname]:  # this variant starts from another run config file
            own = load_base(variants[vname]["base"], None, root or Path("."), f"variant '{vname}'")
            own.pop("seed", None)
            variant_bases[vname] = own

    seed_list = _seeds(raw.get("seeds", 3) if seeds is None else seeds, where)
    reference = raw.get("reference") or {}
    if not isinstance(reference, Mapping) or set(map(str, reference)) - set(variants):
        raise ConfigError(f"{where}: 'reference' must map variant names to published results")
    exp = Experiment(
        name=name,
        base=base,
        overrides=overrides,
        variants=variants,
        seeds=seed_list,
        variant_bases=variant_bases,
        forced=_sets(sets),
        description=" ".join(str(raw.get("description") or "").split()),
        reference={str(k): str(v) for k, v in reference.items()},
        source=where,
    )
    for vname in variants:
        try:
            for s in seed_list:
                exp.config(vname, s)
        except ConfigError as err:
            msg = str(err).removeprefix(f"variant '{vname}': ")
            raise ConfigError(f"{where}: variant '{vname}': {msg}") from None
    return exp


def _sets(items: Sequence[str]) -> dict[str, Any]:
    return parse_overrides(items, "--set")


def _check(data: dict[str, Any], where: str) -> None:
    try:
        validate({**data, "seed": 0})
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def load_experiment(
    path: str | Path, seeds: int | None = None, sets: Sequence[str] = ()
) -> Experiment:
    """Read and validate an experiment YAML (see ``resolve_experiment``)."""
    p = Path(path)
    data = _read_strict(p)
    check_kind(data, p, "experiment")
    return resolve_experiment(data, str(p), p.parent, seeds, sets)


def default_out(name: str, sets: Sequence[str] = ()) -> Path:
    """Fixed (no timestamp), so the same command resumes the same experiment; runs changed by
    ``--set`` get their own folder (named by a hash of the settings)."""
    if not sets:
        return experiment_out(name)
    digest = hashlib.sha1("\n".join(sets).encode()).hexdigest()[:8]
    return experiment_out(f"{name}-set-{digest}")
