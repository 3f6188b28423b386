"""`hf()`: Hugging Face datasets (built in the test, nothing downloaded) under the source contract."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from contract import (
    assert_batches_equal,
    assert_no_new_threads,
    check_epochs_and_shards,
    check_resumable,
    epoch_batches,
    rows_of,
)
from datafiles import table

import batchfit.data as bd
from batchfit.data._fingerprint import describe_change

datasets = pytest.importorskip("datasets")

ROWS = 103


def _columns(rows: int = ROWS) -> dict[str, Any]:
    cols: dict[str, Any] = dict(table(rows))
    ids = cols["id"]
    cols["emb"] = np.stack([ids, -ids, ids * 0.25], axis=1).astype(np.float32)
    return cols


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cols = _columns()
    plain = datasets.Dataset.from_dict({k: v for k, v in cols.items() if k != "emb"})
    features = datasets.Features(
        {
            "id": datasets.Value("float64"),
            "emb": datasets.List(datasets.Value("float32"), length=3),
            "price": datasets.Value("float64"),
        }
    )
    with_emb = datasets.Dataset.from_dict(
        {"id": cols["id"], "emb": cols["emb"].tolist(), "price": cols["price"]}, features=features
    )
    root = tmp_path_factory.mktemp("hf")
    plain.save_to_disk(str(root / "saved"))
    return {
        "plain": plain,
        "emb": with_emb,
        "disk": datasets.load_from_disk(str(root / "saved")),
        # an indices mapping over the rows (reversed), kept by `select`
        "selected": plain.select(list(range(ROWS - 1, -1, -1))),
        "stream": plain.to_iterable_dataset(num_shards=4),
        "stream-one-shard": plain.to_iterable_dataset(num_shards=1),
    }


FACTORIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "dataset": lambda d: bd.hf(d["plain"], target="price", batch_size=8, block_rows=10),
    "dataset-shuffled-shard": lambda d: bd.hf(
        d["plain"], target="price", batch_size=6, shuffle_buffer=11, seed=5, block_rows=9
    ).shard(1, 2),
    "load-from-disk-shuffled": lambda d: bd.hf(
        d["disk"], target="price", batch_size=8, shuffle_buffer=20, seed=1, block_rows=16
    ),
    "selected": lambda d: bd.hf(d["selected"], target="price", batch_size=8, block_rows=7),
    "emb-dict-no-prefetch": lambda d: bd.hf(
        d["emb"], target="price", x_format="dict", batch_size=8, prefetch=0, block_rows=20
    ),
    "stream": lambda d: bd.hf(d["stream"], target="price", batch_size=8, block_rows=10),
    "stream-shuffled": lambda d: bd.hf(
        d["stream"], target="price", batch_size=8, shuffle_buffer=15, seed=4, block_rows=6
    ),
    "stream-shard": lambda d: bd.hf(
        d["stream-one-shard"], target="price", batch_size=5, shuffle_buffer=7, seed=2
    ).shard(1, 3),
}


def _ids(batches: Any) -> np.ndarray:
    if batches and isinstance(batches[0][0], dict):
        return np.concatenate([b[0]["id"] for b in batches])
    return rows_of(batches)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_check_resumable(name: str, data: dict[str, Any]) -> None:
    before = set(threading.enumerate())
    check_resumable(lambda: FACTORIES[name](data))
    assert_no_new_threads(before)


@pytest.mark.parametrize("name", [n for n in FACTORIES if "shard" not in n])
def test_every_row_once_and_shards_disjoint_complete(name: str, data: dict[str, Any]) -> None:
    check_epochs_and_shards(
        lambda: FACTORIES[name](data), _ids, np.arange(ROWS, dtype=np.float64), worlds=(2, 3, 5)
    )
    batches = epoch_batches(FACTORIES[name](data), 1)
    y = np.concatenate([b[1] for b in batches])
    np.testing.assert_array_equal(y, 2 * _ids(batches) + 1)  # x and y stay aligned


def test_len_exact_for_a_dataset_unknown_for_a_stream(data: dict[str, Any]) -> None:
    source = FACTORIES["dataset"](data)
    assert len(source) == -(-ROWS // 8) == len(list(source))
    shard = FACTORIES["dataset-shuffled-shard"](data)
    assert len(shard) == -(-51 // 6) == len(list(shard))
    assert FACTORIES["stream"](data).num_batches is None
    dropped = bd.hf(data["plain"], target="price", batch_size=8, drop_remainder=True)
    assert len(dropped) == ROWS // 8 == len(list(dropped))


def test_rows_and_order_match_the_arrow_table(data: dict[str, Any]) -> None:
    """Unshuffled: the dataset's rows in order (through its indices mapping), as NumPy reads them."""
    for name, frame in (("dataset", data["plain"]), ("selected", data["selected"])):
        batches = list(FACTORIES[name](data))
        pandas = frame.to_pandas()
        np.testing.assert_array_equal(
            np.concatenate([b[0] for b in batches]),
            pandas[["id", "f0", "f1", "f2"]].to_numpy(np.float32),
        )
    shuffled = epoch_batches(FACTORIES["load-from-disk-shuffled"](data), 0)
    assert not np.array_equal(_ids(shuffled), np.arange(ROWS))  # a permutation, not the identity
    again = epoch_batches(FACTORIES["load-from-disk-shuffled"](data), 0)
    assert_batches_equal(again, shuffled, "same seed, same epoch")
    other = epoch_batches(FACTORIES["load-from-disk-shuffled"](data), 1)
    assert not np.array_equal(_ids(other), _ids(shuffled))


