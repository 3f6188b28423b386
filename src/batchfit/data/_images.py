"""Image folders as a source: a class per subfolder, decoded with Pillow in a thread pool.

Listing follows Keras' `flow_from_directory`: classes are the sorted
subfolder names (or `classes`), files are found recursively and kept by
extension, and `validation_split` takes the first fraction of each class's
sorted files as the validation subset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from batchfit.data._base import Batch
from batchfit.data._indexed import BatchTransform, IndexedSource, check_batch_size
from batchfit.data._threads import executor

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderSource", "ImageOptions", "image_options", "images"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")
_CLASS_MODES = ("categorical", "binary", "sparse", "input", None)
_COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}
Transform = BatchTransform


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


#: Pillow modes of greyscale images deeper than 8 bits (16-bit PNG and TIFF)
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _check_pixels(img: Any) -> None:
    """Refuse an image larger than Pillow's decompression-bomb limit before decoding it."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    width, height = img.size
    if limit is not None and width * height > limit:
        raise ValueError(
            f"{width} x {height} pixels is more than the {limit:,} allowed "
            "(PIL.Image.MAX_IMAGE_PIXELS): a decompression bomb?"
        )


def _scaled_grey(img: Any) -> Any:
    """A 16-bit greyscale image as a float image in [0, 255] (65535 / 257 = 255)."""
    from PIL import Image

    values = np.asarray(img, dtype=np.float32)
    if img.mode == "I" and values.size and values.max() > 65535:
        raise ValueError(f"32-bit greyscale values up to {int(values.max())}: expected 16-bit")
    return Image.fromarray(values / 257.0, mode="F")


def _grey_to(arr: np.ndarray, color_mode: str) -> np.ndarray:
    """Scaled greyscale values as the channels `color_mode` asks for."""
    if color_mode == "grayscale":
        return arr
    grey = arr[..., None]
    if color_mode == "rgba":
        return np.concatenate([grey, grey, grey, np.full_like(grey, 255.0)], axis=-1)
    return np.repeat(grey, 3, axis=-1)


class ImageOptions(TypedDict, total=False):
    """Keyword options of `images` and the image sources, declared once (defaults below).

    `flow_from_directory` and `flow_from_dataframe` take these too, with
    Keras' positional order, and pass them on with `image_options(locals())`.
    """

    target_size: tuple[int, int]
    color_mode: str
    classes: Sequence[str] | None
    class_mode: str | None
    batch_size: int
    shuffle: bool
    seed: int | None
    validation_split: float
    subset: str | None
    interpolation: str
    keep_aspect_ratio: bool
    on_bad_files: str
    follow_links: bool


IMAGE_DEFAULTS: ImageOptions = {
    "target_size": (256, 256),
    "color_mode": "rgb",
    "classes": None,
    "class_mode": "categorical",
    "batch_size": 32,
    "shuffle": True,
    "seed": None,
    "validation_split": 0.0,
    "subset": None,
    "interpolation": "nearest",
    "keep_aspect_ratio": False,
    "on_bad_files": "raise",
    "follow_links": False,
}


