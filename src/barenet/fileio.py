"""Atomic file writes and JSON/YAML side files.

Every write goes to a temporary file in the target's directory, is flushed and fsynced,
then ``os.replace``-d over the target, so a crash (or a full disk) leaves either the old
file or the new one, never a half-written one. Written files get the mode an ordinary
``open()`` would give (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.

Reads are bounded: only regular files are read (not a FIFO, a device such as ``/dev/zero``
or a folder), up to a size cap, and YAML refuses duplicate keys and alias bombs. Every read
failure raises :class:`~barenet.errors.FileError` with a one-line message naming the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
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
    "open_regular",
    "parse_yaml",
    "read_bytes",
    "save_json",
    "save_yaml",
    "to_jsonable",
]

PathLike = str | os.PathLike

# Side files (configs, JSON, YAML) are small; a bigger one is a mistake or an attack.
MAX_SIDE_FILE = 64 << 20
# A YAML document may hold at most this many values once its aliases are expanded
# (a "billion laughs" file is a few hundred bytes that expand to 10**9 values).
MAX_YAML_VALUES = 1_000_000
# Flow collections nested deeper than this are refused before parsing (PyYAML recurses,
# and takes seconds to fail on a few thousand brackets).
MAX_YAML_DEPTH = 100
_BRACKETS = re.compile(r"[\[\]{}]")


def file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# -- atomic writes -------------------------------------------------------------
def _check_replaceable(path: Path) -> None:
    """FileError if ``path`` is a device, FIFO or socket: ``os.replace`` would swap it for a
    regular file (as root, ``--out /dev/null`` replaced the device). Links, regular files
    and missing names are fine; a folder fails in ``os.replace`` itself."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError:
        return  # let the write itself report it
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode)):
        raise FileError(f"cannot write {path}: not a regular file (a device or FIFO is kept)")


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; creates parent folders. Returns the path.

    On any error the temporary file is removed and the previous ``path`` (if any)
    is left untouched; an ``OSError`` (a full disk, say) names ``path``. A device, FIFO or
    socket at ``path`` is never replaced (FileError).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # a folder one may not write in: name the file, not a temporary
        raise type(e)(e.errno, e.strerror, os.fspath(path)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), file_mode())  # mkstemp's 0o600 would hide it from others
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno and e.filename in (None, tmp):
            # Name the file, not its temporary (a full disk fails in write or fsync, unnamed).
            raise type(e)(e.errno, e.strerror, os.fspath(path)) from e
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


def open_regular(path: PathLike, what: str, max_bytes: int | None = None) -> tuple[int, int]:
    """Open a regular file for reading: ``(fd, size)``. The caller closes ``fd``.

    Refuses (FileError naming the file) a missing file, a folder, a FIFO, a device (a
    symlink to ``/dev/zero`` included) and, if ``max_bytes`` is given, a larger file. The
    check is made before opening (opening a FIFO would block) and again on the open file.
    """
    path = Path(path)
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC)
            st = os.fstat(fd)
        else:
            fd = -1
    except FileNotFoundError:
        raise FileError(f"{what} not found: {path}") from None
    except OSError as e:
        raise FileError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        if fd >= 0:
            os.close(fd)
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise FileError(f"cannot read {what} {path}: {kind}")
    if max_bytes is not None and st.st_size > max_bytes:
        os.close(fd)
        raise FileError(
            f"{what} {path} is {st.st_size:,} bytes, more than the {max_bytes:,} allowed"
        )
    return fd, st.st_size


def read_bytes(path: PathLike, what: str, max_bytes: int | None = MAX_SIDE_FILE) -> bytes:
    """The whole content of a regular file of at most ``max_bytes`` (see :func:`open_regular`)."""
    fd, size = open_regular(path, what, max_bytes)
    try:
        with os.fdopen(fd, "rb") as f:
            # One byte more than the size: a file that grows while read is not cut silently.
            data = f.read(size + 1 if max_bytes is None else min(size + 1, max_bytes + 1))
    except OSError as e:
        raise FileError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise FileError(f"{what} {path} grew past the {max_bytes:,} bytes allowed while read")
    return data


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
    except RecursionError:
        raise FileError(f"malformed JSON in {path}: nested too deeply") from None


def save_yaml(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` with ``yaml.safe_dump`` (key order kept), atomically."""
    text = yaml.safe_dump(to_jsonable(obj), sort_keys=False, default_flow_style=False)
    return atomic_write_text(path, text)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping (PyYAML keeps the
    last one silently, so a second ``lr:`` would win unnoticed)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _count_values(obj: Any, limit: int) -> None:
    # Walks the loaded document counting every value reached, aliases as often as they
    # are used, so a self-referencing or exponentially aliased document stops here.
    stack, n = [obj], 0
    while stack:
        item = stack.pop()
        n += 1
        if n > limit:
            raise ValueError(f"more than {limit:,} values once its aliases are expanded")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_yaml(text: str, name: str) -> Any:
    """Parse one YAML document safely: no duplicate keys, at most ``MAX_YAML_VALUES`` values.

    ``name`` labels the one-line FileError (e.g. the file path or ``--set key``).
    """
    depth = deepest = 0
    for m in _BRACKETS.finditer(text):  # counts brackets in strings too: errs on the safe side
        depth += 1 if m.group() in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_YAML_DEPTH:
        raise FileError(f"malformed YAML in {name}: nested too deeply (over {MAX_YAML_DEPTH})")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        _count_values(data, MAX_YAML_VALUES)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        msg = " ".join(str(problem).split())  # YAML errors span lines; keep the message to one
        raise FileError(f"malformed YAML in {name}{where}: {msg}") from None
    except RecursionError:
        raise FileError(f"malformed YAML in {name}: nested too deeply") from None
    except ValueError as e:
        raise FileError(f"YAML in {name} is too large: {e}") from None
    return data


def load_yaml(path: PathLike) -> Any:
    """Parse a YAML file (see :func:`parse_yaml`); raises FileError if missing or malformed."""
    path = Path(path)
    data = read_bytes(path, "YAML file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileError(f"malformed YAML in {path}: not UTF-8 text ({e.reason})") from None
    return parse_yaml(text, str(path))
