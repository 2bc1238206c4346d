"""Banks of images and fast near-duplicate search over them.

A bank (training data, an opt-out registry, a newsroom's archive, a partner's hash
list; called a reference set in older code) is a named group of images stored in
SQLite with their fingerprints (pHash, dHash, PDQ, SHA-256), the fingerprints of a few crops of each image (so cropped copies still match), an
optional CLIP embedding and free metadata (source URL, licence, opt-out...). The bank
table (label, action, matching switch, own match distance) sits behind the storage seam
(:class:`detect.index_bank.BankStore`, ``self.banks``).

:class:`ReferenceIndex` adds and removes images, and searches: each set is loaded from
SQLite once per process into numpy arrays (:mod:`detect.hamming`), and reloaded only
when the set changes (every change stamps the set with a new version).

Reading and fingerprinting the images lives in :mod:`detect.index_inputs`; the
in-memory set and the match rule in :mod:`detect.index_search`; the values it returns
(RefSet, AddReport, Match) in :mod:`detect.index_values`.

Why one module of over 400 lines: :class:`ReferenceIndex` owns the reference tables,
their migrations and the per-process cache of loaded sets; reading inputs, the
in-memory search and the returned values are already split out (above).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from provkit.detect.clip import load_model
from provkit.detect.index_bank import (  # noqa: F401  (re-exported)
    PARTNER_KEYS,
    BankSettings,
    bank_store,
    find_item,
    hash_details,
    hash_stats,
    index_export,
    index_import,
    partner_id_of,
    remove_hashes,
)
from provkit.detect.index_cache import forget, load_set
from provkit.detect.index_inputs import (  # noqa: F401  (re-exported: part of this module's API)
    CROPS,
    VARIANT,
    crop_fingerprints,
    fingerprint_many,
    read_sources,
)
from provkit.detect.index_schema import HASH_ID_BASE, SCHEMA
from provkit.detect.index_search import (  # noqa: F401
    CLIP_MATCH,
    DEFAULT_LIMITS,
    KINDS,
    LoadedSet,
    match_set,
    rank,
    resolve_limits,
)
from provkit.detect.index_values import AddReport, Match, RefSet
from provkit.provenance.core.clock import now_iso
from provkit.provenance.core.context import PUBLISHED_KEYS, parse_when
from provkit.provenance.core.errors import BadInput, ConfigError, ProvkitError
from provkit.provenance.core.workspace import database, migrate
from provkit.provenance.fingerprint import (
    PDQ_MIN_QUALITY,
    Fingerprint,
    fingerprint_file,
    fingerprint_image,
)


def _date_taken(path) -> str | None:
    """EXIF DateTimeOriginal (else DateTime) of an image as an ISO date, or None."""
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            when = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
    except Exception:  # noqa: BLE001 - a date is a bonus; the image was already read
        return None
    parsed = parse_when(when) if isinstance(when, str) else None
    return parsed.date().isoformat() if parsed else None


class _ClipUnavailable(Exception):
    """A set's CLIP model cannot be loaded: similarity is not checked, and said so."""


# -- storage ------------------------------------------------------------------------------


MIGRATIONS = SCHEMA  # the storage steps live in detect.index_schema


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


