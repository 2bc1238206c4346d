"""The tamper-evident audit log: every decision, one row, chained by hashes.

Each row of the ``audit`` table commits to the previous row: ``hash`` is the sha256 of
the canonical JSON array of the row's fields (``seq`` ... ``reasons``) followed by
``prev_hash``; the first row's ``prev_hash`` is 64 zeros. ``verify`` recomputes the chain
and names the first row that was edited, deleted or moved. A chain alone cannot show
that rows were cut from its end, nor that someone who can write the database appended
(or rewrote and re-hashed) rows: they can compute the hashes too. So every append also
stores a *signed checkpoint* of the new head (``audit_checkpoints``), signed with the
workspace's audit key, which lives outside the database
(:mod:`provenance.core.checkpoints`); the last signed head of each database is also kept
beside that key. ``verify`` checks the newest checkpoint's signature and that its row is
still there with the same hash: rows after it (forged appends), rows cut from the end,
a rewritten chain and a dropped table are all caught. ``expect_head`` still takes a
head anchored elsewhere. Exports start with a signed header (first row, its
``prev_hash``, row count, head), so a cut from the start cannot be hidden either.

Readers never create or migrate anything: a missing audit table is reported (a tamper
finding when this database had a log), not silently recreated.

Behind the storage seam (:mod:`provenance.core.stores`): :class:`AuditStore` is the
interface, :class:`SqliteAuditStore` the SQLite implementation (``AuditLog`` is its
older name) and :func:`audit_store` opens the configured one. Every row is also a leaf
of the workspace's ``decisions`` Merkle log (:mod:`provenance.core.tlog`), appended in
the row's transaction: the leaf's bytes are exactly those the row's chain hash is the
SHA-256 of. ``verify(checkpoint=FILE)`` recomputes that tree from the rows and compares
it with a signed checkpoint kept elsewhere, which catches a rewritten chain, a cut tail
or deleted rows in a copy of the database, whatever else was deleted with them.

Appends run in one write transaction each (``BEGIN IMMEDIATE``; read the last hash;
insert), so concurrent processes never fork the chain or lose a row; ``append_many``
writes a batch in one transaction.

Why one module of over 400 lines: the chain's hash rule is written once and the
writer (append), the readers (log, export) and the checkers (verify, verify_export)
all use it; split apart, the rule would have to be shared across files that must
never drift from each other.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import threading
import weakref
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import sqlite_utils
from provkit.policies import checkpoints
from provkit.provenance.core import merkle, note, stores, tlog, workspace
from provkit.provenance.core.clock import now_iso
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.files import atomic_file
from provkit.provenance.core.workspace import default_db_path, migrate

GENESIS = "0" * 64
#: Key of the header line a partial export (``--since``) starts with.
EXPORT_HEADER = "provkit_audit_export"
TABLE = "audit"
#: The fields a row's hash commits to, in this order (then prev_hash).
CHAINED = (
    "seq",
    "time",
    "point",
    "actor",
    "subject",
    "pack",
    "pack_version",
    "matched_rules",
    "outcome",
    "labels",
    "reasons",
)
_COLUMNS = CHAINED + ("prev_hash", "hash")
_INSERT = f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM {TABLE}"


def _create(db: sqlite_utils.Database) -> None:
    db[TABLE].create(
        {
            "seq": int,
            "time": str,
            "point": str,
            "actor": str,
            "subject": str,
            "pack": str,
            "pack_version": str,
            "matched_rules": str,
            "outcome": str,
            "labels": str,
            "reasons": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="seq",
        not_null={"time", "point", "pack", "pack_version", "outcome", "prev_hash", "hash"},
    )
    db[TABLE].create_index(["time"])
    db[TABLE].create_index(["outcome"])


CHECKPOINTS = "audit_checkpoints"


def _create_checkpoints(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (seq INTEGER PRIMARY KEY, "
        "hash TEXT NOT NULL, time TEXT NOT NULL, key_id TEXT, "
        "signature TEXT NOT NULL)"
    )
    last = db.conn.execute(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
    if last:  # a log from before checkpoints: adopted as it stands at the upgrade
        _store_checkpoint(db.conn, *last)


def _log_existing(db: sqlite_utils.Database) -> None:
    """Rows recorded before the Merkle log: one leaf each, in seq order."""
    log = tlog.SqliteTlogStore(db, create=False)
    if log.size("decisions"):
        return
    rows = db.conn.execute(_SELECT + " ORDER BY seq").fetchall()
    if rows:
        log.append("decisions", [(None, row_payload(r[: len(CHAINED)], r[-2])) for r in rows])


MIGRATIONS = [_create, _create_checkpoints, _log_existing]


def _store_checkpoint(conn, seq: int, digest: str) -> dict:
    signed = checkpoints.sign({"seq": seq, "hash": digest, "time": now_iso("microseconds")})
    conn.execute(
        f"INSERT OR REPLACE INTO {CHECKPOINTS} (seq, hash, time, key_id, signature) "
        "VALUES (?, ?, ?, ?, ?)",
        [seq, digest, signed["time"], signed["key_id"], signed["signature"]],
    )
    return signed


def _store_error(e: Exception) -> ConfigError:
    """A database error while recording a decision, as one line naming the cause."""
    text = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
    missing = text.removeprefix("no such table: ") if text.startswith("no such table") else None
    cause = f"its table {missing} is missing" if missing else f"the database refused it ({text})"
    return ConfigError(
        f"the audit log cannot record this decision: {cause}; the log may have "
        "been altered (run `provkit audit verify`)"
    )


def _table_exists(conn, name: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]
        ).fetchone()
        is not None
    )


def _db_file(conn) -> str | None:
    for _, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return file or None
    return None


def _canonical(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def row_payload(values, prev_hash: str) -> bytes:
    """The canonical JSON array of the chained fields and ``prev_hash`` (UTF-8): what the
    row's chain hash is the SHA-256 of, and its ``decisions`` log leaf."""
    return json.dumps(list(values) + [prev_hash], ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def row_hash(values, prev_hash: str) -> str:
    """sha256 of the canonical JSON array of the chained fields and ``prev_hash``."""
    return hashlib.sha256(row_payload(values, prev_hash)).hexdigest()


@dataclass(frozen=True)
class Head:
    """The last row of the chain: anchor it elsewhere to detect truncation."""

    seq: int
    hash: str
    time: str | None = None

    def to_json(self) -> dict:
        return {"seq": self.seq, "hash": self.hash, "time": self.time}

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


@dataclass(frozen=True)
class AuditCheck:
    """The result of verifying the chain."""

    ok: bool
    rows: int
    head: Head | None
    first_bad: int | None = None  # seq of the first bad (or first missing) row
    problem: str | None = None
    #: seq of the first row checked when a partial export (``--since``) was verified;
    #: rows before it were not in the export and are not vouched for.
    from_seq: int | None = None
    #: the last row a signature of the workspace audit key vouches for (None: no signed
    #: checkpoint, e.g. a log made before checkpoints, or an empty log).
    signed_through: int | None = None

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "head": self.head.to_json() if self.head else None,
            "first_bad": self.first_bad,
            "problem": self.problem,
            "from_seq": self.from_seq,
            "signed_through": self.signed_through,
        }


