"""The project's own exception classes: what the CLI reports as "bad input" (exit 2).

Every error that means "the input is wrong" (a config value, a data file, a checkpoint, a
run folder) derives from :class:`UserError`, raised where the input is read, with a
one-line message naming the file or key. Anything else that escapes is a bug: the CLI
reports it as an internal error (exit 1) with its traceback in a log file.

The family: ``FileError`` (here) -> ``CheckpointError`` (checkpoint.py); ``ConfigError``
(here); ``DataError`` (data/idx.py); ``TrainingDiverged`` (train/trainer.py, also a
``RuntimeError``). ``UserError`` is a ``ValueError``, so ``except ValueError`` still works.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input: reported as one line on stderr, exit code 2."""


class FileError(UserError):
    """A file is missing, unreadable, malformed, or cannot be written."""


class ConfigError(UserError):
    """A config value, file or override that cannot be used. The message is one line."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same cleanup runs; the CLI exits 143."""
