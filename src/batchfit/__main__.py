"""`python -m batchfit ...`: the same as the `batchfit` command."""

from __future__ import annotations

import sys

from batchfit.cli import main

if __name__ == "__main__":
    sys.exit(main())
