"""``python -m lapt``: the same as the ``lapt`` script."""

import sys

from lapt.cli import main

sys.exit(main())
