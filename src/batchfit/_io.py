"""Writing files into run and backup folders: atomic, never through a planted symlink.

NOTE [ Safe writes ]
Every file batchfit writes into a folder that a run owns (backups, saved
models, the command's run directory) goes the same way: a fresh temporary
file made with `O_CREAT | O_EXCL` in the same folder (so nothing planted
there can be opened in its place), the bytes written and fsynced, then
renamed over the target, and the folder fsynced. `rename` replaces a
symlink rather than writing through it, and a target that already is a
symlink is refused outright. A failed write (a full disk, say) removes its
temporary file and raises an `OSError` naming the file; temporary files left
by a process killed mid-write are removed the next time the folder is used.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "remove_orphans", "refuse_symlink"]

_TMP_SUFFIX = ".tmp"


def refuse_symlink(path: Path) -> None:
    """Raise if `path` is a symlink: a write there could land anywhere."""
    if path.is_symlink():
        raise OSError(
            errno.ELOOP,
            f"refusing to write through a symlink ({path} -> {os.readlink(path)}); "
            "remove it or choose another folder",
        )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(path: str | os.PathLike[str], data: bytes, keep_previous: bool = False) -> None:
    """Write `data` to `path` atomically (see NOTE [ Safe writes ]).

    With `keep_previous`, the file it replaces is kept as `path + ".prev"`.

    Raises:
        OSError: the target is a symlink, or the write failed (named, with the cause).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    refuse_symlink(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP_SUFFIX, dir=target.parent)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep_previous and target.exists():
            previous = target.with_name(target.name + ".prev")
            refuse_symlink(previous)
            os.replace(target, previous)
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno != errno.ELOOP:
            raise OSError(e.errno, f"could not write {target}: {e.strerror or e}") from e
        raise


def remove_orphans(
    folder: str | os.PathLike[str], name: str, extra_patterns: tuple[str, ...] = ()
) -> list[Path]:
    """Remove temporary files of `name` that a killed writer left in `folder`; returns them.

    `extra_patterns` adds globs of other writers' temporary files, for a folder
    that only batchfit writes (a backup folder).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    candidates = [*folder.glob(f".{name}.*{_TMP_SUFFIX}")]
    for pattern in extra_patterns:
        candidates += folder.glob(pattern)
    for orphan in candidates:
        if orphan.is_file() or orphan.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                orphan.unlink()
                removed.append(orphan)
    return removed
