"""A reference set in memory, and deciding which of its items match a query.

An item matches when its PDQ is within the PDQ limit (both hashes of usable
quality), or its pHash and dHash are both within their limits on the same image or
crop, or its CLIP embedding is similar enough, or the files are identical. The
defaults were chosen on real photographs (see docs/detect-index.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detect.hamming import HammingCodes
from detect.index_inputs import VARIANT
from provenance.core.errors import BadInput
from provenance.fingerprint import (
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


@dataclass
class LoadedSet:
    """One set in memory: the codes of every item and its crops (details stay in SQLite)."""

    version: str
    ids: np.ndarray  # item ids, ascending
    start: np.ndarray  # first code row of each item
    count: np.ndarray  # code rows per item
    owner: np.ndarray  # item row of each code row
    phash: HammingCodes
    dhash: HammingCodes
    pdq: HammingCodes
    quality: np.ndarray
    clip: np.ndarray | None
    clip_model: str | None

    @classmethod
    def from_rows(cls, version: str, rows: list[tuple]) -> LoadedSet:
        """From rows of (id, phash, dhash, pdq, pdq_quality, variants, clip, clip_model)."""
        ids, ph, dh, pdq, qual, variants, clips, models = list(zip(*rows)) or [()] * 8
        n = len(ids)
        var = np.frombuffer(b"".join(variants), VARIANT) if n else np.zeros(0, VARIANT)
        count = np.fromiter((1 + len(v) // VARIANT.itemsize for v in variants), np.int64, n)
        start = np.cumsum(count) - count
        total = int(count.sum())
        is_orig = np.zeros(total, bool)
        is_orig[start] = True
        phash = np.empty(total, np.uint64)
        dhash = np.empty(total, np.uint64)
        pdqs = np.empty((total, 32), np.uint8)
        quality = np.empty(total, np.uint8)
        phash[start] = np.array(ph, np.int64).view(np.uint64)
        dhash[start] = np.array(dh, np.int64).view(np.uint64)
        pdqs[start] = np.frombuffer(b"".join(pdq), np.uint8).reshape(n, 32)
        quality[start] = np.array(qual, np.uint8)
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
        return cls(
            version=version,
            ids=np.array(ids, np.int64),
            start=start,
            count=count,
            owner=np.repeat(np.arange(n), count),
            phash=HammingCodes(phash),
            dhash=HammingCodes(dhash),
            pdq=HammingCodes(pdqs.view(np.uint64).T),
            quality=quality,
            clip=clip,
            clip_model=model,
        )


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
    """Items of one loaded set that match, as Match fields (without stored details)."""
    if len(s.ids) == 0:
        return []
    found = [s.owner[s.phash.within(fp.phash, limits["phash"])[0]]]
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
    # closest per item. A hash match needs pHash and dHash close on the same code.
    rows = np.concatenate([np.arange(s.start[i], s.start[i] + s.count[i]) for i in items])
    cuts = np.concatenate([[0], np.cumsum(s.count[items])[:-1]])
    ph = s.phash.distances(fp.phash, rows)
    dh = s.dhash.distances(fp.dhash, rows)
    pdq_all = s.pdq.distances(fp.pdq, rows)
    pair = np.where((ph <= limits["phash"]) & (dh <= limits["dhash"]), ph, 65)
    best_pair = np.minimum.reduceat(pair, cuts)
    pair_code = np.array(
        [
            cuts[j] + int(np.argmin(pair[cuts[j] : cuts[j] + s.count[i]]))
            for j, i in enumerate(items)
        ]
    )
    paired = best_pair <= 64
    dist = {
        "pdq": np.minimum.reduceat(pdq_all, cuts),
        "phash": np.where(paired, ph[pair_code], np.minimum.reduceat(ph, cuts)),
        "dhash": np.where(paired, dh[pair_code], np.minimum.reduceat(dh, cuts)),
    }
    pdq_ok = np.where(s.quality[rows] >= PDQ_MIN_QUALITY, pdq_all, 257)
    pdq_decide = np.minimum.reduceat(pdq_ok, cuts)
    exact_set = set(exact.tolist())
    out = []
    for j, i in enumerate(items.tolist()):
        d = {kind: int(dist[kind][j]) for kind in ("pdq", "phash", "dhash")}
        sim = None if sims is None or not np.isfinite(sims[i]) else round(float(sims[i]), 4)
        if use_pdq and pdq_decide[j] <= limits["pdq"]:
            kind, distance = "pdq", d["pdq"]
        elif paired[j]:
            kind, distance = "phash", d["phash"]
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
