"""The two string hashes Keras' preprocessing layers use: FarmHash Fingerprint64 and SipHash-2-4.

NOTE [ Keras' string hashes ]
Keras' `Hashing` (and the extra OOV buckets of `StringLookup`/`IntegerLookup`)
call TensorFlow's `to_hash_bucket_fast` (FarmHash's `Fingerprint64`, i.e.
`farmhashna::Hash64`, modulo the bucket count) or, with a `salt`,
`to_hash_bucket_strong` (SipHash-2-4 keyed by the two salt integers). Both are
written out here from their published algorithms in plain Python on the UTF-8
bytes, so bins are the same as Keras' with no TensorFlow: the tests check them
against Keras' docstring examples and, where installed, the `pyfarmhash`
package. Plain Python costs about 7 us a value (FarmHash, short strings) and
40 us (SipHash, with a salt), measured on 2 shared CPU cores; callers
hash each distinct value once per call (`hash_buckets`), so a categorical
column costs its distinct values, not its rows, but a column of unique ids
is slow: hash it once offline.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["fingerprint64", "hash_buckets", "siphash64"]

_M = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F


def _rot(v: int, shift: int) -> int:
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & _M


def _f64(s: bytes, i: int) -> int:
    return int.from_bytes(s[i : i + 8], "little")


def _f32(s: bytes, i: int) -> int:
    return int.from_bytes(s[i : i + 4], "little")


def _mix(v: int) -> int:
    return v ^ (v >> 47)


def _len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _M
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M
    b ^= b >> 47
    return (b * mul) & _M


def _len0to16(s: bytes, n: int) -> int:
    if n >= 8:
        mul = _K2 + n * 2
        a = (_f64(s, 0) + _K2) & _M
        b = _f64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M
        d = ((_rot(a, 25) + b) * mul) & _M
        return _len16(c, d, mul)
    if n >= 4:
        mul = _K2 + n * 2
        return _len16(n + (_f32(s, 0) << 3), _f32(s, n - 4), mul)
    if n > 0:
        y = s[0] + (s[n >> 1] << 8)
        z = n + (s[n - 1] << 2)
        return (_mix(((y * _K2) ^ (z * _K0)) & _M) * _K2) & _M
    return _K2


def _len17to32(s: bytes, n: int) -> int:
    mul = _K2 + n * 2
    a = (_f64(s, 0) * _K1) & _M
    b = _f64(s, 8)
    c = (_f64(s, n - 8) * mul) & _M
    d = (_f64(s, n - 16) * _K2) & _M
    return _len16(
        (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M,
        (a + _rot((b + _K2) & _M, 18) + c) & _M,
        mul,
    )


def _len33to64(s: bytes, n: int) -> int:
    mul = _K2 + n * 2
    a = (_f64(s, 0) * _K2) & _M
    b = _f64(s, 8)
    c = (_f64(s, n - 8) * mul) & _M
    d = (_f64(s, n - 16) * _K2) & _M
    y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
    z = _len16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
    e = (_f64(s, 16) * mul) & _M
    f = _f64(s, 24)
    g = ((y + _f64(s, n - 32)) * mul) & _M
    h = ((z + _f64(s, n - 24)) * mul) & _M
    return _len16(
        (_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M,
        (e + _rot((f + a) & _M, 18) + g) & _M,
        mul,
    )


def _weak32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _f64(s, i), _f64(s, i + 8), _f64(s, i + 16), _f64(s, i + 24)
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def fingerprint64(data: bytes) -> int:
    """FarmHash `Fingerprint64` (`farmhashna::Hash64`) of `data`, an unsigned 64-bit int."""
    s, n = data, len(data)
    if n <= 16:
        return _len0to16(s, n)
    if n <= 32:
        return _len17to32(s, n)
    if n <= 64:
        return _len33to64(s, n)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _M
    z = (_mix((y * _K2 + 113) & _M) * _K2) & _M
    v0 = v1 = w0 = w1 = 0
    x = (x * _K2 + _f64(s, 0)) & _M
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    i = 0
    while True:
        x = (_rot((x + y + v0 + _f64(s, i + 8)) & _M, 37) * _K1) & _M
        y = (_rot((y + v1 + _f64(s, i + 48)) & _M, 42) * _K1) & _M
        x ^= w1
        y = (y + v0 + _f64(s, i + 40)) & _M
        z = (_rot((z + w0) & _M, 33) * _K1) & _M
        v0, v1 = _weak32(s, i, (v1 * _K1) & _M, (x + w0) & _M)
        w0, w1 = _weak32(s, i + 32, (z + w1) & _M, (y + _f64(s, i + 16)) & _M)
        z, x = x, z
        i += 64
        if i == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    i = last64
    w0 = (w0 + ((n - 1) & 63)) & _M
    v0 = (v0 + w0) & _M
    w0 = (w0 + v0) & _M
    x = (_rot((x + y + v0 + _f64(s, i + 8)) & _M, 37) * mul) & _M
    y = (_rot((y + v1 + _f64(s, i + 48)) & _M, 42) * mul) & _M
    x ^= (w1 * 9) & _M
    y = (y + v0 * 9 + _f64(s, i + 40)) & _M
    z = (_rot((z + w0) & _M, 33) * mul) & _M
    v0, v1 = _weak32(s, i, (v1 * mul) & _M, (x + w0) & _M)
    w0, w1 = _weak32(s, i + 32, (z + w1) & _M, (y + _f64(s, i + 16)) & _M)
    z, x = x, z
    return _len16(
        (_len16(v0, w0, mul) + _mix(y) * _K0 + z) & _M,
        (_len16(v1, w1, mul) + x) & _M,
        mul,
    )


def _sipround(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    v0 = (v0 + v1) & _M
    v1 = (((v1 << 13) | (v1 >> 51)) & _M) ^ v0
    v0 = ((v0 << 32) | (v0 >> 32)) & _M
    v2 = (v2 + v3) & _M
    v3 = (((v3 << 16) | (v3 >> 48)) & _M) ^ v2
    v0 = (v0 + v3) & _M
    v3 = (((v3 << 21) | (v3 >> 43)) & _M) ^ v0
    v2 = (v2 + v1) & _M
    v1 = (((v1 << 17) | (v1 >> 47)) & _M) ^ v2
    v2 = ((v2 << 32) | (v2 >> 32)) & _M
    return v0, v1, v2, v3


def siphash64(key: tuple[int, int], data: bytes) -> int:
    """SipHash-2-4 of `data` keyed by two unsigned 64-bit ints (TensorFlow's strong hash)."""
    k0, k1 = key[0] & _M, key[1] & _M
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(data)
    full = n - n % 8
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, full, 8)]
    words.append(int.from_bytes(data[full:], "little") | ((n & 0xFF) << 56))
    for m in words:
        v3 ^= m
        v0, v1, v2, v3 = _sipround(*_sipround(v0, v1, v2, v3))
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(4):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bool, np.bool_)):
        return str(int(value)).encode()
    if isinstance(value, (int, np.integer)):
        return str(int(value)).encode()
    if isinstance(value, (float, np.floating)):  # Keras casts floats to int64 first
        return str(int(value)).encode()
    raise TypeError(f"cannot hash a value of type {type(value).__name__}: {value!r:.40}")


def hash_buckets(
    values: Iterable[object], num_buckets: int, salt: tuple[int, int] | None = None
) -> np.ndarray:
    """Each value's bucket `hash(str(value)) % num_buckets` (int64), hashing each distinct
    value once; integers hash their decimal text, as TensorFlow's `as_string`."""
    cache: dict[object, int] = {}
    out = []
    for value in values:
        bucket = cache.get(value)
        if bucket is None:
            raw = _as_bytes(value)
            h = fingerprint64(raw) if salt is None else siphash64(salt, raw)
            bucket = cache[value] = h % num_buckets
        out.append(bucket)
    return np.asarray(out, dtype=np.int64)
