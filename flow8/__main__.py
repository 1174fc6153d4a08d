"""``python -m flow8``: the ``flow8`` command (how ``serve --workers N`` starts its workers)."""

import sys

from .cli import main

sys.exit(main())