def test_fixed_shape_columns_become_multidimensional_x(data: dict[str, Any]) -> None:
    cols = _columns()
    alone = list(bd.hf(data["emb"], target="price", features=["emb"], batch_size=10))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in alone]), cols["emb"])
    beside = list(bd.hf(data["emb"], target="price", batch_size=10))
    flat = np.concatenate([b[0] for b in beside])
    np.testing.assert_array_equal(flat, np.column_stack([cols["id"], cols["emb"]]))
    named = next(iter(FACTORIES["emb-dict-no-prefetch"](data)))[0]
    assert sorted(named) == ["emb", "id"] and named["emb"].shape == (8, 3)
    np.testing.assert_array_equal(named["emb"], cols["emb"][:8])

    rng = np.random.default_rng(0)
    images = rng.random((20, 4, 5, 3), dtype=np.float32)
    labels = np.arange(20) % 4
    features = datasets.Features(
        {"image": datasets.Array3D((4, 5, 3), "float32"), "label": datasets.ClassLabel(4)}
    )
    image_data = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    x, y = (np.concatenate(p) for p in zip(*bd.hf(image_data, target="label", batch_size=6)))
    assert x.shape == (20, 4, 5, 3)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels.astype(np.float32))

    # variable-length lists whose rows all have one shape: fine; differing shapes: refused
    grid = rng.random((9, 2, 2))
    lists = datasets.Dataset.from_dict({"g": grid.tolist(), "y": np.arange(9.0)})
    got = np.concatenate([b[0] for b in bd.hf(lists, target="y", batch_size=4)])
    np.testing.assert_array_equal(got, grid.astype(np.float32))
    ragged = datasets.Dataset.from_dict({"g": [[1.0, 2.0]] * 5 + [[1.0]], "y": np.arange(6.0)})
    with pytest.raises(ValueError, match=r"column 'g' holds arrays of different shapes: .*row 5"):
        list(bd.hf(ragged, target="y", batch_size=4))


def test_fit_from_hf_equals_fit_from_arrays(data: dict[str, Any]) -> None:
    """The same batches in the same order give the same weights as the in-memory arrays."""
    import torch

    from batchfit.layers import Dense
    from batchfit.models import Sequential

    cols = _columns()
    x = np.column_stack([cols["id"], cols["f0"], cols["f1"], cols["f2"]]).astype(np.float32) / 100
    y = (cols["price"] / 100).astype(np.float32)
    scaled = datasets.Dataset.from_dict(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "d": x[:, 3], "y": y}
    )

    def train(source: Any, *args: Any) -> list[np.ndarray]:
        torch.manual_seed(0)
        model = Sequential([Dense(4, activation="relu"), Dense(1)])
        model.compile("sgd", "mse")
        model.fit(
            source,
            *args,
            epochs=2,
            verbose=0,
            **({"batch_size": 16, "shuffle": False} if args else {}),
        )
        return model.get_weights()

    for a, b in zip(train(bd.hf(scaled, target="y", batch_size=16)), train(x, y)):
        np.testing.assert_array_equal(a, b)


