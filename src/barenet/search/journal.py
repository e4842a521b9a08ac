"""The default study storage: an Optuna journal file that survives torn writes and full disks.

Optuna's ``JournalFileBackend`` appends one JSON line per change. A write cut short (disk
full, SIGKILL, power loss) leaves a line without its end; the next append is glued to it
and every later read fails ("Expecting ':' delimiter"). This backend

- appends with plain ``os.write`` calls and, if one fails, truncates the file back to where
  it was (truncating needs no free space), so a failed append leaves no trace, and raises a
  :class:`~barenet.errors.FileError` naming the file;
- on opening, and before every append, drops a torn last record left by a process that died
  mid-write, and splits a torn record glued to the next one (files written before this
  backend existed), saying so in one line on stderr;
- refuses (FileError naming it) a journal that is not a regular file (a FIFO, a link to
  ``/dev/zero``), is larger than ``MAX_JOURNAL_BYTES``, or holds no valid record at all: such
  a file is never rewritten.

Locking uses the ``filelock`` package (``flock`` on POSIX, ``msvcrt`` on Windows): the
kernel frees the lock when its holder dies.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Any

from filelock import FileLock
from optuna.storages.journal import JournalFileBackend

from ..errors import FileError

_RECORD_START = b'{"op_code":'
# A trial adds a few kB; a journal of a million trials is far past any real study.
MAX_JOURNAL_BYTES = 1 << 30


class JournalLock:
    """The journal's write lock (Optuna's default symlink lock, left behind by a killed worker,
    would stall the others for its 30 s grace period). Optuna only calls ``acquire`` and
    ``release``.

    Exclusive among processes (``flock``) and among threads sharing it: a ``FileLock`` made
    with ``thread_local=False`` lets a second thread "acquire" it while held, so a thread
    lock is taken first, as Optuna's own locks exclude threads. It pickles (by path, not
    held), as Optuna expects of a storage (``pickle``, process pools).

    The thread lock is re-entrant: Ctrl-C landing between its two steps (or between Optuna's
    ``acquire`` and its ``try``) can leave it held by the main thread, and the cleanup that
    follows (the leaderboard of what was done) takes it again in that thread; a plain lock
    waited for itself there, forever."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._thread_lock = threading.RLock()
        self._lock = FileLock(self._path, thread_local=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self._path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def acquire(self) -> bool:
        self._thread_lock.acquire()
        try:
            self._lock.acquire()
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)
            self._thread_lock.release()


def _say(msg: str) -> None:
    print(f"barenet: {msg}", file=sys.stderr, flush=True)


def _valid(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):  # RecursionError: brackets nested 100,000 deep
        return False


def _salvage(line: bytes) -> bytes | None:
    """The record at the end of a line that glued a torn record to a whole one, or None."""
    at = line.rfind(_RECORD_START)
    while at > 0:
        if _valid(line[at:]):
            return line[at:]
        at = line.rfind(_RECORD_START, 0, at)
    return None


def _check_file(path: Path) -> None:
    """FileError unless ``path`` is missing (a new study) or a regular file of sane size: a
    FIFO would block every read, ``/dev/zero`` would be read until memory runs out."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise FileError(f"cannot open study journal {path}: {kind}")
    if st.st_size > MAX_JOURNAL_BYTES:
        raise FileError(
            f"cannot open study journal {path}: {st.st_size:,} bytes, more than the "
            f"{MAX_JOURNAL_BYTES:,} any study writes"
        )


class SafeJournalBackend(JournalFileBackend):
    """``JournalFileBackend`` with atomic appends and repair of torn records (see module)."""

    def __init__(self, path: str | Path, lock: JournalLock) -> None:
        self.path = Path(path)
        try:
            _check_file(self.path)
            super().__init__(str(path), lock_obj=lock)  # type: ignore[arg-type]
            lock.acquire()
            try:
                self.repair()
            finally:
                lock.release()
        except OSError as err:
            raise FileError(f"cannot open study journal {path}: {err.strerror or err}") from None

    # -- repair ------------------------------------------------------------------------------
    def _cut_torn_tail(self, fd: int) -> int:
        """Truncate a last record without its newline (a write cut short); returns the size.
        Every append ends with a newline, so only a torn write leaves another last byte."""
        size = good = os.fstat(fd).st_size
        if size == 0:
            return 0
        while good > 0:
            start = max(0, good - 4096)
            chunk = os.pread(fd, good - start, start)
            if good == size and chunk.endswith(b"\n"):
                return size
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                good = start + nl + 1
                break
            good = start
        os.ftruncate(fd, good)  # needs no free space
        os.fsync(fd)
        _say(
            f"{self.path}: dropped a torn last record ({size - good} bytes) left by an "
            "interrupted write; the study resumes from the record before it"
        )
        return good

    def repair(self) -> None:
        """Drop a torn last record; split torn records glued to the next one (rewrites the
        file atomically, which needs free space: a FileError naming the file otherwise)."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            self._cut_torn_tail(fd)
        finally:
            os.close(fd)
        fixed, dropped = [], 0
        for line in self.path.read_bytes().splitlines(keepends=True):
            if _valid(line):
                fixed.append(line)
                continue
            dropped += 1
            whole = _salvage(line)
            if whole is not None:
                fixed.append(whole)
        if not dropped:
            return
        if not fixed:
            raise FileError(
                f"{self.path} is not a study journal (no valid record): move it away or use "
                "another --out"
            )
        from ..fileio import atomic_write_bytes

        try:
            atomic_write_bytes(self.path, b"".join(fixed))
        except OSError as err:
            raise FileError(
                f"cannot repair study journal {self.path}: {err.strerror or err}"
            ) from None
        self._log_number_offset = {0: 0}
        _say(
            f"{self.path}: removed {dropped} torn record(s) left by interrupted writes "
            f"({len(fixed)} records kept)"
        )

    # -- append ------------------------------------------------------------------------------
    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        self._lock.acquire()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            try:
                good = self._cut_torn_tail(fd)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except OSError as err:
                    os.ftruncate(fd, good)  # leave the journal as it was
                    raise FileError(
                        f"cannot write study journal {self.path}: {err.strerror or err}"
                    ) from err
            finally:
                os.close(fd)
        finally:
            self._lock.release()
