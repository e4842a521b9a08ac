"""Model checkpoints: weights and their JSON metadata (safetensors; ``.npz`` read and written).

Nothing here unpickles: weights are safetensors (or ``.npz`` loaded with
``allow_pickle=False``) and metadata is JSON. Writes are atomic (``fileio``). Every read
failure raises :class:`CheckpointError` with a one-line message naming the file.

Reads are bounded: :func:`read_header` reads only the header (at most ``MAX_HEADER_BYTES``)
of a regular file (not a FIFO, a device or a folder) and checks that the tensors it lists
tile the file exactly, so a file larger or smaller than its header says is refused before
its data is read, as is one whose tensors need more than ``max_bytes``.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from .errors import FileError
from .fileio import atomic_write_bytes, open_regular, read_bytes, to_jsonable

__all__ = [
    "CheckpointError",
    "Header",
    "check_count",
    "load_into",
    "load_model_file",
    "load_state",
    "read_header",
    "save_model",
]

PathLike = str | os.PathLike

# The safetensors header's string->string metadata holds one key whose value is
# a JSON object: nested and non-string values survive the round trip.
METADATA_KEY = "barenet"
# The same JSON text, stored in an .npz as a 0-d unicode array under this name.
NPZ_METADATA_KEY = "__metadata__"
_ZIP_MAGIC = b"PK\x03\x04"
# The JSON header (tensor table and metadata); ours are a few kB, safetensors caps at 100 MB.
MAX_HEADER_BYTES = 16 << 20
# safetensors dtype names -> NumPy dtypes (the ones NumPy has).
_ST_DTYPES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "U32": "uint32",
    "I32": "int32",
    "U64": "uint64",
    "I64": "int64",
    "F16": "float16",
    "F32": "float32",
    "F64": "float64",
}


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


@dataclass(frozen=True)
class Header:
    """What a checkpoint's header declares, read without its tensor data."""

    tensors: dict[str, tuple[np.dtype, tuple[int, ...]]]  # name -> (dtype, shape)
    metadata: dict[str, Any]
    file_size: int

    @property
    def data_bytes(self) -> int:
        return sum(dt.itemsize * math.prod(shape) for dt, shape in self.tensors.values())


def _decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in raw.items() if k != METADATA_KEY}
    if METADATA_KEY in raw:
        decoded = json.loads(raw[METADATA_KEY])
        if not isinstance(decoded, dict):
            raise ValueError(f"metadata '{METADATA_KEY}' is not a JSON object")
        out.update(decoded)
    return out


