"""Data tests import their helpers (`contract`, `datafiles`) from this directory."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