class ImageFolderSource(IndexedSource):
    """Batches `(images, labels)` from a class-per-subfolder tree (see `images`).

    An `IndexedSource` (NOTE [ Indexed sources ]) whose `load` decodes the
    batch's files in the shared thread pool, one batch ahead; `transform`
    (an `ImageDataGenerator`'s augmentation) gets channels-last float32.
    """

    #: per-image weights, yielded as a third batch element when set
    sample_weights: np.ndarray | None = None
    class_modes: tuple[str | None, ...] = _CLASS_MODES

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        transform: Transform | None = None,
        data_format: str = "channels_last",
        dtype: Any = "float32",
        **options: Unpack[ImageOptions],
    ) -> None:
        """See `images` for `options`; `transform`, `data_format` and `dtype` are a flow's."""
        unknown = sorted(set(options) - set(IMAGE_DEFAULTS))
        if unknown:
            raise TypeError(f"unexpected image option {unknown[0]!r}")
        settings: ImageOptions = {**IMAGE_DEFAULTS, **options}
        target_size, color_mode = settings["target_size"], settings["color_mode"]
        class_mode, batch_size = settings["class_mode"], settings["batch_size"]
        subset, validation_split = settings["subset"], settings["validation_split"]
        on_bad_files = settings["on_bad_files"]
        if class_mode not in self.class_modes:
            raise ValueError(f"class_mode must be one of {self.class_modes}, got {class_mode!r}")
        if color_mode not in _COLOR_MODES:
            raise ValueError(f"color_mode must be one of {tuple(_COLOR_MODES)}, got {color_mode!r}")
        if on_bad_files not in ("raise", "skip"):
            raise ValueError(f'on_bad_files must be "raise" or "skip", got {on_bad_files!r}')
        check_batch_size(batch_size)
        if len(target_size) != 2 or min(target_size) < 1:
            raise ValueError(f"target_size must be (height, width), got {target_size!r}")
        from PIL import Image

        self._resample = _pil_filter(Image, settings["interpolation"])
        self.directory = os.fspath(directory)
        self.class_names, paths, labels = self._list(
            settings["classes"], class_mode, settings["follow_links"]
        )
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
        super().__init__(
            len(paths),
            batch_size=batch_size,
            shuffle=settings["shuffle"],
            seed=settings["seed"],
            transform=transform,
        )
        self.filepaths = paths
        self.classes = np.asarray(labels, np.int64)
        self.target_size = (int(target_size[0]), int(target_size[1]))
        self.color_mode, self.class_mode = color_mode, class_mode
        self.keep_aspect_ratio = bool(settings["keep_aspect_ratio"])
        self.on_bad_files = on_bad_files
        self.data_format = data_format
        self.dtype = np.dtype(dtype)
        self.bad_files: list[str] = []

    def fingerprint(self) -> dict[str, Any]:
        """The image files and their labels (no file is read: the list can be long)."""
        import hashlib

        digest = hashlib.blake2b(digest_size=16)
        for path in self.filepaths:
            digest.update(os.fsencode(path) + b"\0")
        digest.update(np.ascontiguousarray(self.classes).tobytes())
        return {"kind": "image files", "count": len(self.filepaths), "hash": digest.hexdigest()}

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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def filenames(self) -> list[str]:
        return [os.path.relpath(p, self.directory) for p in self.filepaths]

    @property
    def labels(self) -> np.ndarray:
        return self.classes

    def _load(self, path: str) -> np.ndarray | None:
        from PIL import Image, UnidentifiedImageError

        mode, channels = _COLOR_MODES[self.color_mode]
        try:
            with Image.open(path) as img:
                _check_pixels(img)
                wide = img.mode in _WIDE_GREY
                # 16-bit greyscale would saturate at 255 through convert(): it is scaled
                # to the 8-bit range instead (65535 -> 255), kept as floats
                img = _scaled_grey(img) if wide else img.convert(mode)
                if self.keep_aspect_ratio:
                    img = _centre_crop(img, self.target_size)
                if img.size != (self.target_size[1], self.target_size[0]):
                    img = img.resize((self.target_size[1], self.target_size[0]), self._resample)
                arr = np.asarray(img, dtype=np.float32)
        except (
            OSError,
            UnidentifiedImageError,
            ValueError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,  # raised when warnings are errors
        ) as err:
            if self.on_bad_files == "skip":
                return None
            raise ValueError(
                f"cannot decode image file {path!r}: {err} (pass on_bad_files='skip' to skip it)"
            ) from err
        if wide:
            arr = _grey_to(arr, self.color_mode)
        return arr.reshape(self.target_size[0], self.target_size[1], channels)

    def start_load(self, rows: Any) -> Callable[[], Batch]:
        """Decode the files of `rows` in the shared pool; the function collects the batch."""
        pool = executor()
        pending = [pool.submit(self._load, self.filepaths[r]) for r in rows]
        return lambda: self._collect(rows, [f.result() for f in pending])

    def load(self, rows: Any) -> Batch:
        return self._collect(rows, [self._load(self.filepaths[r]) for r in rows])

    def _collect(self, rows: np.ndarray, decoded: list[Any]) -> Batch:
        """`(x, y[, w])` of the images decoded, x channels-last float32; bad files are noted."""
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
        if self.class_mode in (None, "input"):
            return (x,)  # "input" targets are the images after the transform (`finish`)
        y = self._targets(rows)
        return (x, y) if self.sample_weights is None else (x, y, self.sample_weights[rows])

    def finish(self, batch: Batch, rows: Any, epoch: int, index: int) -> Batch:
        x = batch[0].astype(self.dtype, copy=False)
        if self.data_format == "channels_first":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        if self.class_mode == "input":
            return (x, x.copy())
        return (x, *batch[1:])

    @property
    def bad_file_count(self) -> int:
        """Unreadable files skipped so far (with `on_bad_files="skip"`)."""
        return len(self.bad_files)

    def _on_shard(self) -> None:
        self.bad_files = []


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


def image_options(arguments: dict[str, Any]) -> dict[str, Any]:
    """The `ImageOptions` among `arguments` (e.g. a function's `locals()`)."""
    return {k: v for k, v in arguments.items() if k in IMAGE_DEFAULTS}


def images(directory: str | os.PathLike[str], **options: Unpack[ImageOptions]) -> ImageFolderSource:
    """Stream a class-per-subfolder image tree as `(images, labels)` batches, no augmentation.

    Images are float32 `(N, H, W, C)` with values 0..255, resized to
    `target_size`. Labels follow `class_mode` (Keras'): one-hot
    "categorical", 0/1 "binary", integer "sparse", the images for "input",
    or none (`(x,)` batches) for None. Files other than PNG/JPEG/BMP/PPM/TIFF
    are ignored; unreadable ones raise naming the file, or with
    `on_bad_files="skip"` are skipped and counted in `source.bad_files`.

    Args:
        directory: the root; each subfolder is a class.
        **options: `ImageOptions`: `target_size` ((256, 256)), `color_mode`
            ("rgb"), `classes`, `class_mode` ("categorical"), `batch_size` (32),
            `shuffle` (True), `seed`, `validation_split` and `subset`,
            `interpolation` ("nearest"), `keep_aspect_ratio`, `on_bad_files`
            ("raise"), `follow_links`.

    Example:
        >>> train = images("photos/", target_size=(224, 224), validation_split=0.2,
        ...                subset="training", seed=0)
        >>> model.fit(train, epochs=10)
    """
    unknown = sorted(set(options) - set(IMAGE_DEFAULTS))
    if unknown:  # the source takes a flow's `transform` too; images() does not
        raise TypeError(f"images() got an unexpected keyword argument {unknown[0]!r}")
    return ImageFolderSource(directory, **options)