# ---------------------------------------------------------------- connections
_ready: weakref.WeakSet = weakref.WeakSet()
_open: dict[tuple, sqlite_utils.Database] = {}
_lock = threading.Lock()
_KEEP_OPEN = 8


def _database(db, create: bool = True) -> sqlite_utils.Database:
    if db is not None and not isinstance(db, (str, os.PathLike)):
        database = workspace.database(db)
    else:  # a path: one open handle per process, thread and file, reused
        path = Path(db).expanduser().resolve() if db is not None else default_db_path().resolve()
        key = (os.getpid(), threading.get_ident(), str(path))
        with _lock:
            database = _open.pop(key, None)
            if database is None:
                database = workspace.database(path if db is not None else None, create=create)
            _open[key] = database  # most recently used last
            while len(_open) > _KEEP_OPEN:  # forget the oldest; it closes when unused
                _open.pop(next(iter(_open)))
    return database


def _ensure_ready(database: sqlite_utils.Database) -> None:
    """Create or migrate the log (writers only, before their first append)."""
    if database in _ready:
        return
    if not (
        database.conn.in_transaction
        and database[TABLE].exists()
        and database[CHECKPOINTS].exists()
        and database["tlog_state"].exists()
    ):
        tlog.SqliteTlogStore(database)  # the log's tables before the audit's migrations
        migrate(database, "policies.audit", MIGRATIONS)  # its own write transaction
    _ready.add(database)


