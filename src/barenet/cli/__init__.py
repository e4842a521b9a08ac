"""The ``barenet`` command. Thin: parse, call the library, print.

One module per group of commands, each with a ``register(subparsers)``; this file only
assembles them and turns exceptions into exit codes (``common.py`` holds the table):

- bad arguments (argparse): one line naming ``--help``, exit 2;
- a :class:`~barenet.errors.UserError` (bad config, data, checkpoint, run folder; a
  diverged training) or an ``OSError`` about the user's files (missing, no permission,
  disk full): ONE line on stderr, exit 2;
- Ctrl-C: exit 130; SIGTERM: exit 143 (both raise ``KeyboardInterrupt`` inside, so the
  trainer keeps the last completed epoch);
- anything else is a bug: one line naming a log file that holds the traceback, exit 1
  (``BARENET_DEBUG=1`` raises it instead);
- a closed stdout pipe (``barenet test RUN --json | head -c1``) ends quietly, exit 141
  like ``ls`` or ``git`` killed by SIGPIPE.

Floating-point warnings never join the one-line error: NumPy's are off (results are
checked for finiteness where it matters) and other warnings are shown, one line each,
only when the command succeeded.
"""

from __future__ import annotations

from .. import startup  # first: Ctrl-C while the rest loads is one line, not a traceback

startup.install()

# isort: split
import argparse
import contextlib
import difflib
import os
import re
import signal
import sys
import tempfile
import time
import traceback
import warnings
from typing import NoReturn

import numpy as np

from .. import __version__
from ..config import keys_named
from . import dashboard, diagnose, experiment, predict, run, search, viz
from .common import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    describe_os_error,
    is_user_error,
)

startup.done()

# Each module registers its subcommands, in this order in ``barenet --help``.
COMMAND_MODULES = (run, search, experiment, viz, predict, diagnose, dashboard)

DESCRIPTION = "barenet: train, search, test and draw NumPy neural networks."


class Parser(argparse.ArgumentParser):
    """argparse with bad arguments reported in one line (exit 2) that points at ``--help``.
    Subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            2, f"{self.prog}: error: {message}{_did_you_mean(message)}; see `{self.prog} --help`\n"
        )

    def unknown(self, extra: list[str]) -> NoReturn:
        """Report arguments no option took. In a command that has ``--set``, an ``--option``
        naming a config value gets the ``--set`` that sets it (``barenet train --epochs 5``:
        ``--set train.epochs=VALUE``)."""
        message = f"unrecognized arguments: {' '.join(extra)}"
        if any("--set" in a.option_strings for a in self._actions):
            for word in extra:
                name, _, value = word.removeprefix("--").partition("=")
                keys = keys_named(name) if word.startswith("--") else []
                if keys:
                    sets = " or ".join(f"--set {k}={value or 'VALUE'}" for k in keys)
                    message += f" (config values are set with --set: {sets})"
                    break
        self.error(message)


def _did_you_mean(message: str) -> str:
    """``" (did you mean 'train'?)"`` for an argparse "invalid choice" close to a choice
    (``barenet trian``, ``--format onxx``); else ""."""
    found = re.search(r"invalid choice: '?(.*?)'? \(choose from (.*)\)$", message)
    if not found:
        return ""
    choices = [c.strip().strip("'\"") for c in found[2].split(",")]
    by_case = {c.lower(): c for c in choices}  # `barenet TRAIN`: did you mean 'train'?
    close = difflib.get_close_matches(found[1].lower(), list(by_case), n=1, cutoff=0.6)
    return f" (did you mean '{by_case[close[0]]}'?)" if close else ""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="barenet", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"barenet {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        title="commands",
        help="run `barenet COMMAND --help` (or `barenet help COMMAND`) for its arguments",
    )
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def crash_log(err: BaseException) -> str:
    """Write ``err``'s traceback to a new file in the temp folder; returns its path."""
    fd, path = tempfile.mkstemp(
        prefix=f"barenet-crash-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log"
    )
    with os.fdopen(fd, "w") as f:
        f.write(f"barenet {' '.join(sys.argv[1:])}\n")
        traceback.print_exception(type(err), err, err.__traceback__, file=f)
    return path


def _internal_error(err: BaseException) -> int:
    try:
        where = f"traceback in {crash_log(err)}"
    except OSError:
        where = "set BARENET_DEBUG=1 for the traceback"
    text = _one_line(str(err))
    print(
        f"barenet: internal error: {type(err).__name__}{': ' + text if text else ''} ({where})",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _quiet_stdout() -> None:
    # Python's advice for SIGPIPE: point stdout at devnull so the exit-time flush is silent.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def _run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("default")
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
    if code == 0:
        for w in {(w.category.__name__, _one_line(str(w.message))): w for w in caught}:
            print(f"barenet: warning: {w[0]}: {w[1]}", file=sys.stderr)
    return code


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["help"]:  # `barenet help [COMMAND]`, as git and pip take it
        argv = [*argv[1:2], "--help"] if argv[1:2] != ["help"] else ["--help"]
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's own parser, which knows its options
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].unknown(extra)
    return args


def main(argv: list[str] | None = None) -> int:
    previous = None
    # The command: while the parsers are built (they import matplotlib), a signal ends it
    # at once (startup) rather than raising inside a C extension's import, which Python
    # then reports as an ImportError and can crash on at exit.
    quiet = startup.is_command()
    if quiet:
        startup.install()
    try:  # parsing too: a signal while the parsers are built is one line as well
        if not quiet:
            previous = _terminate_by_exception()
        args = _parse(argv)
        if quiet:
            startup.done()
            previous = _terminate_by_exception()
        return _run(args)
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except Terminated:
        print("barenet: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("barenet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the last line of defence against tracebacks
        if is_user_error(err):
            text = describe_os_error(err) if isinstance(err, OSError) else str(err)
            print(f"barenet: error: {_one_line(text)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if os.environ.get("BARENET_DEBUG"):
            raise
        return _internal_error(err)
    finally:
        startup.done()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate_by_exception() -> object:
    """SIGTERM raises ``Terminated`` (the trainer then keeps the last completed epoch);
    returns the previous handler, or None off the main thread (left alone there)."""
    with contextlib.suppress(ValueError):
        return signal.signal(signal.SIGTERM, _raise_terminated)
    return None


if __name__ == "__main__":
    sys.exit(main())
