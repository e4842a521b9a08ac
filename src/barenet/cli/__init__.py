"""The ``barenet`` command. Thin: parse, call the library, print.

One module per group of commands, each with a ``register(subparsers)``; this file only
assembles them and turns exceptions into exit codes (``common.py`` holds the table).
Bad input of any kind ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import experiment, predict, run, search, viz
from .common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, user_errors

# Each module registers its subcommands, in this order in ``barenet --help``.
COMMAND_MODULES = (run, search, experiment, viz, predict)

DESCRIPTION = "barenet: train, search, test and draw NumPy neural networks."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="barenet", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("barenet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the last line of defence against tracebacks
        if isinstance(err, user_errors()) or isinstance(err, (ValueError, OSError)):
            print(f"barenet: error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if os.environ.get("BARENET_DEBUG"):
            raise
        print(
            f"barenet: internal error: {type(err).__name__}: {err} "
            "(set BARENET_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
