"""Hamming search returns exactly what a brute-force scan returns, on any data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provkit.detect import hamming
from provkit.detect.hamming import HammingCodes


def brute_force(codes: list[int], query: int, radius: int):
    pairs = sorted(((query ^ c).bit_count(), i) for i, c in enumerate(codes))
    return [(i, d) for d, i in pairs if d <= radius]


def as_words(values: list[int], words: int) -> np.ndarray:
    return np.array(
        [[(v >> (64 * j)) & (2**64 - 1) for v in values] for j in range(words)], np.uint64
    )


def query_words(value: int, words: int) -> np.ndarray:
    return np.array([(value >> (64 * j)) & (2**64 - 1) for j in range(words)], np.uint64)


@st.composite
def code_sets(draw, words):
    bits = 64 * words
    base = draw(st.lists(st.integers(0, 2**bits - 1), min_size=1, max_size=6))
    # Clusters of near-identical codes (as real hashes are), plus exact repeats.
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    codes = []
    for _ in range(n):
        c = base[rng.integers(len(base))]
        for b in rng.choice(bits, rng.integers(0, bits // 3 + 1), replace=False):
            c ^= 1 << int(b)
        codes.append(c)
    query = base[0]
    for b in rng.choice(bits, draw(st.integers(0, bits // 4)), replace=False):
        query ^= 1 << int(b)
    return codes, query


@pytest.fixture(
    params=[None, "bucket words", "random reads", "compiled"],
    ids=["scan", "multi-index", "multi-index-without-bucket-words", "multi-index-compiled"],
)
def multi_index(request, monkeypatch):
    """Run each test through the plain scan and through the multi-index hash: numpy's,
    with its bucket-ordered words (sets up to BUCKET_WORDS_MAX codes) and without (larger
    sets), and the compiled loop ``provkit serve`` uses (numba, the serve extra)."""
    monkeypatch.setattr(hamming, "MIH_MIN", 0 if request.param else 10**12)
    if request.param == "random reads":
        monkeypatch.setattr(hamming, "BUCKET_WORDS_MAX", 0)
    if request.param == "compiled":
        assert hamming.use_compiled(), "numba (the serve extra) is not installed"
    # every other case runs numpy's search, whatever an earlier test turned on
    monkeypatch.setattr(
        hamming, "_compiled", hamming._compiled if request.param == "compiled" else None
    )
    monkeypatch.setattr(hamming, "CHUNK", 64)  # several chunks even for small sets
    monkeypatch.setattr(hamming, "ROW_CHUNK", 64)
    return request.param


@pytest.mark.parametrize("words", [1, 4])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_range_search_equals_brute_force(multi_index, words, data):
    codes, query = data.draw(code_sets(words))
    radius = data.draw(st.integers(0, 64 * words))
    index = HammingCodes(as_words(codes, words))
    ids, d = index.within(query_words(query, words), radius)
    assert list(zip(ids.tolist(), d.tolist())) == brute_force(codes, query, radius)


@pytest.mark.parametrize("words", [1, 4])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_nearest_equals_brute_force(multi_index, words, data):
    codes, query = data.draw(code_sets(words))
    k = data.draw(st.integers(1, 20))
    limit = data.draw(st.one_of(st.none(), st.integers(0, 64 * words)))
    index = HammingCodes(as_words(codes, words))
    ids, d = index.nearest(query_words(query, words), k, limit)
    want = brute_force(codes, query, 64 * words if limit is None else limit)[:k]
    assert list(zip(ids.tolist(), d.tolist())) == want


def test_threads_split_large_sets_without_changing_results(monkeypatch):
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 2**64, 5000, dtype=np.uint64, endpoint=False)
    codes[4000] = codes[10] ^ np.uint64(0b1011)
    index = HammingCodes(codes)
    one = index.within(int(codes[10]), 12)
    monkeypatch.setattr(hamming, "THREAD_MIN", 0)
    monkeypatch.setattr(hamming, "CHUNK", 256)
    two = index.within(int(codes[10]), 12)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    assert 4000 in one[0].tolist() and one[0][0] == 10


def test_query_of_the_wrong_width_is_refused():
    index = HammingCodes(np.zeros((4, 3), np.uint64))
    with pytest.raises(ValueError):
        index.within(5, 3)
    with pytest.raises(ValueError):
        index.within(b"\x00" * 8, 3)


def test_empty_index_finds_nothing():
    index = HammingCodes(np.zeros(0, np.uint64))
    assert index.within(1, 64)[0].size == 0
    assert index.nearest(1, 5)[0].size == 0


@pytest.mark.parametrize("bucket_words", [True, False])
@pytest.mark.parametrize("words,radius", [(1, 8), (1, 15), (4, 31), (4, 7)])
def test_multi_index_hash_answers_without_scanning(words, radius, bucket_words, monkeypatch):
    monkeypatch.setattr(hamming, "_compiled", None)
    if not bucket_words:
        monkeypatch.setattr(hamming, "BUCKET_WORDS_MAX", 0)
    rng = np.random.default_rng(words * 100 + radius)
    codes = rng.integers(0, 2**64, (words, 20_000), dtype=np.uint64, endpoint=False)
    index = HammingCodes(codes)
    for pick in range(20):
        q = codes[:, pick].copy()
        for b in rng.choice(64 * words, radius, replace=False):  # exactly at the radius
            q[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
        found = index._mih_within(q, radius)
        assert found is not None, "the multi-index hash gave up on uniform data"
        assert (index._mih[2] is not None) == (bucket_words and words == 4)
        full = index.distances(q)
        want = np.flatnonzero(full <= radius)
        assert sorted(found[0].tolist()) == want.tolist()
        assert pick in found[0].tolist()


def brute_force_words(codes: np.ndarray, query: np.ndarray):
    """(position, distance) pairs of a (words, n) array, ordered by (distance, position)."""
    full = [
        sum((int(codes[j, i]) ^ int(query[j])).bit_count() for j in range(codes.shape[0]))
        for i in range(codes.shape[1])
    ]
    return sorted(((i, d) for i, d in enumerate(full)), key=lambda p: (p[1], p[0]))


@pytest.mark.parametrize("radius", [0, 3, 52, 200, 254, 255, 256])
def test_codes_256_bits_apart_are_found_only_at_full_radius(multi_index, radius):
    rng = np.random.default_rng(radius)
    codes = rng.integers(0, 2**64, (4, 200), dtype=np.uint64, endpoint=False)
    query = codes[:, 7].copy()
    full = np.uint64(2**64 - 1)
    codes[:, 30] = query ^ full  # every bit differs: distance 256
    codes[:, 150] = query ^ full
    codes[:, 90] = query ^ full
    codes[0, 90] ^= np.uint64(1)  # distance 255
    codes[:, 120] = query  # distance 0, after position 7
    index = HammingCodes(codes)
    ids, d = index.within(query, radius)
    want = [(i, dd) for i, dd in brute_force_words(codes, query) if dd <= radius]
    assert list(zip(ids.tolist(), d.tolist())) == want
    if radius == 256:
        assert (ids[-2:].tolist(), d[-2:].tolist()) == ([30, 150], [256, 256])


def test_nearest_with_k_beyond_the_set_returns_every_code_in_order(multi_index):
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 2**64, (4, 150), dtype=np.uint64, endpoint=False)
    query = codes[:, 3] ^ np.uint64(2**64 - 1)
    index = HammingCodes(codes)
    ids, d = index.nearest(query, 500)
    assert list(zip(ids.tolist(), d.tolist())) == brute_force_words(codes, query)
    assert d[-1] == 256 and ids[-1] == 3


def test_nearest_breaks_distance_ties_by_position(multi_index, monkeypatch):
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 2**64, (4, 3000), dtype=np.uint64, endpoint=False)
    query = rng.integers(0, 2**64, 4, dtype=np.uint64, endpoint=False)
    near = query.copy()
    near[2] ^= np.uint64(0b111)
    tied = [2990, 17, 1400, 640, 2001, 3]  # six codes at distance 3, two of them beyond k
    for i in tied:
        codes[:, i] = near
    monkeypatch.setattr(hamming, "THREAD_MIN", 0)  # the tied codes fall in different threads
    index = HammingCodes(codes)
    ids, d = index.nearest(query, 4)
    assert ids.tolist() == sorted(tied)[:4] and d.tolist() == [3] * 4
    ids, d = index.nearest(query, 8)
    assert ids[:6].tolist() == sorted(tied)
    assert list(zip(ids.tolist(), d.tolist())) == brute_force_words(codes, query)[:8]


def test_wide_radius_row_scan_matches_across_threads_and_chunks(monkeypatch):
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 2**64, (4, 6000), dtype=np.uint64, endpoint=False)
    query = codes[:, 4321] ^ np.uint64(0xFFFF)
    pairs = brute_force_words(codes, query)
    for radius in (100, 116, 256):
        want = [(i, d) for i, d in pairs if d <= radius]
        one = HammingCodes(codes).within(query, radius)
        monkeypatch.setattr(hamming, "THREAD_MIN", 0)
        monkeypatch.setattr(hamming, "ROW_CHUNK", 700)  # chunks that do not divide the spans
        two = HammingCodes(codes).within(query, radius)
        monkeypatch.undo()
        for ids, d in (one, two):
            assert list(zip(ids.tolist(), d.tolist())) == want


@pytest.mark.parametrize("k", [1, 3])
def test_nearest_is_not_misled_by_a_complement_code(multi_index, k):
    rng = np.random.default_rng(k)
    codes = rng.integers(0, 2**64, (4, 400), dtype=np.uint64, endpoint=False)
    query = codes[:, 0] ^ np.uint64(2**64 - 1)  # code 0 is 256 bits away, the rest ~128
    index = HammingCodes(codes)
    ids, d = index.nearest(query, k)
    assert list(zip(ids.tolist(), d.tolist())) == brute_force_words(codes, query)[:k]
    assert 0 not in ids.tolist()


@pytest.mark.parametrize("radius", [0, 7, 31])
def test_the_compiled_search_gives_numpys_answers(monkeypatch, radius):
    """The loop ``provkit serve`` compiles against numpy's multi-index search, on codes
    clustered so that buckets hold many codes and several blocks find the same one."""
    assert hamming.use_compiled(), "numba (the serve extra) is not installed"
    kernel = hamming._compiled
    rng = np.random.default_rng(radius)
    base = rng.integers(0, 2**64, (4, 300), dtype=np.uint64, endpoint=False)
    codes = np.repeat(base, 200, axis=1)
    flips = rng.integers(0, 256, (codes.shape[1], 6))
    for col, bits in enumerate(flips):
        for b in bits:
            codes[b // 64, col] ^= np.uint64(1) << np.uint64(b % 64)
    index = HammingCodes(codes)
    assert index._multi_index()[2] is not None
    for pick in range(0, codes.shape[1], 997):
        q = codes[:, pick].copy()
        monkeypatch.setattr(hamming, "_compiled", None)
        want = index.within(q, radius)
        monkeypatch.setattr(hamming, "_compiled", kernel)
        assert index._mih_within(q, radius) is not None  # the compiled loop answered
        got = index.within(q, radius)
        assert [a.tolist() for a in got] == [a.tolist() for a in want]
        assert pick in got[0].tolist()
