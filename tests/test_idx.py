"""IDX reader/writer: round trips, dtype codes and every malformed-file case."""

import gzip
import struct

import numpy as np
import pytest

from barenet.data import DataError, read_idx, write_idx
from barenet.data.idx import IDX_DTYPES


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """Independent IDX encoder (struct-based) to check write_idx/read_idx against."""
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(IDX_DTYPES[code]).tobytes()


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_uint8(tmp_path, suffix):
    arr = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    path = tmp_path / f"images{suffix}"
    write_idx(path, arr)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    payload = gzip.decompress(raw) if suffix else raw
    assert payload == _idx_bytes(arr)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (7, 28, 28)
    np.testing.assert_array_equal(out, arr)
    assert not out.flags.writeable


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    gz_no_suffix, raw_with_gz_suffix = tmp_path / "labels", tmp_path / "labels.gz"
    gz_no_suffix.write_bytes(gzip.compress(_idx_bytes(arr)))
    raw_with_gz_suffix.write_bytes(_idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(gz_no_suffix), arr)
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), arr)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip_all_dtype_codes(tmp_path, dtype):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    code = {np.dtype(v.str.replace(">", "<")): k for k, v in IDX_DTYPES.items()}[np.dtype(dtype)]
    path = tmp_path / "x.idx"
    path.write_bytes(_idx_bytes(arr, code))  # big-endian on disk
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    write_idx(tmp_path / "y.idx", arr)
    assert (tmp_path / "y.idx").read_bytes() == path.read_bytes()


def _expect_error(path, *fragments):
    with pytest.raises(DataError) as exc:
        read_idx(path)
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    for fragment in fragments:
        assert fragment in msg
    return msg


def test_wrong_magic(tmp_path):
    path = tmp_path / "bad-magic"
    path.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 3) + b"abc")
    _expect_error(path, "magic")


def test_unknown_dtype_code(tmp_path):
    path = tmp_path / "bad-code"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 3) + b"abc")
    _expect_error(path, "dtype code 0x07")


def test_zero_dimensions_and_short_header(tmp_path):
    path = tmp_path / "zero-dims"
    path.write_bytes(b"\x00\x00\x08\x00")
    _expect_error(path, "dimensions")
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00")
    _expect_error(path, "too short")
    path = tmp_path / "short-dims"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 3))
    _expect_error(path, "truncated header")


@pytest.mark.parametrize("compress", [False, True])
def test_truncated(tmp_path, compress):
    arr = np.zeros((10, 28, 28), dtype=np.uint8)
    data = _idx_bytes(arr)[:-6840]  # keep 1000 of the 7840 payload bytes
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(data) if compress else data)
    _expect_error(path, "truncated", "expected 7840 bytes", "found 1000")


def test_trailing_bytes(tmp_path):
    path = tmp_path / "trailing"
    path.write_bytes(_idx_bytes(np.arange(5, dtype=np.uint8)) + b"\x00\x00\x00")
    _expect_error(path, "3 trailing bytes")


def test_multibyte_truncated(tmp_path):
    path = tmp_path / "floats"
    path.write_bytes(_idx_bytes(np.ones(4, np.float32), 0x0D)[:-2])
    _expect_error(path, "expected 16 bytes", "found 14")


def test_bad_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(np.arange(100, dtype=np.uint8)))
    path = tmp_path / "corrupt.gz"
    path.write_bytes(good[:10] + bytes(b ^ 0xFF for b in good[10:20]) + good[20:])
    _expect_error(path, "gzip")
    path = tmp_path / "cut.gz"
    path.write_bytes(good[: len(good) // 2])
    _expect_error(path, "gzip")


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "nope", "not found")


def test_data_error_is_value_error():
    assert issubclass(DataError, ValueError)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


def test_declared_size_is_checked_before_reading(tmp_path):
    # A 16-byte file declaring 2**32 x 2**32 floats: refused from the header alone.
    path = tmp_path / "huge"
    path.write_bytes(b"\x00\x00\x0d\x02" + struct.pack(">II", 2**32 - 1, 2**32 - 1))
    _expect_error(path, "header declares shape (4294967295, 4294967295)", "allowed")
    small = tmp_path / "small"
    write_idx(small, np.arange(10, dtype=np.uint8))
    assert read_idx(small, max_bytes=10).tolist() == list(range(10))
    with pytest.raises(DataError, match=r"\(10 bytes\), more than the 9 allowed"):
        read_idx(small, max_bytes=9)


def test_gzip_that_expands_past_its_header_is_refused(tmp_path):
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros(5, np.uint8)) + bytes(1 << 22)))
    _expect_error(path, "trailing bytes", "holds more than its header declares")


def test_not_a_regular_file(tmp_path):
    import os

    (tmp_path / "zero").symlink_to("/dev/zero")
    _expect_error(tmp_path / "zero", "not a regular file")
    os.mkfifo(tmp_path / "fifo")
    _expect_error(tmp_path / "fifo", "not a regular file")  # and does not block
    (tmp_path / "dir").mkdir()
    _expect_error(tmp_path / "dir", "a folder")


def test_write_idx_respects_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o027)
    try:
        write_idx(tmp_path / "x.gz", np.zeros(3, np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.gz").stat().st_mode) == 0o640
