"""The IDX file format (MNIST's container), raw or gzip-compressed.

Layout: two zero bytes, one dtype code, one byte ``ndim``; then ``ndim`` big-endian uint32
dimension sizes; then ``prod(dims)`` big-endian items in C order.

Reading is bounded by the header: the declared size is checked against ``max_bytes``
before anything is allocated, a raw file must be exactly as long as its header says, and
a gzip stream is decompressed in chunks into a buffer of the declared size, so a small
gzip that expands to gigabytes is refused after one byte too many, not after it filled
memory.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import FileError, UserError
from ..fileio import atomic_write_bytes, open_regular

GZIP_MAGIC = b"\x1f\x8b"
# The largest payload read_idx accepts by default (MNIST's largest file is 47 MB).
MAX_IDX_BYTES = 1 << 30
_CHUNK = 1 << 20

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


class DataError(UserError):
    """A data file is missing, malformed or fails verification.

    The message is one line naming the file (or the places searched) and the problem.
    """


def _header(head: bytes, name: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, dims, header length)`` from the first 4 + 4 * ndim bytes (or fewer)."""
    if len(head) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(head)} bytes)")
    if head[0] != 0 or head[1] != 0:
        raise DataError(
            f"{name}: bad magic number 0x{head[:4].hex()}: expected two zero bytes, "
            "then a dtype code and ndim (not an IDX file?)"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: invalid number of dimensions 0")
    size = 4 + 4 * ndim
    if len(head) < size:
        raise DataError(
            f"{name}: truncated header: {ndim} dimensions need {size} bytes, found {len(head)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    return IDX_DTYPES[code], dims, size


def _payload_size(dtype: np.dtype, dims: tuple[int, ...], name: str, max_bytes: int) -> int:
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if expected > max_bytes:
        raise DataError(
            f"{name}: header declares shape {dims} of {dtype.newbyteorder('=').name} "
            f"({expected:,} bytes), more than the {max_bytes:,} allowed"
        )
    return expected


def _array(
    buf: bytes | bytearray | memoryview, dtype: np.dtype, dims: tuple[int, ...], offset: int = 0
) -> np.ndarray:
    arr = np.frombuffer(buf, dtype=dtype, count=math.prod(dims), offset=offset).reshape(dims)
    if dtype.itemsize > 1 and not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False
    return arr


def _mismatch(name: str, dims: tuple[int, ...], expected: int, found: int) -> DataError:
    if found < expected:
        return DataError(
            f"{name}: truncated: expected {expected} bytes of data for shape {dims}, found {found}"
        )
    return DataError(
        f"{name}: {found - expected} trailing bytes after the {expected} bytes of data "
        f"for shape {dims}"
    )


def parse_idx(buf: bytes, name: str = "<bytes>", max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Decode an uncompressed IDX buffer; ``name`` labels error messages.

    Returns a read-only array in native byte order (a view on ``buf`` for single-byte types).
    """
    dtype, dims, header = _header(buf[:1024], name)
    expected = _payload_size(dtype, dims, name, max_bytes)
    found = len(buf) - header
    if found != expected:
        raise _mismatch(name, dims, expected, found)
    return _array(buf, dtype, dims, header)


def _read_into(stream: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``stream`` in chunks; the number of bytes read (short at EOF)."""
    n = 0
    while n < len(buf):
        got = stream.readinto(buf[n : n + _CHUNK])
        if not got:
            break
        n += got
    return n


def _read_stream(stream: BinaryIO, name: str, max_bytes: int, size: int | None) -> np.ndarray:
    # ``size``: the raw file's length, known up front; None for a gzip stream.
    head = stream.read(4)
    if len(head) == 4:
        head += stream.read(4 * head[3])
    dtype, dims, header = _header(head, name)
    expected = _payload_size(dtype, dims, name, max_bytes)
    if size is not None and size - header != expected:  # refused before reading the data
        raise _mismatch(name, dims, expected, size - header)
    buf = bytearray(expected)
    found = _read_into(stream, memoryview(buf))
    if found < expected:
        raise _mismatch(name, dims, expected, found)
    if stream.read(1):  # one byte past the declared size ends the decompression
        raise DataError(
            f"{name}: trailing bytes after the {expected} bytes of data for shape {dims} "
            "(the stream holds more than its header declares)"
        )
    return _array(buf, dtype, dims)


def read_idx(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (gzip detected by its magic bytes, not by its suffix).

    Returns a read-only array of shape ``dims`` in native byte order; ``.copy()`` it to modify.
    Raises ``DataError`` naming the file for any read, gzip or format problem, for a file
    that is not a regular file, and for a header that declares more than ``max_bytes``.
    Memory: the array itself plus one chunk, whatever the file holds.
    """
    path = Path(path)
    try:
        fd, size = open_regular(path, "IDX file")
    except FileError as e:
        raise DataError(str(e)) from None
    with os.fdopen(fd, "rb") as raw:
        try:
            if raw.read(2) != GZIP_MAGIC:
                raw.seek(0)
                return _read_stream(raw, str(path), max_bytes, size)
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as gz:
                return _read_stream(gz, str(path), max_bytes, None)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise DataError(f"{path}: corrupt gzip stream: {e}") from None
        except OSError as e:
            raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX, gzip-compressed if ``compress`` (default: ``path`` ends in .gz).

    The write is atomic (``fileio.atomic_write_bytes``).
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
    atomic_write_bytes(path, payload)
