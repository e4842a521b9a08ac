"""Atomic file writes and model checkpoints (safetensors; ``.npz`` also read and written).

Nothing here unpickles: weights are safetensors (or ``.npz`` loaded with
``allow_pickle=False``) and metadata is JSON. Every write goes to a temporary
file in the target's directory, is flushed and fsynced, then ``os.replace``-d
over the target, so a crash leaves either the old file or the new one, never a
half-written one. Every read failure raises :class:`CheckpointError` with a
one-line message naming the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
import yaml

__all__ = [
    "CheckpointError",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_into",
    "load_json",
    "load_model_file",
    "load_state",
    "load_yaml",
    "save_json",
    "save_model",
    "save_yaml",
    "to_jsonable",
]

PathLike = str | os.PathLike

# The safetensors header's string->string metadata holds one key whose value is
# a JSON object: nested and non-string values survive the round trip.
METADATA_KEY = "barenet"
# The same JSON text, stored in an .npz as a 0-d unicode array under this name.
NPZ_METADATA_KEY = "__metadata__"
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint or side file is missing, malformed, or does not fit the model."""


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


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{what} not found: {path}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {what} {path}: {e.strerror or e}") from None


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
    """Parse a JSON file; raises CheckpointError if missing or malformed."""
    path = Path(path)
    data = _read_bytes(path, "JSON file")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"malformed JSON in {path}: {e}") from None


def save_yaml(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` with ``yaml.safe_dump`` (key order kept), atomically."""
    text = yaml.safe_dump(to_jsonable(obj), sort_keys=False, default_flow_style=False)
    return atomic_write_text(path, text)


def load_yaml(path: PathLike) -> Any:
    """``yaml.safe_load`` a file; raises CheckpointError if missing or malformed."""
    path = Path(path)
    data = _read_bytes(path, "YAML file")
    try:
        return yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        msg = " ".join(str(e).split())  # YAML errors span lines; keep the message to one
        raise CheckpointError(f"malformed YAML in {path}: {msg}") from None


# -- model weights -------------------------------------------------------------
def _state_of(model_or_state: Any) -> dict[str, np.ndarray]:
    state = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
    if not isinstance(state, dict):
        raise TypeError("save_model needs a Module or a dict of arrays")
    # safetensors needs dense C-contiguous arrays; np.require keeps 0-d buffers 0-d
    # (np.ascontiguousarray would turn them into shape (1,)).
    return {str(k): np.require(v, requirements="C") for k, v in state.items()}


def save_model(
    path: PathLike, model_or_state_dict: Any, metadata: dict[str, Any] | None = None
) -> Path:
    """Save a Module's state dict (or a name -> array dict) with JSON-able ``metadata``.

    Format by suffix: ``.npz`` writes an uncompressed NumPy archive, anything else
    safetensors. The write is atomic. Returns the path.
    """
    path = Path(path)
    state = _state_of(model_or_state_dict)
    meta_json = json.dumps(to_jsonable(metadata or {}), allow_nan=False)
    if path.suffix == ".npz":
        if NPZ_METADATA_KEY in state:
            raise ValueError(f"'{NPZ_METADATA_KEY}' is reserved in .npz checkpoints")
        buf = io.BytesIO()
        np.savez(buf, **state, **{NPZ_METADATA_KEY: np.array(meta_json)})
        data = buf.getvalue()
    else:
        data = safetensors.numpy.save(state, metadata={METADATA_KEY: meta_json})
    return atomic_write_bytes(path, data)


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    # Layout: u64 little-endian header length, then that many bytes of JSON.
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("__metadata__ is not an object")
    return meta


def _decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in raw.items() if k != METADATA_KEY}
    if METADATA_KEY in raw:
        decoded = json.loads(raw[METADATA_KEY])
        if not isinstance(decoded, dict):
            raise ValueError(f"metadata '{METADATA_KEY}' is not a JSON object")
        out.update(decoded)
    return out


def load_model_file(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read weights and metadata from a safetensors (or ``.npz``) file.

    Returns ``(state_dict, metadata)``; arrays are writable copies. Raises
    CheckpointError naming the file if it is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    data = _read_bytes(path, "checkpoint file")
    try:
        if data[:4] == _ZIP_MAGIC:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta_arr = arrays.pop(NPZ_METADATA_KEY, None)
            meta = _decode_metadata({} if meta_arr is None else {METADATA_KEY: str(meta_arr)})
            return arrays, meta
        if len(data) < 8:
            raise ValueError("file too short for a safetensors header")
        state = safetensors.numpy.load(data)
        meta = _decode_metadata(_safetensors_metadata(data))
    except Exception as e:  # safetensors, zipfile, json, struct all raise different types
        msg = " ".join(str(e).split()) or type(e).__name__
        raise CheckpointError(f"not a valid checkpoint file {path}: {msg}") from None
    # frombuffer views of immutable bytes are read-only; hand back ordinary arrays.
    return {k: np.array(v, copy=True) for k, v in state.items()}, meta


def load_state(
    model: Any,
    state: dict[str, np.ndarray],
    path: PathLike = "<state dict>",
    check_dtype: bool = True,
) -> None:
    """Copy ``state`` into ``model`` after checking every name, shape and dtype.

    Nothing is copied unless everything matches; CheckpointError names ``path`` (the
    file the state came from) and the first mismatched key.
    """
    if check_dtype:
        expected = {n: p.data for n, p in model.named_parameters()}
        expected.update(dict(model.named_buffers()))
        # Name mismatches are reported by load_state_dict below; dtype only for matching names.
        if set(expected) == set(state):
            for name in sorted(expected):
                src, dst = np.asarray(state[name]), expected[name]
                if src.shape == dst.shape and src.dtype != dst.dtype:
                    raise CheckpointError(
                        f"{path}: dtype mismatch for '{name}': checkpoint {src.dtype}, "
                        f"model {dst.dtype}"
                    )
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


def load_into(model: Any, path: PathLike, check_dtype: bool = True) -> dict[str, Any]:
    """Load a checkpoint file into ``model`` (see :func:`load_state`); returns its metadata."""
    state, meta = load_model_file(path)
    load_state(model, state, path, check_dtype)
    return meta
