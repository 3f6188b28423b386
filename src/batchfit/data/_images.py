"""Image folders as a source: a class per subfolder, decoded with Pillow in a thread pool.

Listing follows Keras' `flow_from_directory`: classes are the sorted
subfolder names (or `classes`), files are found recursively and kept by
extension, and `validation_split` takes the first fraction of each class's
sorted files as the validation subset.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from batchfit.data._arrays import epoch_permutation
from batchfit.data._base import Batch, Source, draw_seed

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderSource", "images"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")
_CLASS_MODES = ("categorical", "binary", "sparse", "input", None)
_COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}
Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _list_files(
    directory: str, classes: Sequence[str] | None, follow_links: bool
) -> tuple[list[str], list[str], list[int]]:
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"image directory {directory!r} does not exist")
    if classes is None:
        classes = sorted(
            d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))
        )
    if not classes:
        loose = [f for f in os.listdir(directory) if f.lower().endswith(IMAGE_EXTENSIONS)]
        hint = (
            f" ({len(loose)} images lie directly in it: put them in a subfolder per class)"
            if loose
            else ""
        )
        raise ValueError(f"{directory!r} has no class subfolders{hint}")
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        root = os.path.join(directory, name)
        if not os.path.isdir(root):
            raise ValueError(f"class {name!r} has no subfolder in {directory!r}")
        found: list[str] = []
        for dirpath, _, files in sorted(os.walk(root, followlinks=follow_links)):
            found.extend(
                os.path.join(dirpath, f)
                for f in sorted(files)
                if f.lower().endswith(IMAGE_EXTENSIONS)
            )
        paths.extend(found)
        labels.extend([index] * len(found))
    return list(classes), paths, labels


class ImageFolderSource(Source):
    """Batches `(images, labels)` from a class-per-subfolder tree (see `images`)."""

    #: per-image weights, yielded as a third batch element when set
    sample_weights: np.ndarray | None = None
    class_modes: tuple[str | None, ...] = _CLASS_MODES

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        target_size: tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        classes: Sequence[str] | None = None,
        class_mode: str | None = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        follow_links: bool = False,
        validation_split: float = 0.0,
        subset: str | None = None,
        interpolation: str = "nearest",
        keep_aspect_ratio: bool = False,
        on_bad_files: str = "raise",
        transform: Transform | None = None,
        data_format: str = "channels_last",
        dtype: Any = "float32",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        if class_mode not in self.class_modes:
            raise ValueError(f"class_mode must be one of {self.class_modes}, got {class_mode!r}")
        if color_mode not in _COLOR_MODES:
            raise ValueError(f"color_mode must be one of {tuple(_COLOR_MODES)}, got {color_mode!r}")
        if on_bad_files not in ("raise", "skip"):
            raise ValueError(f'on_bad_files must be "raise" or "skip", got {on_bad_files!r}')
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if len(target_size) != 2 or min(target_size) < 1:
            raise ValueError(f"target_size must be (height, width), got {target_size!r}")
        from PIL import Image

        self._resample = _pil_filter(Image, interpolation)
        self.directory = os.fspath(directory)
        self.class_names, paths, labels = self._list(classes, class_mode, follow_links)
        self.class_indices = {name: i for i, name in enumerate(self.class_names)}
        if class_mode == "binary" and len(self.class_names) != 2:
            raise ValueError(
                f'class_mode="binary" needs 2 classes, found {len(self.class_names)}: '
                f"{self.class_names}"
            )
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f'subset must be "training" or "validation", got {subset!r}')
            if not 0 < validation_split < 1:
                raise ValueError("subset needs validation_split in (0, 1)")
            keep = self._subset_rows(labels, validation_split, subset)
            paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
            self._keep_rows(keep)
        if not paths:
            raise ValueError(
                f"found no image files ({', '.join(IMAGE_EXTENSIONS)}) in "
                f"{self._where()}" + (f" for subset {subset!r}" if subset else "")
            )
        self.filepaths = paths
        self.classes = np.asarray(labels, np.int64)
        self.target_size = (int(target_size[0]), int(target_size[1]))
        self.color_mode, self.class_mode = color_mode, class_mode
        self.batch_size = int(batch_size)
        self._rows_per_batch = int(batch_size)  # typed int, unlike the base attribute
        self.shuffle = bool(shuffle)
        self.seed = int(draw_seed() if seed is None else seed)
        self.keep_aspect_ratio = bool(keep_aspect_ratio)
        self.on_bad_files = on_bad_files
        self.transform = transform
        self.data_format = data_format
        self.dtype = np.dtype(dtype)
        self.bad_files: list[str] = []
        self.rank, self.world_size = int(rank), int(world_size)

    def _list(
        self, classes: Sequence[str] | None, class_mode: str | None, follow_links: bool
    ) -> tuple[list[str], list[str], list[int]]:
        """Class names, image paths and each path's class index."""
        del class_mode
        return _list_files(self.directory, classes, follow_links)

    def _subset_rows(self, labels: list[int], split: float, subset: str) -> list[int]:
        """Rows of `subset`: the first `split` of each class's sorted files is validation."""
        return _split(labels, split, subset)

    def _keep_rows(self, keep: list[int]) -> None:
        """Called with the rows `subset` keeps, for per-row data of subclasses."""
        del keep

    def _where(self) -> str:
        return f"the class subfolders of {self.directory!r}"

    def _targets(self, rows: np.ndarray) -> np.ndarray:
        """The labels of `rows` in the form `class_mode` asks for."""
        labels = self.classes[rows]
        if self.class_mode == "categorical":
            y = np.zeros((len(rows), self.num_classes), self.dtype)
            y[np.arange(len(rows)), labels] = 1
            return y
        return labels.astype(self.dtype)

    # Keras' DirectoryIterator attributes.
    @property
    def samples(self) -> int:
        return len(self.filepaths)

    n = samples

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def filenames(self) -> list[str]:
        return [os.path.relpath(p, self.directory) for p in self.filepaths]

    @property
    def labels(self) -> np.ndarray:
        return self.classes

    def _order(self, epoch: int) -> np.ndarray:
        order = (
            epoch_permutation(self.samples, self.seed, epoch)
            if self.shuffle
            else np.arange(self.samples)
        )
        return order[self.rank :: self.world_size]

    def _num_batches(self) -> int:
        rows = len(range(self.rank, self.samples, self.world_size))
        return -(-rows // self._rows_per_batch)

    def __len__(self) -> int:
        return self._num_batches()

    def _load(self, path: str) -> np.ndarray | None:
        from PIL import Image, UnidentifiedImageError

        mode, channels = _COLOR_MODES[self.color_mode]
        try:
            with Image.open(path) as img:
                img = img.convert(mode)
                if self.keep_aspect_ratio:
                    img = _centre_crop(img, self.target_size)
                if img.size != (self.target_size[1], self.target_size[0]):
                    img = img.resize((self.target_size[1], self.target_size[0]), self._resample)
                arr = np.asarray(img, dtype=np.float32)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            if self.on_bad_files == "skip":
                return None
            raise ValueError(
                f"cannot decode image file {path!r}: {err} (pass on_bad_files='skip' to skip it)"
            ) from err
        return arr.reshape(self.target_size[0], self.target_size[1], channels)

    def _submit(self, order: np.ndarray, index: int) -> list[Future[np.ndarray | None]]:
        from batchfit.transforms._affine import _executor, num_threads

        pool = _executor(num_threads())
        rows = order[index * self._rows_per_batch : (index + 1) * self._rows_per_batch]
        return [pool.submit(self._load, self.filepaths[r]) for r in rows]

    def _assemble(self, order: np.ndarray, epoch: int, index: int, decoded: list[Any]) -> Batch:
        rows = order[index * self._rows_per_batch : (index + 1) * self._rows_per_batch]
        keep = [i for i, img in enumerate(decoded) if img is not None]
        for i, img in enumerate(decoded):
            if img is None and self.filepaths[rows[i]] not in self.bad_files:
                self.bad_files.append(self.filepaths[rows[i]])
        rows = rows[keep]
        h, w = self.target_size
        channels = _COLOR_MODES[self.color_mode][1]
        x = (
            np.stack([decoded[i] for i in keep])
            if keep
            else np.zeros((0, h, w, channels), np.float32)
        )
        if self.transform is not None and len(x):
            key = (
                (self.seed, epoch, index)
                if self.world_size == 1
                else (self.seed, epoch, index, self.rank)
            )
            x = self.transform(x, np.random.default_rng(key))
        x = x.astype(self.dtype, copy=False)
        if self.data_format == "channels_first":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        if self.class_mode is None:
            return (x,)
        y = x.copy() if self.class_mode == "input" else self._targets(rows)
        if self.sample_weights is not None:
            return (x, y, self.sample_weights[rows])
        return (x, y)

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        order = self._order(epoch)
        count = self._num_batches()
        # Decode one batch ahead: Pillow releases the GIL while the step runs.
        pending = self._submit(order, skip_batches) if skip_batches < count else None
        for index in range(skip_batches, count):
            assert pending is not None  # submitted for every index < count
            decoded = [f.result() for f in pending]
            pending = self._submit(order, index + 1) if index + 1 < count else None
            yield self._assemble(order, epoch, index, decoded)

    @property
    def bad_file_count(self) -> int:
        """Unreadable files skipped so far (with `on_bad_files="skip"`)."""
        return len(self.bad_files)

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state.get("seed", self.seed))

    def shard(self, rank: int, world_size: int) -> ImageFolderSource:
        """Every `world_size`-th image of each epoch's order, from `rank` on (no re-listing)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        clone = copy.copy(self)
        Source.__init__(clone)
        clone.rank, clone.world_size = int(rank), int(world_size)
        clone.bad_files = []
        return clone


def _split(labels: list[int], split: float, subset: str) -> list[int]:
    kept: list[int] = []
    for label in sorted(set(labels)):
        own = [i for i, lab in enumerate(labels) if lab == label]
        cut = int(split * len(own))
        kept.extend(own[:cut] if subset == "validation" else own[cut:])
    return kept


def _pil_filter(image_module: Any, name: str) -> Any:
    filters = {
        "nearest": image_module.Resampling.NEAREST,
        "bilinear": image_module.Resampling.BILINEAR,
        "bicubic": image_module.Resampling.BICUBIC,
        "lanczos": image_module.Resampling.LANCZOS,
        "box": image_module.Resampling.BOX,
        "hamming": image_module.Resampling.HAMMING,
    }
    if name not in filters:
        raise ValueError(f"interpolation must be one of {tuple(filters)}, got {name!r}")
    return filters[name]


def _centre_crop(img: Any, target_size: tuple[int, int]) -> Any:
    width, height = img.size
    want = target_size[1] / target_size[0]
    crop_w, crop_h = min(width, round(height * want)), min(height, round(width / want))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return img.crop((left, top, left + crop_w, top + crop_h))


def images(
    directory: str | os.PathLike[str],
    *,
    target_size: tuple[int, int] = (256, 256),
    color_mode: str = "rgb",
    classes: Sequence[str] | None = None,
    class_mode: str | None = "categorical",
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float = 0.0,
    subset: str | None = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
    on_bad_files: str = "raise",
    follow_links: bool = False,
) -> ImageFolderSource:
    """Stream a class-per-subfolder image tree as `(images, labels)` batches, no augmentation.

    Images are float32 `(N, H, W, C)` with values 0..255, resized to
    `target_size`. Labels follow `class_mode` (Keras'): one-hot
    "categorical", 0/1 "binary", integer "sparse", the images for "input",
    or none (`(x,)` batches) for None. Files other than PNG/JPEG/BMP/PPM/TIFF
    are ignored; unreadable ones raise naming the file, or with
    `on_bad_files="skip"` are skipped and counted in `source.bad_files`.

    Example:
        >>> train = images("photos/", target_size=(224, 224), validation_split=0.2,
        ...                subset="training", seed=0)
        >>> model.fit(train, epochs=10)
    """
    return ImageFolderSource(
        directory,
        target_size=target_size,
        color_mode=color_mode,
        classes=classes,
        class_mode=class_mode,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        validation_split=validation_split,
        subset=subset,
        interpolation=interpolation,
        keep_aspect_ratio=keep_aspect_ratio,
        on_bad_files=on_bad_files,
        follow_links=follow_links,
    )
