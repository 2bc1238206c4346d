"""The multi-index range search of :mod:`detect.hamming` as one compiled loop (numba).

numpy's version of :meth:`HammingCodes._mih_within` makes about 45 array calls a query;
at 1M PDQ codes they cost more than the memory reads themselves. This loop does the same
work in one pass: per block and flip mask, the bucket's run of bucket-ordered first two
words is read in order, and the last two words are read only for the candidates still
within the radius. It needs the bucket words (4-word sets up to
:data:`detect.hamming.BUCKET_WORDS_MAX` codes); other sets use numpy's version.

Compiling takes a few seconds the first time (numba caches the result next to this
file), so only a long-running process turns it on: ``provkit serve`` calls
:func:`detect.hamming.use_compiled` at start. numba comes with the ``serve`` extra;
without it everything runs on numpy. ``tests/test_index_hamming.py`` runs the range and
k-NN tests through both, against brute force.
"""

from __future__ import annotations

import numpy as np
from numba import njit  # the serve extra; detect.hamming imports this module only on demand


@njit(inline="always", cache=True)
def popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(nogil=True, cache=True)
def mih_within(words, perm, offsets, bucket_words, q, masks, radius, limit):
    """(positions, distances, True) of the codes within ``radius`` (a code found
    through several blocks once per block), or (empty, empty, False) when the
    buckets hold more than ``limit`` codes (a scan is cheaper then)."""
    m, n = perm.shape
    total = 0
    for b in range(m):
        qb = (q[b >> 2] >> np.uint64(16 * (b & 3))) & np.uint64(0xFFFF)
        for k in range(masks.shape[0]):
            key = np.int64(qb ^ np.uint64(masks[k]))
            total += offsets[b, key + 1] - offsets[b, key]
    if total > limit:
        return np.empty(0, np.int64), np.empty(0, np.uint16), False
    pos = np.empty(total, np.int64)
    dist = np.empty(total, np.uint16)
    found = 0
    first, second, third, fourth = bucket_words[0], bucket_words[1], words[2], words[3]
    q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
    for b in range(m):
        qb = (q[b >> 2] >> np.uint64(16 * (b & 3))) & np.uint64(0xFFFF)
        row = b * n
        for k in range(masks.shape[0]):
            key = np.int64(qb ^ np.uint64(masks[k]))
            for i in range(row + offsets[b, key], row + offsets[b, key + 1]):
                d = popcount(first[i] ^ q0) + popcount(second[i] ^ q1)
                if d <= radius:
                    p = perm[b, i - row]
                    d += popcount(third[p] ^ q2) + popcount(fourth[p] ^ q3)
                    if d <= radius:
                        pos[found] = p
                        dist[found] = d
                        found += 1
    return pos[:found], dist[:found], True


__all__ = ["mih_within"]
