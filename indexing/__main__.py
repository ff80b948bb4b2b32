"""``python -m indexing``: see :mod:`indexing.cli`."""

import sys

from indexing.cli import main

sys.exit(main())
