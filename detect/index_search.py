"""A reference set in memory, and deciding which of its items match a query.

An item matches when its PDQ is within the PDQ limit (both hashes of usable
quality), or its pHash and dHash are both within their limits on the same image or
crop, or its CLIP embedding is similar enough, or the files are identical. The
defaults were chosen on real photographs (see docs/detect-index.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from provkit.detect.hamming import HammingCodes
from provkit.detect.index_inputs import VARIANT
from provkit.provenance.core.errors import BadInput
from provkit.provenance.fingerprint import (
    DHASH_MATCH,
    PDQ_MATCH,
    PDQ_MIN_QUALITY,
    PHASH_MATCH,
    Fingerprint,
)

#: Cosine similarity of CLIP embeddings at or above which two images are called duplicates.
CLIP_MATCH = 0.95
#: Default match thresholds per kind (bits for hashes, cosine similarity for CLIP).
DEFAULT_LIMITS = {"pdq": PDQ_MATCH, "phash": PHASH_MATCH, "dhash": DHASH_MATCH, "clip": CLIP_MATCH}
KINDS = ("pdq", "phash", "dhash", "clip")


#: Distance reported for a kind an item does not have (an imported hash of another kind).
MISSING = 999
#: Bits of kind k in a code row's ``kinds`` mask.
KIND_BITS = {"pdq": 1, "phash": 2, "dhash": 4}
#: In-memory PDQ quality of an imported hash whose list gave none: usable (as partners
#: share only hashes they consider usable); stored as NULL.
UNKNOWN_QUALITY = 255
#: Code row of an image (or its crop): every hash kind.
ALL_KINDS = 7


class KindCodes:
    """The codes of one hash kind, over the code rows of a set that have that kind.

    ``rows`` maps a code's position to its code row (ascending); None when every code
    row has this kind (then position and code row are the same).
    """

    def __init__(self, codes: HammingCodes, rows: np.ndarray | None, total: int):
        self.codes, self.rows, self.total = codes, rows, total

    def __len__(self) -> int:
        return len(self.codes)

    def within(self, query, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Code rows within ``radius`` of the query, and their distances."""
        if len(self.codes) == 0:
            return np.empty(0, np.int64), np.empty(0, np.uint16)
        pos, d = self.codes.within(query, radius)
        return (pos if self.rows is None else self.rows[pos]), d

    def distances(self, query, code_rows: np.ndarray) -> np.ndarray:
        """Distances to the given code rows; :data:`MISSING` where a row lacks this kind."""
        if self.rows is None:
            return self.codes.distances(query, code_rows)
        out = np.full(len(code_rows), MISSING, np.uint16)
        if len(self.rows) == 0 or len(code_rows) == 0:
            return out
        pos = np.searchsorted(self.rows, code_rows)
        pos = np.minimum(pos, len(self.rows) - 1)
        has = self.rows[pos] == code_rows
        if has.any():
            out[has] = self.codes.distances(query, pos[has])
        return out


def kind_codes(kinds: np.ndarray, bit: int, codes: np.ndarray) -> KindCodes:
    """Codes of one kind from per-row arrays: keep the rows whose ``kinds`` has ``bit``."""
    has = (kinds & bit) != 0
    if has.all():
        return KindCodes(HammingCodes(codes), None, len(kinds))
    rows = np.flatnonzero(has)
    picked = codes[..., rows] if codes.ndim == 2 else codes[rows]
    return KindCodes(HammingCodes(picked), rows, len(kinds))


@dataclass
class LoadedSet:
    """One set in memory: the codes of every item and its crops (details stay in SQLite).

    An item has one or more code rows (the image, then its crops); ``kinds`` says which
    hash kinds each code row has (an image has all three, an imported hash one).
    """

    version: str
    ids: np.ndarray  # item ids, ascending
    start: np.ndarray  # first code row of each item
    count: np.ndarray  # code rows per item
    owner: np.ndarray  # item row of each code row
    kinds: np.ndarray  # per code row: bit mask of KIND_BITS
    phash: KindCodes
    dhash: KindCodes
    pdq: KindCodes
    quality: np.ndarray
    clip: np.ndarray | None
    clip_model: str | None

    @classmethod
    def from_rows(cls, version: str, rows: list[tuple]) -> LoadedSet:
        """From rows of (id, phash, dhash, pdq, pdq_quality, variants, clip, clip_model);
        phash, dhash and pdq may be None (an imported hash has one kind only)."""
        return cls.from_arrays(version, **arrays_from_rows(rows))

    @classmethod
    def from_arrays(
        cls,
        version: str,
        *,
        ids,
        count,
        kinds,
        phash,
        dhash,
        pdq,
        quality,
        clip=None,
        clip_model=None,
        start=None,
        owner=None,
    ) -> LoadedSet:
        """From per-item (ids, count) and per-code-row arrays (kinds, phash, dhash, pdq
        as (4, rows) uint64 words, quality); phash/dhash/pdq hold only the rows that
        have that kind when they are shorter than ``kinds``."""
        n = len(ids)
        if start is None:
            start = np.cumsum(count) - count
        if owner is None:
            owner = np.repeat(np.arange(n), count)
        total = len(kinds)

        def codes(arr, bit):
            if isinstance(arr, KindCodes):
                return arr
            if (arr.shape[-1] if arr.ndim == 2 else len(arr)) == total:
                return kind_codes(kinds, bit, arr)
            return KindCodes(HammingCodes(arr), np.flatnonzero(kinds & bit), total)

        return cls(
            version=version,
            ids=ids,
            start=start,
            count=count,
            owner=owner,
            kinds=kinds,
            phash=codes(phash, KIND_BITS["phash"]),
            dhash=codes(dhash, KIND_BITS["dhash"]),
            pdq=codes(pdq, KIND_BITS["pdq"]),
            quality=quality,
            clip=clip,
            clip_model=clip_model,
        )


