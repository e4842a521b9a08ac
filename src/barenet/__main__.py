"""``python -m barenet ...``: the ``barenet`` command (as ``python -m barenet.cli``)."""

import sys

from .cli import main

sys.exit(main())
