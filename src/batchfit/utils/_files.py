"""`get_file`, offline: a file already in Keras' cache, or an error saying where it goes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["get_file"]


def get_file(
    fname: str | None = None,
    origin: str | None = None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    force_download: bool = False,
    **kwargs: Any,
) -> str:
    """The path of `fname` in Keras' cache (`$KERAS_HOME/<cache_subdir>`, default `~/.keras`).

    batchfit downloads nothing: when the file is not there, the error names the
    path to put it at and the `origin` it comes from.
    """
    if fname is None:
        if origin is None:
            raise ValueError("get_file needs fname or origin")
        fname = origin.rstrip("/").split("/")[-1]
    home = (
        cache_dir or os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    )
    path = Path(home) / cache_subdir / fname
    if (untar or extract) and not path.exists():
        stem = Path(fname).name.split(".")[0]
        if (path.parent / stem).exists():  # already extracted, as Keras leaves it
            return str(path.parent / stem)
    if force_download or not path.exists():
        raise FileNotFoundError(
            f"get_file: batchfit does not download; put {fname} at {path}"
            + (f" (from {origin})" if origin else "")
        )
    return str(path)