def arrays_from_rows(rows: list[tuple]) -> dict:
    """Per-item and per-code-row arrays (see :meth:`LoadedSet.from_arrays`) from rows
    of (id, phash, dhash, pdq, pdq_quality, variants, clip, clip_model)."""
    ids, ph, dh, pdq, qual, variants, clips, models = list(zip(*rows)) or [()] * 8
    n = len(ids)
    var = np.frombuffer(b"".join(variants), VARIANT) if n else np.zeros(0, VARIANT)
    count = np.fromiter((1 + len(v) // VARIANT.itemsize for v in variants), np.int64, n)
    start = np.cumsum(count) - count
    total = int(count.sum())
    is_orig = np.zeros(total, bool)
    is_orig[start] = True
    phash = np.zeros(total, np.uint64)
    dhash = np.zeros(total, np.uint64)
    pdqs = np.zeros((total, 32), np.uint8)
    quality = np.zeros(total, np.uint8)
    kinds = np.full(total, ALL_KINDS, np.uint8)
    has_ph = np.fromiter((v is not None for v in ph), bool, n)
    has_dh = np.fromiter((v is not None for v in dh), bool, n)
    has_pdq = np.fromiter((v is not None for v in pdq), bool, n)
    kinds[start] = (
        has_pdq * KIND_BITS["pdq"] + has_ph * KIND_BITS["phash"] + has_dh * KIND_BITS["dhash"]
    ).astype(np.uint8)
    phash[start] = np.array([v or 0 for v in ph], np.int64).view(np.uint64)
    dhash[start] = np.array([v or 0 for v in dh], np.int64).view(np.uint64)
    pdqs[start] = np.frombuffer(b"".join(v or bytes(32) for v in pdq), np.uint8).reshape(n, 32)
    quality[start] = np.array([UNKNOWN_QUALITY if q is None else q for q in qual], np.uint8)
    rest = ~is_orig
    phash[rest] = var["phash"]
    dhash[rest] = var["dhash"]
    pdqs[rest] = np.frombuffer(var["pdq"].tobytes(), np.uint8).reshape(-1, 32)
    quality[rest] = var["quality"]
    clip = model = None
    if any(c is not None for c in clips):
        model = next(m for c, m in zip(clips, models) if c is not None)
        dim = len(next(c for c in clips if c is not None)) // 4
        clip = np.full((n, dim), np.nan, np.float32)
        for i, (c, m) in enumerate(zip(clips, models)):
            if c is not None and m == model:
                clip[i] = np.frombuffer(c, np.float32)
    return {
        "ids": np.array(ids, np.int64),
        "count": count,
        "start": start,
        "kinds": kinds,
        "phash": phash,
        "dhash": dhash,
        "pdq": np.ascontiguousarray(pdqs.view(np.uint64).T),
        "quality": quality,
        "clip": clip,
        "clip_model": model,
    }


def resolve_limits(max_distance) -> dict:
    """Per-kind thresholds from None (defaults), a number of bits, or a dict."""
    limits = dict(DEFAULT_LIMITS)
    if max_distance is None:
        return limits
    if isinstance(max_distance, dict):
        unknown = set(max_distance) - set(KINDS)
        if unknown:
            raise BadInput(
                f"unknown fingerprint kind(s) {', '.join(sorted(unknown))}; use {', '.join(KINDS)}"
            )
        limits.update(max_distance)
        return limits
    d = float(max_distance)
    if d < 0 or d > 64:
        raise BadInput(f"--max-distance {max_distance} is outside 0..64 bits")
    limits.update(
        phash=int(d),
        dhash=round(d * DHASH_MATCH / PHASH_MATCH),
        pdq=round(d * PDQ_MATCH / PHASH_MATCH),
    )
    return limits


def rank(m) -> tuple:
    """Sort key: identical files first, then by distance relative to the kind's limit."""
    limit = DEFAULT_LIMITS[m.kind]
    closeness = m.distance / (1 - limit) if m.kind == "clip" else m.distance / max(limit, 1)
    return (not m.exact, closeness, m.set, m.item_id)


def match_set(s: LoadedSet, fp: Fingerprint, qclip, limits: dict, exact_ids) -> list[dict]:
    """Items of one loaded set that match, as Match fields (without stored details).

    An image item (or crop) matches by PDQ, or by pHash and dHash together; an imported
    hash matches by its own kind alone. Distances of kinds an item lacks are None.
    """
    if len(s.ids) == 0:
        return []
    lp, ld = limits["phash"], limits["dhash"]
    found = [s.owner[s.phash.within(fp.phash, lp)[0]]]
    if len(s.dhash) and (s.phash.rows is not None or len(s.phash) == 0):
        # dHash-only rows exist when some rows lack a pHash: they match on dHash alone.
        dh_rows = s.dhash.within(fp.dhash, ld)[0]
        found.append(s.owner[dh_rows[(s.kinds[dh_rows] & KIND_BITS["phash"]) == 0]])
    use_pdq = fp.pdq_quality >= PDQ_MIN_QUALITY
    if use_pdq:
        rows = s.pdq.within(fp.pdq, limits["pdq"])[0]
        found.append(s.owner[rows[s.quality[rows] >= PDQ_MIN_QUALITY]])
    sims = None
    if qclip is not None and s.clip is not None:
        with np.errstate(invalid="ignore"):
            sims = s.clip @ qclip.astype(np.float32)
        found.append(np.flatnonzero(sims >= limits["clip"]))
    exact = np.searchsorted(s.ids, np.array(exact_ids, np.int64))
    exact = exact[(exact < len(s.ids)) & (s.ids[np.minimum(exact, len(s.ids) - 1)] == exact_ids)]
    found.append(exact)
    items = np.unique(np.concatenate(found))
    if items.size == 0:
        return []
    # Distances to every code of each candidate (the image and its crops), then the
    # closest per item. A hash match needs pHash and dHash close on the same code
    # (or the one of them an imported hash has).
    count = np.asarray(s.count[items])
    first = np.asarray(s.start[items])
    rows = np.concatenate([np.arange(a, a + c) for a, c in zip(first.tolist(), count.tolist())])
    cuts = np.concatenate([[0], np.cumsum(count)[:-1]])
    kinds = np.asarray(s.kinds[rows])
    has_ph = (kinds & KIND_BITS["phash"]) != 0
    has_dh = (kinds & KIND_BITS["dhash"]) != 0
    ph = s.phash.distances(fp.phash, rows)
    dh = s.dhash.distances(fp.dhash, rows)
    pdq_all = s.pdq.distances(fp.pdq, rows)
    hash_ok = (has_ph | has_dh) & ((ph <= lp) | ~has_ph) & ((dh <= ld) | ~has_dh)
    primary = np.where(has_ph, ph, dh)
    pair = np.where(hash_ok, primary, MISSING + 1)
    best_pair = np.minimum.reduceat(pair, cuts)
    pair_code = np.array(
        [cuts[j] + int(np.argmin(pair[cuts[j] : cuts[j] + count[j]])) for j in range(len(items))]
    )
    paired = best_pair <= MISSING
    dist = {
        "pdq": np.minimum.reduceat(pdq_all, cuts),
        "phash": np.where(paired, ph[pair_code], np.minimum.reduceat(ph, cuts)),
        "dhash": np.where(paired, dh[pair_code], np.minimum.reduceat(dh, cuts)),
    }
    quality = np.asarray(s.quality[rows])
    pdq_ok = np.where(quality >= PDQ_MIN_QUALITY, pdq_all, MISSING)
    pdq_decide = np.minimum.reduceat(pdq_ok, cuts)
    exact_set = set(exact.tolist())
    out = []
    for j, i in enumerate(items.tolist()):
        d = {
            kind: (None if dist[kind][j] >= MISSING else int(dist[kind][j]))
            for kind in ("pdq", "phash", "dhash")
        }
        sim = None if sims is None or not np.isfinite(sims[i]) else round(float(sims[i]), 4)
        if use_pdq and pdq_decide[j] <= limits["pdq"]:
            kind, distance = "pdq", d["pdq"]
        elif paired[j]:
            kind = "phash" if has_ph[pair_code[j]] else "dhash"
            distance = d[kind]
        elif sim is not None and sim >= limits["clip"]:
            kind, distance = "clip", round(1 - sim, 4)
        elif i in exact_set:
            kind, distance = "pdq", d["pdq"]
        else:
            continue
        out.append(
            {
                "item_id": int(s.ids[i]),
                "kind": kind,
                "distance": distance,
                "distances": d,
                "clip_similarity": sim,
                "exact": i in exact_set,
            }
        )
    return out
