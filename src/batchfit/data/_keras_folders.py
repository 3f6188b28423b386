"""Keras' `image_dataset_from_directory` and `text_dataset_from_directory` as batch sources.

NOTE [ Keras' folder datasets ]
The listing and the split are Keras' (`keras/src/utils/dataset_utils.py`), so
the same folder and seed give the same files in the same subsets:
- classes are the sorted subfolder names (or `class_names`, in its order);
  each class folder is walked with its directories in sorted order and each
  directory's files sorted, keeping the allowed extensions;
- with `shuffle` and a `seed`, the file paths and the labels are each shuffled
  by `np.random.RandomState(seed)` (without a seed Keras draws one; here the
  listing stays sorted, so that torchrun ranks, whose draws may differ, index
  the same list; each epoch's permutation shuffles either way);
- `validation_split` keeps `int(split * n)` files for validation: the last
  ones of that shuffled list; training takes the rest.
Each epoch then visits the (training) files in `epoch_permutation(n, seed,
epoch)` when shuffling, where Keras mixes them in a `tf.data` buffer of 8
batches: the same files, in another order. Images are decoded by Pillow in
the shared thread pool and resized as `tf.image.resize` does by default
(bilinear with half-pixel centres and no antialiasing; "nearest" likewise);
other interpolations use Pillow's filters. Values are float32 in 0..255.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from batchfit.data._base import Batch, check_batch_size, draw_seed
from batchfit.data._dataset_ops import DatasetOps
from batchfit.data._indexed import IndexedSource
from batchfit.data._threads import executor

__all__ = [
    "FolderDatasetSource",
    "IMAGE_FORMATS",
    "image_dataset_from_directory",
    "index_directory",
    "resize_bilinear",
    "text_dataset_from_directory",
]

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_CHANNELS = {"rgb": ("RGB", 3), "rgba": ("RGBA", 4), "grayscale": ("L", 1)}
_PIL_FILTERS = {"bicubic": "BICUBIC", "area": "BOX", "lanczos3": "LANCZOS", "lanczos5": "LANCZOS"}


def _walk_sorted(root: str, follow_links: bool, formats: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for dirpath, _, files in sorted(os.walk(root, followlinks=follow_links), key=lambda w: w[0]):
        found.extend(os.path.join(dirpath, f) for f in sorted(files) if f.lower().endswith(formats))
    return found


def index_directory(
    directory: str,
    labels: Any,
    formats: tuple[str, ...],
    class_names: Sequence[str] | None,
    shuffle: bool,
    seed: int,
    follow_links: bool,
    verbose: bool = True,
) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """File paths, their labels and the class names, in Keras' order (NOTE above)."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"directory {directory!r} does not exist")
    if labels == "inferred":
        subdirs = sorted(
            d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))
        )
        if class_names is not None:
            missing = sorted(set(class_names) - set(subdirs))
            if missing:
                raise ValueError(
                    f"class_names {missing} have no subfolder in {directory!r}; "
                    f"its subfolders are {subdirs}"
                )
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError('class_names can only be given with labels="inferred"')
        subdirs = [""]
    paths: list[str] = []
    found_labels: list[int] = []
    for index, name in enumerate(subdirs):
        files = _walk_sorted(os.path.join(directory, name), follow_links, formats)
        paths.extend(files)
        found_labels.extend([index] * len(files))
    if labels == "inferred":
        label_array: np.ndarray | None = np.asarray(found_labels, np.int32)
        names: list[str] | None = list(subdirs)
    elif labels is None:
        label_array, names = None, None
    else:
        if len(labels) != len(paths):
            raise ValueError(
                f"labels has {len(labels)} entries but {len(paths)} files were found "
                f"in {directory!r}; give one label per file (in sorted file order)"
            )
        label_array = np.asarray(labels)
        names = [str(label) for label in sorted(set(labels))]
    if verbose and labels is None:
        print(f"Found {len(paths)} files.")
    elif verbose:
        print(f"Found {len(paths)} files belonging to {len(names or [])} classes.")
    if shuffle:
        np.random.RandomState(seed).shuffle(paths)
        if label_array is not None:
            np.random.RandomState(seed).shuffle(label_array)
    return paths, label_array, names


