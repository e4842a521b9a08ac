"""Pieces every command shares: exit codes, what counts as a user error, common arguments."""

from __future__ import annotations

import argparse
import errno
import os

from ..errors import Terminated as Terminated  # SIGTERM, raised by cli.main's handler

EXIT_OK = 0
EXIT_FAILED = 1  # an internal error, or a check that ran and failed (gradcheck)
EXIT_BAD_INPUT = 2  # a UserError, or an OSError about the user's files
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  # stdout closed by the reader (128 + SIGPIPE): quiet, like ls or git
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)

# OSErrors that are about the user's files or machine, not a bug: reported as bad input.
USER_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOENT", "EACCES", "EPERM", "ENOSPC", "EDQUOT", "EROFS", "EISDIR", "ENOTDIR",
        "EEXIST", "ENOTEMPTY", "ENAMETOOLONG", "ELOOP", "EFBIG", "EMFILE", "ENFILE", "EXDEV",
        "EBUSY", "ETXTBSY",
    )
    if hasattr(errno, name)
)  # fmt: skip


def is_user_error(err: BaseException) -> bool:
    """True for the project's own input errors and OSErrors about the user's files."""
    from ..errors import UserError

    if isinstance(err, UserError):
        return True
    return isinstance(err, OSError) and err.errno in USER_ERRNOS


def describe_os_error(err: OSError) -> str:
    """'No space left on device: /runs/x/model.safetensors' (the file named, no errno)."""
    what = err.strerror or str(err)
    files = [f for f in (err.filename, err.filename2) if f is not None]
    text = f"{what}: {' -> '.join(os.fsdecode(f) for f in files)}" if files else what
    if files and isinstance(err, (FileExistsError, NotADirectoryError)):
        # mkdir of an output folder where a file is: the bare errno text leaves one guessing
        text += " (a file is in the way where a folder is needed: choose another --out)"
    return text


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer >= 1 (``--trials 0`` is an error, not a no-op)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    """argparse ``type=``: a TCP port, 0-65535 (0: any free one); 99999 would otherwise end in
    the socket's OverflowError, an internal error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {value}")
    return value


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding mnist/ and fashion-mnist/ (default: $BARENET_DATA, cache)",
    )


def add_set(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help or "override a config value, e.g. --set optim.lr=0.05 (repeatable)",
    )
