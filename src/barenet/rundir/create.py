"""Creating a run folder (exactly one of two racing processes wins), locking and clearing it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import fileio
from ..errors import FileError
from ..folderlock import FolderBusy, FolderLock
from .names import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    HISTORY_FILE,
    LOCK_FILE,
    MODEL_FILE,
    RUN_FILES,
    STATE_FILE,
    TENSORBOARD_DIR,
    WATCH_FILE,
    RunFolderError,
    timestamped,
)


# -- creating and locking --------------------------------------------------------------------
def lock(run_dir: str | Path) -> FolderLock:
    """The run folder's lock (``with rundir.lock(run):``); FolderBusy if another process has it."""
    return FolderLock(run_dir, LOCK_FILE)


def _is_temp(name: str, of: tuple[str, ...] | None = None) -> bool:
    # fileio's atomic writes stage ``.NAME.XXXXXXXX.tmp`` beside the target
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    return of is None or any(name.startswith(f".{n}.") for n in of)


def clear(run_dir: str | Path, keep: tuple[str, ...] = ()) -> None:
    """Remove what training writes (RUN_FILES but ``keep``; with nothing kept also watch.json,
    checkpoints/ and tensorboard/ events) and the temp files a killed write left of any of
    them: a fresh start over an earlier attempt. Call it locked."""
    run = Path(run_dir)
    names = tuple(n for n in RUN_FILES if n not in keep)
    for p in run.iterdir():
        if p.name in names or _is_temp(p.name, RUN_FILES):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    if not keep:  # a fresh start: the optional per-epoch outputs go too
        _clear_extras(run)


def _clear_extras(run: Path) -> None:
    """watch.json, checkpoints/epoch_N.safetensors and tensorboard/ event files (and temp
    files of them), then those folders if that left them empty."""
    with contextlib.suppress(FileNotFoundError):
        (run / WATCH_FILE).unlink()
    for folder, pattern in ((CHECKPOINTS_DIR, "epoch_*"), (TENSORBOARD_DIR, "events.out.*")):
        for p in (*(run / folder).glob(pattern), *(run / folder).glob(".epoch_*.tmp")):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                p.unlink()
        with contextlib.suppress(OSError):
            (run / folder).rmdir()  # only succeeds if empty


def _check_fresh(out: Path, config: Mapping[str, Any] | None) -> None:
    names = {p.name for p in out.iterdir() if p.name != LOCK_FILE and not _is_temp(p.name)}
    if not names:
        return
    if STATE_FILE in names:
        raise RunFolderError(
            f"{out} holds an unfinished run; resume it with `barenet train --resume {out}` "
            "or choose another --out"
        )
    # A run killed before its first epoch ended left config.yaml (and maybe the first
    # checkpoint, watch.json's epoch-0 record, a first epoch_1 or event file): the same
    # command again may start over (``clear`` removes them all).
    stub = {CONFIG_FILE, MODEL_FILE, HISTORY_FILE, WATCH_FILE, CHECKPOINTS_DIR, TENSORBOARD_DIR}
    if config is not None and CONFIG_FILE in names and names <= stub:
        with contextlib.suppress(FileError):
            if fileio.load_yaml(out / CONFIG_FILE) == fileio.to_jsonable(config):
                return
    raise RunFolderError(f"output folder {out} is not empty; choose another --out")


def _mkdir(out: Path) -> bool:
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(out)
    except FileExistsError:
        if not out.is_dir():
            raise RunFolderError(f"{out} exists and is not a folder") from None
        return False
    return True


def _claim_given(out: Path, config: Mapping[str, Any] | None) -> tuple[bool, FolderLock]:
    for _ in range(5):
        created = _mkdir(out)
        held = lock(out)
        try:
            held.acquire()
        except FileError:
            if out.is_dir():
                raise
            continue  # the folder vanished (a failed run removed its own): make it again
        try:
            _check_fresh(out, config)
        except BaseException:
            held.release()
            raise
        return created, held
    raise RunFolderError(f"cannot create {out}: it keeps disappearing")


def _claim_default(prefix: str) -> tuple[Path, FolderLock]:
    base = timestamped(prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        held = lock(path)
        try:
            return path, held.acquire()
        except FolderBusy:
            continue
    raise RunFolderError(f"no free folder name {base}-N")


@contextlib.contextmanager
def create(
    out: str | Path | None, prefix: str = "run", config: Mapping[str, Any] | None = None
) -> Iterator[Path]:
    """``with rundir.create(out, name, config) as run:`` a new run folder, locked for the block.

    ``out`` given: it is created (parents too), or must be an empty folder, or a stub
    holding only this ``config`` (a run killed before its first epoch). Of two processes
    creating the same ``out`` exactly one wins; the other gets FolderBusy or RunFolderError
    and the folder is as it was. ``out`` None: ``runs/PREFIX-TIMESTAMP``, with ``-2``,
    ``-3``... while that exists, so default names never collide. If the folder was created
    here and holds nothing when the block ends (a run that failed at once), it is removed.
    """
    if out is None:
        path, held = _claim_default(prefix)
        created = True
    else:
        path = Path(out)
        created, held = _claim_given(path, config)
    try:
        yield path
    finally:
        held.release()
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds if empty
