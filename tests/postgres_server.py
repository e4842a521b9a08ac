"""A throwaway PostgreSQL server for the tests that share a study between processes.

The server binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/*/bin``)
or a ``pg_ctl`` on PATH and, failing both, from the ``pgserver`` wheel (installed by the
``test`` extra), so the README's install command is all a fresh machine needs. The server runs
on a free loopback port in a temporary folder and is stopped afterwards. None found is a
failure, not a skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pgserver_bin() -> Path | None:
    try:
        import pgserver
    except ImportError:
        return None
    path = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return path if (path / "pg_ctl").exists() else None


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``; ``BARENET_PG_BIN`` chooses one."""
    if os.environ.get("BARENET_PG_BIN"):
        return Path(os.environ["BARENET_PG_BIN"])
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if debian:
        return Path(debian[-1])
    if shutil.which("pg_ctl"):
        return Path(shutil.which("pg_ctl")).parent
    wheel = _pgserver_bin()
    if wheel is None:
        pytest.fail("no PostgreSQL server found: pip install -e '.[test]' installs pgserver")
    return wheel


def _server_user() -> list[str]:
    """PostgreSQL refuses to run as root: run it as ``postgres`` (Debian's), or a system user
    made for it."""
    if os.geteuid() != 0:
        return []
    import pwd

    for name in ("postgres", "barenet-pg"):
        try:
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "barenet-pg"], check=True)
    return ["runuser", "-u", "barenet-pg", "--"]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="barenet-pg-"))
    as_user = _server_user()
    if as_user:
        shutil.chown(root, as_user[2])
        root.chmod(0o700)

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    data = root / "data"
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    run(*initdb, "--no-sync", "-E", "UTF8")
    # The port is free when picked, but another process may take it before the server binds
    # it: a start that fails is tried again on a new port (the log says why it failed).
    for attempt in range(3):
        port = _free_port()
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", opts]
        try:
            run(*start, "-w", "start")
            break
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bn")
        yield f"postgresql://postgres@127.0.0.1:{port}/bn"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
