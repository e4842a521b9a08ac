"""Where a study lives, and the lock that makes its trial budget exact.

Default: an Optuna ``JournalStorage`` on a file in the output folder. Every change is one
appended log line, so a crash loses at most the line being written and several local
processes share it safely. ``--storage URL`` selects an Optuna ``RDBStorage``
(``postgresql://``, ``mysql://``, ``sqlite://``) with heartbeats, so trials of a worker that
died on any machine are failed and retried.

The budget lock serialises "count the study's trials, then create one" across workers:
a file lock next to a journal or SQLite file, a PostgreSQL advisory lock for PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import filelock
import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from sqlalchemy.engine import make_url

from .. import fileio
from ..config import ConfigError
from ..errors import FileError
from ..rundir import JOURNAL_FILE, STORAGE_FILE
from .journal import JournalLock, SafeJournalBackend

HEARTBEAT_SECONDS = 20
GRACE_SECONDS = 60


def write_output(path: str | Path, text: str) -> Path:
    """``fileio.atomic_write_text`` (the old file stays whole on failure), with a failure such
    as a full disk reported as a FileError naming the file."""
    try:
        return fileio.atomic_write_text(path, text)
    except OSError as err:
        raise FileError(f"cannot write {path}: {err.strerror or err}") from None


def corrupt_journal(path: str | Path, err: BaseException) -> FileError:
    """The one-line error for a journal holding records that cannot be applied."""
    msg = " ".join(str(err).split())[:200] or "no detail"
    return FileError(
        f"study journal {path} is corrupt ({type(err).__name__}: {msg}): restore it or use "
        "another --out"
    )


def default_storage_path(out: str | Path) -> Path:
    return Path(out) / JOURNAL_FILE


def is_url(storage: str) -> bool:
    return "://" in storage


def storage_id(storage: str | None, out: str | Path) -> str:
    """How the output folder records its study's storage (STORAGE_FILE): a journal or
    SQLite file by its path (relative to the folder when inside it: the folder may move;
    else absolute), any other database by its URL without password, driver or
    ``password=`` query argument."""
    if storage is None or not is_url(storage):
        return f"journal {_file_id(Path(storage) if storage else default_storage_path(out), out)}"
    try:
        url = make_url(storage)
    except Exception:  # not a URL SQLAlchemy reads: make_storage will say so
        return _safe(storage)
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"sqlite {_file_id(Path(url.database), out)}"
    query = {k: v for k, v in url.query.items() if k.lower() not in ("password", "passwd")}
    backend = "postgresql" if backend == "postgres" else backend
    url = url.set(drivername=backend, query=query)._replace(password=None)  # (set keeps it)
    return url.render_as_string()


def _file_id(path: Path, out: str | Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(Path(out).resolve()).as_posix()
    except ValueError:
        return str(path)


def check_storage(out: str | Path, storage: str | None) -> None:
    """Refuse a storage other than the one whose study the output folder holds (its
    STORAGE_FILE): a second study's trials and leaderboard would overwrite the first's."""
    path = Path(out) / STORAGE_FILE
    if not os.path.lexists(path):
        return  # a new folder, or one from before barenet recorded it
    old = fileio.read_bytes(path, "storage record", max_bytes=4096).decode("utf-8", "replace")
    old, new = " ".join(old.split()), storage_id(storage, out)  # one line, whatever it holds
    old = old if old.isprintable() else repr(old)
    if old and old != new:
        raise ConfigError(
            f"{out} holds the study stored in {old}, not {new}: to resume it use the same "
            "--storage; for a new study use another --out"
        )


def record_storage(out: str | Path, storage: str | None) -> None:
    """Write the output folder's STORAGE_FILE (atomically; see ``check_storage``)."""
    fileio.atomic_write_text(Path(out) / STORAGE_FILE, storage_id(storage, out) + "\n")


