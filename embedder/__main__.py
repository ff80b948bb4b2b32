"""``python -m embedder``: see :mod:`embedder.cli`."""

import sys

from embedder.cli import main

sys.exit(main())
