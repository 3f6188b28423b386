"""flow_from_dataframe: images listed in a pandas/polars table, streamed from disk."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from PIL import Image

from batchfit.layers import Conv2D, Dense, Flatten
from batchfit.models import Sequential
from batchfit.preprocessing.image import ImageDataGenerator


def _table(root: Path, n: int = 12) -> pd.DataFrame:
    """`n` flat images whose grey value is 10 * row (so a batch tells its rows) and a table."""
    rows = []
    for i in range(n):
        name = f"img_{i:02d}.png"
        Image.fromarray(np.full((9, 7, 3), 10 * i, np.uint8)).save(root / name)
        rows.append(
            {
                "filename": name,
                "class": ["cat", "dog", "emu"][i % 3],
                "tags": [["cat"], ["cat", "dog"], []][i % 3],
                "age": float(i) / 2,
                "size": float(100 + i),
                "weight": 1.0 + i,
            }
        )
    return pd.DataFrame(rows)


def _rows(x: np.ndarray) -> np.ndarray:
    return np.rint(x.mean(axis=(1, 2, 3)) / 10).astype(int)


def _epoch(source) -> list:
    return list(source)


def test_categorical_in_table_order_with_filenames_and_classes(tmp_path: Path) -> None:
    frame = _table(tmp_path)
    flow = ImageDataGenerator().flow_from_dataframe(
        frame, str(tmp_path), target_size=(5, 5), batch_size=5, shuffle=False
    )
    batches = _epoch(flow)
    assert [len(b[0]) for b in batches] == [5, 5, 2]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (12, 5, 5, 3) and y.shape == (12, 3)
    np.testing.assert_array_equal(_rows(x), np.arange(12))
    np.testing.assert_array_equal(y.argmax(1), np.arange(12) % 3)
    assert flow.class_indices == {"cat": 0, "dog": 1, "emu": 2}
    assert flow.filenames == list(frame["filename"]) and flow.samples == 12


def test_missing_files_are_dropped_with_a_warning(tmp_path: Path, caplog) -> None:
    frame = _table(tmp_path)
    (tmp_path / "img_03.png").unlink()
    frame.loc[5, "filename"] = "notes.txt"
    with caplog.at_level(logging.WARNING, logger="batchfit.data"):
        flow = ImageDataGenerator().flow_from_dataframe(
            frame, str(tmp_path), target_size=(4, 4), shuffle=False
        )
    assert "dropped 2 of 12 rows" in caplog.text
    x, y = next(iter(flow))
    kept = [i for i in range(12) if i not in (3, 5)]
    np.testing.assert_array_equal(_rows(x), kept)
    np.testing.assert_array_equal(y.argmax(1), np.array(kept) % 3)
    unchecked = ImageDataGenerator().flow_from_dataframe(
        frame, str(tmp_path), target_size=(4, 4), validate_filenames=False
    )
    assert unchecked.samples == 12
    with pytest.raises(ValueError, match=r"img_03\.png"):
        _epoch(unchecked)


def test_raw_targets_weights_and_multi_label(tmp_path: Path) -> None:
    frame = _table(tmp_path)
    gen = ImageDataGenerator()
    raw = gen.flow_from_dataframe(
        frame,
        str(tmp_path),
        y_col=["age", "size"],
        weight_col="weight",
        class_mode="raw",
        target_size=(3, 3),
        batch_size=12,
        shuffle=False,
    )
    x, y, w = next(iter(raw))
    np.testing.assert_array_equal(_rows(x), np.arange(12))
    np.testing.assert_array_equal(y, frame[["age", "size"]].to_numpy(np.float32))
    np.testing.assert_array_equal(w, frame["weight"].to_numpy(np.float32))
    one = next(iter(gen.flow_from_dataframe(frame, str(tmp_path), y_col="age", class_mode="raw")))
    assert one[1].shape == (12,)
    multi = gen.flow_from_dataframe(
        frame, str(tmp_path), y_col="tags", target_size=(3, 3), batch_size=12, shuffle=False
    )
    _, y = next(iter(multi))
    assert multi.class_indices == {"cat": 0, "dog": 1}
    want = np.array([[1, 0], [1, 1], [0, 0]] * 4, np.float32)
    np.testing.assert_array_equal(y, want)


def test_validation_split_takes_the_first_rows_and_shards_cover_the_rest(tmp_path: Path) -> None:
    frame = _table(tmp_path)
    gen = ImageDataGenerator(validation_split=0.25)
    val = gen.flow_from_dataframe(frame, str(tmp_path), target_size=(3, 3), subset="validation")
    train = gen.flow_from_dataframe(
        frame, str(tmp_path), target_size=(3, 3), subset="training", batch_size=4, seed=1
    )
    np.testing.assert_array_equal(np.sort(_rows(next(iter(val))[0])), [0, 1, 2])
    seen = np.concatenate([_rows(b[0]) for b in train])
    assert sorted(seen) == list(range(3, 12)) and list(seen) != sorted(seen)  # shuffled
    for b in train:
        np.testing.assert_array_equal(b[1].argmax(1), _rows(b[0]) % 3)
    shards = [np.concatenate([_rows(b[0]) for b in train.shard(r, 2)]) for r in (0, 1)]
    assert sorted(np.concatenate(shards)) == list(range(3, 12))


def test_polars_frames_and_paths_without_a_directory(tmp_path: Path) -> None:
    frame = _table(tmp_path)
    frame["filename"] = [str(tmp_path / f) for f in frame["filename"]]
    flow = ImageDataGenerator().flow_from_dataframe(
        pl.from_pandas(frame.drop(columns=["tags"])),
        class_mode="sparse",
        target_size=(3, 3),
        batch_size=12,
        shuffle=False,
    )
    x, y = next(iter(flow))
    np.testing.assert_array_equal(_rows(x), np.arange(12))
    np.testing.assert_array_equal(y, np.arange(12) % 3)


def test_bad_tables_are_refused_naming_what_is_wrong(tmp_path: Path) -> None:
    frame = _table(tmp_path)
    gen = ImageDataGenerator()
    with pytest.raises(ValueError, match=r"no column\(s\) \['label'\]"):
        gen.flow_from_dataframe(frame, str(tmp_path), y_col="label")
    with pytest.raises(ValueError, match=r"labels \['emu'\] in y_col are not in classes"):
        gen.flow_from_dataframe(frame, str(tmp_path), classes=["cat", "dog"])
    with pytest.raises(ValueError, match="multi_output' needs y_col as a list"):
        gen.flow_from_dataframe(frame, str(tmp_path), class_mode="multi_output")
    frame.loc[4, "age"] = np.nan
    with pytest.raises(ValueError, match=r"column 'age' is missing or not finite .*img_04\.png"):
        gen.flow_from_dataframe(frame, str(tmp_path), y_col="age", class_mode="raw")
    with pytest.raises(TypeError, match="pandas or polars DataFrame"):
        gen.flow_from_dataframe([("a.png", "cat")], str(tmp_path))


def test_fit_on_an_augmented_dataframe_flow(tmp_path: Path) -> None:
    frame = _table(tmp_path, n=24)
    gen = ImageDataGenerator(featurewise_center=True, horizontal_flip=True, rescale=1 / 255)
    gen.fit(np.stack([np.asarray(Image.open(tmp_path / f), np.float32) for f in frame.filename]))
    # the mean of 10 * row, rescaled: fit sees the images as the flow will
    np.testing.assert_allclose(gen.mean.ravel(), [115.0 / 255] * 3, rtol=1e-6)
    ordered = gen.flow_from_dataframe(
        frame, str(tmp_path), y_col="age", class_mode="raw", target_size=(6, 6), shuffle=False
    )
    x, y = next(iter(ordered))
    # flips leave flat images as they were; then rescale and subtract the mean
    want = ((np.arange(24) * 10.0 - 115.0) / 255)[:, None, None, None] * np.ones((1, 6, 6, 3))
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y, np.arange(24) / 2)
    flow = gen.flow_from_dataframe(
        frame, str(tmp_path), y_col="age", class_mode="raw", target_size=(6, 6), batch_size=8
    )
    model = Sequential([Conv2D(2, 3, activation="relu"), Flatten(), Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(flow, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_multi_output_targets_train_a_two_headed_module(tmp_path: Path) -> None:
    import torch
    from torch import nn

    from batchfit.models import Model

    frame = _table(tmp_path)
    flow = ImageDataGenerator(rescale=1 / 255).flow_from_dataframe(
        frame,
        str(tmp_path),
        y_col=["age", "size"],
        class_mode="multi_output",
        target_size=(4, 4),
        batch_size=12,
        shuffle=False,
    )
    x, (age, size) = next(iter(flow))
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), np.arange(12) * 10 / 255, rtol=1e-5)
    np.testing.assert_array_equal(age, frame["age"].to_numpy(np.float32))
    np.testing.assert_array_equal(size, frame["size"].to_numpy(np.float32))

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(48, 1), nn.Linear(48, 1)

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            flat = images.flatten(1)
            return self.a(flat), self.b(flat)

    model = Model(Heads())
    model.compile("adam", loss=["mse", "mae"])
    history = model.fit(flow, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "output_1_loss", "output_2_loss"}
    np.testing.assert_allclose(
        history.history["loss"][0],
        history.history["output_1_loss"][0] + history.history["output_2_loss"][0],
        rtol=1e-6,
    )