def make_storage(
    storage: str | None,
    out: str | Path,
    on_stale: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> BaseStorage:
    """The journal file in ``out`` (``storage`` None), a journal file path, or an RDB URL.

    ``on_stale`` is called for each trial of a dead worker an RDB heartbeat detects.
    """
    if storage is None or not is_url(storage):
        path = Path(storage) if storage else default_storage_path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = JournalLock(path.with_name(path.name + ".flock"))
        backend = SafeJournalBackend(path, lock)
        try:  # replays every record: one Optuna cannot apply is a hand-edited or corrupt file
            return JournalStorage(backend)
        except Exception as err:  # noqa: BLE001 - KeyError, AssertionError, TypeError...
            raise corrupt_journal(path, err) from None
    url = _with_driver(storage)
    try:
        for attempt in range(3):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return RDBStorage(
                        url,
                        heartbeat_interval=HEARTBEAT_SECONDS,
                        grace_period=GRACE_SECONDS,
                        heartbeat_stale_trial_callback=on_stale,
                        engine_kwargs={"pool_pre_ping": True},
                    )
            except Exception as err:  # noqa: BLE001
                # Two machines creating the tables of a fresh database at once: one wins,
                # the other sees "already exists" and simply opens them on a second try.
                if attempt == 2 or "already exists" not in str(err):
                    raise
                time.sleep(0.5 + attempt)
        raise AssertionError("unreachable")
    except ImportError as err:
        raise ConfigError(
            f"--storage {_safe(storage)}: missing database driver ({err}); "
            "for PostgreSQL: pip install -e '.[postgres]' in barenet's folder"
        ) from None
    except Exception as err:  # noqa: BLE001 - SQLAlchemy raises many kinds; report one line
        msg = " ".join(str(err).split())[:300]
        raise ConfigError(f"--storage {_safe(storage)}: cannot open: {msg}") from None


def _with_driver(url: str) -> str:
    """``postgresql://`` with whichever driver is installed: SQLAlchemy 2.1 defaults to
    psycopg 3, while ``barenet[postgres]`` installs psycopg2."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return f"postgresql+psycopg2{sep}{rest}"
    return f"postgresql{sep}{rest}"


def _safe(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url


# -- the budget lock ---------------------------------------------------------------------------
class BudgetLock:
    """A re-usable, idempotently released mutex shared by every worker of a study."""

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def __enter__(self) -> BudgetLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class FileLock(BudgetLock):
    """A lock file (``filelock``: ``flock`` on POSIX, ``msvcrt`` on Windows): exclusive among
    local processes, freed by the kernel if its holder dies."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = filelock.FileLock(str(self.path), thread_local=False)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)


class PostgresAdvisoryLock(BudgetLock):
    """A session-level advisory lock keyed by the study name, held on its own connection."""

    def __init__(self, storage: RDBStorage, study_name: str) -> None:
        self.engine = storage.engine
        self.key = zlib.crc32(f"barenet-search:{study_name}".encode()) & 0x7FFFFFFF
        self._conn: Any = None

    def acquire(self) -> None:
        from sqlalchemy import text

        conn = self.engine.connect()
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        conn.commit()
        self._conn = conn

    def release(self) -> None:
        if self._conn is not None:
            from sqlalchemy import text

            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # a lost connection frees the lock anyway
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                conn.commit()
            conn.close()


def budget_lock(
    storage_obj: BaseStorage, storage: str | None, out: str | Path, study_name: str
) -> BudgetLock:
    """The strongest lock the storage allows (a no-op for MySQL and others)."""
    if storage is None or not is_url(storage):
        path = Path(storage) if storage else default_storage_path(out)
        # not "<journal>.lock": that name is Optuna's own journal lock
        return FileLock(path.with_name(path.name + ".budget-lock"))
    if storage.startswith("sqlite:///"):
        return FileLock(storage.removeprefix("sqlite:///") + ".budget-lock")
    if isinstance(storage_obj, RDBStorage) and storage_obj.engine.name == "postgresql":
        return PostgresAdvisoryLock(storage_obj, study_name)
    return BudgetLock()


# -- which process runs a trial ----------------------------------------------------------------
HOST = socket.gethostname()


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/PID/stat`` (Linux): state first, start time at index 19."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid``, which tells a reused pid apart."""
    fields = _stat(pid)
    return fields[19] if fields else None


def process_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": HOST, "pid": pid, "pid_start": _start_time(pid)}


def is_dead(attrs: dict[str, Any]) -> bool:
    """True if the trial's worker (from its user attrs) is known to have ended on this host."""
    if attrs.get("host") != HOST or "pid" not in attrs:
        return False
    pid = int(attrs["pid"])
    if pid == os.getpid():  # recover() never runs while this process trains a trial
        return True
    if sys.platform == "win32":
        return not _alive_on_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    fields = _stat(pid)
    if fields is None:
        return False
    start = attrs.get("pid_start")
    return fields[0] == "Z" or (start is not None and fields[19] != start)


def _alive_on_windows(pid: int) -> bool:
    """Whether ``pid`` runs (``os.kill(pid, 0)`` would terminate it on Windows)."""
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return kernel32.GetLastError() == 5  # access denied: it exists
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return not ok or code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)
