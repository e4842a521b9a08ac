"""The full training state of a ``Trainer``: saved after every epoch, restored to resume.

It holds everything an uninterrupted ``fit`` carries into its next epoch, so a resumed run
ends bit-identical to one never stopped (same config and BLAS thread count):

- the model's parameters and buffers (BatchNorm running statistics);
- the optimizer's ``state_dict()`` (momentum buffers, Adam moments, step counts, lrs) and the
  schedule's (its step count, or ReduceLROnPlateau's counters);
- the ``bit_generator.state`` of every ``np.random.Generator`` involved: the train loader's
  (shuffling, and augmentation, which draws from the loader's generator), every layer's
  (dropout masks) and any extra ones the caller names;
- epoch, global step, the stop flag and reason, the history rows;
- each stateful callback's ``state_dict()`` (early stopping's counter and best weights, the
  checkpoint's best value, the loggers' rows).

The file is safetensors (written atomically by ``checkpoint.save_model``, never pickle):
arrays under slash names (``model/0.weight``, ``optimizer/state/3/exp_avg``), the rest as
JSON metadata in which each array is ``{"__array__": name}``. Tuples, NumPy scalars and
non-finite floats are tagged so they come back with their exact type and value: under
NumPy 2 promotion a float64 scalar would turn a float32 update into a float64 one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import checkpoint
from ..checkpoint import CheckpointError
from .callbacks import Callback

__all__ = ["FORMAT", "find_generators", "load_state", "read_state", "save_state"]

FORMAT = "barenet-train-state-1"


def find_generators(
    trainer: Any, train_loader: Any, extra: Mapping[str, np.random.Generator] | None = None
) -> dict[str, np.random.Generator]:
    """Name -> Generator for every generator training draws from; each object once, under
    the first name found (``extra`` first, then the loader, its transform, the layers)."""
    found: dict[str, np.random.Generator] = {}

    def add(name: str, gen: Any) -> None:
        if isinstance(gen, np.random.Generator) and all(gen is not g for g in found.values()):
            found[name] = gen

    for name, gen in (extra or {}).items():
        add(str(name), gen)
    add("train_loader.rng", getattr(train_loader, "rng", None))
    add(
        "train_loader.transform.rng", getattr(getattr(train_loader, "transform", None), "rng", None)
    )
    modules = getattr(trainer.model, "named_modules", None)
    for mod_name, module in modules() if modules else ():
        for attr, value in vars(module).items():
            add(f"model.{mod_name}.{attr}" if mod_name else f"model.{attr}", value)
    return found


def _stateful(callbacks: list[Callback]) -> list[Callback]:
    return [cb for cb in callbacks if type(cb).state_dict is not Callback.state_dict]


def _capture(trainer: Any, generators: Mapping[str, np.random.Generator], epoch: int) -> dict:
    schedule = trainer.schedule
    return {
        "format": FORMAT,
        "epoch": epoch,
        "global_step": trainer.global_step,
        "stop_training": bool(trainer.stop_training),
        "stop_reason": trainer.stop_reason,
        "history": trainer.history.epochs,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "schedule": schedule.state_dict() if schedule is not None else None,
        "generators": {n: g.bit_generator.state for n, g in generators.items()},
        "callbacks": [
            {"class": type(cb).__name__, "state": cb.state_dict()}
            for cb in _stateful(trainer.callbacks)
        ],
    }


# -- exact JSON ----------------------------------------------------------------------------
def _encode(obj: Any, arrays: dict[str, np.ndarray], key: str) -> Any:
    if isinstance(obj, np.ndarray):
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        return {str(k): _encode(v, arrays, f"{key}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, f"{key}/{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, np.generic):
        return {"__scalar__": obj.dtype.str, "value": _encode(obj.item(), arrays, key)}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in a training state ({key})")


def _decode(obj: Any, arrays: dict[str, np.ndarray], path: Path) -> Any:
    if isinstance(obj, list):
        return [_decode(v, arrays, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        name = obj["__array__"]
        if name not in arrays:
            raise CheckpointError(f"{path}: array '{name}' is missing")
        return arrays[name]
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays, path) for v in obj["__tuple__"])
    if "__scalar__" in obj:
        return np.dtype(obj["__scalar__"]).type(_decode(obj["value"], arrays, path))
    if "__float__" in obj:
        return float(obj["__float__"])
    return {k: _decode(v, arrays, path) for k, v in obj.items()}


# -- the file ------------------------------------------------------------------------------
def save_state(
    path: str | Path,
    trainer: Any,
    generators: Mapping[str, np.random.Generator],
    epoch: int,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the trainer's state after ``epoch`` to ``path`` atomically (old or new, never
    half). ``metadata`` (JSON-able, e.g. the config) is stored beside it under ``extra``."""
    arrays: dict[str, np.ndarray] = {}
    meta = _encode(_capture(trainer, generators, epoch), arrays, "")
    meta["extra"] = dict(metadata or {})
    return checkpoint.save_model(path, {k.lstrip("/"): v for k, v in arrays.items()}, meta)


