"""The tamper-evident audit log: every decision, one row, chained by hashes.

Each row of the ``audit`` table commits to the previous row: ``hash`` is the sha256 of
the canonical JSON array of the row's fields (``seq`` ... ``reasons``) followed by
``prev_hash``; the first row's ``prev_hash`` is 64 zeros. ``verify`` recomputes the chain
and names the first row that was edited, deleted or moved. A chain cannot show that rows
were cut from its end: anchor the head (``head()``) somewhere else and pass it back as
``expect_head``.

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
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from provenance.core import workspace
from provenance.core.clock import now_iso
from provenance.core.errors import BadInput
from provenance.core.files import atomic_file
from provenance.core.workspace import default_db_path, migrate

GENESIS = "0" * 64
#: Key of the header line a partial export (``--since``) starts with.
EXPORT_HEADER = "provkit_audit_export"
TABLE = "audit"
#: The fields a row's hash commits to, in this order (then prev_hash).
CHAINED = ("seq", "time", "point", "actor", "subject", "pack", "pack_version",
           "matched_rules", "outcome", "labels", "reasons")
_COLUMNS = CHAINED + ("prev_hash", "hash")
_INSERT = f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM {TABLE}"


def _create(db: sqlite_utils.Database) -> None:
    db[TABLE].create(
        {"seq": int, "time": str, "point": str, "actor": str, "subject": str, "pack": str,
         "pack_version": str, "matched_rules": str, "outcome": str, "labels": str,
         "reasons": str, "prev_hash": str, "hash": str},
        pk="seq", not_null={"time", "point", "pack", "pack_version", "outcome", "prev_hash",
                            "hash"},
    )
    db[TABLE].create_index(["time"])
    db[TABLE].create_index(["outcome"])


MIGRATIONS = [_create]


def _canonical(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def row_hash(values, prev_hash: str) -> str:
    """sha256 of the canonical JSON array of the chained fields and ``prev_hash``."""
    payload = json.dumps(list(values) + [prev_hash], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


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

    def to_json(self) -> dict:
        return {"ok": self.ok, "rows": self.rows,
                "head": self.head.to_json() if self.head else None,
                "first_bad": self.first_bad, "problem": self.problem,
                "from_seq": self.from_seq}


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
                database = workspace.database(path if db is not None else None,
                                              create=create)
            _open[key] = database  # most recently used last
            while len(_open) > _KEEP_OPEN:  # forget the oldest; it closes when unused
                _open.pop(next(iter(_open)))
    if database not in _ready:
        if not (database.conn.in_transaction and database[TABLE].exists()):
            migrate(database, "policies.audit", MIGRATIONS)  # its own write transaction
        _ready.add(database)
    return database


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
                raise BadInput(f"--since wants an ISO date/time or an age like 24h or 7d, "
                               f"not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class AuditLog:
    """The ``audit`` table of a provkit database (path, Database, or None = workspace).

    ``create=False`` (for readers): a database path that does not exist is a
    BadInput, not a new empty log."""

    def __init__(self, db=None, *, create: bool = True):
        self.db = _database(db, create)

    # -------------------------------------------------------------- writing
    def append(self, decision, *, actor: str | None = None, subject: str | None = None) -> int:
        """Append one decision in its own write transaction; returns its seq."""
        return self.append_many([(decision, actor, subject)])

    def append_many(self, entries) -> int:
        """Append ``(decision, actor, subject)`` entries in one transaction; returns the first seq."""
        conn = self.db.conn
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN IMMEDIATE")  # the write lock first, then read the head
        try:
            last = conn.execute(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = last if last else (0, GENESIS)
            first = seq + 1
            rows = []
            for decision, actor, subject in entries:
                seq += 1
                values = (
                    seq, now_iso("microseconds"), decision.point, actor, subject, decision.pack,
                    decision.pack_version, _canonical(list(decision.matched_rules)),
                    decision.outcome, _canonical(list(decision.labels)),
                    _canonical(list(decision.reasons)),
                )
                digest = row_hash(values, prev)
                rows.append(values + (prev, digest))
                prev = digest
            conn.executemany(_INSERT, rows)
            if own:
                conn.execute("COMMIT")
        except BaseException:
            if own and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return first

    # -------------------------------------------------------------- reading
    def head(self) -> Head | None:
        row = self.db.conn.execute(
            f"SELECT seq, hash, time FROM {TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
        return Head(*row) if row else None

    def count(self) -> int:
        return self.db.conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]

    def log(self, *, since=None, outcome: str | None = None, point: str | None = None,
            actor: str | None = None, limit: int | None = None, newest_first: bool = False,
            after: int | None = None):
        """Rows as dicts (list fields decoded), oldest first unless ``newest_first``.
        ``after``: only rows with a larger ``seq`` (the next page after that row)."""
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
        """Write every row (with its hashes, so others can re-verify) to a text stream.

        With ``since`` the export is partial: its first line is a header
        ``{"provkit_audit_export": {"from_seq": N, "since": ...}}``, so verifying it
        starts the chain at row N (taking that row's ``prev_hash`` as given)."""
        if format != "jsonl":
            raise BadInput(f"unknown export format {format!r} (supported: jsonl)")
        n = 0
        for entry in self.log(since=since):
            if n == 0 and since is not None and entry["seq"] > 1:
                header = {"from_seq": entry["seq"], "since": _since_text(since)}
                out.write(json.dumps({EXPORT_HEADER: header}) + "\n")
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            n += 1
        return n

    # -------------------------------------------------------------- checking
    def verify(self, *, expect_head: str | Head | None = None) -> AuditCheck:
        """Recompute the chain; name the first edited, deleted or moved row."""
        expected = _parse_head(expect_head) if expect_head is not None else None
        return verify_rows(self.db.conn.execute(_SELECT + " ORDER BY seq"), expected)


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


def verify_rows(rows, expect_head: Head | None = None, *, from_seq: int | None = None
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
            return AuditCheck(False, count, head, prev_seq + 1, f"row {seq!r} is out of order after row {prev_seq}: "
                                     "rows were moved")
        if seq != prev_seq + 1:
            missing = (f"row {prev_seq + 1} is" if seq == prev_seq + 2
                       else f"rows {prev_seq + 1}-{seq - 1} are")
            return AuditCheck(False, count, head, prev_seq + 1, f"{missing} missing: deleted from the log")
        if row_hash(values, prev_field) != stored:
            return AuditCheck(False, count, head, seq, f"row {seq} was edited: its content does not match its hash")
        if prev_hash is not None and prev_field != prev_hash:
            return AuditCheck(False, count, head, prev_seq or seq,
                       f"row {seq} does not follow row {prev_seq}: row {prev_seq} was rewritten "
                       "(edited and re-hashed) or rows were reordered" if prev_seq else
                       f"row {seq} is the first row but does not start the chain: "
                       "earlier rows were deleted")
        prev_hash, prev_seq = stored, seq
        head = Head(seq, stored, values[1])
        if expect_head is not None and stored == expect_head.hash:
            if expect_head.seq not in (-1, seq):
                return AuditCheck(False, count, head, seq, f"the anchored head is row {expect_head.seq} but its hash is "
                                f"at row {seq}")
            anchored = True
    if not anchored:
        where = expect_head.seq if expect_head.seq > 0 else prev_seq + 1
        return AuditCheck(False, count, head, where,
                          f"the anchored head {expect_head.hash[:16]}... is not in the log: "
                          "rows at the end were deleted or the log was rewritten")
    return AuditCheck(True, count, head, from_seq=from_seq)


def verify_export(path, *, expect_head=None) -> AuditCheck:
    """Verify a full JSONL export (``provkit audit export``) without the database."""
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
    from_seq = None
    if first is not None and EXPORT_HEADER in first[1]:
        start = (first[1][EXPORT_HEADER] or {}).get("from_seq") \
            if isinstance(first[1][EXPORT_HEADER], dict) else None
        if not isinstance(start, int) or start < 1:
            raise BadInput(f"line {first[0]}: the export header has no valid from_seq",
                           path=path)
        from_seq, first = start, None

    def rows():
        if first is not None:
            yield first[1]
        for _, entry in items:
            yield entry

    return verify_rows(rows(), expected, from_seq=from_seq)


# -------------------------------------------------------------- the ``provkit audit`` verbs


def log(db=None, *, since=None, outcome: str | None = None, point: str | None = None,
        actor: str | None = None, limit: int | None = None) -> list[dict]:
    """``provkit audit log``: recorded decisions, oldest first (with ``limit``: the newest
    ``limit``, still oldest first)."""
    rows = list(AuditLog(db, create=False).log(since=since, outcome=outcome, point=point,
                                               actor=actor, limit=limit,
                                               newest_first=limit is not None))
    if limit is not None:
        rows.reverse()
    return rows


def verify(db=None, *, expect_head: str | Head | None = None, export=None) -> AuditCheck:
    """``provkit audit verify``: the chain of the database, or of an exported JSONL file."""
    if export is not None:
        return verify_export(export, expect_head=expect_head)
    return AuditLog(db, create=False).verify(expect_head=expect_head)


def head(db=None) -> Head | None:
    """``provkit audit head``: the last row of the chain (None for an empty log)."""
    return AuditLog(db, create=False).head()


@dataclass(frozen=True)
class Exported:
    """``provkit audit export``: how many rows went where (None: the given stream)."""

    rows: int
    out: str | None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def export(out=None, *, db=None, format: str = "jsonl", since=None, force: bool = False,
           stream=None) -> Exported:
    """Every row with its hashes to ``out`` (written atomically; an existing file is
    replaced only with ``force``) or to ``stream`` (a text stream)."""
    audit_log = AuditLog(db, create=False)
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