def _since_text(since) -> str:
    """ISO time from a datetime, an ISO string, or a relative age like 90m, 24h, 7d."""
    if isinstance(since, datetime):
        moment = since
    else:
        text = str(since).strip()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
        if m:
            unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
            moment = datetime.now(UTC) - timedelta(**{unit[m.group(2)]: float(m.group(1))})
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise BadInput(
                    f"--since wants an ISO date/time or an age like 24h or 7d, not {text!r}"
                ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class AuditStore(Protocol):
    """The audit log, as its callers use it."""

    def append(self, decision, *, actor: str | None = None, subject: str | None = None) -> int: ...
    def append_many(self, entries) -> int: ...
    def head(self) -> Head | None: ...
    def count(self) -> int: ...
    def log(self, **filters): ...
    def export(self, out, *, format: str = "jsonl", since=None) -> int: ...
    def verify(
        self, *, expect_head=None, public_key: str | None = None, checkpoint=None, log_key=None
    ) -> AuditCheck: ...


class SqliteAuditStore:
    """The ``audit`` table of a provkit database (path, Database, or None = workspace).

    ``create=False`` (for readers): a database path that does not exist is a
    BadInput, not a new empty log."""

    #: Append each row's leaf to the ``decisions`` Merkle log (bench/tlog.py turns it off
    #: on one store to measure the chain alone).
    merkle = True

    def __init__(self, db=None, *, create: bool = True):
        self.db = _database(db, create)
        if create:
            _ensure_ready(self.db)

    # -------------------------------------------------------------- writing
    def append(self, decision, *, actor: str | None = None, subject: str | None = None) -> int:
        """Append one decision in its own write transaction; returns its seq."""
        return self.append_many([(decision, actor, subject)])

    def append_many(self, entries) -> int:
        """Append ``(decision, actor, subject)`` entries in one transaction; returns the first seq."""
        _ensure_ready(self.db)
        conn = self.db.conn
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN IMMEDIATE")  # the write lock first, then read the head
        try:
            last = conn.execute(
                f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = last if last else (0, GENESIS)
            first = seq + 1
            rows, leaves = [], []
            for decision, actor, subject in entries:
                seq += 1
                values = (
                    seq,
                    now_iso("microseconds"),
                    decision.point,
                    actor,
                    subject,
                    decision.pack,
                    decision.pack_version,
                    _canonical(list(decision.matched_rules)),
                    decision.outcome,
                    _canonical(list(decision.labels)),
                    _canonical(list(decision.reasons)),
                )
                payload = row_payload(values, prev)
                digest = hashlib.sha256(payload).hexdigest()
                rows.append(values + (prev, digest))
                leaves.append((None, payload))  # audit row N is leaf N - 1
                prev = digest
            conn.executemany(_INSERT, rows)
            if rows and self.merkle:
                tlog.SqliteTlogStore(self.db, create=False).append("decisions", leaves)
            signed = _store_checkpoint(conn, seq, prev) if rows else None
            if own:
                conn.execute("COMMIT")
        except BaseException as e:
            if own and conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.DatabaseError):  # a damaged or altered store: one line
                raise _store_error(e) from None
            raise
        if own and signed is not None:
            checkpoints.remember_head(_db_file(conn), signed)
        return first

    # -------------------------------------------------------------- reading
    def _has_table(self) -> bool:
        return _table_exists(self.db.conn, TABLE)

    def head(self) -> Head | None:
        if not self._has_table():
            return None
        row = self.db.conn.execute(
            f"SELECT seq, hash, time FROM {TABLE} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return Head(*row) if row else None

    def count(self) -> int:
        if not self._has_table():
            return 0
        return self.db.conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]

    def log(
        self,
        *,
        since=None,
        outcome: str | None = None,
        point: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        after: int | None = None,
    ):
        """Rows as dicts (list fields decoded), oldest first unless ``newest_first``.
        ``after``: only rows with a larger ``seq`` (the next page after that row)."""
        if not self._has_table():
            return
        where, args = [], []
        if after is not None:
            where.append("seq > ?")
            args.append(int(after))
        if since is not None:
            where.append("time >= ?")
            args.append(_since_text(since))
        for column, value in (("outcome", outcome), ("point", point), ("actor", actor)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY seq" + (" DESC" if newest_first else "")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for row in self.db.conn.execute(sql, args):
            yield _decode(row)

    def export(self, out, *, format: str = "jsonl", since=None) -> int:
        """Write rows (with their hashes, so others can re-verify) to a text stream.

        The first line is a header signed with the workspace audit key:
        ``{"provkit_audit_export": {"from_seq", "rows", "first_prev_hash", "head",
        "since", "public_key", "key_id", "signature"}}``; with ``since`` the export
        starts at the first row recorded at or after that time. Verifying checks the
        header's signature and that the rows are exactly the ones it names, so rows cut
        from the start (or the end) of an export cannot be hidden."""
        if format != "jsonl":
            raise BadInput(f"unknown export format {format!r} (supported: jsonl)")
        conn = self.db.conn
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")  # one snapshot for the header and the rows
        try:
            rows = self._export_rows(since)
            first = rows[0] if rows else None
            header = {
                "from_seq": first[0] if first else 1,
                "rows": len(rows),
                "first_prev_hash": first[-2] if first else None,
                "head": {"seq": rows[-1][0], "hash": rows[-1][-1]} if rows else None,
                "since": _since_text(since) if since is not None else None,
                "exported": now_iso("microseconds"),
            }
            signed = checkpoints.sign(header)
            signed["public_key"] = checkpoints.public_key_hex()
        finally:
            if own:
                conn.execute("COMMIT")
        out.write(json.dumps({EXPORT_HEADER: signed}) + "\n")
        for row in rows:
            out.write(json.dumps(_decode(row), ensure_ascii=False) + "\n")
        return len(rows)

    def _export_rows(self, since) -> list:
        if not self._has_table():
            return []
        start = 1
        if since is not None:
            found = self.db.conn.execute(
                f"SELECT min(seq) FROM {TABLE} WHERE time >= ?", [_since_text(since)]
            ).fetchone()[0]
            if found is None:
                return []
            start = found
        return self.db.conn.execute(_SELECT + " WHERE seq >= ? ORDER BY seq", [start]).fetchall()

    # -------------------------------------------------------------- checking
    def verify(
        self,
        *,
        expect_head: str | Head | None = None,
        public_key: str | None = None,
        checkpoint=None,
        log_key=None,
    ) -> AuditCheck:
        """Recompute the chain; name the first edited, deleted or moved row; check the
        signed checkpoints (forged appends, rewrites, cuts from the end, a dropped table).
        ``checkpoint``: a ``decisions`` log checkpoint kept elsewhere (a file), checked
        with ``log_key`` (default: this workspace's log key) against the rows."""
        check = self._verify_chain(expect_head, public_key)
        if checkpoint is None or not check.ok:
            return check
        return _check_kept(self.db.conn, check, checkpoint, log_key)

    def _verify_chain(self, expect_head, public_key) -> AuditCheck:
        expected = _parse_head(expect_head) if expect_head is not None else None
        conn = self.db.conn
        checkpoints.flush_heads()  # heads this process held back
        remembered = checkpoints.last_head(_db_file(conn))
        pub = public_key or checkpoints.public_key_hex()
        if not self._has_table():
            had_log = remembered is not None or _table_exists(conn, CHECKPOINTS) or _migrated(conn)
            if had_log:
                return AuditCheck(
                    False,
                    0,
                    None,
                    1,
                    "the audit table is missing: it was "
                    "dropped (this database recorded decisions before)",
                )
            if expected is not None:
                return AuditCheck(
                    False,
                    0,
                    None,
                    1,
                    "the log is empty but a head was anchored: the audit table is missing",
                )
            return AuditCheck(True, 0, None, signed_through=None)
        check = verify_rows(conn.execute(_SELECT + " ORDER BY seq"), expected)
        if not check.ok:
            return check
        return _check_signed(conn, check, remembered, pub)


def _check_kept(conn, check: AuditCheck, path, log_key) -> AuditCheck:
    """The first ``size`` rows, hashed as the ``decisions`` log's leaves, must give the
    root a kept checkpoint signs; fewer rows, or another root, is tampering."""
    verifier = note.verifier_from(log_key) if log_key else note.log_verifier()
    if verifier is None:
        raise BadInput(
            "no log key to check the checkpoint with: give --log-key "
            "(the verifier key from `provkit log key`)"
        )
    try:
        cp = note.read_checkpoint(note.load_note(path), verifier)
    except BadInput as e:
        if e.path:
            raise
        raise BadInput(e.reason, path=path) from None
    if not cp.origin.endswith("/decisions"):
        raise BadInput(f"the checkpoint is of log {cp.origin}, not a decisions log", path=path)
    frontier: list = []
    count = 0
    if _table_exists(conn, TABLE):
        for row in conn.execute(_SELECT + " WHERE seq <= ? ORDER BY seq", [cp.size]):
            if row[0] != count + 1:
                break
            merkle.frontier_push(
                frontier, merkle.leaf_hash(row_payload(row[: len(CHAINED)], row[-2])), size=count
            )
            count += 1
    if count < cp.size:
        return replace(
            check,
            ok=False,
            first_bad=count + 1,
            problem=(
                f"the kept checkpoint ({cp.origin}, {cp.size} rows) covers rows up to "
                f"{cp.size} but the log holds only rows 1-{count} in order: rows were cut or "
                "deleted"
                if count
                else f"the kept checkpoint ({cp.origin}) covers {cp.size} rows but the log holds "
                "none of them: the rows were deleted"
            ),
        )
    if merkle.frontier_root(frontier) != cp.root:
        return replace(
            check,
            ok=False,
            first_bad=1,
            problem=(
                f"rows 1-{cp.size} are not the rows the kept checkpoint ({cp.origin}) signs: "
                "the log was rewritten"
            ),
        )
    return replace(check, signed_through=max(check.signed_through or 0, cp.size))


def _migrated(conn) -> bool:
    try:
        return (
            conn.execute("SELECT 1 FROM _migrations WHERE component = 'policies.audit'").fetchone()
            is not None
        )
    except Exception:  # noqa: BLE001  # no _migrations table
        return False


def _check_signed(conn, check: AuditCheck, remembered: dict | None, pub: str | None) -> AuditCheck:
    """The chain is intact; now the signatures: the newest checkpoint must be signed by
    the audit key and its row unchanged, and no row may come after the signed head."""
    from dataclasses import replace as _replace

    head_seq = check.head.seq if check.head else 0
    signed: list[dict] = []
    if _table_exists(conn, CHECKPOINTS):
        for seq, digest, time, kid, signature in conn.execute(
            f"SELECT seq, hash, time, key_id, signature FROM {CHECKPOINTS} ORDER BY seq DESC"
        ):
            cp = {"seq": seq, "hash": digest, "time": time, "key_id": kid, "signature": signature}
            if pub is None:
                return _replace(
                    check,
                    ok=False,
                    first_bad=seq,
                    problem=(
                        "the log has signed checkpoints but the workspace audit key is missing; "
                        "they cannot be checked"
                    ),
                )
            if not checkpoints.verify(cp, pub):
                return _replace(
                    check,
                    ok=False,
                    first_bad=seq,
                    problem=(
                        f"the checkpoint of row {seq} is not signed by the workspace audit key: "
                        "it was forged or altered"
                    ),
                )
            signed.append(cp)
            break
    if remembered is not None:
        if not checkpoints.verify(remembered, pub):
            return _replace(
                check,
                ok=False,
                first_bad=remembered.get("seq"),
                problem=(
                    "the remembered signed head of this database is not signed by the workspace "
                    "audit key"
                ),
            )
        signed.append(remembered)
    if not signed:
        if head_seq and pub is not None and _table_exists(conn, CHECKPOINTS):
            return _replace(
                check,
                ok=False,
                first_bad=1,
                problem=(
                    "no signed checkpoint covers any row: the checkpoints were deleted, or the "
                    "rows were written without the workspace audit key"
                ),
            )
        return check  # a log from before checkpoints: the chain is all there is
    for cp in sorted(signed, key=lambda c: -int(c["seq"])):
        seq = int(cp["seq"])
        row = conn.execute(f"SELECT hash FROM {TABLE} WHERE seq = ?", [seq]).fetchone()
        if row is None:
            return _replace(
                check,
                ok=False,
                first_bad=head_seq + 1,
                problem=(
                    f"rows {head_seq + 1}-{seq} were cut from the end: the last signed head "
                    f"is row {seq}"
                ),
            )
        if row[0] != cp["hash"]:
            return _replace(
                check,
                ok=False,
                first_bad=seq,
                problem=(
                    f"row {seq} (or one before it) was rewritten after it was signed: its "
                    "hash no longer matches the signed checkpoint"
                ),
            )
    through = max(int(c["seq"]) for c in signed)
    if head_seq > through:
        rows = f"row {head_seq}" if head_seq == through + 1 else f"rows {through + 1}-{head_seq}"
        return _replace(
            check,
            ok=False,
            first_bad=through + 1,
            signed_through=through,
            problem=(
                f"{rows} were appended without the workspace audit key (no "
                f"signed checkpoint after row {through}): forged appends"
            ),
        )
    return _replace(check, signed_through=through)


def _decode(row) -> dict:
    entry = dict(zip(_COLUMNS, row))
    for key in ("matched_rules", "labels", "reasons"):
        try:
            entry[key] = json.loads(entry[key]) if entry[key] is not None else []
        except ValueError:
            pass  # left as stored text; verify reports the row
    return entry


def _parse_head(value) -> Head:
    if isinstance(value, Head):
        return value
    text = str(value).strip()
    m = re.fullmatch(r"(?:(\d+):)?([0-9a-f]{64})", text.lower())
    if not m:
        raise BadInput(f"a chain head is HASH or SEQ:HASH (64 hex digits), not {text!r}")
    return Head(int(m.group(1)) if m.group(1) else -1, m.group(2))


def _encode(entry: dict) -> tuple:
    values = []
    for key in _COLUMNS:
        value = entry.get(key)
        if key in ("matched_rules", "labels", "reasons") and isinstance(value, list):
            value = _canonical(value)
        values.append(value)
    return tuple(values)


def verify_rows(
    rows, expect_head: Head | None = None, *, from_seq: int | None = None
) -> AuditCheck:
    """Check a sequence of stored rows (tuples in column order, or exported dicts).

    ``from_seq``: the rows are a tail of the log starting at that seq (a partial
    export); the first row's ``prev_hash`` is taken as given, the rest is checked."""
    prev_hash, prev_seq, count, head = GENESIS, 0, 0, None
    if from_seq is not None:
        prev_hash, prev_seq = None, from_seq - 1
    anchored = expect_head is None
    for row in rows:
        if isinstance(row, dict):
            row = _encode(row)
        values, prev_field, stored = row[: len(CHAINED)], row[-2], row[-1]
        seq = values[0]
        count += 1

        if not isinstance(seq, int) or seq <= prev_seq:
            return AuditCheck(
                False,
                count,
                head,
                prev_seq + 1,
                f"row {seq!r} is out of order after row {prev_seq}: rows were moved",
            )
        if seq != prev_seq + 1:
            missing = (
                f"row {prev_seq + 1} is"
                if seq == prev_seq + 2
                else f"rows {prev_seq + 1}-{seq - 1} are"
            )
            return AuditCheck(
                False, count, head, prev_seq + 1, f"{missing} missing: deleted from the log"
            )
        if row_hash(values, prev_field) != stored:
            return AuditCheck(
                False,
                count,
                head,
                seq,
                f"row {seq} was edited: its content does not match its hash",
            )
        if prev_hash is not None and prev_field != prev_hash:
            return AuditCheck(
                False,
                count,
                head,
                prev_seq or seq,
                f"row {seq} does not follow row {prev_seq}: row {prev_seq} was rewritten "
                "(edited and re-hashed) or rows were reordered"
                if prev_seq
                else f"row {seq} is the first row but does not start the chain: "
                "earlier rows were deleted",
            )
        prev_hash, prev_seq = stored, seq
        head = Head(seq, stored, values[1])
        if expect_head is not None and stored == expect_head.hash:
            if expect_head.seq not in (-1, seq):
                return AuditCheck(
                    False,
                    count,
                    head,
                    seq,
                    f"the anchored head is row {expect_head.seq} but its hash is at row {seq}",
                )
            anchored = True
    if not anchored:
        where = expect_head.seq if expect_head.seq > 0 else prev_seq + 1
        return AuditCheck(
            False,
            count,
            head,
            where,
            f"the anchored head {expect_head.hash[:16]}... is not in the log: "
            "rows at the end were deleted or the log was rewritten",
        )
    return AuditCheck(True, count, head, from_seq=from_seq)


def verify_export(path, *, expect_head=None, public_key: str | None = None) -> AuditCheck:
    """Verify a JSONL export (``provkit audit export``) without the database.

    The header must be signed by the audit key (``public_key``, hex; default this
    workspace's, else the key the header names, which then only shows the export is
    whole as its signer wrote it), and the rows must be exactly those it names: from
    its first row (with that row's ``prev_hash``) to its head, none missing."""
    expected = _parse_head(expect_head) if expect_head is not None else None
    path = Path(path)

    if not path.is_file():
        raise BadInput("cannot read export: no such file", path=path)

    def entries():
        with path.open(encoding="utf-8") as fp:
            for n, line in enumerate(fp, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    raise BadInput(f"line {n} is not JSON", path=path) from None
                if not isinstance(entry, dict):
                    raise BadInput(f"line {n} is not an audit row", path=path)
                yield n, entry

    items = entries()
    first = next(items, None)
    header = None
    if first is not None and EXPORT_HEADER in first[1]:
        header = first[1][EXPORT_HEADER]
        if not isinstance(header, dict):
            raise BadInput(f"line {first[0]}: the export header is not an object", path=path)
        first = None
    from_seq = None
    if header is not None:
        start = header.get("from_seq")
        if not isinstance(start, int) or start < 1:
            raise BadInput("the export header has no valid from_seq", path=path)
        if "signature" not in header:
            if start > 1:
                return AuditCheck(
                    False,
                    0,
                    None,
                    start,
                    (
                        "the partial-export header is not signed: rows cut from the start of "
                        "the export cannot be ruled out"
                    ),
                )
        else:
            named = header.get("public_key")
            key = public_key or checkpoints.public_key_hex() or named
            body = {k: v for k, v in header.items() if k != "public_key"}
            if not checkpoints.verify(body, key):
                return AuditCheck(
                    False,
                    0,
                    None,
                    start,
                    (
                        "the export header is not signed by the workspace audit key: it was "
                        "forged or altered, so rows may have been cut from the export"
                    ),
                )
        from_seq = start if start > 1 else None

    rows_seen = []

    def rows():
        if first is not None:
            yield first[1]
        for _, entry in items:
            rows_seen.append(entry)
            yield entry

    check = verify_rows(_tracking(rows(), rows_seen), expected, from_seq=from_seq)
    if not check.ok or header is None or "signature" not in header:
        return check
    first_row = rows_seen[0] if rows_seen else None
    if header.get("rows") != check.rows:
        return AuditCheck(
            False,
            check.rows,
            check.head,
            None,
            (
                f"the export header names {header.get('rows')} rows but the export holds "
                f"{check.rows}: rows were cut"
            ),
        )
    if first_row is not None and (
        first_row.get("seq") != header["from_seq"]
        or first_row.get("prev_hash") != header.get("first_prev_hash")
    ):
        return AuditCheck(
            False,
            check.rows,
            check.head,
            header["from_seq"],
            (f"the export should start at row {header['from_seq']}: rows were cut from its start"),
        )
    head = header.get("head") or {}
    if check.head is not None and (
        head.get("seq") != check.head.seq or head.get("hash") != check.head.hash
    ):
        return AuditCheck(
            False,
            check.rows,
            check.head,
            check.head.seq + 1,
            (f"the export should end at row {head.get('seq')}: rows were cut from its end"),
        )
    return replace(check, signed_through=check.head.seq if check.head else None)


def _tracking(source, seen: list):
    """Rows from ``source``; the first one recorded in ``seen`` too (rows() records the rest)."""
    for n, row in enumerate(source):
        if n == 0 and not seen:
            seen.append(row)
        yield row


#: The SQLite store's older name, kept for its callers.
AuditLog = SqliteAuditStore


def audit_store(db=None, *, create: bool = True) -> SqliteAuditStore:
    """The audit log of a database (path, Database or None: the workspace's), in the
    configured storage backend."""
    stores.require_sqlite("audit log")
    return SqliteAuditStore(db, create=create)


# -------------------------------------------------------------- the ``provkit audit`` verbs


def log(
    db=None,
    *,
    since=None,
    outcome: str | None = None,
    point: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[dict]:
    """``provkit audit log``: recorded decisions, oldest first (with ``limit``: the newest
    ``limit``, still oldest first)."""
    rows = list(
        audit_store(db, create=False).log(
            since=since,
            outcome=outcome,
            point=point,
            actor=actor,
            limit=limit,
            newest_first=limit is not None,
        )
    )
    if limit is not None:
        rows.reverse()
    return rows


def verify(
    db=None,
    *,
    expect_head: str | Head | None = None,
    export=None,
    public_key: str | None = None,
    checkpoint=None,
    log_key=None,
) -> AuditCheck:
    """``provkit audit verify``: the chain of the database, or of an exported JSONL file,
    and its signed checkpoints (or export header), checked with ``public_key`` (hex;
    default this workspace's audit key); with ``checkpoint``, also the rows against a
    ``decisions`` log checkpoint kept elsewhere (checked with ``log_key``)."""
    if export is not None:
        return verify_export(export, expect_head=expect_head, public_key=public_key)
    return audit_store(db, create=False).verify(
        expect_head=expect_head, public_key=public_key, checkpoint=checkpoint, log_key=log_key
    )


def head(db=None) -> Head | None:
    """``provkit audit head``: the last row of the chain (None for an empty log)."""
    return audit_store(db, create=False).head()


@dataclass(frozen=True)
class Exported:
    """``provkit audit export``: how many rows went where (None: the given stream)."""

    rows: int
    out: str | None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def export(
    out=None, *, db=None, format: str = "jsonl", since=None, force: bool = False, stream=None
) -> Exported:
    """Every row with its hashes to ``out`` (written atomically; an existing file is
    replaced only with ``force``) or to ``stream`` (a text stream)."""
    audit_log = audit_store(db, create=False)
    if out is None:
        return Exported(audit_log.export(stream, format=format, since=since), None)
    try:
        with atomic_file(out, overwrite=force) as f:
            text = io.TextIOWrapper(f, encoding="utf-8", newline="")
            n = audit_log.export(text, format=format, since=since)
            text.flush()
            text.detach()  # atomic_file closes (and installs) the file itself
    except FileExistsError:
        raise BadInput("output already exists (use --force to replace it)", path=out) from None
    return Exported(n, str(out))
