"""flow_from_directory / batchfit.data.images over a generated folder of PNG and JPEG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import batchfit.data as bfd
from batchfit.preprocessing.image import ImageDataGenerator


def _tree(root: Path, per_class: int = 5, corrupt: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cats", "dogs"]):
        folder = root / name
        (folder / "nested").mkdir(parents=True)
        for i in range(per_class):
            pixels = (rng.random((12 + i, 10, 3)) * 255).astype(np.uint8)
            pixels[..., 0] = 40 * c  # the class is visible in the red channel
            ext, target = (".png", folder) if i % 2 else (".jpg", folder / "nested")
            Image.fromarray(pixels).save(target / f"{name}_{i}{ext}")
        (folder / "notes.txt").write_text("not an image")
    if corrupt:
        (root / "dogs" / "broken.png").write_bytes(b"\x89PNG this is not really a png")
    return root


def test_corrupt_file_raises_naming_it(tmp_path: Path) -> None:
    source = bfd.images(_tree(tmp_path), target_size=(8, 8), batch_size=4, shuffle=False)
    with pytest.raises(ValueError, match=r"broken\.png"):
        list(source)


def test_skip_counts_bad_files_and_reads_the_rest(tmp_path: Path) -> None:
    source = bfd.images(
        _tree(tmp_path), target_size=(8, 8), batch_size=4, on_bad_files="skip", seed=0
    )
    batches = list(source)
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (10, 8, 8, 3) and x.dtype == np.float32 and y.shape == (10, 2)
    assert source.bad_file_count == 1 and source.bad_files[0].endswith("broken.png")
    assert source.class_indices == {"cats": 0, "dogs": 1} and source.samples == 11
    np.testing.assert_array_equal(y.argmax(1), (x[..., 0].mean(axis=(1, 2)) > 20).astype(int))


def test_class_modes_subsets_and_grayscale(tmp_path: Path) -> None:
    root = _tree(tmp_path, corrupt=False)
    sparse = next(iter(bfd.images(root, target_size=(6, 6), class_mode="sparse", shuffle=False)))
    assert sparse[1].tolist() == [0.0] * 5 + [1.0] * 5
    assert len(next(iter(bfd.images(root, target_size=(6, 6), class_mode=None)))) == 1
    gray = next(iter(bfd.images(root, target_size=(6, 6), color_mode="grayscale")))[0]
    assert gray.shape[1:] == (6, 6, 1)
    val = bfd.images(root, target_size=(6, 6), validation_split=0.4, subset="validation")
    train = bfd.images(root, target_size=(6, 6), validation_split=0.4, subset="training")
    assert (val.samples, train.samples) == (4, 6)
    assert not set(val.filepaths) & set(train.filepaths)


def test_flow_from_directory_augments_and_resumes(tmp_path: Path) -> None:
    root = _tree(tmp_path, corrupt=False)
    gen = ImageDataGenerator(
        featurewise_center=True, rotation_range=30, horizontal_flip=True, validation_split=0.2
    )
    gen.fit(bfd.images(root, target_size=(8, 8), class_mode=None, batch_size=3))
    flow = gen.flow_from_directory(
        root, target_size=(8, 8), batch_size=3, seed=4, subset="training"
    )
    reference = list(flow)
    assert sum(len(b[0]) for b in reference) == 8
    assert abs(float(np.concatenate([b[0] for b in reference]).mean())) < 40
    it = iter(flow)
    next(it)
    state = flow.state_dict()
    rebuilt = gen.flow_from_directory(
        root, target_size=(8, 8), batch_size=3, seed=0, subset="training"
    )
    rebuilt.load_state_dict(state)
    for a, b in zip(list(rebuilt), reference[1:], strict=True):
        np.testing.assert_array_equal(a[0], b[0])


def test_empty_and_flat_directories_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no class subfolders"):
        bfd.images(tmp_path)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "loose.png")
    with pytest.raises(ValueError, match="1 images lie directly"):
        bfd.images(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="found no image files"):
        bfd.images(tmp_path)
    with pytest.raises(FileNotFoundError):
        bfd.images(tmp_path / "missing")


def test_directory_iterator_has_keras_surface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keras' DirectoryIterator: the "Found" line, `it[i]`, `next()`, `samples`, `filenames`."""
    root = _tree(tmp_path / "tree", corrupt=False)
    it = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        str(root), target_size=(8, 8), batch_size=4, shuffle=False, class_mode="sparse"
    )
    files = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".png", ".jpg")
    )
    assert capsys.readouterr().out == f"Found {len(files)} images belonging to 2 classes.\n"
    assert it.samples == len(files) and sorted(it.filenames) == files
    assert len(it) == -(-len(files) // 4)
    first = it[0]
    np.testing.assert_array_equal(it[-1][1], it.classes[(len(it) - 1) * 4 :])
    seen = [it.next() for _ in range(len(it) + 1)]  # runs on into the next epoch, as Keras
    np.testing.assert_array_equal(seen[0][0], first[0])
    np.testing.assert_array_equal(seen[-1][0], first[0])
