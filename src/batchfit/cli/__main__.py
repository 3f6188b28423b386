"""`python -m batchfit.cli ...`: the same as the `batchfit` command (and `python -m batchfit`)."""

from __future__ import annotations

import sys

from batchfit.cli import main

if __name__ == "__main__":
    sys.exit(main())