def _shape(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise ValueError(f"tensor '{name}' has an invalid shape {value!r}")
    return tuple(value)


def _safetensors_header(f: io.BufferedReader, size: int) -> Header:
    # Layout: u64 little-endian header length, then that many bytes of JSON, then the data.
    if size < 8:
        raise ValueError("file too short for a safetensors header")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_HEADER_BYTES or 8 + n > size:
        raise ValueError(
            f"header length {n:,} is impossible (file {size:,} bytes, at most "
            f"{MAX_HEADER_BYTES:,} allowed)"
        )
    table = json.loads(f.read(n).decode("utf-8"))
    if not isinstance(table, dict):
        raise ValueError("header is not a JSON object")
    meta = table.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("__metadata__ is not an object of strings")
    tensors: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    spans = []
    for name, entry in table.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in _ST_DTYPES:
            raise ValueError(f"tensor '{name}' has no known dtype")
        dtype, shape = np.dtype(_ST_DTYPES[entry["dtype"]]), _shape(entry.get("shape"), name)
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise ValueError(f"tensor '{name}' has invalid data_offsets")
        if offsets[1] - offsets[0] != dtype.itemsize * math.prod(shape):
            raise ValueError(f"tensor '{name}': data_offsets do not match its shape and dtype")
        tensors[name] = (dtype, shape)
        spans.append(tuple(offsets))
    end = 0
    for begin, stop in sorted(spans):  # the tensors must tile the data section exactly
        if begin != end:
            raise ValueError("tensor data overlaps or leaves gaps")
        end = stop
    if 8 + n + end != size:
        raise ValueError(f"the header declares {8 + n + end:,} bytes but the file holds {size:,}")
    return Header(tensors, _decode_metadata(meta), size)


def _npz_header(f: io.BufferedReader, size: int) -> Header:
    tensors: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    meta: dict[str, Any] = {}
    with zipfile.ZipFile(f) as zf:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            with zf.open(info) as member:
                version = np.lib.format.read_magic(member)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(member, max_header_size=10_000)
                if dtype.hasobject:
                    raise ValueError(f"array '{name}' holds Python objects (refused: pickle)")
                if info.file_size > MAX_HEADER_BYTES + dtype.itemsize * math.prod(shape):
                    raise ValueError(f"array '{name}' is larger than its header says")
                if name == NPZ_METADATA_KEY:
                    if info.file_size > MAX_HEADER_BYTES or dtype.kind != "U" or shape != ():
                        raise ValueError("metadata is not a short string")
                    text = str(np.frombuffer(member.read(dtype.itemsize), dtype=dtype)[0])
                    meta = _decode_metadata({METADATA_KEY: text})
                else:
                    tensors[name] = (dtype, tuple(shape))
    return Header(tensors, meta, size)


def _header_of(fd: int, size: int) -> Header:
    with os.fdopen(os.dup(fd), "rb") as f:
        zipped = f.read(4) == _ZIP_MAGIC
        f.seek(0)
        return (_npz_header if zipped else _safetensors_header)(f, size)


def _open(path: Path) -> tuple[int, int]:
    try:
        return open_regular(path, "checkpoint file")
    except FileError as e:
        raise CheckpointError(str(e)) from None


def _invalid(path: Path, e: BaseException) -> CheckpointError:
    if isinstance(e, RecursionError):
        e = ValueError("header nested too deeply")
    msg = " ".join(str(e).split()) or type(e).__name__
    return CheckpointError(f"not a valid checkpoint file {path}: {msg}")


def read_header(path: PathLike) -> Header:
    """The tensor names, dtypes and shapes and the metadata of a checkpoint, reading only
    its header. CheckpointError naming the file if it is not a regular file, is malformed,
    or is larger or smaller than its header says."""
    path = Path(path)
    fd, size = _open(path)
    try:
        return _header_of(fd, size)
    except CheckpointError:
        raise
    except Exception as e:  # json, struct, zipfile, numpy all raise different types
        raise _invalid(path, e) from None
    finally:
        os.close(fd)


def load_model_file(
    path: PathLike, max_bytes: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read weights and metadata from a safetensors (or ``.npz``) file.

    Returns ``(state_dict, metadata)``; arrays are writable copies. The header is checked
    first (:func:`read_header`), and tensors totalling more than ``max_bytes`` (default:
    half of :func:`barenet.memory.memory_limit`) are refused before they are read.
    Raises CheckpointError naming the file if it is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    header = read_header(path)
    if max_bytes is None:
        from .memory import memory_limit

        max_bytes = memory_limit()[0] // 2
    if header.data_bytes > max_bytes:
        raise CheckpointError(
            f"{path}: its tensors hold {header.data_bytes:,} bytes, more than the "
            f"{max_bytes:,} allowed"
        )
    try:
        data = read_bytes(path, "checkpoint file", max_bytes=header.file_size)
    except FileError as e:
        raise CheckpointError(str(e)) from None
    try:
        if data[:4] == _ZIP_MAGIC:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files if k != NPZ_METADATA_KEY}
            return arrays, header.metadata
        state = safetensors.numpy.load(data)
    except Exception as e:  # safetensors, zipfile raise different types
        raise _invalid(path, e) from None
    # frombuffer views of immutable bytes are read-only; hand back ordinary arrays.
    return {k: np.array(v, copy=True) for k, v in state.items()}, header.metadata


def check_count(state: dict[str, Any], expected: int, path: PathLike) -> None:
    """CheckpointError unless ``state`` holds ``expected`` values in all (parameters and
    buffers): a cheap test, before the model is built, that the weights fit the config."""
    found = sum(math.prod(np.shape(v)) for v in state.values())
    if found != expected:
        raise CheckpointError(
            f"{path}: holds {found:,} values but the model its config describes has "
            f"{expected:,} (parameters and buffers): weights and config do not match"
        )


def load_state(
    model: Any,
    state: dict[str, np.ndarray],
    path: PathLike = "<state dict>",
    check_dtype: bool = True,
) -> None:
    """Copy ``state`` into ``model`` after checking every name, shape and dtype.

    Nothing is copied unless everything matches and every float is finite; CheckpointError
    names ``path`` (the file the state came from) and the first mismatched key.
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
    for name in sorted(state):  # training never saves them: NaN/inf weights are corrupt
        value = np.asarray(state[name])
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"{path}: '{name}' holds NaN or infinite values (corrupt)")
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


def load_into(model: Any, path: PathLike, check_dtype: bool = True) -> dict[str, Any]:
    """Load a checkpoint file into ``model`` (see :func:`load_state`); returns its metadata."""
    state, meta = load_model_file(path)
    load_state(model, state, path, check_dtype)
    return meta
