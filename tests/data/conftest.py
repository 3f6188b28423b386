"""Data tests import their helpers (`contract`, `datafiles`) from this directory."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


import pytest


@pytest.fixture
def pg_uri() -> str:
    """The test PostgreSQL server (`tests/pg_util.py`); skipped without one, except in CI."""
    from pg_util import pg_uri_or_skip

    return pg_uri_or_skip()
