"""Atomic file writes and JSON/YAML side files.

Every write goes to a temporary file in the target's directory, is flushed and fsynced,
then ``os.replace``-d over the target, so a crash (or a full disk) leaves either the old
file or the new one, never a half-written one. Every read failure raises
:class:`~barenet.errors.FileError` with a one-line message naming the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import FileError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "load_json",
    "load_yaml",
    "read_bytes",
    "save_json",
    "save_yaml",
    "to_jsonable",
]

PathLike = str | os.PathLike


# -- atomic writes -------------------------------------------------------------
def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; creates parent folders. Returns the path.

    On any error the temporary file is removed and the previous ``path`` (if any)
    is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """``atomic_write_bytes`` for text."""
    return atomic_write_bytes(path, text.encode(encoding))


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (or needed) everywhere.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileError(f"{what} not found: {path}") from None
    except OSError as e:
        raise FileError(f"cannot read {what} {path}: {e.strerror or e}") from None


# -- JSON / YAML side files ----------------------------------------------------
def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from NumPy scalars/arrays, paths, tuples; NaN/inf become None.

    Strict JSON has no NaN, so a diverged metric is written as ``null``.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON")


def save_json(path: PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (see :func:`to_jsonable`), atomically."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def load_json(path: PathLike) -> Any:
    """Parse a JSON file; raises FileError if missing or malformed."""
    path = Path(path)
    data = read_bytes(path, "JSON file")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileError(f"malformed JSON in {path}: {e}") from None


def save_yaml(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` with ``yaml.safe_dump`` (key order kept), atomically."""
    text = yaml.safe_dump(to_jsonable(obj), sort_keys=False, default_flow_style=False)
    return atomic_write_text(path, text)


def load_yaml(path: PathLike) -> Any:
    """``yaml.safe_load`` a file; raises FileError if missing or malformed."""
    path = Path(path)
    data = read_bytes(path, "YAML file")
    try:
        return yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        msg = " ".join(str(e).split())  # YAML errors span lines; keep the message to one
        raise FileError(f"malformed YAML in {path}: {msg}") from None