def _split(
    paths: list[str], labels: Any, split: float | None, subset: str
) -> tuple[list[str], Any]:
    """Keras' split: the last `int(split * n)` files are validation."""
    if not split:
        return paths, labels
    num_val = int(split * len(paths))
    if subset == "training":
        print(f"Using {len(paths) - num_val} files for training.")
        cut = slice(0, len(paths) - num_val)
    else:
        print(f"Using {num_val} files for validation.")
        cut = slice(len(paths) - num_val, len(paths))
    return paths[cut], None if labels is None else labels[cut]


def _check_split(split: float | None, subset: str | None, shuffle: bool, seed: int | None) -> None:
    if split and not 0 < split < 1:
        raise ValueError(f"validation_split must be between 0 and 1, got {split}")
    if bool(split) != bool(subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'subset must be "training", "validation" or "both", got {subset!r}')
    if split and shuffle and seed is None:
        raise ValueError(
            "validation_split with shuffling needs a seed, so that the training and "
            "validation subsets do not overlap"
        )


def _axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows below/above each output row and the weight of the one above (half-pixel)."""
    where = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    below = np.floor(where)
    frac = (where - below).astype(np.float32)
    low = np.clip(below, 0, in_size - 1).astype(np.int64)
    high = np.clip(below + 1, 0, in_size - 1).astype(np.int64)
    return low, high, frac


def resize_bilinear(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(H, W, C)` float32 resized as `tf.image.resize(..., "bilinear")` (no antialiasing)."""
    (ylo, yhi, fy), (xlo, xhi, fx) = _axis(img.shape[0], size[0]), _axis(img.shape[1], size[1])
    fy, fx = fy[:, None, None], fx[None, :, None]
    rows = img[ylo] * (1 - fy) + img[yhi] * fy
    return rows[:, xlo] * (1 - fx) + rows[:, xhi] * fx


def _resize_nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    ys = np.minimum(np.floor((np.arange(size[0]) + 0.5) * img.shape[0] / size[0]), img.shape[0] - 1)
    xs = np.minimum(np.floor((np.arange(size[1]) + 0.5) * img.shape[1] / size[1]), img.shape[1] - 1)
    return img[ys.astype(np.int64)][:, xs.astype(np.int64)]


def _crop_box(height: int, width: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The centred box with the target's aspect ratio (Keras' `smart_resize`): top, left, h, w."""
    crop_h = max(min(height, int(width * size[0] / size[1])), 1)
    crop_w = max(min(width, int(height * size[1] / size[0])), 1)
    return int((height - crop_h) / 2), int((width - crop_w) / 2), crop_h, crop_w


class FolderDatasetSource(DatasetOps, IndexedSource):
    """Files and their labels as batches `(x, labels)`; `read(path)` gives one file's x."""

    def __init__(
        self,
        paths: list[str],
        labels: np.ndarray | None,
        *,
        class_names: list[str] | None,
        label_mode: str | None,
        batch_size: int | None,
        shuffle: bool,
        seed: int,
        read: Callable[[str], Any],
        stack: Callable[[list[Any]], Any],
    ) -> None:
        self.unbatched = batch_size is None
        super().__init__(
            len(paths),
            batch_size=1 if batch_size is None else check_batch_size(batch_size),
            shuffle=shuffle,
            seed=seed,
        )
        self.file_paths = paths
        self.labels = labels
        self.class_names = class_names
        self.label_mode = label_mode
        self._read, self._stack = read, stack

    def _targets(self, rows: Any) -> np.ndarray:
        assert self.labels is not None
        labels = self.labels[rows]
        if self.label_mode == "binary":
            return labels.astype(np.float32).reshape(-1, 1)
        if self.label_mode == "categorical":
            return np.eye(len(self.class_names or ()), dtype=np.float32)[labels]
        return labels.astype(np.int32)

    def _collect(self, rows: Any, items: list[Any]) -> Batch:
        x = self._stack(items)
        if self.label_mode is None or self.labels is None:
            return (x,)
        return (x, self._targets(rows))

    def start_load(self, rows: Any) -> Callable[[], Batch]:
        """Read the files of `rows` in the shared pool; the function collects the batch."""
        pending = [executor().submit(self._read, self.file_paths[r]) for r in rows]
        return lambda: self._collect(rows, [f.result() for f in pending])

    def load(self, rows: Any) -> Batch:
        return self._collect(rows, [self._read(self.file_paths[r]) for r in rows])

    def finish(self, batch: Batch, rows: Any, epoch: int, index: int) -> Batch:
        if self.unbatched:
            return tuple(part[0] for part in batch)
        return batch

    def fingerprint(self) -> dict[str, Any]:
        """The files and their labels (no file is read: the list can be long)."""
        digest = hashlib.blake2b(digest_size=16)
        for path in self.file_paths:
            digest.update(os.fsencode(path) + b"\0")
        if self.labels is not None:
            digest.update(np.ascontiguousarray(self.labels).tobytes())
        return {"kind": "files", "count": len(self.file_paths), "hash": digest.hexdigest()}