class _AddBatch:
    """Fingerprinted images waiting to be embedded (if asked) and written to one set."""

    def __init__(
        self,
        index: ReferenceIndex,
        name: str,
        clip,
        metadata: dict,
        per_item: dict,
        names: dict | None = None,
    ):
        self.index, self.name, self.clip = index, name, clip
        self.names = names or {}
        self.metadata, self.per_item = metadata, per_item
        self.pending: list[tuple] = []
        self.errors: list[tuple[str, str]] = []
        self.added = self.present = 0
        self.model = None
        self.model_id: str | None = None

    def _load_model(self) -> None:
        """The CLIP model, loaded on first use (after the worker processes have started)."""

        self.model = load_model(self.clip) if isinstance(self.clip, str) else self.clip
        self.model_id = self.model.model_id
        db = self.index.db
        other = db.execute(
            "SELECT clip_model FROM ref_items WHERE set_name = ? AND clip_model IS NOT NULL "
            "AND clip_model != ? LIMIT 1",
            [self.name, self.model_id],
        ).fetchone()
        if other:
            raise ConfigError(
                f"set {self.name!r} holds embeddings of {other[0]}, not {self.model_id}; "
                "use that model or a new set"
            )
        self.index.banks.set_clip_spec(self.name, self.model.spec)

    def _embed(self) -> list[bytes | None]:
        if self.clip is None or not self.pending:
            return [None] * len(self.pending)
        if self.model is None:
            self._load_model()
        vectors, failed = self.model.embed_many([r[1] for r in self.pending])
        for i in sorted(failed, reverse=True):
            err = failed[i]
            reason = err.reason if isinstance(err, ProvkitError) else str(err)
            self.errors.append((self.pending[i][1], reason))
            del self.pending[i]
        vectors = np.delete(vectors, sorted(failed), axis=0)
        return [v.astype(np.float32).tobytes() for v in vectors]

    def flush(self) -> None:
        embeddings = self._embed()
        db, now = self.index.db, now_iso()
        with db.conn:
            for (_, path, fpj, variants, thumb), emb in zip(self.pending, embeddings):
                fp = Fingerprint.from_json(fpj)
                meta = {**self.metadata, **self.per_item.get(path, {})}
                if not any(meta.get(k) for k in PUBLISHED_KEYS):
                    taken = _date_taken(path)  # the photo's own date, when it carries one
                    if taken:
                        meta["date_taken"] = taken
                cur = db.execute(
                    """INSERT OR IGNORE INTO ref_items
                       (set_name, path, sha256, phash, dhash, pdq, pdq_quality, variants,
                        clip, clip_model, metadata, added, thumbnail)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [
                        self.name,
                        self.names.get(path) or str(Path(path).resolve()),
                        fp.sha256,
                        _signed(fp.phash),
                        _signed(fp.dhash),
                        fp.pdq,
                        fp.pdq_quality,
                        variants,
                        emb,
                        self.model_id if emb else None,
                        json.dumps(meta, sort_keys=True),
                        now,
                        thumb,
                    ],
                )
                if cur.rowcount:
                    self.added += 1
                    continue
                self.present += 1
                if emb is not None:  # already present: attach the embedding it lacked
                    db.execute(
                        "UPDATE ref_items SET clip = ?, clip_model = ? "
                        "WHERE set_name = ? AND sha256 = ?",
                        [emb, self.model_id, self.name, fp.sha256],
                    )
            self.index._touch(self.name)
        self.pending = []


def _hex_int(value, bits: int, what: str) -> int:
    text = str(value).strip().lower()
    if len(text) != bits // 4 or any(c not in "0123456789abcdef" for c in text):
        raise BadInput(f"{what} must be {bits // 4} hex characters, got {text[:70]!r}")
    return int(text, 16)


class ReferenceIndex:
    """Reference sets in a provkit database; add, list, remove, and search them."""

    def __init__(self, db=None):
        self.db = database(db)
        migrate(self.db, "detect.index", MIGRATIONS)
        row = self.db.execute("PRAGMA database_list").fetchone()
        self._key = row[2] or f"memory:{id(self.db)}"
        self.banks = bank_store(self.db)
        #: set name -> why CLIP similarity was not checked in the last :meth:`search`
        #: (the set has embeddings but its model could not be loaded)
        self.clip_not_checked: dict[str, str] = {}

    # -- sets -------------------------------------------------------------------------
    def sets(self) -> list[RefSet]:
        settings = self.banks.all()
        counts = {
            r[0]: r[1:]
            for r in self.db.execute(
                "SELECT set_name, COUNT(id), COUNT(clip), MAX(clip_model) FROM ref_items "
                "GROUP BY set_name"
            )
        }
        hashes = dict(
            self.db.execute(
                "SELECT set_name, SUM(n - n_removed) FROM ref_hash_blocks GROUP BY set_name"
            ).fetchall()
        )
        out = []
        for name, b in settings.items():
            n, with_clip, model = counts.get(name, (0, 0, None))
            out.append(
                RefSet(
                    name,
                    b.label,
                    b.protected,
                    b.description,
                    b.created,
                    n + (hashes.get(name) or 0),
                    with_clip,
                    model,
                    b.action,
                    b.enabled,
                    b.max_distance,
                )
            )
        return out

    def set_names(self) -> list[str]:
        return self.banks.names()

    def get_set(self, name: str) -> RefSet:
        for s in self.sets():
            if s.name == name:
                return s
        raise BadInput(f"no bank named {name!r}" + self._known())

    def _known(self) -> str:
        names = self.set_names()
        return f" (banks: {', '.join(names)})" if names else " (there are no banks yet)"

    def configure(self, name: str, **settings) -> RefSet:
        """Change a bank's action, enabled flag, match distances, label or description
        (:meth:`detect.index_bank.SqliteBankStore.configure`); its items stay."""
        self.banks.configure(name, **settings)
        return self.get_set(name)

    def stats(self, name: str) -> dict:
        """Size and fingerprint health of one set."""
        s = self.get_set(name)
        row = self.db.execute(
            """SELECT COUNT(*), SUM(pdq_quality < ?), AVG(pdq_quality), SUM(LENGTH(variants)) / ?,
                      MIN(added), MAX(added), COUNT(DISTINCT clip_model)
               FROM ref_items WHERE set_name = ?""",
            [PDQ_MIN_QUALITY, VARIANT.itemsize, name],
        ).fetchone()
        return {
            **s.to_json(),
            "low_quality_pdq": row[1] or 0,  # image items; imported: low_quality_imported_pdq
            "mean_pdq_quality": round(row[2], 1) if row[2] is not None else None,
            "crop_fingerprints": int(row[3] or 0),
            "first_added": row[4],
            "last_added": row[5],
            "clip_models": row[6],
            **hash_stats(self.db, name),
        }

    def _touch(self, name: str) -> None:
        self.banks.touch(name)

    def create_set(
        self, name: str, *, label=None, protected=False, description=None, action=None
    ) -> None:
        """Create a bank, or update its label/protected/description/action if it exists."""
        self.banks.create(
            name, label=label, protected=protected, description=description, action=action
        )

    def remove(self, name: str, items: Iterable[int | str] | None = None) -> int:
        """Remove a whole set, or only the given items (ids or paths). Returns items removed."""
        self.get_set(name)
        with self.db.conn:
            if items is None:
                n = self.db.execute("DELETE FROM ref_items WHERE set_name = ?", [name]).rowcount
                n += self.db.execute(
                    "SELECT COALESCE(SUM(n - n_removed), 0) FROM ref_hash_blocks "
                    "WHERE set_name = ?",
                    [name],
                ).fetchone()[0]
                self.db.execute("DELETE FROM ref_hash_blocks WHERE set_name = ?", [name])
                self.banks.delete(name)
            else:
                items = list(items)
                n = remove_hashes(self.db, name, items)
                for item in items:
                    if isinstance(item, int) or str(item).isdigit():
                        n += self.db.execute(
                            "DELETE FROM ref_items WHERE set_name = ? AND id = ?", [name, int(item)]
                        ).rowcount
                        continue
                    n += self.db.execute(  # a stored path (source ids: remove_hashes)
                        "DELETE FROM ref_items WHERE set_name = ? AND path IN (?, ?)",
                        [name, str(item), str(Path(item).resolve())],
                    ).rowcount
                    partner = " OR ".join(
                        f"json_extract(metadata, '$.{k}') = ?" for k in PARTNER_KEYS
                    )
                    n += self.db.execute(  # an image item added with a partner id
                        f"DELETE FROM ref_items WHERE set_name = ? AND ({partner})",
                        [name, *[str(item)] * len(PARTNER_KEYS)],
                    ).rowcount
                self._touch(name)
        forget(self.db, name)
        return n

    # -- adding -----------------------------------------------------------------------
    def add(
        self,
        name: str,
        paths: Iterable,
        *,
        label: str | None = None,
        protected: bool = False,
        description: str | None = None,
        action: str | None = None,
        clip=None,
        metadata: dict | None = None,
        item_metadata: dict | None = None,
        crops: bool = True,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
        names: dict | None = None,
    ) -> AddReport:
        """Fingerprint images into a set (created if new); bad files are reported, not fatal.

        ``clip`` is a loaded :class:`detect.clip.ClipModel` or a spec to load; ``metadata``
        applies to every item, ``item_metadata`` maps a path to its own extra fields,
        ``names`` a path to what to store as the item's path instead (an upload's name).
        Images already in the set (same SHA-256) are counted, not added twice.
        """
        t0 = time.perf_counter()
        self.create_set(
            name, label=label, protected=protected, description=description, action=action
        )
        batch = _AddBatch(
            self,
            name,
            clip,
            dict(metadata or {}),
            {str(k): v for k, v in (item_metadata or {}).items()},
            {str(k): v for k, v in (names or {}).items()},
        )
        jobs = [str(p) for p in paths]
        # Rows are written as results arrive (256 at a time), so memory stays flat and an
        # interrupted run keeps what it did; a rerun skips those (same SHA-256).
        for result in fingerprint_many(jobs, crops=crops, workers=workers, progress=progress):
            if result[0] == "error":
                batch.errors.append((result[1], result[2]))
                continue
            batch.pending.append(result)
            if len(batch.pending) >= 256:
                batch.flush()
        batch.flush()
        forget(self.db, name)
        return AddReport(
            name,
            batch.added,
            batch.present,
            tuple(batch.errors),
            time.perf_counter() - t0,
            batch.model_id,
        )

    def item(self, name: str, key) -> dict | None:
        """One item of bank ``name`` by partner id, item id or stored path (None if none)."""
        self.get_set(name)
        return find_item(self.db, name, key)

    def thumbnail(self, item_id: int) -> bytes | None:
        """The small JPEG stored for an item (None for hash-only or older items)."""
        row = self.db.execute(
            "SELECT thumbnail FROM ref_items WHERE id = ?", [int(item_id)]
        ).fetchone()
        return row[0] if row else None

    # -- loading ----------------------------------------------------------------------
    def _load(self, name: str) -> LoadedSet:
        """The set in memory, through the one loader (:func:`detect.index_cache.load_set`)."""
        return load_set(self.db, name)

    def load(self, name: str) -> LoadedSet:
        """The set ``name`` in memory (mapped from its file cache when it has one)."""
        return load_set(self.db, name)

    # -- search -----------------------------------------------------------------------
    def search(
        self,
        query,
        *,
        sets: Iterable[str] | None = None,
        max_distance=None,
        k: int = 10,
        clip=None,
        image=None,
    ) -> list[Match]:
        """Reference items that are near-duplicates of ``query``, closest first.

        ``query`` is a path, a PIL image or a :class:`Fingerprint`. An item matches when
        its PDQ is within the PDQ limit, or its pHash and dHash both are within theirs
        (on the image or one of its crops), or its CLIP similarity reaches the CLIP
        limit. ``max_distance`` is the pHash limit in bits (the dHash and PDQ limits
        scale with it from the defaults 10, 12 and 31) or a dict per kind
        (``{"pdq": 20, "clip": 0.9}``); None uses each bank's own distances (set with
        ``provkit bank set NAME --max-distance``), else the defaults. A bank switched
        off (``enabled`` false) is not searched.
        ``clip``: None uses the model a set was embedded with (if the query is an
        image), False skips CLIP, or a model or spec to use. ``image``: the decoded
        image behind a Fingerprint query, for CLIP (saves decoding the file again).
        """
        given = None if max_distance is None else resolve_limits(max_distance)
        fp, decoded = self._query(query)
        image = decoded if image is None else image
        settings = self.banks.all()
        names = list(sets) if sets else list(settings)
        matches: list[Match] = []
        self.clip_not_checked = {}
        for name in names:
            bank = settings.get(name)
            if bank is None:
                raise BadInput(f"no bank named {name!r}" + self._known())
            if not bank.enabled:  # switched off for matching: its items stay
                continue
            limits = given or resolve_limits(bank.max_distance)
            loaded = self._load(name)
            try:
                qclip = self._query_clip(loaded, image, clip, bank.clip_spec)
            except _ClipUnavailable as e:
                qclip = None
                self.clip_not_checked[name] = str(e)
            exact = []
            if fp.sha256:
                exact = [
                    r[0]
                    for r in self.db.execute(
                        "SELECT id FROM ref_items WHERE set_name = ? AND sha256 = ?",
                        [name, fp.sha256],
                    )
                ]
            found = match_set(loaded, fp, qclip, limits, exact)
            matches += self._details(name, found, bank)
        matches.sort(key=rank)
        return matches[:k]

    def _details(self, name: str, found: list[dict], bank: BankSettings) -> list[Match]:
        """Matches with their stored path, hash and metadata (read for these items only)."""
        if not found:
            return []
        ids = [f["item_id"] for f in found if f["item_id"] < HASH_ID_BASE]
        imported = hash_details(
            self.db, [f["item_id"] for f in found if f["item_id"] >= HASH_ID_BASE]
        )
        rows = {i: (i, "", "", m, added, sid) for i, (sid, m, added) in imported.items()}
        for lo in range(0, len(ids), 500):
            part = ids[lo : lo + 500]
            marks = ",".join("?" * len(part))
            for r in self.db.execute(
                "SELECT id, path, sha256, metadata, added, NULL FROM ref_items "
                f"WHERE id IN ({marks})",
                part,
            ):
                rows[r[0]] = r
        out = []
        for f in found:
            r = rows.get(f["item_id"])
            if r is None:  # removed since the set was loaded
                continue
            meta = r[3] if isinstance(r[3], dict) else json.loads(r[3] or "{}")
            out.append(
                Match(
                    set=name,
                    path=r[1] or "",
                    sha256=r[2] or "",
                    source_id=r[5],
                    partner_id=r[5] if r[5] is not None else partner_id_of(meta),
                    action=bank.action,
                    metadata=meta,
                    added=r[4],
                    protected=bank.protected,
                    label=bank.label,
                    **f,
                )
            )
        return out

    def _query(self, query) -> tuple[Fingerprint, object]:
        if isinstance(query, Fingerprint):
            return query, None
        if isinstance(query, Image.Image):
            return fingerprint_image(query), query
        if isinstance(query, (str, os.PathLike)):
            return fingerprint_file(query), query
        raise BadInput(f"cannot search for a {type(query).__name__}")

    def _query_clip(self, loaded: LoadedSet, image, clip, spec) -> np.ndarray | None:
        if loaded.clip is None or image is None or clip is False:
            return None

        if clip is None:
            if not spec:
                return None
            try:
                clip = load_model(spec)
            except ConfigError as e:  # the set's model is no longer where it was
                raise _ClipUnavailable(f"its CLIP model is not available ({e})") from None
        model = load_model(clip) if isinstance(clip, str) else clip
        if model.model_id != loaded.clip_model:
            raise ConfigError(
                f"this set was embedded with {loaded.clip_model}, not {model.model_id}"
            )
        return model.embed_images([image])[0]
