"""An exclusive, crash-proof lock on a folder: ``flock`` on a lock file inside it.

The kernel drops a ``flock`` when its holder dies (SIGKILL included), so a lock file left
behind by a killed process never blocks anyone: whoever locks it next owns the folder. The
holder writes its pid into the file (for the error message of a loser) and unlinks it on
release, *before* unlocking; a process that opened the old file just then sees, after it
got the lock, that the path no longer names the inode it locked, and tries again.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import ClassVar

from .errors import FileError, UserError

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

except ImportError:
    try:  # Windows: a non-blocking lock on the first byte, dropped at exit too
        import msvcrt

        def _try_lock(fd: int) -> None:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]

    except ImportError:  # neither: no lock (as on a file system without flock)

        def _try_lock(fd: int) -> None:
            raise OSError(errno.ENOSYS, "no file locking on this platform")


__all__ = ["FolderBusy", "FolderLock"]

# flock is unsupported on some network and FUSE file systems; there the lock degrades to none
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class FolderBusy(UserError):
    """Another live process holds the folder's lock."""


class FolderLock:
    """``with FolderLock(folder, name):`` holds ``folder/name`` exclusively.

    Re-entrant within a process (a nested lock of a folder already held is a no-op), so a
    caller may lock a folder and then hand it to a function that locks it too. The folder
    must exist. Raises :class:`FolderBusy` naming the holder's pid if another process
    holds it, :class:`FileError` if the lock file cannot be created.
    """

    _held: ClassVar[dict[str, list]] = {}  # realpath -> [fd, depth]

    def __init__(self, folder: str | os.PathLike, name: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self._key = ""

    @property
    def held(self) -> bool:
        return bool(self._key) and self._key in self._held

    def acquire(self) -> FolderLock:
        key = os.path.realpath(self.path)
        if key in self._held:
            self._held[key][1] += 1
            self._key = key
            return self
        fd = self._lock_fd()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._held[key] = [fd, 1]
        self._key = key
        return self

    def _lock_fd(self) -> int:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise FileError(f"cannot lock {self.folder}: {e.strerror or e}") from None
            try:
                _try_lock(fd)
            except OSError as e:
                if e.errno in _NO_LOCKS:  # a file system without flock: the file still says who
                    return fd
                holder = _read_pid(fd)
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise FileError(f"cannot lock {self.folder}: {e.strerror or e}") from None
                who = f" (pid {holder})" if holder else ""
                raise FolderBusy(f"{self.folder} is in use by another process{who}") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # the holder released and unlinked it meanwhile: lock the new one

    def release(self) -> None:
        entry = self._held.get(self._key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self._held[self._key]
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(entry[0])  # unlocks
        self._key = ""

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