def test_clear_errors(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"target column\(s\) \['cost'\] not found"):
        bd.hf(data["plain"], target="cost")
    text = datasets.Dataset.from_dict({"t": ["a", "b"], "y": [0.0, 1.0]})
    with pytest.raises(TypeError, match=r"column 't' of the Hugging Face Dataset has type string"):
        bd.hf(text, target="y")
    images = datasets.Dataset.from_dict(
        {"img": [{"bytes": b"", "path": "a.png"}], "y": [0.0]},
        features=datasets.Features(
            {"img": datasets.Image(decode=False), "y": datasets.Value("float32")}
        ),
    )
    with pytest.raises(TypeError, match="an Image or Audio column: decode it into arrays first"):
        bd.hf(images, target="y")
    with pytest.raises(TypeError, match=r"got DatasetDict \(a DatasetDict\? pick a split"):
        bd.hf(datasets.DatasetDict({"train": data["plain"]}), target="price")
    with pytest.raises(
        ValueError, match=r"shuffled by datasets \(.shuffle\(\)\).*deterministic=True"
    ):
        bd.hf(data["stream"].shuffle(seed=0, buffer_size=10), target="price")
    missing = datasets.Dataset.from_dict({"a": [1.0, None, 3.0], "y": [0.0, 1.0, 2.0]})
    with pytest.raises(ValueError, match=r"non-finite value .*nan.* in column 'a' at row 1"):
        list(bd.hf(missing, target="y"))
    skipped = bd.hf(missing, target="y", on_nan="skip")
    assert np.concatenate([b[1] for b in skipped]).tolist() == [0.0, 2.0]


def test_seeded_datasets_shuffle_declared_deterministic_resumes_exactly(
    data: dict[str, Any],
) -> None:
    stream = data["stream"].shuffle(seed=3, buffer_size=10)
    check_resumable(lambda: bd.hf(stream, target="price", batch_size=8, deterministic=True))
    epochs = [
        _ids(epoch_batches(bd.hf(stream, target="price", deterministic=True), e)) for e in (0, 1)
    ]
    for ids in epochs:
        np.testing.assert_array_equal(np.sort(ids), np.arange(ROWS))
    assert not np.array_equal(*epochs)  # datasets reshuffles each epoch (set_epoch)


def test_fingerprint_tells_a_different_order_or_size(data: dict[str, Any], tmp_path: Path) -> None:
    saved = bd.hf(data["disk"], target="price").fingerprint()
    again = bd.hf(
        datasets.load_from_disk(str(Path(data["disk"].cache_files[0]["filename"]).parent)), "price"
    )
    assert describe_change(saved, again.fingerprint()) is None
    reordered = bd.hf(data["plain"].shuffle(seed=1), target="price").fingerprint()
    assert (
        describe_change(saved, reordered) == "the rows differ from the backup's (names or labels)"
    )
    smaller = bd.hf(data["plain"].select(range(50)), target="price").fingerprint()
    assert describe_change(saved, smaller) == "50 rows now, 103 in the backup"
    assert FACTORIES["stream"](data).fingerprint() is None


def test_a_generator_stream_without_declared_features() -> None:
    """`IterableDataset.from_generator`: columns learnt from the first rows; striped shards."""

    def rows() -> Any:
        for i in range(30):
            yield {"a": float(i), "b": [float(i), 2.0 * i], "y": float(i % 2)}

    stream = datasets.IterableDataset.from_generator(rows)
    source = bd.hf(stream, target="y", batch_size=4)
    x = np.concatenate([b[0] for b in source])
    np.testing.assert_array_equal(x, [[i, i, 2 * i] for i in range(30)])
    check_resumable(lambda: bd.hf(stream, target="y", batch_size=4, shuffle_buffer=8, seed=0))
    parts = [np.concatenate([b[0][:, 0] for b in source.shard(r, 2)]) for r in range(2)]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(30))


_KILL_SOURCE = """
import datasets

train = bf.data.hf(datasets.load_from_disk(data), target="label", batch_size=16,
                   shuffle_buffer=64, seed=3, block_rows=50)
"""


@pytest.mark.slow
def test_sigkill_resume_of_a_dataset_loaded_from_disk(tmp_path: Path) -> None:
    """kill -9 mid-epoch, the same command again: weights bit-identical to a run never stopped."""
    from kill_resume import check_kill_resume, training_script

    rng = np.random.default_rng(0)
    x = rng.normal(size=(270, 4)).astype(np.float32)
    features = datasets.Features(
        {
            "x": datasets.List(datasets.Value("float32"), length=4),
            "label": datasets.Value("float32"),
        }
    )
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    built = datasets.Dataset.from_dict({"x": x.tolist(), "label": labels}, features=features)
    built.save_to_disk(str(tmp_path / "data"))
    check_kill_resume(
        training_script(_KILL_SOURCE), tmp_path / "data", tmp_path, kill_after=26
    )  # mid-epoch 2 (17 batches per epoch)
