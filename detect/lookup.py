"""Hash and match in the shape platforms use (Meta's Hasher-Matcher-Actioner).

:func:`hash_file` gives an upload's signals (pdq, phash, dhash, and the PDQ quality).
:class:`ReferenceBank` holds every bank of a workspace in memory and answers
:meth:`ReferenceBank.lookup` ``(signal_type, signal)`` with the matching items of each
bank: their ids, the partner's own id and metadata, and their distances. A bank
switched off for matching answers nothing; a bank's own match distance (``provkit
bank set NAME --max-distance pdq=20``) applies when the caller gives none. :meth:`ReferenceBank.refresh` re-reads only the sets whose
version changed (:mod:`detect.index` stamps each change) and swaps the new copy in
whole, so lookups running meanwhile keep the old copy: a reload never stops service.
:meth:`ReferenceBank.status` says when the copy was last checked and whether a set
changed since (how stale it is).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from provkit.detect.index import ReferenceIndex
from provkit.detect.index_bank import BankSettings, item_details
from provkit.detect.index_cache import db_key, load_set
from provkit.detect.index_search import LoadedSet
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.workspace import connect
from provkit.provenance.fingerprint import (
    DHASH_MATCH,
    PDQ_MATCH,
    PDQ_MIN_QUALITY,
    PHASH_MATCH,
    fingerprint_file,
    fingerprint_image,
)

_HEX = re.compile("[0-9a-f]*")

#: Signal types a lookup understands: bits and the default match distance.
SIGNAL_TYPES = {"pdq": (256, PDQ_MATCH), "phash": (64, PHASH_MATCH), "dhash": (64, DHASH_MATCH)}
#: The largest ``max_distance`` a lookup accepts per signal type: a quarter of the bits
#: (PDQ 64, pHash and dHash 16). Past it a lookup stops being a match and becomes a
#: listing of the set: random 256-bit codes lie ~128 bits apart.
MAX_DISTANCE = {"pdq": 64, "phash": 16, "dhash": 16}
#: Matches a lookup answers per set unless ``limit`` says otherwise, and the most it may ask.
LOOKUP_LIMIT = 100
LOOKUP_LIMIT_MAX = 1000


def hash_file(path) -> dict:
    """The signals of one image: ``{"pdq", "pdq_quality", "phash", "dhash", "sha256"}``."""
    fp = fingerprint_file(path)
    return _signals(fp)


def hash_image(image) -> dict:
    return _signals(fingerprint_image(image))


def _signals(fp) -> dict:
    j = fp.to_json()
    return {
        "pdq": j["pdq"],
        "pdq_quality": j["pdq_quality"],
        "phash": j["phash"],
        "dhash": j["dhash"],
        "sha256": j["sha256"],
    }


def parse_signal(signal_type: str, signal: str):
    """A hex signal as the query value of its codes (bytes for pdq, int for 64-bit)."""
    if signal_type not in SIGNAL_TYPES:
        raise BadInput(f"unknown signal_type {signal_type!r} (known: {', '.join(SIGNAL_TYPES)})")
    bits = SIGNAL_TYPES[signal_type][0]
    text = (signal or "").strip().lower()
    if len(text) != bits // 4 or not _HEX.fullmatch(text):
        raise BadInput(
            f"a {signal_type} signal is {bits // 4} hex characters, got {len(text)}: {text[:70]!r}"
        )
    return bytes.fromhex(text) if bits > 64 else int(text, 16)


@dataclass(frozen=True)
class BankSet:
    name: str
    version: str
    loaded: LoadedSet
    loaded_at: float
    settings: BankSettings | None = None

    @property
    def items(self) -> int:
        return len(self.loaded.ids)


class ReferenceBank:
    """Every reference set of a workspace, in memory, for lookups by signal."""

    def __init__(self, db=None):
        self.db = db
        self._sets: dict[str, BankSet] = {}
        self._lock = threading.Lock()  # one refresh at a time; lookups never wait on it
        self.ready = False
        self.checked_at: float | None = None
        self.changed_since_check = False
        self.last_error: str | None = None
        self._local = threading.local()  # one read connection per thread, for details

    def _details(self, item_ids) -> dict:
        conn = getattr(self._local, "db", None)
        if conn is None:
            conn = self._local.db = connect(self.db) if not hasattr(self.db, "conn") else self.db
            self._local.key = db_key(conn)
        return item_details(conn, item_ids, self._local.key)

    def refresh(self) -> bool:
        """Re-read the banks whose version or settings changed; True if anything did."""
        with self._lock:
            index = ReferenceIndex(self.db)
            try:
                settings = index.banks.all()
                current = self._sets
                fresh: dict[str, BankSet] = {}
                for name, bank in settings.items():
                    old = current.get(name)
                    if old is not None and old.version == bank.version:
                        same = old.settings is not None and old.settings.matching == bank.matching
                        fresh[name] = (
                            old
                            if same
                            else BankSet(name, old.version, old.loaded, old.loaded_at, bank)
                        )
                        continue
                    loaded = load_set(index.db, name)
                    fresh[name] = BankSet(name, loaded.version, loaded, time.time(), bank)
                changed = fresh.keys() != current.keys() or any(
                    fresh[n] is not current.get(n) for n in fresh
                )
                self._sets = fresh  # one assignment: readers see the old or the new copy
                self.checked_at = time.time()
                self.changed_since_check = False
                self.ready = True
                self.last_error = None
                return changed
            finally:
                index.db.conn.close()

    def stale(self) -> bool:
        """Whether a set changed in the database since the loaded copy was made."""
        index = ReferenceIndex(self.db)
        try:
            versions = {n: (b.version, b.matching) for n, b in index.banks.all().items()}
        finally:
            index.db.conn.close()
        have = {
            n: (s.version, s.settings.matching if s.settings else None)
            for n, s in self._sets.items()
        }
        return versions != have

    def status(self) -> dict:
        sets = self._sets
        age = None if self.checked_at is None else round(time.time() - self.checked_at, 3)
        return {
            "ready": self.ready,
            "checked_seconds_ago": age,
            "changed_since_check": self.changed_since_check,
            "error": self.last_error,
            "sets": {
                n: {
                    "items": s.items,
                    "version": s.version,
                    "enabled": s.settings.enabled if s.settings else True,
                    "loaded_seconds_ago": round(time.time() - s.loaded_at, 3),
                }
                for n, s in sorted(sets.items())
            },
        }

    def names(self) -> list[str]:
        return sorted(self._sets)

    def settings(self, name: str) -> BankSettings | None:
        s = self._sets.get(name)
        return None if s is None else s.settings

    def lookup(
        self,
        signal_type: str,
        signal: str,
        *,
        sets=None,
        max_distance: int | None = None,
        details: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> dict[str, list[dict]]:
        """Per bank, the items within the match distance of ``signal`` (closest first):
        ``{"BANK": [{"bank_content_id": item id, "distance": bits, "partner_id": the
        partner's own id or None, "metadata": {...}}]}``. The distance is
        ``max_distance`` if given, else the bank's own for this signal type, else the
        default. Banks switched off for matching are left out (an empty list when named).
        PDQ codes of quality below 50 are left out on both sides, as HMA does.

        ``max_distance`` is at most :data:`MAX_DISTANCE` for the type (BadInput above);
        ``limit``/``offset``: per bank, matches ``offset`` to ``offset + limit`` of the
        ordered list, plus one where there are more (:func:`page` cuts it and says which
        banks had more)."""
        query = parse_signal(signal_type, signal)
        cap = MAX_DISTANCE[signal_type]
        if max_distance is not None and not 0 <= int(max_distance) <= cap:
            raise BadInput(
                f"max_distance {max_distance} is outside 0..{cap} for {signal_type} "
                "(a lookup finds near matches; it does not list a bank)"
            )
        if limit is not None and not 1 <= limit <= LOOKUP_LIMIT_MAX:
            raise BadInput(f"limit {limit} is outside 1..{LOOKUP_LIMIT_MAX}")
        if offset < 0:
            raise BadInput(f"offset {offset} is negative")
        current = self._sets
        named = bool(sets)
        wanted = list(sets) if sets else sorted(current)
        missing = [n for n in wanted if n not in current]
        if missing:
            raise BadInput(
                f"no bank named {', '.join(missing)} "
                f"(banks: {', '.join(sorted(current)) or 'none'})"
            )
        out = {}
        for name in wanted:
            bank = current[name].settings
            if bank is not None and not bank.enabled:
                if named:
                    out[name] = []
                continue
            radius = max_distance
            if radius is None:
                own = (bank.max_distance or {}) if bank is not None else {}
                radius = own.get(signal_type, SIGNAL_TYPES[signal_type][1])
            end = None if limit is None else offset + limit + 1  # one more: a next page?
            out[name] = _match(current[name].loaded, signal_type, query, int(radius))[offset:end]
        if details:
            found = [m for matches in out.values() for m in matches]
            if found:
                info = self._details([m["bank_content_id"] for m in found])
                for m in found:
                    partner, meta = info.get(m["bank_content_id"], (None, {}))
                    m["partner_id"], m["metadata"] = partner, meta
        return out


def page(found: dict[str, list[dict]], limit: int) -> tuple[dict[str, list[dict]], list[str]]:
    """A lookup asked with ``limit`` (which answers one extra match where there are more),
    cut to ``limit`` per bank, and the banks that have more (ask again with a larger
    ``offset``)."""
    more = [name for name, rows in found.items() if len(rows) > limit]
    return {name: rows[:limit] for name, rows in found.items()}, more


def _match(s: LoadedSet, signal_type: str, query, radius: int) -> list[dict]:
    codes = getattr(s, signal_type)
    rows, dist = codes.within(query, radius)
    if signal_type == "pdq" and rows.size:
        keep = s.quality[rows] >= PDQ_MIN_QUALITY
        rows, dist = rows[keep], dist[keep]
    if rows.size == 0:
        return []
    owners = s.owner[rows]
    # rows come ordered by distance: the first row of each item is its closest code
    seen: set[int] = set()
    out = []
    for owner, item, d in zip(owners.tolist(), s.ids[owners].tolist(), dist.tolist(), strict=True):
        if owner not in seen:
            seen.add(owner)
            out.append({"bank_content_id": item, "distance": d})
    return out