def _from_directory(
    directory: Any,
    *,
    labels: Any,
    label_mode: str | None,
    class_names: Sequence[str] | None,
    formats: tuple[str, ...],
    batch_size: int | None,
    shuffle: bool,
    seed: int | None,
    validation_split: float | None,
    subset: str | None,
    follow_links: bool,
    read: Callable[[str], Any],
    stack: Callable[[list[Any]], Any],
    what: str,
    verbose: bool,
) -> Any:
    directory = os.fspath(directory)
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple)):
        raise ValueError(
            'labels must be "inferred", None, or a list/tuple of integer labels, one per file '
            f"in sorted order; got {labels!r}"
        )
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(
            f'label_mode must be "int", "categorical", "binary" or None, got {label_mode!r}'
        )
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if batch_size is not None:
        check_batch_size(batch_size)
    _check_split(validation_split, subset, shuffle, seed)
    # Without a seed the listing stays sorted (each epoch's permutation still shuffles):
    # a drawn seed could differ between torchrun ranks, whose shards index one listing.
    listing_shuffle = shuffle and seed is not None
    seed = int(draw_seed() % 10**6 if seed is None else seed)
    paths, label_array, names = index_directory(
        directory, labels, formats, class_names, listing_shuffle, seed, follow_links, verbose
    )
    if label_mode == "binary" and len(names or ()) != 2:
        raise ValueError(f'label_mode="binary" needs exactly 2 classes, found {names}')

    def make(subset_name: str | None, shuffle_epochs: bool) -> FolderDatasetSource:
        part_paths, part_labels = (
            _split(paths, label_array, validation_split, subset_name)
            if subset_name
            else (paths, label_array)
        )
        if not part_paths:
            where = f" for subset {subset_name!r}" if subset_name else ""
            raise ValueError(
                f"found no {what} files ({', '.join(formats)}) in {directory!r}{where}"
            )
        return FolderDatasetSource(
            part_paths,
            part_labels,
            class_names=names,
            label_mode=label_mode,
            batch_size=batch_size,
            shuffle=shuffle_epochs,
            seed=seed,
            read=read,
            stack=stack,
        )

    if subset == "both":
        return [make("training", shuffle), make("validation", False)]
    return make(subset, shuffle)


def _image_reader(
    size: tuple[int, int], color_mode: str, interpolation: str, crop: bool, data_format: str
) -> Callable[[str], np.ndarray]:
    from PIL import Image

    from batchfit.data._images import _check_pixels

    mode, channels = _CHANNELS[color_mode]

    def read(path: str) -> np.ndarray:
        try:
            with Image.open(path) as img:
                _check_pixels(img)
                img = img.convert(mode)
                if crop:
                    top, left, h, w = _crop_box(img.height, img.width, size)
                    img = img.crop((left, top, left + w, top + h))
                if interpolation in _PIL_FILTERS:
                    pil = getattr(Image.Resampling, _PIL_FILTERS[interpolation])
                    img = img.resize((size[1], size[0]), pil)
                arr = np.asarray(img, dtype=np.float32).reshape(img.height, img.width, channels)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise ValueError(f"cannot decode image file {path!r}: {err}") from err
        if arr.shape[:2] != size:
            resize = _resize_nearest if interpolation == "nearest" else resize_bilinear
            arr = resize(arr, size)
        return arr.transpose(2, 0, 1) if data_format == "channels_first" else arr

    return read


