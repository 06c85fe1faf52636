"""``python -m lapt.cli``: the same as the ``lapt`` script."""

import sys

from lapt.cli import main

sys.exit(main())
