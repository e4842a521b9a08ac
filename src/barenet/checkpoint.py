"""Model checkpoints: weights and their JSON metadata (safetensors; ``.npz`` read and written).

Nothing here unpickles: weights are safetensors (or ``.npz`` loaded with
``allow_pickle=False``) and metadata is JSON. Writes are atomic (``fileio``). Every read
failure raises :class:`CheckpointError` with a one-line message naming the file.
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from .errors import FileError
from .fileio import atomic_write_bytes, read_bytes, to_jsonable

__all__ = [
    "CheckpointError",
    "load_into",
    "load_model_file",
    "load_state",
    "save_model",
]

PathLike = str | os.PathLike

# The safetensors header's string->string metadata holds one key whose value is
# a JSON object: nested and non-string values survive the round trip.
METADATA_KEY = "barenet"
# The same JSON text, stored in an .npz as a 0-d unicode array under this name.
NPZ_METADATA_KEY = "__metadata__"
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(FileError):
    """A checkpoint file is missing, malformed, or does not fit the model."""


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
    try:
        data = read_bytes(path, "checkpoint file")
    except FileError as e:
        raise CheckpointError(str(e)) from None
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
