"""The ledger: every asset this workspace issued, keyed by its asset id.

Behind the storage seam (:mod:`provenance.core.stores`): :class:`LedgerStore` is what
callers use, :class:`SqliteLedgerStore` keeps it in one SQLite table, ``assets`` (WAL,
busy timeout via :func:`provenance.core.workspace.connect`), and :func:`ledger_store`
opens the configured one (``Ledger`` is the SQLite store's older name). Each row keeps
what recovery needs: the SHA-256 of the issued bytes, the manifest label and JSON, the
manifest store bytes exactly as signed, the perceptual fingerprints (pHash, dHash,
PDQ) of the issued pixels and their reference rendition (grayscale, 256 px, for recovery
to tell an honest copy from an edited one). Browse it with any SQLite tool.

Every row written (recorded, its status changed, forgotten) is also a leaf of the
workspace's ``assets`` Merkle log (:mod:`provenance.core.tlog`), appended in the same
transaction: asset id, event (the new status, or ``forgotten``), SHA-256 of the bytes,
manifest label and SHA-256 of the manifest store, fingerprints, time.

Why one module of over 400 lines: the store's writers, its readers (including the
fingerprint scan recovery uses) and the leaf each write adds to the log read one table
whose columns are named here once; split apart, they would share a schema across files.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from provkit.provenance.core import stores, tlog, workspace
from provkit.provenance.core.clock import now_iso
from provkit.provenance.core.errors import BadInput
from provkit.provenance.fingerprint import PDQ_MATCH, PDQ_MIN_QUALITY, PHASH_MATCH

#: A stripped, re-encoded copy matches its original within these distances (both must hold).
MAX_PDQ_DISTANCE = PDQ_MATCH
MAX_PHASH_DISTANCE = PHASH_MATCH


def _create_assets(db) -> None:
    db["assets"].create(
        {
            "asset_id": str,
            "sha256": str,
            "manifest_label": str,
            "signer": str,
            "source_type": str,
            "created": str,
            "source_path": str,
            "path": str,
            "mime": str,
            "soft_binding_alg": str,
            "manifest_json": str,
            "manifest_store": bytes,
            "phash": str,
            "dhash": str,
            "pdq": bytes,
            "pdq_quality": int,
        },
        pk="asset_id",
        not_null={"sha256", "created"},
    )
    db["assets"].create_index(["sha256"])
    db["assets"].create_index(["manifest_label"])
    db["assets"].create_index(["created"])


def _add_status(db) -> None:
    db["assets"].add_column("status", str, not_null_default="issued")
    db["assets"].add_column("status_reason", str)


#: ``status``: ``staged`` (sealed, its release checks not yet passed), ``issued`` (handed
#: out), ``withheld`` (a policy stopped it; the file sits in
#: the quarantine folder) or ``review`` (held until a person releases it).
STATUSES = ("issued", "staged", "withheld", "review")


def _log_existing(db) -> None:
    """Assets recorded before the Merkle log: one leaf each, in the order recorded."""
    log = tlog.SqliteTlogStore(db, create=False)
    if log.size("assets"):
        return
    cur = db.conn.execute(f"SELECT {_LEAF_COLUMNS} FROM assets ORDER BY rowid")
    cols = [c[0] for c in cur.description]
    leaves = [_leaf(dict(zip(cols, r)), None) for r in cur.fetchall()]
    if leaves:
        log.append("assets", leaves)


def _add_reference(db) -> None:
    if "reference" not in db["assets"].columns_dict:  # a database a newer version wrote
        db["assets"].add_column("reference", bytes)


MIGRATIONS = [_create_assets, _add_status, _log_existing, _add_reference]

_LEAF_COLUMNS = "asset_id, sha256, manifest_label, manifest_store, phash, pdq, status, created"


def _leaf(row: dict, event: str | None, time: str | None = None) -> tuple[str, bytes]:
    """The ``assets`` log leaf of a ledger row: ``(asset id, canonical JSON bytes)``."""
    store = row.get("manifest_store")
    pdq = row.get("pdq")
    entry = {
        "asset_id": row["asset_id"],
        "event": event or row.get("status") or "issued",
        "sha256": row["sha256"],
        "manifest_label": row.get("manifest_label"),
        "manifest_sha256": hashlib.sha256(bytes(store)).hexdigest() if store else None,
        "phash": row.get("phash"),
        "pdq": (bytes(pdq).hex() if isinstance(pdq, (bytes, bytearray, memoryview)) else pdq)
        or None,
        "time": time or row.get("created"),
    }
    return row["asset_id"], json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Asset:
    """One issued asset (a ledger row, without the large store bytes)."""

    asset_id: str
    sha256: str
    manifest_label: str | None
    signer: dict | None
    source_type: str | None
    created: str
    source_path: str | None
    path: str | None
    mime: str | None
    soft_binding_alg: str | None
    phash: str | None
    dhash: str | None
    pdq: str | None
    pdq_quality: int | None
    status: str = "issued"
    status_reason: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_row(cls, row: dict) -> Asset:
        return cls(
            asset_id=row["asset_id"],
            sha256=row["sha256"],
            manifest_label=row.get("manifest_label"),
            signer=json.loads(row["signer"]) if row.get("signer") else None,
            source_type=row.get("source_type"),
            created=row["created"],
            source_path=row.get("source_path"),
            path=row.get("path"),
            mime=row.get("mime"),
            soft_binding_alg=row.get("soft_binding_alg"),
            phash=row.get("phash"),
            dhash=row.get("dhash"),
            pdq=row["pdq"].hex() if row.get("pdq") else None,
            pdq_quality=row.get("pdq_quality"),
            status=row.get("status") or "issued",
            status_reason=row.get("status_reason"),
        )


_LIGHT_COLUMNS = (
    "asset_id, sha256, manifest_label, signer, source_type, created, source_path, "
    "path, mime, soft_binding_alg, phash, dhash, pdq, pdq_quality, status, status_reason"
)


class LedgerStore(Protocol):
    """The ledger of issued assets, as its callers use it."""

    def record(self, *, asset_id: str, sha256: str, **fields) -> Asset: ...
    def mark(
        self, asset_id: str, status: str, *, reason: str | None = None, path=None
    ) -> Asset: ...
    def forget(self, asset_id: str) -> bool: ...
    def get(self, asset_id: str) -> Asset | None: ...
    def list(
        self, *, limit: int | None = None, source_type: str | None = None, since: str | None = None
    ) -> list[Asset]: ...
    def count(self) -> int: ...
    def by_sha256(self, sha256: str) -> list[Asset]: ...
    def by_manifest_label(self, label: str) -> Asset | None: ...
    def manifest_store(self, asset_id: str) -> bytes | None: ...
    def manifest_json(self, asset_id: str) -> dict | None: ...
    def reference(self, asset_id: str) -> bytes | None: ...
    def by_fingerprint(self, fingerprint, **limits) -> list[tuple[Asset, dict]]: ...


class SqliteLedgerStore:
    """The issued-asset table of one workspace database (and its ``assets`` log)."""

    def __init__(self, db=None, *, create: bool = True):
        """``db``: a path, a sqlite-utils Database, or None for the workspace database.
        ``create=False`` (for readers): a path that does not exist is a BadInput."""
        db = workspace.database(db, create=create)
        self.db = db
        self._fingerprints = None  # (version, parsed table), see _fingerprint_table
        self.log = tlog.SqliteTlogStore(db)  # its tables before the ledger's migrations
        workspace.migrate(db, "provenance.ledger", MIGRATIONS)

    def _write(self, work):
        """Run ``work(conn)`` in one write transaction (the caller's, when open)."""
        with workspace.write_transaction(self.db.conn):
            result = work(self.db.conn)
        _wrote(self.db)
        return result

    # ----------------------------------------------------------------- writing

    def record(
        self,
        *,
        asset_id: str,
        sha256: str,
        manifest_label: str | None = None,
        signer: dict | None = None,
        source_type: str | None = None,
        created: str | None = None,
        source_path=None,
        path=None,
        mime=None,
        manifest_json: str | dict | None = None,
        manifest_store: bytes | None = None,
        fingerprint=None,
        soft_binding_alg: str | None = None,
        status: str = "issued",
        reference: bytes | None = None,
    ) -> Asset:
        """Record one issued asset; an existing asset id is an error (ids are unique).
        ``reference``: the issued pixels' reference rendition
        (:func:`provenance.relation.make_reference`), what recovery compares copies with."""
        if status not in STATUSES:
            raise BadInput(f"unknown asset status {status!r} (one of {', '.join(STATUSES)})")
        if isinstance(manifest_json, dict):
            manifest_json = json.dumps(manifest_json)
        row = {
            "asset_id": asset_id,
            "sha256": sha256,
            "manifest_label": manifest_label,
            "signer": json.dumps(signer) if signer is not None else None,
            "source_type": source_type,
            "created": created or now_iso(),
            "source_path": str(source_path) if source_path is not None else None,
            "path": str(path) if path is not None else None,
            "mime": mime,
            "soft_binding_alg": soft_binding_alg,
            "manifest_json": manifest_json,
            "manifest_store": manifest_store,
            "phash": None,
            "dhash": None,
            "pdq": None,
            "pdq_quality": None,
            "status": status,
            "reference": reference,
        }
        if fingerprint is not None:
            row.update(
                phash=f"{int(fingerprint.phash):016x}",
                dhash=f"{int(fingerprint.dhash):016x}",
                pdq=bytes(fingerprint.pdq) if fingerprint.pdq is not None else None,
                pdq_quality=fingerprint.pdq_quality,
            )

        def work(conn):
            if conn.execute("SELECT 1 FROM assets WHERE asset_id = ?", [asset_id]).fetchone():
                raise BadInput(f"asset id {asset_id} is already in the ledger")
            conn.execute(
                f"INSERT INTO assets ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            self.log.append("assets", [_leaf(row, status)])

        self._write(work)
        return Asset.from_row(row)

    def mark(self, asset_id: str, status: str, *, reason: str | None = None, path=None) -> Asset:
        """Change an asset's status (e.g. ``withheld`` by a policy), and its path if it moved."""
        if status not in STATUSES:
            raise BadInput(f"unknown asset status {status!r} (one of {', '.join(STATUSES)})")
        changes = {"status": status, "status_reason": reason}
        if path is not None:
            changes["path"] = os.path.abspath(path)

        def work(conn):
            cur = conn.execute(
                "UPDATE assets SET "
                + ", ".join(f"{k} = ?" for k in changes)
                + " WHERE asset_id = ?",
                [*changes.values(), asset_id],
            )
            if cur.rowcount == 0:
                raise BadInput(f"asset id {asset_id} is not in the ledger")
            self._log_event(conn, asset_id, status)

        self._write(work)
        return self.get(asset_id)

    def _log_event(self, conn, asset_id: str, event: str) -> None:
        cur = conn.execute(f"SELECT {_LEAF_COLUMNS} FROM assets WHERE asset_id = ?", [asset_id])
        row = cur.fetchone()
        if row is not None:
            cols = [c[0] for c in cur.description]
            self.log.append("assets", [_leaf(dict(zip(cols, row)), event, now_iso())])

    def _fingerprint_table(self):
        """The parsed fingerprints of every asset, re-read only when the table changed
        (``PRAGMA data_version`` for other connections' commits, a counter for this one's)."""
        version = (self.db.execute("PRAGMA data_version").fetchone()[0], _WRITES.get(self.db, 0))
        if self._fingerprints is not None and self._fingerprints[0] == version:
            return self._fingerprints[1]
        rows = self.db.execute(
            "SELECT rowid, phash, CASE WHEN length(pdq) = 32 AND pdq_quality >= ? THEN pdq END "
            "FROM assets WHERE phash IS NOT NULL",
            [PDQ_MIN_QUALITY],
        ).fetchall()
        table = _parse_fingerprints(rows) if rows else None
        self._fingerprints = (version, table)
        return table

    def forget(self, asset_id: str) -> bool:
        """Remove an asset's row (an issue that failed after recording); True if it was there."""

        def work(conn):
            self._log_event(conn, asset_id.lower(), "forgotten")
            return conn.execute(
                "DELETE FROM assets WHERE asset_id = ?", [asset_id.lower()]
            ).rowcount

        return self._write(work) > 0

    # ----------------------------------------------------------------- reading

    def _rows(
        self, where: str = "", params=(), *, order="created DESC, rowid DESC", limit=None
    ) -> list[Asset]:
        sql = f"SELECT {_LIGHT_COLUMNS} FROM assets {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cur = self.db.execute(sql, list(params))
        cols = [c[0] for c in cur.description]
        return [Asset.from_row(dict(zip(cols, r))) for r in cur.fetchall()]

    def get(self, asset_id: str) -> Asset | None:
        rows = self._rows("WHERE asset_id = ?", [asset_id.lower()])
        return rows[0] if rows else None

    def list(
        self, *, limit: int | None = None, source_type: str | None = None, since: str | None = None
    ) -> list[Asset]:
        """Newest first, optionally filtered by source type or creation time (ISO)."""
        clauses, params = [], []
        if source_type:
            clauses.append("source_type = ?")
            params.append(source_type)
        if since:
            clauses.append("created >= ?")
            params.append(since)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._rows(where, params, limit=limit)

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM assets").fetchone()[0]

    def by_sha256(self, sha256: str) -> list[Asset]:
        return self._rows("WHERE sha256 = ?", [sha256.lower()])

    def by_manifest_label(self, label: str) -> Asset | None:
        rows = self._rows("WHERE manifest_label = ?", [label])
        return rows[0] if rows else None

    def manifest_store(self, asset_id: str) -> bytes | None:
        row = self.db.execute(
            "SELECT manifest_store FROM assets WHERE asset_id = ?", [asset_id.lower()]
        ).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def reference(self, asset_id: str) -> bytes | None:
        """The reference rendition recorded at issue time (None for assets issued before
        they were kept, and for media that are not still images)."""
        row = self.db.execute(
            "SELECT reference FROM assets WHERE asset_id = ?", [asset_id.lower()]
        ).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def manifest_json(self, asset_id: str) -> dict | None:
        row = self.db.execute(
            "SELECT manifest_json FROM assets WHERE asset_id = ?", [asset_id.lower()]
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def by_fingerprint(
        self,
        fingerprint,
        *,
        max_pdq: int = MAX_PDQ_DISTANCE,
        max_phash: int = MAX_PHASH_DISTANCE,
        k: int = 5,
    ) -> list[tuple[Asset, dict]]:
        """Issued assets whose pixels look like ``fingerprint``, nearest first.

        A match needs the pHash within ``max_phash`` bits and, where both sides have
        a usable PDQ hash, the PDQ within ``max_pdq`` bits (an exhaustive popcount scan
        in numpy: fine for the hundreds of thousands of rows a ledger holds)."""
        table = self._fingerprint_table()
        if table is None:
            return []
        rowids, phashes, codes, usable = table
        d_phash = np.bitwise_count(phashes ^ np.uint64(int(fingerprint.phash))).astype(int)
        probe_pdq = bytes(fingerprint.pdq) if getattr(fingerprint, "pdq", None) else None
        usable_probe = probe_pdq is not None and (fingerprint.pdq_quality or 0) >= PDQ_MIN_QUALITY
        d_pdq = np.full(len(rowids), -1)
        if usable_probe:
            probe = np.frombuffer(probe_pdq, dtype=np.uint8)
            dist = np.bitwise_count(codes ^ probe).sum(axis=1, dtype=np.int64)
            d_pdq = np.where(usable, dist, -1)
        ok = (d_phash <= max_phash) & ((d_pdq < 0) | (d_pdq <= max_pdq))
        idx = np.flatnonzero(ok)
        idx = idx[np.lexsort((d_phash[idx], np.where(d_pdq[idx] < 0, 999, d_pdq[idx])))][:k]
        out = []
        for i in idx:
            asset = self._rows("WHERE rowid = ?", [int(rowids[i])])[0]
            dist = {"phash": int(d_phash[i])}
            if d_pdq[i] >= 0:
                dist["pdq"] = int(d_pdq[i])
            out.append((asset, dist))
        return out


#: Database object -> how many asset rows were written or deleted through it (its own
#: commits do not change its ``PRAGMA data_version``).
_WRITES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _wrote(db) -> None:
    _WRITES[db] = _WRITES.get(db, 0) + 1


def _parse_fingerprints(rows):
    """``(rowids, phashes uint64, pdq codes (n, 32) uint8, usable pdq mask)``; hex and
    blobs decoded in bulk."""
    rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    phashes = np.frombuffer(
        bytes.fromhex("".join(r[1].rjust(16, "0") for r in rows)), dtype=">u8"
    ).astype(np.uint64)
    usable = np.fromiter((r[2] is not None for r in rows), dtype=bool, count=len(rows))
    codes = np.frombuffer(b"".join(r[2] or bytes(32) for r in rows), dtype=np.uint8).reshape(-1, 32)
    return rowids, phashes, codes, usable


#: The SQLite store's older name, kept for its callers.
Ledger = SqliteLedgerStore


def ledger_store(db=None, *, create: bool = True) -> SqliteLedgerStore:
    """The ledger of a database (path, Database or None: the workspace's), in the
    configured storage backend."""
    stores.require_sqlite("ledger")
    return SqliteLedgerStore(db, create=create)


def ledger(db=None) -> Ledger:
    """The ledger of a database path (default: the workspace database)."""
    return ledger_store(db)


# -- the ``provkit ledger`` verbs ---------------------------------------------------------


def list_(
    db=None, *, limit: int | None = 50, source_type: str | None = None, since: str | None = None
) -> list[Asset]:
    """``provkit ledger list``: issued assets, newest first (a missing ``db`` path is a
    BadInput, never an empty ledger)."""
    return ledger_store(db, create=False).list(limit=limit, source_type=source_type, since=since)


@dataclass(frozen=True)
class AssetRecord:
    """``provkit ledger show``: one issued asset with its manifest (the reader's JSON)."""

    asset: Asset
    manifest: dict | None

    def to_json(self) -> dict:
        return {**self.asset.to_json(), "manifest": self.manifest}


def show(asset_id: str, db=None) -> AssetRecord:
    """One issued asset; BadInput when the ledger has no such id."""
    book = ledger_store(db, create=False)
    asset = book.get(asset_id)
    if asset is None:
        raise BadInput(f"no asset {asset_id} in the ledger")
    return AssetRecord(asset=asset, manifest=book.manifest_json(asset.asset_id))


def default_db() -> Path:
    return workspace.default_db_path()
