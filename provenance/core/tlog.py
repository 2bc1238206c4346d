"""The workspace's Merkle logs (``assets``, ``decisions``): leaves, stored node hashes,
checkpoints; behind :class:`TlogStore`.

Each log is an append-only RFC 6962 tree (:mod:`provenance.core.merkle`). Its owners
(the ledger store, the audit store) append leaves with :meth:`TlogStore.append` on their
own connection *inside the write transaction of the row a leaf covers*, so a row and its
leaf commit together or not at all. Stored per log:

- every entry (its bytes, and a lookup key where its position does not say it: an asset
  id; an audit row's leaf is at position seq - 1 and has none);
- the hashes of the complete subtrees at tree levels 0, 8, 16, ... (the hashes of the
  C2SP ``tlog-tiles`` layout: tile level L holds level-8L nodes, 256 to a tile), so any
  subtree hash is at most 255 hashes away and a proof for ten million leaves reads a
  few tiles;
- the right edge of the tree (the roots of its complete subtrees, at most 64 hashes),
  which gives the root after each append without reading anything else;
- the latest checkpoint, signed with the workspace log key (:mod:`provenance.core.note`)
  at every append batch when that key exists.

The tables live in the workspace database (``tlog_state``, ``tlog_entries``,
``tlog_hashes``); nothing else touches them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from provkit.provenance.core import merkle, note, stores, workspace
from provkit.provenance.core.errors import BadInput

LOGS = {"assets": 1, "decisions": 2}
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


def _create(db) -> None:
    conn = db.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS tlog_state (log INTEGER PRIMARY KEY, "
        "size INTEGER NOT NULL, frontier BLOB NOT NULL, checkpoint TEXT)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS tlog_entries (log INTEGER, idx INTEGER, "
        "key TEXT, data BLOB NOT NULL, PRIMARY KEY (log, idx)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS tlog_entries_key ON tlog_entries (log, key) "
        "WHERE key IS NOT NULL"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS tlog_hashes (log INTEGER, level INTEGER, "
        "idx INTEGER, hash BLOB NOT NULL, PRIMARY KEY (log, level, idx)) WITHOUT ROWID"
    )


MIGRATIONS = [_create]


def _log_id(log: str) -> int:
    try:
        return LOGS[log]
    except KeyError:
        raise BadInput(f"no log {log!r} (logs: {', '.join(LOGS)})") from None


def origin(log: str, signer_name: str) -> str:
    """A log's origin line: the log key's name and the log's name."""
    return f"{signer_name}/{log}"


def _pack(frontier) -> bytes:
    return b"".join(bytes([level]) + h for level, h in frontier)


def _unpack(blob: bytes) -> list[tuple[int, bytes]]:
    return [(blob[i], bytes(blob[i + 1 : i + 33])) for i in range(0, len(blob), 33)]


class TlogStore(Protocol):
    """What the logs need from storage (see :mod:`provenance.core.stores`)."""

    def append(self, log: str, entries: Iterable[tuple[str, bytes]]) -> tuple[int, object]: ...
    def size(self, log: str) -> int: ...
    def root(self, log: str) -> bytes: ...
    def subtree(self, log: str): ...
    def entry(self, log: str, index: int) -> tuple[str, bytes] | None: ...
    def find(self, log: str, key: str) -> int | None: ...
    def latest_checkpoint(self, log: str) -> note.Checkpoint | None: ...
    def save_checkpoint(self, log: str, cp: note.Checkpoint) -> None: ...
    def tile(self, log: str, level: int, index: int, width: int) -> bytes | None: ...
    def entries_tile(self, log: str, index: int, width: int) -> bytes | None: ...