def read_state(path: str | Path) -> dict[str, Any]:
    """The decoded state of a file written by ``save_state`` (CheckpointError if it is not one)."""
    path = Path(path)
    arrays, meta = checkpoint.load_model_file(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a barenet training state ({FORMAT})")
    for name, value in arrays.items():  # a state is saved only after a finite epoch
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"{path}: '{name}' holds NaN or infinite values (corrupt)")
    arrays = {"/" + k: v for k, v in arrays.items()}
    try:
        state = _decode(meta, arrays, path)
        _check(state)
    except (TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: malformed training state: {e}") from None
    return state


def _count(value: Any, what: str, low: int = 0) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{what} is {value!r}, not an integer >= {low}")
    return value


def _check(state: dict[str, Any]) -> None:
    """ValueError unless the scalars are what ``_capture`` writes: epoch >= 1 with one
    history row per epoch, a step count, a boolean stop flag, non-negative optimizer steps."""
    epoch = _count(state.get("epoch"), "epoch", 1)
    _count(state.get("global_step"), "global_step")
    history = state.get("history")
    if not isinstance(history, list) or len(history) != epoch:
        raise ValueError(f"history does not hold one row for each of the {epoch} epochs")
    for i, row in enumerate(history, 1):
        if not isinstance(row, dict) or row.get("epoch") != i:
            raise ValueError(f"history row {i} is not a row of epoch {i}")
        for key in ("loss", "accuracy", "time"):
            if not isinstance(row.get(key), numbers.Real) or isinstance(row.get(key), bool):
                raise ValueError(f"history row {i} has no number '{key}'")
    if not isinstance(state.get("stop_training"), bool):
        raise ValueError("stop_training is not true or false")

    def steps(obj: Any) -> None:  # every optimizer's per-parameter "step" counts
        if isinstance(obj, dict):
            for k, v in obj.items():
                _count(v, "an optimizer step") if k == "step" else steps(v)
        elif isinstance(obj, list):
            for v in obj:
                steps(v)

    steps(state.get("optimizer"))


def load_state(
    state: Mapping[str, Any],
    trainer: Any,
    generators: Mapping[str, np.random.Generator],
    path: str | Path = "<training state>",
) -> int:
    """Put a ``read_state`` result into ``trainer`` (whose callbacks have had
    ``on_train_begin``) and its generators; returns the epoch it was saved after.

    Everything is checked against the trainer first; CheckpointError names ``path`` and what
    differs. The model, optimizer and schedule must be built as for the saved run.
    """
    from .trainer import History

    saved_gens = state["generators"]
    if set(saved_gens) != set(generators):
        raise CheckpointError(
            f"{path}: random generators {sorted(saved_gens)} were saved, this training has "
            f"{sorted(generators)}"
        )
    stateful = _stateful(trainer.callbacks)
    saved_cbs = state["callbacks"]
    if [c["class"] for c in saved_cbs] != [type(cb).__name__ for cb in stateful]:
        raise CheckpointError(
            f"{path}: saved with callbacks {[c['class'] for c in saved_cbs]}, this trainer has "
            f"{[type(cb).__name__ for cb in stateful]}"
        )
    if (state["schedule"] is None) != (trainer.schedule is None):
        raise CheckpointError(f"{path}: saved with{'out' * (state['schedule'] is None)} a schedule")
    try:
        checkpoint.load_state(trainer.model, state["model"], path)
        trainer.optimizer.load_state_dict(state["optimizer"])
        if trainer.schedule is not None:
            trainer.schedule.load_state_dict(state["schedule"])
        for name, gen in generators.items():
            gen.bit_generator.state = saved_gens[name]
        for cb, saved in zip(stateful, saved_cbs, strict=True):
            cb.load_state_dict(saved["state"])
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: does not fit this training: {e}") from None
    trainer.history = History(state["history"])
    trainer.global_step = int(state["global_step"])
    trainer.stop_training = bool(state["stop_training"])
    trainer.stop_reason = state["stop_reason"]
    return int(state["epoch"])
