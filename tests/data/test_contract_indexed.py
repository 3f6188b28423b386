"""The source contract for image sources, flows and wrappers (the rest: `test_contract.py`).

Every image here is flat with the grey value `ROW_VALUE * id + 3`, so the mean
of an image names its row even after flips (the augmentation these factories
use where rows must stay recognisable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from contract import (
    assert_batches_equal,
    assert_no_new_threads,
    check_epochs_and_shards,
    check_resumable,
    epoch_batches,
)
from PIL import Image

import batchfit.data as bd
from batchfit._engine.adapters import IterableSource
from batchfit.preprocessing.image import ImageDataGenerator

ROWS = 23
ROW_VALUE = 5
SIZE = (6, 5)


def _pixels(i: int) -> np.ndarray:
    return np.full((*SIZE, 3), ROW_VALUE * i + 3, np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("images")
    folder = root / "tree"
    rows = []
    for i in range(ROWS):
        name = ["ants", "bees", "cats"][i % 3]
        (folder / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pixels(i)).save(folder / name / f"{i:02d}.png")
        rows.append({"filename": f"{name}/{i:02d}.png", "class": name, "id": float(i)})
    x = np.stack([_pixels(i) for i in range(ROWS)]).astype(np.float32)
    return {
        "folder": str(folder),
        "frame": pd.DataFrame(rows),
        "x": x,
        "y": np.arange(ROWS, dtype=np.float32),
    }


def _flips() -> ImageDataGenerator:
    return ImageDataGenerator(horizontal_flip=True, vertical_flip=True)


def _fitted_warps(x: np.ndarray) -> ImageDataGenerator:
    gen = ImageDataGenerator(
        featurewise_center=True,
        featurewise_std_normalization=True,
        rotation_range=30,
        zoom_range=0.2,
    )
    return gen.fit(x)


class _Halved(bd.SourceWrapper):
    """A wrapper that keeps the even ids of each batch and drops batches left empty."""

    def wrap_epoch(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            keep = _ids([batch]) % 2 == 0
            if keep.any():
                yield tuple(part[keep] for part in batch)

    def _num_batches(self) -> None:
        return None


def _ids(batches: Sequence[Any]) -> np.ndarray:
    """Row ids from the images' means (channels-first or last alike)."""
    if not batches:
        return np.zeros(0, int)
    means = np.concatenate([np.asarray(b[0]).mean(axis=(1, 2, 3)) for b in batches])
    return np.rint((means - 3) / ROW_VALUE).astype(int)


def _batch_list(d: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(d["x"][i : i + 4], d["y"][i : i + 4]) for i in range(0, ROWS, 4)]


FACTORIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "images": lambda d: bd.images(d["folder"], target_size=SIZE, batch_size=4, seed=2),
    "images-unshuffled-sparse": lambda d: bd.images(
        d["folder"], target_size=SIZE, batch_size=5, shuffle=False, class_mode="sparse"
    ),
    "flow": lambda d: _flips().flow(d["x"], d["y"], batch_size=4, seed=3),
    "flow-channels-first": lambda d: ImageDataGenerator(
        horizontal_flip=True, data_format="channels_first"
    ).flow(d["x"].transpose(0, 3, 1, 2), d["y"], batch_size=4, seed=1),
    "flow_from_directory": lambda d: _flips().flow_from_directory(
        d["folder"], target_size=SIZE, batch_size=4, seed=5, class_mode="sparse"
    ),
    "flow_from_dataframe": lambda d: _flips().flow_from_dataframe(
        d["frame"], d["folder"], target_size=SIZE, batch_size=4, seed=6, weight_col="id"
    ),
    "iterable-wrapper": lambda d: IterableSource(_batch_list(d)),
    "source-wrapper": lambda d: _Halved(bd.arrays(d["x"], d["y"], batch_size=4, shuffle=True)),
}
# Resumable but with rows no longer recognisable (the statistics and warps change pixels).
WARPED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "flow-fitted-warps": lambda d: _fitted_warps(d["x"]).flow(d["x"], d["y"], batch_size=4),
    "flow_from_directory-fitted-warps-shard": lambda d: (
        _fitted_warps(d["x"])
        .flow_from_directory(d["folder"], target_size=SIZE, batch_size=3, seed=1)
        .shard(1, 2)
    ),
    "images-shard": lambda d: bd.images(d["folder"], target_size=SIZE, batch_size=3).shard(0, 3),
}


