"""Exact Hamming-distance search over packed binary codes, with numpy.

:class:`HammingCodes` holds n codes of 64 x ``words`` bits, one contiguous uint64
array per word. A query is scanned in cache-sized chunks (xor, ``np.bitwise_count``,
compare) split over threads, since numpy releases the GIL. Codes wider than one
word are pruned early: the distance over the first two words is a lower bound of
the full distance, so a code whose 128-bit partial distance already exceeds the
radius is dropped before the remaining words are read.

Large sets also get a multi-index hash (Norouzi et al.): each code is cut into 16-bit
blocks and, per block, positions are sorted by block value. By the pigeonhole principle
a code within radius r of the query has some block within r // blocks bits of the
query's block, so only the buckets of those few block values are read and checked.
When the buckets hold too many codes (skewed data, wide radius) the scan is used.

A wide radius over 256-bit codes (unbounded k-NN: random codes lie about 128 bits
apart, so no partial sum prunes) needs every bit of every code. That case reads a
row-major copy of the codes (32 bytes per code, built on first use): one xor and one
``np.bitwise_count`` over whole rows, then the four per-word counts, viewed as one
uint32, are summed by a single multiply by 0x01010101 (the top byte holds the sum).

Results are exact either way: the same items, distances and order as a brute-force
scan, ordered by (distance, position). :func:`use_compiled` (``provkit serve`` calls it)
runs the multi-index search of sets with bucket words as one compiled loop instead
(:mod:`detect.hamming_kernel`, numba).

Why one module: the scan, the multi-index and the k-NN search share the code layout,
the scratch buffers and the exactness contract; apart, each would reach into the others.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

CHUNK = 65_536
#: Below this many codes one thread is faster than two.
THREAD_MIN = 200_000
#: Sets at least this large get a multi-index hash on first search.
MIH_MIN = 50_000
#: Sets of 4-word codes up to this size also keep their multi-index entries' first two
#: words in bucket order (16 x 16 bytes a code): candidates are then read in runs, not
#: at random, and a lookup takes about half the time. Larger sets read them at random.
BUCKET_WORDS_MAX = 2_000_000
#: Widest per-block radius the multi-index hash enumerates (697 keys per block at 3).
MIH_BLOCK_RADIUS = 3
#: Radius from which 256-bit codes are scanned whole, row by row (no partial-sum pruning).
WIDE_RADIUS = 52
#: Rows per chunk of the row-major scan (2 MiB of codes: long calls share threads well).
ROW_CHUNK = 65_536

_pool: ThreadPoolExecutor | None = None
_local = threading.local()


def _buffers():
    """Per-thread scratch arrays for one chunk, reused across queries (no page faults)."""
    bufs = getattr(_local, "bufs", None)
    if bufs is None or len(bufs[0]) != CHUNK:
        bufs = (
            np.empty(CHUNK, np.uint64),
            np.empty(CHUNK, np.uint8),
            np.empty(CHUNK, np.uint8),
            np.empty(CHUNK, bool),
        )
        _local.bufs = bufs
    return bufs


def _row_buffers():
    """Per-thread scratch for one chunk of the row-major scan of 4-word codes."""
    bufs = getattr(_local, "row_bufs", None)
    if bufs is None or len(bufs[2]) != ROW_CHUNK:
        bufs = (
            np.empty(4 * ROW_CHUNK, np.uint64),
            np.empty(4 * ROW_CHUNK, np.uint8),
            np.empty(ROW_CHUNK, np.uint32),
            np.empty(ROW_CHUNK, bool),
        )
        _local.row_bufs = bufs
    return bufs


def _threads() -> int:
    return max(1, min(4, int(os.environ.get("PROVKIT_SEARCH_THREADS", os.cpu_count() or 1))))


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_threads(), thread_name_prefix="provkit-hamming")
    return _pool


_MASKS: dict[int, np.ndarray] = {}
#: The compiled multi-index search (:mod:`detect.hamming_kernel`) once :func:`use_compiled`
#: turned it on; None: numpy's.
_compiled = None


def use_compiled(on: bool = True) -> bool:
    """Search sets that have bucket words with the compiled loop (numba, in the ``serve``
    extra), or with numpy again (``on=False``); whether the compiled loop is now in use.

    Compiles it here (seconds the first time, then from numba's cache), for the
    read-only arrays of a mapped set and for arrays in memory, so that no lookup waits."""
    global _compiled
    if not on:
        _compiled = None
        return False
    if _compiled is None:
        try:
            from provkit.detect.hamming_kernel import mih_within as kernel
        except ImportError:  # numba is not installed: numpy it is
            return False
        for writable in (False, True):
            arrays = [
                np.zeros((4, 1), np.uint64),
                np.zeros((16, 1), np.int32),
                np.zeros((16, 65537), np.int64),
                np.zeros((2, 16), np.uint64),
            ]
            for a in arrays:
                a.setflags(write=writable)
            kernel(*arrays, np.zeros(4, np.uint64), _flip_masks(1), 31, 1)
        _compiled = kernel
    return True


def engine() -> str:
    """Which multi-index search runs: "compiled (numba)" or "numpy"."""
    return "compiled (numba)" if _compiled is not None else "numpy"


def _flip_masks(bits: int) -> np.ndarray:
    """All 16-bit values with at most ``bits`` bits set (the keys within that radius)."""
    if bits not in _MASKS:
        values = np.arange(65536, dtype=np.uint16)
        _MASKS[bits] = values[np.bitwise_count(values) <= bits]
    return _MASKS[bits]


def _first_of_each(cand: np.ndarray, d: np.ndarray):
    """Candidates found (some through several blocks) as unique positions, ascending."""
    order = np.argsort(cand, kind="stable")
    cand, d = cand.take(order), d.take(order)
    first = np.ones(len(cand), bool)
    np.not_equal(cand[1:], cand[:-1], out=first[1:])  # sorted: duplicates are adjacent
    return cand[first].astype(np.int64), d[first]


def query_words(query, words: int) -> np.ndarray:
    """A query (int for 64 bits, bytes of 8*words, or uint64 array) as uint64 words."""
    if isinstance(query, (int, np.integer)):
        if words != 1:
            raise ValueError(f"an int query has 64 bits; these codes have {64 * words}")
        return np.array([int(query)], dtype=np.uint64)
    if isinstance(query, (bytes, bytearray)):
        if len(query) != 8 * words:
            raise ValueError(f"query has {len(query)} bytes; these codes have {8 * words}")
        return np.frombuffer(bytes(query), dtype=np.uint64).copy()
    arr = np.asarray(query, dtype=np.uint64).ravel()
    if arr.size != words:
        raise ValueError(f"query has {arr.size} words; these codes have {words}")
    return arr


class HammingCodes:
    """n binary codes of ``64 * words`` bits, searchable by exact Hamming distance."""

    def __init__(self, words: np.ndarray):
        words = np.asarray(words, dtype=np.uint64)
        if words.ndim == 1:
            words = words[None, :]
        self.words = np.ascontiguousarray(words)  # shape (w, n)
        self.width = self.words.shape[0]
        self.bits = 64 * self.width
        self._mih: tuple[np.ndarray, np.ndarray] | None = None  # built on first use
        self._rows: np.ndarray | None = None  # row-major copy, built on first wide scan
        self._samples: dict[int, np.ndarray] = {}  # evenly spaced codes, by sample size

    def _row_major(self) -> np.ndarray:
        """The codes as one flat uint64 array, code after code (n * words)."""
        if self._rows is None:
            self._rows = np.ascontiguousarray(self.words.T).reshape(-1)
        return self._rows

    def _multi_index(self):
        """(perm, offsets, bucket_words): per 16-bit block, positions sorted by block
        value; and, for 4-word sets up to :data:`BUCKET_WORDS_MAX` codes, the first two
        words of each entry in that order, shape (2, blocks * n) (else None)."""
        if self._mih is None:
            n = len(self)
            blocks = self.words.view(np.uint16).reshape(self.width, n, 4)
            blocks = blocks.transpose(0, 2, 1).reshape(self.width * 4, n)
            perm = np.empty(blocks.shape, np.int32)
            offsets = np.zeros((blocks.shape[0], 65537), np.int64)
            for b, vals in enumerate(blocks):
                perm[b] = np.argsort(vals, kind="stable")
                np.cumsum(np.bincount(vals, minlength=65536), out=offsets[b, 1:])
            bucket_words = None
            if self.width == 4 and n <= BUCKET_WORDS_MAX:
                flat = perm.reshape(-1)
                bucket_words = np.stack([self.words[0].take(flat), self.words[1].take(flat)])
            self._mih = (perm, offsets, bucket_words)
        return self._mih

    def _mih_within(self, q: np.ndarray, radius: int):
        """Exact range search through the multi-index hash; None if a scan is cheaper."""
        perm, offsets, bucket_words = self._multi_index()
        m, n = perm.shape
        masks = _flip_masks(radius // m)
        if _compiled is not None and bucket_words is not None:
            cand, d, ok = _compiled(
                self.words, perm, offsets, bucket_words, q, masks, radius, n // 8
            )
            return _first_of_each(cand, d) if ok else None
        # The buckets to read: per block, the query's block value xor each mask, as flat
        # positions in the (m, 65537) offsets (1-D takes: a 2-D gather is ~2x slower).
        keys = (q.view(np.uint16)[:, None] ^ masks[None, :]).astype(np.int64)
        keys += np.arange(0, m * 65537, 65537, dtype=np.int64)[:, None]
        keys = keys.ravel()
        flat_offsets = offsets.reshape(-1)
        starts = flat_offsets.take(keys)
        lens = flat_offsets.take(keys + 1) - starts
        total = int(lens.sum())
        if total > n // 8:
            return None
        # Each bucket is a run of perm's row: its flat start, then consecutive positions.
        starts += np.repeat(np.arange(0, m * n, n, dtype=np.int64), masks.size)
        idx = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        flat_perm = perm.reshape(-1)
        # One word at a time, dropping candidates already beyond the radius: the first
        # word leaves about half of the random ones, the second almost none, so the
        # other words are read for the few that may match. Candidates stay in bucket
        # order (a code found through several blocks appears more than once until the end).
        d, first_word = None, 0
        if bucket_words is not None:  # the first two words, stored in bucket order
            d = np.bitwise_count(np.bitwise_xor(bucket_words[0].take(idx), q[0]))
            d = d.astype(np.uint16)
            np.add(d, np.bitwise_count(np.bitwise_xor(bucket_words[1].take(idx), q[1])), out=d)
            keep = np.flatnonzero(d <= radius)
            cand, d, first_word = flat_perm.take(idx.take(keep)), d.take(keep), 2
        else:
            cand = flat_perm.take(idx)
        for j in range(first_word, self.width):
            part = np.bitwise_count(np.bitwise_xor(self.words[j].take(cand), q[j]))
            d = part.astype(np.uint16) if d is None else np.add(d, part, out=d)
            keep = np.flatnonzero(d <= radius)
            if keep.size < d.size:
                cand, d = cand.take(keep), d.take(keep)
        return _first_of_each(cand, d)

    def __len__(self) -> int:
        return self.words.shape[1]

    # -- distances ---------------------------------------------------------------
    def distances(self, query, ids: np.ndarray | None = None) -> np.ndarray:
        """Full distances (uint16) from the query to all codes, or to ``ids``."""
        q = query_words(query, self.width)
        if ids is None:
            out = np.zeros(len(self), dtype=np.uint16)
            for j in range(self.width):
                out += np.bitwise_count(np.bitwise_xor(self.words[j], q[j]))
            return out
        ids = np.asarray(ids, dtype=np.intp)
        out = np.zeros(len(ids), dtype=np.uint16)
        for j in range(self.width):  # one 1-D take per word (a 2-D gather is ~2x slower)
            out += np.bitwise_count(np.bitwise_xor(self.words[j].take(ids), q[j]))
        return out

    def _scan(self, q: np.ndarray, radius: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Codes in [lo, hi) within ``radius``: (positions, distances)."""
        # Per chunk, popcounts of the first ``head`` words are summed in uint8 over every
        # code; the other words are added for survivors only. Two words bound a small
        # radius well; for a wide one all words are summed (a uint8 sum can only wrap
        # downwards, so survivors are a superset, then checked exactly).
        head = 1 if self.width == 1 else (2 if radius < WIDE_RADIUS else self.width)
        xor, part, acc, keep = _buffers()
        found_ids, found_d = [], []
        for s in range(lo, hi, CHUNK):
            e = min(hi, s + CHUNK)
            m = e - s
            np.bitwise_xor(self.words[0, s:e], q[0], out=xor[:m])
            np.bitwise_count(xor[:m], out=acc[:m])
            for j in range(1, head):
                np.bitwise_xor(self.words[j, s:e], q[j], out=xor[:m])
                np.bitwise_count(xor[:m], out=part[:m])
                np.add(acc[:m], part[:m], out=acc[:m])
            np.less_equal(acc[:m], radius, out=keep[:m])
            idx = np.flatnonzero(keep[:m])
            if idx.size == 0:
                continue
            idx += s
            if head == 1 or (head == 2 and self.width == 2):
                d = acc[idx - s].astype(np.uint16)
            elif head == 2:
                d = acc[idx - s].astype(np.uint16)
                for j in range(head, self.width):
                    d += np.bitwise_count(np.bitwise_xor(self.words[j, idx], q[j]))
            else:
                d = self.distances(q, idx)
            if self.width > 1:
                ok = d <= radius
                idx, d = idx[ok], d[ok]
            found_ids.append(idx)
            found_d.append(d)
        if not found_ids:
            return np.empty(0, np.int64), np.empty(0, np.uint16)
        return np.concatenate(found_ids), np.concatenate(found_d)

    def _scan_rows(self, q: np.ndarray, radius: int, lo: int, hi: int):
        """Codes in [lo, hi) within ``radius``, 4-word codes read whole: (positions, distances)."""
        rows = self._row_major()
        xor, counts, sums, keep = _row_buffers()
        per_code = counts.view(np.uint32)
        query = np.tile(q, ROW_CHUNK)
        # The top byte of count32 * 0x01010101 is the sum of the four word counts mod 256:
        # below (radius + 1) << 24 means a distance <= radius, or exactly 256 (checked below).
        bound = np.uint32((radius + 1) << 24) if radius < 255 else None
        found_ids, found_d = [], []
        for s in range(lo, hi, ROW_CHUNK):
            m = min(hi, s + ROW_CHUNK) - s
            np.bitwise_xor(rows[4 * s : 4 * (s + m)], query[: 4 * m], out=xor[: 4 * m])
            np.bitwise_count(xor[: 4 * m], out=counts[: 4 * m])
            np.multiply(per_code[:m], np.uint32(0x01010101), out=sums[:m])
            if bound is None:
                idx = np.arange(m)
            else:
                np.less(sums[:m], bound, out=keep[:m])
                idx = np.flatnonzero(keep[:m])
                if idx.size == 0:
                    continue
            d = (sums[idx] >> np.uint32(24)).astype(np.uint16)
            # A sum of 256 (all four words differ in every bit) wraps to 0.
            d[(d == 0) & (counts[4 * idx] == 64)] = 256
            if radius < 256:
                ok = d <= radius
                idx, d = idx[ok], d[ok]
            found_ids.append(idx + s)
            found_d.append(d)
        if not found_ids:
            return np.empty(0, np.int64), np.empty(0, np.uint16)
        return np.concatenate(found_ids), np.concatenate(found_d)

    def _sample_distances(self, q: np.ndarray, size: int) -> np.ndarray:
        """Distances from the query to ``size`` evenly spaced codes (a cached copy)."""
        sample = self._samples.get(size)
        if sample is None:
            at = np.unique(np.linspace(0, len(self) - 1, num=size).astype(np.int64))
            sample = self._samples[size] = np.ascontiguousarray(self.words[:, at])
        out = np.bitwise_count(np.bitwise_xor(sample[0], q[0])).astype(np.uint16)
        for j in range(1, self.width):
            out += np.bitwise_count(np.bitwise_xor(sample[j], q[j]))
        return out

    def _spans(self) -> list[tuple[int, int]]:
        n = len(self)
        t = _threads() if n >= THREAD_MIN else 1
        step = -(-n // t)
        return [(s, min(n, s + step)) for s in range(0, n, step)]

    # -- queries -------------------------------------------------------------------
    def within(self, query, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """All codes at distance <= radius, ordered by (distance, position)."""
        if len(self) == 0 or radius < 0:
            return np.empty(0, np.int64), np.empty(0, np.uint16)
        q = query_words(query, self.width)
        radius = min(int(radius), self.bits)
        found = None
        if len(self) >= MIH_MIN and radius // (4 * self.width) <= MIH_BLOCK_RADIUS:
            found = self._mih_within(q, radius)
        if found is not None:
            ids, d = found
        else:
            ids, d = self._scan_all(q, radius)
        order = np.lexsort((ids, d))
        return ids[order], d[order]

    def _scan_all(self, q: np.ndarray, radius: int):
        scan = self._scan
        if self.width == 4 and radius >= WIDE_RADIUS:
            self._row_major()  # built once, before the threads read it
            scan = self._scan_rows
        spans = self._spans()
        if len(spans) == 1:
            ids, d = scan(q, radius, *spans[0])
        else:
            futures = [_executor().submit(scan, q, radius, lo, hi) for lo, hi in spans]
            parts = [f.result() for f in futures]
            ids = np.concatenate([p[0] for p in parts])
            d = np.concatenate([p[1] for p in parts])
        return ids, d

    def nearest(
        self, query, k: int, max_distance: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k closest codes (ties broken by position), optionally within max_distance."""
        if k <= 0 or len(self) == 0:
            return np.empty(0, np.int64), np.empty(0, np.uint16)
        limit = self.bits if max_distance is None else min(int(max_distance), self.bits)
        if limit < 0:
            return np.empty(0, np.int64), np.empty(0, np.uint16)
        q = query_words(query, self.width)
        blocks = 4 * self.width
        if len(self) >= MIH_MIN:
            # Growing radii through the multi-index hash: once k codes lie within r,
            # the k nearest all do, so the answer is exact.
            # Wide codes stop early: their k-th neighbour is usually far (scan instead).
            for block_radius in range(MIH_BLOCK_RADIUS + 1 if self.width == 1 else 2):
                r = min(limit, blocks * (block_radius + 1) - 1)
                found = self._mih_within(q, r)
                if found is None:
                    break
                ids, d = found
                if len(ids) >= k or r == limit:
                    order = np.lexsort((ids, d))[:k]
                    return ids[order], d[order]
                if self.width > 1 and len(ids) < 2:
                    break  # no cluster around the query: a wider try would fall short too
        radius = limit
        if len(self) > 4 * k and radius > 0:
            # The k-th smallest distance over a sample bounds the k-th over all codes.
            d = self._sample_distances(q, min(len(self), max(64 * k, 4096)))
            radius = min(radius, int(np.partition(d, k - 1)[k - 1]))
        ids, d = self.within(q, radius)
        return ids[:k], d[:k]
