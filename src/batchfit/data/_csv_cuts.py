"""Where a CSV file may be cut: past its header, and between records.

A line break ends a record only outside quotes (RFC 4180: `"` quotes a field,
`""` is a quote inside it), so a text column may hold line breaks. These
helpers find such boundaries in bytes (a file's memory map or a block of a
compressed stream) with memchr and numpy, never a Python loop per byte.
"""

from __future__ import annotations

import csv as _csv
import io
import mmap
import os
from typing import Any

import numpy as np

from batchfit.data._files import compression_of, open_binary

__all__ = [
    "NEWLINE",
    "OPEN_BYTES",
    "QUOTE",
    "count_byte",
    "cut_file",
    "last_boundary",
    "read_header",
    "unclosed_quote",
]

OPEN_BYTES = 256 << 20  # a record still in quotes after this many bytes has an unclosed quote
QUOTE, NEWLINE = ord('"'), ord("\n")
_Buffer = bytes | mmap.mmap


def count_byte(buf: _Buffer, byte: int, start: int, stop: int) -> int:
    """How many times `byte` occurs in `buf[start:stop]`, without copying the bytes."""
    total, window = 0, 1 << 20
    for at in range(start, stop, window):
        n = min(window, stop - at)
        total += int(np.count_nonzero(np.frombuffer(buf, np.uint8, n, at) == byte))
    return total


def _even_newlines(buf: _Buffer, start: int, stop: int, odd: int) -> tuple[np.ndarray, int]:
    """Offsets of the line breaks outside quotes in `buf[start:stop]`, and the quote
    parity at `stop`; `odd` is the parity at `start`."""
    window = np.frombuffer(buf, np.uint8, stop - start, start)
    parity = np.cumsum(window == QUOTE, dtype=np.uint8)  # wraps at 256: parity survives
    parity += odd
    parity &= 1
    found = np.flatnonzero((window == NEWLINE) & (parity == 0)) + start
    return found, int(parity[-1])


def _next_boundary(buf: _Buffer, start: int, stop: int, odd: int) -> int:
    """Offset just past the first line break outside quotes in `buf[start:stop]` (-1: none);
    `odd` is the quote parity at `start`. Windows without a quote cost one memchr."""
    size = 1 << 12
    while start < stop:
        end = min(start + size, stop)
        if buf.find(b'"', start, end) < 0:
            newline = -1 if odd else buf.find(b"\n", start, end)
            if newline >= 0:
                return newline + 1
        else:
            found, odd = _even_newlines(buf, start, end, odd)
            if len(found):
                return int(found[0]) + 1
        start, size = end, min(size * 4, 1 << 20)
    return -1


def last_boundary(buf: _Buffer, start: int, stop: int) -> int:
    """Offset just past the last line break outside quotes in `buf[start:stop]` (-1: none);
    a record starts at `start`."""
    odd = count_byte(buf, QUOTE, start, stop) % 2 if buf.find(b'"', start, stop) >= 0 else 0
    size = 1 << 12
    while stop > start:
        begin = max(start, stop - size)
        if buf.find(b'"', begin, stop) < 0:
            newline = -1 if odd else buf.rfind(b"\n", begin, stop)
            if newline >= 0:
                return newline + 1
        else:
            odd ^= count_byte(buf, QUOTE, begin, stop) % 2
            found, _ = _even_newlines(buf, begin, stop, odd)
            if len(found):
                return int(found[-1]) + 1
        stop, size = begin, min(size * 4, 1 << 20)
    return -1


def unclosed_quote(path: str, line: int) -> ValueError:
    return ValueError(
        f"unclosed quote in the row at {path} line {line}: a field opened with '\"' there "
        "(or a stray '\"' earlier) never ends; a '\"' inside a quoted field must be doubled "
        "as '\"\"' (RFC 4180)"
    )


def read_header(path: str, delimiter: str) -> tuple[list[str], int]:
    """Column names and the byte offset just past the header line."""
    with open_binary(path) as stream:
        head, end, odd = b"", -1, 0
        while end < 0:
            block = stream.read(1 << 16)
            if not block:
                break
            if odd and len(head) >= OPEN_BYTES:
                raise unclosed_quote(path, 1)
            head += block
            end = _next_boundary(head, len(head) - len(block), len(head), odd)
            odd ^= count_byte(block, QUOTE, 0, len(block)) % 2
    if not head.strip():
        raise ValueError(f"{path} is empty: expected a header line and at least one row")
    if end < 0:
        if odd:
            raise unclosed_quote(path, 1)
        end = len(head)
    line = head[:end].decode("utf-8-sig").rstrip("\r\n")
    names = next(_csv.reader(io.StringIO(line, newline=""), delimiter=delimiter))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate column names {duplicates} in the header")
    if compression_of(path) is None and os.path.getsize(path) <= end:
        raise ValueError(f"{path} has a header but no rows: expected at least one row")
    return names, end


def cut_file(
    index: int, path: str, header_end: int, block_bytes: int, quoted: bool = True
) -> list[Any]:
    """Units of one file: `(file, start, stop)` byte ranges ending at record boundaries.

    A line break ends a record only outside quotes, i.e. after an even number of
    `"` since the header. That parity depends on every byte before the cut (a
    quoted field may itself hold CSV-like lines), and the units must be fixed
    before reading (shuffled order, one share per rank), so the file is looked
    at once in full here, as cheaply as that goes: a memchr (`mmap.find`) for
    the first quote, about 6 GB/s from the page cache (2-3% of parsing the file
    once; from disk, one read of it, which leaves it cached for the first
    epoch). Cuts before that quote are plain line breaks; past it, quotes are
    counted with numpy and the parity is followed through each cut's
    neighbourhood. A quote still open after `OPEN_BYTES` is taken as unclosed.
    With `quoted=False` (`newlines_in_values=False`) every line break is a cut
    and the file is not read here.
    """
    if compression_of(path) is not None:
        return [(index, header_end, None)]
    size = os.path.getsize(path)
    units: list[Any] = []
    if size <= header_end:
        return units
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        quote = data.find(b'"', header_end) if quoted else -1
        start = header_end
        while start < size:
            at = start + block_bytes - 1
            stop = -1
            if at < size:
                if quoted:
                    odd = 0
                    if 0 <= quote < at:
                        odd = count_byte(data, QUOTE, max(start, quote), at) % 2
                    stop = _next_boundary(data, at, min(at + OPEN_BYTES, size), odd)
                else:
                    stop = data.find(b"\n", at) + 1 or -1
                if stop < 0 and 0 <= quote < at + OPEN_BYTES < size:
                    row = max(last_boundary(data, start, at), start)
                    raise unclosed_quote(path, count_byte(data, NEWLINE, 0, row) + 1)
            if stop < 0:
                stop = size
                if 0 <= quote < size and count_byte(data, QUOTE, max(start, quote), size) % 2:
                    row = max(last_boundary(data, start, size), start)
                    raise unclosed_quote(path, count_byte(data, NEWLINE, 0, row) + 1)
            units.append((index, start, stop))
            start = stop
    return units
