"""Shared test set-up: seeded RNGs, one torch thread per test process."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def pytest_configure(config: pytest.Config) -> None:
    # Two cores are shared by the suite and whatever else runs: one thread per
    # process keeps timings stable and results independent of core count.
    torch.set_num_threads(1)
