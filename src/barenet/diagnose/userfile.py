"""Loading ``FILE.py:NAME`` for ``barenet gradcheck``: this runs the file's code, as pytest does.

NAME may be a Module or Loss instance, a class (built with no arguments) or a function of no
arguments returning one. The file's folder is put first on ``sys.path`` while it loads, so it
can import its neighbours.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from .. import nn
from .gradcheck import GradcheckError


def load_object(spec: str) -> nn.Module | nn.Loss:
    """The Module (or Loss) that ``path/to/file.py:NAME`` names; GradcheckError otherwise."""
    path_s, sep, name = spec.rpartition(":")
    if not sep or not path_s or not name:
        raise GradcheckError(f"expected FILE.py:NAME, got {spec!r}")
    path = Path(path_s)
    if path.suffix != ".py" or not path.is_file():
        raise GradcheckError(f"no Python file {path}")
    module = _import(path)
    if not hasattr(module, name):
        found = sorted(k for k, v in vars(module).items() if _is_candidate(v))
        hint = f" (Modules there: {', '.join(found)})" if found else ""
        raise GradcheckError(f"{path} defines no {name!r}{hint}")
    obj = getattr(module, name)
    if isinstance(obj, nn.Module | nn.Loss):
        return obj
    if callable(obj):
        try:
            obj = obj()
        except Exception as err:  # noqa: BLE001 - user code
            raise GradcheckError(
                f"{name}() failed: {type(err).__name__}: {err} "
                "(NAME must build without arguments; name an instance instead)"
            ) from None
        if isinstance(obj, nn.Module | nn.Loss):
            return obj
    raise GradcheckError(
        f"{name} in {path} is not a barenet Module or Loss (got {type(obj).__name__})"
    )


def _is_candidate(v: Any) -> bool:
    return isinstance(v, nn.Module | nn.Loss) or (
        isinstance(v, type) and issubclass(v, nn.Module | nn.Loss)
    )


def _import(path: Path) -> Any:
    mod_name = f"_barenet_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise GradcheckError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - SyntaxError, SystemExit, anything in user code
        sys.modules.pop(mod_name, None)
        line = getattr(err, "lineno", None)
        where = f" (line {line})" if line else ""
        raise GradcheckError(
            f"cannot import {path}{where}: {type(err).__name__}: {err}".rstrip(": ")
        ) from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def default_input_shape(obj: nn.Module | nn.Loss) -> tuple[int, ...]:
    """A small input for ``obj``: its ``input_shape`` attribute (with a batch of 4 in front
    unless it already has one), else guessed from the first layer; GradcheckError if unknown."""
    own = getattr(obj, "input_shape", None)
    if own is not None:
        try:
            shape = tuple(int(s) for s in own)
        except (TypeError, ValueError):
            raise GradcheckError(f"{type(obj).__name__}.input_shape is not a shape") from None
        return shape
    first = obj
    while isinstance(first, nn.Sequential) and len(first):
        first = first[0]
    if isinstance(first, nn.Linear):
        return (4, first.in_features)
    if isinstance(first, nn.Conv2d):
        return (2, first.in_channels, 8, 8)
    if isinstance(first, nn.BatchNorm1d):
        return (4, first.num_features)
    if isinstance(first, nn.BatchNorm2d):
        return (4, first.num_features, 3, 3)
    raise GradcheckError(
        f"cannot guess the input shape of {type(obj).__name__}: pass --input-shape, "
        "e.g. --input-shape 4,3,8,8 (or give the class an input_shape attribute)"
    )


def parse_shape(text: str) -> tuple[int, ...]:
    """``"4,3,8,8"`` (or ``"4x3x8x8"``) -> (4, 3, 8, 8); GradcheckError for anything else."""
    parts = re.split(r"[,x]", text.strip())
    shape = tuple(int(p) for p in parts if p.strip().isdigit())
    if len(shape) != len(parts):
        shape = ()
    if not shape or min(shape) < 1:
        raise GradcheckError(f"bad --input-shape {text!r}: expected positive integers like 4,3,8,8")
    return shape