class SqliteTlogStore:
    """The logs in a workspace database (a path, a Database or None)."""

    def __init__(self, db=None, *, create: bool = True):
        self.db = workspace.database(db, create=create)
        self.conn = self.db.conn
        if create:
            workspace.migrate(self.db, "provenance.core.tlog", MIGRATIONS)
        #: a reader's database from before the logs (no tables): every log is empty
        self.absent = (
            not create
            and self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tlog_entries'"
            ).fetchone()
            is None
        )

    # ------------------------------------------------------------ writing
    def append(
        self, log: str, entries: Iterable[tuple[str, bytes]], *, sign: bool = True
    ) -> tuple[int, note.Checkpoint | None]:
        """Append ``(key or None, data)`` leaves; returns the first new index and the checkpoint
        signed for the new size (None without a log key). Runs inside the caller's open
        write transaction when there is one (the row the leaves cover), else in its own."""
        log_id = _log_id(log)
        conn = self.conn
        with workspace.write_transaction(conn):
            row = conn.execute(
                "SELECT size, frontier FROM tlog_state WHERE log = ?", [log_id]
            ).fetchone()
            size, frontier = (row[0], _unpack(row[1])) if row else (0, [])
            first = size
            entry_rows, hash_rows = [], []

            def done(level, index, digest):
                if level % TILE_HEIGHT == 0:
                    hash_rows.append((log_id, level // TILE_HEIGHT, index, digest))

            for key, data in entries:
                entry_rows.append((log_id, size, None if key is None else str(key), data))
                merkle.frontier_push(frontier, merkle.leaf_hash(data), done, size=size)
                size += 1
            conn.executemany(
                "INSERT INTO tlog_entries (log, idx, key, data) VALUES (?, ?, ?, ?)", entry_rows
            )
            conn.executemany(
                "INSERT INTO tlog_hashes (log, level, idx, hash) VALUES (?, ?, ?, ?)", hash_rows
            )
            cp = None
            signer = note.log_signer() if sign else None
            if signer is not None and entry_rows:
                cp = note.sign_checkpoint(
                    signer, origin(log, signer.name), size, merkle.frontier_root(frontier)
                )
            conn.execute(
                "INSERT INTO tlog_state (log, size, frontier, checkpoint) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(log) DO UPDATE SET "
                "size = excluded.size, frontier = excluded.frontier, "
                "checkpoint = coalesce(excluded.checkpoint, checkpoint)",
                [log_id, size, _pack(frontier), cp.note if cp else None],
            )
        return first, cp

    def save_checkpoint(self, log: str, cp: note.Checkpoint) -> None:
        if self.absent:
            return
        with self.conn:
            self.conn.execute(
                "UPDATE tlog_state SET checkpoint = ? WHERE log = ? AND size = ?",
                [cp.note, _log_id(log), cp.size],
            )

    # ------------------------------------------------------------ reading
    def _state(self, log: str):
        if self.absent:
            _log_id(log)
            return None
        return self.conn.execute(
            "SELECT size, frontier, checkpoint FROM tlog_state WHERE log = ?", [_log_id(log)]
        ).fetchone()

    def size(self, log: str) -> int:
        state = self._state(log)
        return state[0] if state else 0

    def root(self, log: str) -> bytes:
        state = self._state(log)
        return merkle.frontier_root(_unpack(state[1])) if state else merkle.EMPTY_ROOT

    def latest_checkpoint(self, log: str) -> note.Checkpoint | None:
        """The checkpoint signed at the last append batch (or on demand), as text, with
        what it states; None when none was signed at the current size."""
        state = self._state(log)
        if not state or not state[2]:
            return None
        lines = state[2].split("\n")
        cp = note.Checkpoint(lines[0], int(lines[1]), note._unb64(lines[2]), state[2])
        return cp if cp.size == state[0] else None

    def entry(self, log: str, index: int) -> tuple[str, bytes] | None:
        """``(key, bytes)`` of a leaf (a leaf without a key: its position + 1)."""
        if self.absent:
            return None
        row = self.conn.execute(
            "SELECT key, data FROM tlog_entries WHERE log = ? AND idx = ?",
            [_log_id(log), int(index)],
        ).fetchone()
        if not row:
            return None
        return (row[0] if row[0] is not None else str(int(index) + 1)), bytes(row[1])

    def find(self, log: str, key: str) -> int | None:
        """The index of the newest leaf with ``key`` (None when there is none)."""
        if self.absent:
            return None
        row = self.conn.execute(
            "SELECT max(idx) FROM tlog_entries WHERE log = ? AND key = ?", [_log_id(log), str(key)]
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    def _hashes(self, log_id: int, level: int, lo: int, hi: int) -> list[bytes]:
        if self.absent:
            return []
        rows = self.conn.execute(
            "SELECT hash FROM tlog_hashes WHERE log = ? AND level = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx",
            [log_id, level, lo, hi],
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def subtree(self, log: str):
        """``subtree(lo, hi)`` (see :mod:`provenance.core.merkle`) from the stored hashes,
        each tile read once per call of this method."""
        log_id = _log_id(log)
        tiles: dict[tuple[int, int], list[bytes]] = {}

        def stored(level: int, lo: int, hi: int) -> list[bytes]:
            tile = lo // TILE_WIDTH
            if (level, tile) not in tiles:
                tiles[(level, tile)] = self._hashes(
                    log_id, level, tile * TILE_WIDTH, (tile + 1) * TILE_WIDTH
                )
            got = tiles[(level, tile)]
            base = tile * TILE_WIDTH
            out = got[lo - base : hi - base]
            if len(out) != hi - lo:
                raise BadInput(
                    f"the {log} log's stored hashes are incomplete (level "
                    f"{level}, {lo}-{hi}): the log tables were altered"
                )
            return out

        def complete(height: int, index: int) -> bytes:
            level, rest = divmod(height, TILE_HEIGHT)
            return merkle.root_of(stored(level, index << rest, (index + 1) << rest))

        def subtree(lo: int, hi: int) -> bytes:
            n = hi - lo
            if n & (n - 1) == 0 and lo % n == 0:
                return complete(n.bit_length() - 1, lo // n)
            k = merkle.split(n)
            return merkle.node_hash(subtree(lo, lo + k), subtree(lo + k, hi))

        return subtree

    def tile(self, log: str, level: int, index: int, width: int) -> bytes | None:
        """A C2SP tile: the first ``width`` hashes of tile ``index`` at ``level``."""
        if not 1 <= width <= TILE_WIDTH:
            return None
        got = self._hashes(_log_id(log), level, index * TILE_WIDTH, index * TILE_WIDTH + width)
        return b"".join(got) if len(got) == width else None

    def entries_tile(self, log: str, index: int, width: int) -> bytes | None:
        """A C2SP entry bundle: each entry as a big-endian 16-bit length and its bytes."""
        if not 1 <= width <= TILE_WIDTH or self.absent:
            return None
        rows = self.conn.execute(
            "SELECT data FROM tlog_entries WHERE log = ? AND idx >= ? AND idx < ? ORDER BY idx",
            [_log_id(log), index * TILE_WIDTH, index * TILE_WIDTH + width],
        ).fetchall()
        if len(rows) != width:
            return None
        return b"".join(len(r[0]).to_bytes(2, "big") + bytes(r[0]) for r in rows)


def tlog_store(db=None, *, create: bool = True) -> SqliteTlogStore:
    """The Merkle logs of a database, in the configured storage backend."""
    stores.require_sqlite("transparency log")
    return SqliteTlogStore(db, create=create)
