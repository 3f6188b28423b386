"""Finding files and opening them, compressed or not."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["compression_of", "expand_paths", "open_binary"]

_COMPRESSION = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}

PathsOrGlob = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def expand_paths(paths_or_glob: PathsOrGlob, kind: str) -> list[str]:
    """Sorted files named by a path, a glob, a directory, or a list of those.

    Raises:
        FileNotFoundError: a name matches no file, or nothing is left.
    """
    if isinstance(paths_or_glob, (str, os.PathLike)):
        names = [os.fspath(paths_or_glob)]
    else:
        names = [os.fspath(p) for p in paths_or_glob]
    if not names:
        raise FileNotFoundError(f"no {kind} files given: expected a path, a glob or a list")
    files: list[str] = []
    for name in names:
        if os.path.isdir(name):
            found = sorted(str(p) for p in Path(name).iterdir() if p.is_file())
        elif glob.has_magic(name):
            found = sorted(p for p in glob.glob(name, recursive=True) if os.path.isfile(p))
        elif os.path.isfile(name):
            found = [name]
        else:
            raise FileNotFoundError(f"{kind} file {name!r} does not exist")
        if not found:
            raise FileNotFoundError(f"{name!r} matches no {kind} files")
        files.extend(found)
    return files


def compression_of(path: str) -> str | None:
    """The codec implied by the file name (`.gz`, `.zst`, `.bz2`), or None."""
    return _COMPRESSION.get(Path(path).suffix.lower())


def open_binary(path: str) -> IO[bytes] | Any:
    """A readable binary stream, decompressed on the fly when the name says so."""
    codec = compression_of(path)
    if codec is None:
        return open(path, "rb")
    import pyarrow as pa

    return _Decompressing(pa.input_stream(path, compression=codec), path)


class _Decompressing:
    """A decompressing stream whose read errors name the file (a truncated .gz, say)."""

    def __init__(self, stream: Any, path: str) -> None:
        self._stream, self._path = stream, path

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._stream.read(size))
        except (OSError, EOFError) as e:
            raise ValueError(
                f"{self._path} is damaged: {e} (a truncated or corrupt compressed file)"
            ) from e

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> _Decompressing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
