"""Reading a config file, and the one merge rule of ``--set key=value``, of a search's and an
experiment's ``base``/``base_config`` and of every other override (train, search, experiment
use these functions and no other)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, FileError
from .fileio import parse_yaml, read_bytes

__all__ = ["apply_overrides", "load_base", "merge_into", "parse_overrides", "read_yaml", "set_path"]


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file (duplicate keys refused); a missing, unreadable, huge or malformed
    file raises ConfigError naming it. An empty file is ``{}``."""
    try:
        data = read_bytes(Path(path), "config file")
        return parse_yaml(data.decode("utf-8"), str(path)) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"malformed YAML in {path}: not UTF-8 text ({err.reason})") from None
    except FileError as err:
        raise ConfigError(str(err)) from None


# -- overrides: one merge rule for train, search and experiment ------------------------------
# A dotted key addresses a nested section (``optim.lr``). A mapping value is merged key by key
# into the mapping already there, recursively (as Hydra and OmegaConf do), so
# ``data.augment={enabled: true}`` keeps the base file's ``degrees``; any other value (a
# number, a string, a list) replaces what was there.


def merge_into(data: dict[str, Any], updates: Mapping[str, Any], where: str = "override") -> None:
    """Apply ``updates`` (dotted keys -> values) to ``data`` in place by the merge rule above."""
    for key, value in updates.items():
        if not isinstance(key, str) or not key or "" in key.split("."):
            raise ConfigError(f"{where}: bad key {key!r}: expected e.g. optim.lr")
        *parents, last = key.split(".")
        node = data
        for k in parents:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"{where}: bad key '{key}': '{k}' is not a section")
            node = nxt
        if isinstance(value, Mapping) and isinstance(node.get(last), dict):
            merge_into(node[last], value, where)
        else:
            node[last] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)


def parse_overrides(items: Sequence[str], where: str = "override") -> dict[str, Any]:
    """``["optim.lr=0.05", "model.sizes=[784, 10]"]`` -> ``{"optim.lr": 0.05, ...}``; each
    value is parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"bad {where} '{item}': expected key=value, e.g. optim.lr=0.05")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = parse_yaml(raw, f"{where} '{item}'")
        except FileError as err:
            raise ConfigError(f"bad {where}: {err}") from None
    return out


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with ``key.path=value`` overrides applied by the merge rule."""
    out = copy.deepcopy(data)
    merge_into(out, parse_overrides(overrides), "override")
    return out


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``merge_into(data, {dotted: value})``."""
    merge_into(data, {dotted: value}, "override")


def load_base(
    base: str | Path | None,
    inline: Mapping[str, Any] | None,
    root: str | Path,
    where: str,
    required: bool = False,
) -> dict[str, Any]:
    """The base run config of a search or experiment: the file ``base`` (relative to ``root``,
    the folder of the file naming it) or the ``inline`` mapping (``base_config:``), never
    both; neither gives ``{}`` (the schema defaults) unless ``required``."""
    if base is not None and inline is not None:
        raise ConfigError(
            f"{where}: give either 'base' (a run config file) or 'base_config' "
            "(an inline run config), not both"
        )
    if base is None and inline is None and required:
        raise ConfigError(
            f"{where}: give one of 'base' (a run config file) or 'base_config' "
            "(an inline run config)"
        )
    if base is not None:
        path = Path(str(base))
        path = path if path.is_absolute() else Path(root) / path
        data = read_yaml(path)
        what = str(path)
    else:
        data = copy.deepcopy(dict(inline)) if isinstance(inline, Mapping) else inline
        what = where
        data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: the base config must be a mapping of config sections")
    return data
