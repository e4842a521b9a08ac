"""The IDX file format (MNIST's container), raw or gzip-compressed.

Layout: two zero bytes, one dtype code, one byte ``ndim``; then ``ndim`` big-endian uint32
dimension sizes; then ``prod(dims)`` big-endian items in C order.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"

# IDX dtype code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=").str: code for code, dt in IDX_DTYPES.items()}


class DataError(ValueError):
    """A data file is missing, malformed or fails verification.

    The message is one line naming the file (or the places searched) and the problem.
    """


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the content of ``path``, gunzipped if it starts with the gzip magic 1f 8b."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip stream: {e}") from e


def parse_idx(buf: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode an uncompressed IDX buffer; ``name`` labels error messages.

    Returns a read-only array in native byte order (a view on ``buf`` for single-byte types).
    """
    if len(buf) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(buf)} bytes)")
    if buf[0] != 0 or buf[1] != 0:
        raise DataError(
            f"{name}: bad magic number 0x{buf[:4].hex()}: expected two zero bytes, "
            "then a dtype code and ndim (not an IDX file?)"
        )
    code, ndim = buf[2], buf[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: invalid number of dimensions 0")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(
            f"{name}: truncated header: {ndim} dimensions need {header} bytes, found {len(buf)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(buf) - header
    if found < expected:
        raise DataError(
            f"{name}: truncated: expected {expected} bytes of data for shape {dims}, found {found}"
        )
    if found > expected:
        raise DataError(
            f"{name}: {found - expected} trailing bytes after the {expected} bytes of data "
            f"for shape {dims}"
        )
    arr = np.frombuffer(buf, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    arr = arr.reshape(dims)
    if dtype.itemsize > 1 and not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
        arr.flags.writeable = False
    return arr


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip detected by its magic bytes, not by its suffix).

    Returns a read-only array of shape ``dims`` in native byte order; ``.copy()`` it to modify.
    Raises ``DataError`` naming the file for any read, gzip or format problem.
    """
    return parse_idx(read_bytes(path), name=str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX, gzip-compressed if ``compress`` (default: ``path`` ends in .gz).

    The write is atomic (temporary file in the same folder, then ``os.replace``).
    """
    path = Path(path)
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.newbyteorder("=").str)
    if code is None:
        raise TypeError(f"IDX cannot store dtype {arr.dtype}; use one of {sorted(_CODES)}")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)  # mtime=0: byte-identical reruns
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