def image_dataset_from_directory(
    directory: str | os.PathLike[str],
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int | None = 32,
    image_size: int | tuple[int, int] = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    data_format: str | None = None,
    verbose: bool = True,
) -> Any:
    """Images in a class-per-subfolder tree as a streamed batch source (Keras' function).

    Same files, labels, class order and split as Keras for the same seed
    (NOTE [ Keras' folder datasets ]). Batches are `(images, labels)`: float32
    `(N, H, W, C)` in 0..255 and labels by `label_mode` ("int": int32,
    "categorical": one-hot float32, "binary": float32 `(N, 1)`, None: images only).

    Args:
        directory: the root; with `labels="inferred"` each subfolder is a class.
        labels: "inferred", None, or one integer label per file in sorted order.
        label_mode: "int", "categorical", "binary" or None.
        class_names: the subfolders to use, in this order.
        color_mode: "rgb", "rgba" or "grayscale".
        batch_size: images per batch; None yields single images.
        image_size: (height, width) (or one int) to resize to.
        shuffle: shuffle the file list (Keras' way) and each epoch's order.
        seed: the shuffle's seed; required with `validation_split` and `shuffle`.
        validation_split: fraction kept for validation.
        subset: "training", "validation" or "both" (a list of the two sources).
        interpolation: "bilinear" (as tf), "nearest" (as tf), "bicubic", "area",
            "lanczos3", "lanczos5" (Pillow's filters).
        follow_links: follow symbolic links to subfolders.
        crop_to_aspect_ratio: crop the centre to the target's aspect ratio first.
        pad_to_aspect_ratio: not supported here (raises).
        data_format: "channels_last" (default) or "channels_first".
        verbose: print the number of files found, as Keras does.

    Returns:
        A `FolderDatasetSource` with `class_names` and `file_paths`, or two for "both".

    Example:
        >>> train, val = image_dataset_from_directory("photos", validation_split=0.2,
        ...     subset="both", seed=1337, image_size=(180, 180), batch_size=128)
        >>> model.fit(train, validation_data=val, epochs=25)
    """
    if color_mode not in _CHANNELS:
        raise ValueError(f'color_mode must be "rgb", "rgba" or "grayscale", got {color_mode!r}')
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ValueError(f"image_size must be (height, width), got {image_size!r}")
    size = (int(image_size[0]), int(image_size[1]))
    interpolation = interpolation.lower()
    if interpolation not in ("bilinear", "nearest", *_PIL_FILTERS):
        raise ValueError(
            "interpolation must be one of bilinear, nearest, bicubic, area, lanczos3, "
            f"lanczos5, got {interpolation!r}"
        )
    if pad_to_aspect_ratio:
        raise NotImplementedError("pad_to_aspect_ratio=True is not supported by batchfit yet")
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format must be channels_last or channels_first, got {data_format!r}"
        )
    read = _image_reader(size, color_mode, interpolation, crop_to_aspect_ratio, data_format)
    channels = _CHANNELS[color_mode][1]
    empty = (0, *size, channels) if data_format == "channels_last" else (0, channels, *size)

    def stack(items: list[np.ndarray]) -> np.ndarray:
        return np.stack(items) if items else np.zeros(empty, np.float32)

    return _from_directory(
        directory,
        labels=labels,
        label_mode=label_mode,
        class_names=class_names,
        formats=IMAGE_FORMATS,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        validation_split=validation_split,
        subset=subset,
        follow_links=follow_links,
        read=read,
        stack=stack,
        what="image",
        verbose=verbose,
    )


def text_dataset_from_directory(
    directory: str | os.PathLike[str],
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    batch_size: int | None = 32,
    max_length: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
    verbose: bool = True,
) -> Any:
    """`.txt` files in a class-per-subfolder tree as a streamed batch source (Keras' function).

    Listing, labels and split as `image_dataset_from_directory` (NOTE [ Keras'
    folder datasets ]). `x` is a NumPy object array of `str` (Keras yields
    `tf.string`, i.e. bytes); `max_length` keeps the first `max_length` bytes
    of each file, as Keras does.

    Args:
        directory: the root; with `labels="inferred"` each subfolder is a class.
        labels, label_mode, class_names, batch_size, shuffle, seed,
        validation_split, subset, follow_links: as `image_dataset_from_directory`.
        max_length: bytes kept from each file (None: all).
        verbose: print the number of files found, as Keras does.

    Returns:
        A `FolderDatasetSource` with `class_names` and `file_paths`, or two for "both".

    Example:
        >>> train = text_dataset_from_directory("aclImdb/train", batch_size=32)
        >>> for texts, labels in train.take(1): print(texts[0][:50], labels[0])
    """

    def read(path: str) -> str:
        with open(path, "rb") as handle:
            data = handle.read() if max_length is None else handle.read(int(max_length))
        return data.decode("utf-8", errors="replace")

    def stack(items: list[str]) -> np.ndarray:
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out

    return _from_directory(
        directory,
        labels=labels,
        label_mode=label_mode,
        class_names=class_names,
        formats=(".txt",),
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        validation_split=validation_split,
        subset=subset,
        follow_links=follow_links,
        read=read,
        stack=stack,
        what="text",
        verbose=verbose,
    )
