"""Keras' `keras.random` on torch: seeded draws returning torch tensors.

`seed` is an int (a fresh generator seeded with it: the same call gives the
same numbers), a `SeedGenerator` (a stream of draws that can be saved), or
None (torch's global generator, which `set_random_seed` seeds and backups save).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "SeedGenerator",
    "dropout",
    "normal",
    "randint",
    "shuffle",
    "truncated_normal",
    "uniform",
]


class SeedGenerator:
    """A seeded stream of random draws (Keras' `keras.random.SeedGenerator`).

    Args:
        seed: the initial seed.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["state"])


def _generator(seed: int | SeedGenerator | None) -> torch.Generator | None:
    if seed is None:
        return None
    if isinstance(seed, SeedGenerator):
        return seed.generator
    return torch.Generator().manual_seed(int(seed))


def _dtype(dtype: Any, default: torch.dtype = torch.float32) -> torch.dtype:
    from batchfit.layers._input import as_dtype

    return default if dtype is None else as_dtype(dtype)


def normal(
    shape: Sequence[int],
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Any = None,
    seed: int | SeedGenerator | None = None,
) -> torch.Tensor:
    """Draws from a normal distribution."""
    out = torch.empty(tuple(shape), dtype=_dtype(dtype))
    return out.normal_(mean, stddev, generator=_generator(seed))


def uniform(
    shape: Sequence[int],
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: Any = None,
    seed: int | SeedGenerator | None = None,
) -> torch.Tensor:
    """Draws uniformly from `[minval, maxval)`."""
    out = torch.empty(tuple(shape), dtype=_dtype(dtype))
    return out.uniform_(minval, maxval, generator=_generator(seed))


def randint(
    shape: Sequence[int],
    minval: int,
    maxval: int,
    dtype: Any = "int32",
    seed: int | SeedGenerator | None = None,
) -> torch.Tensor:
    """Integers drawn uniformly from `[minval, maxval)`."""
    return torch.randint(
        int(minval), int(maxval), tuple(shape), generator=_generator(seed), dtype=_dtype(dtype)
    )


def truncated_normal(
    shape: Sequence[int],
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Any = None,
    seed: int | SeedGenerator | None = None,
) -> torch.Tensor:
    """Normal draws, redrawn when more than two standard deviations from the mean."""
    out = torch.empty(tuple(shape), dtype=_dtype(dtype))
    torch.nn.init.trunc_normal_(
        out, mean, stddev, mean - 2 * stddev, mean + 2 * stddev, generator=_generator(seed)
    )
    return out


def shuffle(x: Any, axis: int = 0, seed: int | SeedGenerator | None = None) -> torch.Tensor:
    """`x` with its entries along `axis` in a random order."""
    t = torch.as_tensor(x)
    order = torch.randperm(t.shape[axis], generator=_generator(seed))
    return t.index_select(axis, order)


def dropout(
    inputs: Any,
    rate: float,
    noise_shape: Sequence[int] | None = None,
    seed: int | SeedGenerator | None = None,
) -> torch.Tensor:
    """Zeroes entries with probability `rate` and scales the rest by `1 / (1 - rate)`."""
    t = torch.as_tensor(inputs)
    shape = tuple(noise_shape) if noise_shape is not None else tuple(t.shape)
    keep = torch.empty(shape, dtype=t.dtype).uniform_(generator=_generator(seed)) >= rate
    return t * keep / (1.0 - rate)
