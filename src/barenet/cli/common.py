"""Pieces every command shares: exit codes, the user-error classes, common arguments."""

from __future__ import annotations

import argparse

EXIT_OK = 0
EXIT_FAILED = 1  # an internal error, or a check that ran and failed (gradcheck)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'your input is wrong', reported as one line."""
    from ..config import ConfigError
    from ..data import DataError
    from ..errors import UserError
    from ..train.trainer import TrainingDiverged

    return (
        UserError,
        ConfigError,
        DataError,
        TrainingDiverged,
        FileNotFoundError,
        IsADirectoryError,
        PermissionError,
    )


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
