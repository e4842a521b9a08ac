"""FolderLock: exclusive across processes, re-entrant within one, gone with its holder."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys

import pytest

from barenet import folderlock
from barenet.errors import FileError
from barenet.folderlock import FolderBusy, FolderLock

TRY = (
    "import sys; from barenet.folderlock import FolderLock; "
    "FolderLock(sys.argv[1], '.lock').acquire(); print('got')"
)


def _other_process_gets(folder) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", TRY, str(folder)], capture_output=True, text=True, timeout=60
    )


def test_exclusive_across_processes_reentrant_within_one(tmp_path):
    lock = FolderLock(tmp_path, ".lock").acquire()
    assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    with FolderLock(tmp_path, ".lock"):  # nested: a no-op
        assert lock.held
    assert lock.held and (tmp_path / ".lock").exists()
    r = _other_process_gets(tmp_path)
    assert r.returncode != 0 and f"in use by another process (pid {os.getpid()})" in r.stderr
    lock.release()
    assert not (tmp_path / ".lock").exists() and not lock.held
    r = _other_process_gets(tmp_path)  # its holder exits without releasing: the kernel does
    assert r.stdout.strip() == "got"
    assert (tmp_path / ".lock").exists()  # a stale file, which blocks nobody
    with FolderLock(tmp_path, ".lock") as again:
        assert again.held


def test_a_lock_file_unlinked_by_its_releasing_holder_is_not_trusted(tmp_path, monkeypatch):
    real = fcntl.flock
    calls = []

    def flock_after_release(fd, op):  # the holder unlinks the file between our open and flock
        if not calls:
            os.unlink(tmp_path / ".lock")
        calls.append(fd)
        return real(fd, op)

    monkeypatch.setattr(folderlock.fcntl, "flock", flock_after_release)
    with FolderLock(tmp_path, ".lock") as lock:
        assert lock.held and len(calls) == 2  # retried on the file that now exists
        assert os.path.samestat(
            os.stat(tmp_path / ".lock"), os.fstat(FolderLock._held[lock._key][0])
        )


def test_missing_folder_and_file_systems_without_flock(tmp_path, monkeypatch):
    with pytest.raises(FileError, match="cannot lock"):
        FolderLock(tmp_path / "none", ".lock").acquire()

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(folderlock.fcntl, "flock", no_flock)
    with FolderLock(tmp_path, ".lock") as lock:
        assert lock.held

    def busy(fd, op):
        raise BlockingIOError(errno.EWOULDBLOCK, "Resource temporarily unavailable")

    monkeypatch.setattr(folderlock.fcntl, "flock", busy)
    with pytest.raises(FolderBusy, match="in use by another process"):
        FolderLock(tmp_path, ".lock").acquire()