def _threads() -> set[threading.Thread]:
    """The threads alive now, the shared decode/augment pool started first (it lives on)."""
    from batchfit.data._threads import executor

    executor().submit(int).result()
    return set(threading.enumerate())


def _seeded(name: str, factory: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """Sources without a seed draw one from torch: a fresh process would draw the same."""

    def build(d: dict[str, Any]) -> Any:
        import torch

        torch.manual_seed(sum(map(ord, name)))
        return factory(d)

    return build


@pytest.mark.parametrize("name", [*FACTORIES, *WARPED])
def test_check_resumable(name: str, data: dict[str, Any]) -> None:
    factory = _seeded(name, {**FACTORIES, **WARPED}[name])
    before = _threads()
    check_resumable(lambda: factory(data))
    assert_no_new_threads(before)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_epochs_repeat_hold_every_row_and_shard(name: str, data: dict[str, Any]) -> None:
    factory = _seeded(name, FACTORIES[name])
    expected = np.arange(0, ROWS, 2 if name == "source-wrapper" else 1)
    worlds = () if name == "iterable-wrapper" else (2, 3)
    check_epochs_and_shards(lambda: factory(data), _ids, expected, worlds=worlds)


def test_targets_stay_with_their_images(data: dict[str, Any]) -> None:
    for name in ("flow", "flow_from_dataframe", "images-unshuffled-sparse"):
        batches = epoch_batches(FACTORIES[name](data), 1)
        ids = _ids(batches)
        if name == "flow":
            np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), ids)
        elif name == "flow_from_dataframe":
            np.testing.assert_array_equal(np.concatenate([b[2] for b in batches]), ids)
        else:
            np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), ids % 3)


def test_a_wrapper_forwards_position_state_and_settings(data: dict[str, Any]) -> None:
    inner = bd.arrays(data["x"], data["y"], batch_size=4, shuffle=True, seed=7)
    wrapper = _Halved(inner)
    wrapper.set_epoch(3)
    assert inner.epoch == wrapper.epoch == 3
    it = iter(wrapper)
    next(it)
    it.close()
    assert wrapper.state_dict() == inner.state_dict()
    assert wrapper.state_dict()["batches_done"] >= 1
    assert wrapper.batch_size == 4 and wrapper.seed == 7 and wrapper.replayable
    wrapper.seed = 11  # what shard_for_ranks does under torchrun
    assert inner.seed == 11
    shard = wrapper.shard(1, 2)
    assert isinstance(shard, _Halved) and shard.inner is not inner
    assert (shard.rank, shard.world_size) == (1, 2)
    assert wrapper.stats is inner.stats
    with pytest.raises(NotImplementedError, match="cannot be sharded"):
        _Halved(IterableSource(_batch_list(data))).shard(0, 2)


def test_shard_checks_its_arguments_the_same_way_everywhere(data: dict[str, Any]) -> None:
    for name in ("images", "flow", "flow_from_dataframe", "source-wrapper"):
        source = FACTORIES[name](data)
        with pytest.raises(ValueError, match=r"rank must be an integer in \[0, 2\), got 2"):
            source.shard(2, 2)


def test_a_flow_shard_is_its_own_source(data: dict[str, Any]) -> None:
    flow = FACTORIES["flow"](data)
    shard = flow.shard(0, 2)
    assert_batches_equal(epoch_batches(shard, 0), epoch_batches(flow.shard(0, 2), 0), "shard")
    assert next(flow)[0].shape[0] == 4  # Keras' next() on the original is untouched
