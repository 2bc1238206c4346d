"""Hash banks: reference sets filled from hash lists instead of images.

Platforms exchange perceptual hashes, not images (NCMEC, StopNCII, GIFCT and
ThreatExchange share PDQ hex strings with ids). :func:`index_import` reads such a
list into a reference set; :func:`index_export` writes a set's hashes back out.

Accepted files (the format is told by the suffix, else by the first line):

- CSV (``.csv``) or TSV (``.tsv``, ``.tab``) with a header naming a hash column
  (``hash``, ``signal_value``, ``signal``, ``value`` or the kind itself: ``pdq``,
  ``phash``, ``dhash``), and optionally an id column (``id``, ``source_id``,
  ``content_id``, ``bank_content_id``), a quality column (``quality``,
  ``pdq_quality``) and a type column (``signal_type``, ``kind``, ``type``; rows of
  another type are reported and skipped). Every other column becomes the item's
  metadata. Without a header the columns are ``hash[,id[,quality]]``.
- JSON Lines (``.jsonl``, ``.ndjson``): one object per line, with the same names, or
  a ``signals`` object such as ``{"pdq": HEX}`` (the HMA bank-content form).
- ThreatExchange / HMA signal exports are the CSV/JSONL forms above with
  ``signal_type``, ``signal_value`` and ``bank_content_id`` (or ``id``) columns.

A hash is hex: 64 digits for PDQ, 16 for pHash and dHash. A line that cannot be used
(bad hex, wrong length, another signal type, a quality outside 0..100, a torn line)
is reported with its line number and skipped. One record per line: a quoted CSV field
may not span lines. Hashes are written in blocks (detect.index_schema), one
transaction per block, and a source id (the hash itself when the list has no ids)
is stored once per set: an interrupted import keeps every finished block and a rerun
of the same file adds only what is missing. PDQ hashes with quality below 50 are
kept but flagged: they never decide a match (the rule provkit applies to the
hashes it computes).

Why one module of over 400 lines: reading every accepted list format, writing the
blocks and exporting them back are one contract (what export writes, import reads
back exactly); the block layout itself lives in detect.index_schema.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Protocol

import numpy as np
from provkit.detect.index_cache import db_key, forget, load_set
from provkit.detect.index_schema import (
    BLOCK_SIZE,
    HASH_ID_BASE,
    SCHEMA,
    hash_item_id,
    split_item_id,
)
from provkit.detect.index_search import UNKNOWN_QUALITY
from provkit.provenance.core import stores
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.files import atomic_file
from provkit.provenance.core.workspace import connect, migrate
from provkit.provenance.fingerprint import PDQ_MIN_QUALITY

#: Hash kinds a list can hold, and the hex digits of each.
HEX_DIGITS = {"pdq": 64, "phash": 16, "dhash": 16}
HASH_COLUMNS = ("hash", "signal_value", "signal", "value")
ID_COLUMNS = ("id", "source_id", "content_id", "bank_content_id", "item_id")
QUALITY_COLUMNS = ("quality", "pdq_quality")
TYPE_COLUMNS = ("signal_type", "kind", "type")
#: Rows per transaction.
BATCH = 50_000
#: Invalid lines kept in a report (all are counted).
MAX_REPORTED = 1000


@dataclass(frozen=True)
class ImportReport:
    """What one import did: rows added, already there, flagged, and lines skipped (why)."""

    set: str
    kind: str
    file: str
    lines: int
    imported: int
    already_present: int
    low_quality: int
    invalid: int
    errors: tuple[tuple[int, str], ...]
    seconds: float
    #: of which writing the rows (the rest is building the set's file cache)
    rows_seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "set": self.set,
            "kind": self.kind,
            "file": self.file,
            "lines": self.lines,
            "imported": self.imported,
            "already_present": self.already_present,
            "low_quality": self.low_quality,
            "invalid": self.invalid,
            "errors": [{"line": n, "reason": r} for n, r in self.errors],
            "seconds": round(self.seconds, 3),
            "rows_seconds": round(self.rows_seconds, 3),
            "hashes_per_second": round(
                (self.imported + self.already_present) / max(self.seconds, 1e-9)
            ),
        }


@dataclass(frozen=True)
class ExportReport:
    set: str
    out: str
    exported: int
    seconds: float

    def to_json(self) -> dict:
        return {
            "set": self.set,
            "out": self.out,
            "exported": self.exported,
            "seconds": round(self.seconds, 3),
        }


# -- the bank table, behind the storage seam (provenance.core.stores) --------------------

#: What a match in a bank means to a policy: ``deny``, ``review`` and ``label`` ask for
#: that outcome; ``allow`` makes a negative bank (a match there cancels the others for
#: that image). A bank without an action only reports its matches.
ACTIONS = ("deny", "review", "label", "allow")
#: Metadata keys that carry an image item's partner id (an imported hash has its own).
PARTNER_KEYS = ("partner_id", "id", "content_id", "source_id", "bank_content_id")
_KEEP = object()


def partner_id_of(metadata: dict | None) -> str | None:
    """An image item's partner id, from the metadata it was added with (None if none)."""
    for key in PARTNER_KEYS:
        value = (metadata or {}).get(key)
        if value not in (None, ""):
            return str(value)
    return None


def check_action(action: str | None) -> str | None:
    if action is None:
        return None
    text = str(action).strip().lower()
    if text in ("", "none"):
        return None
    if text not in ACTIONS:
        raise BadInput(f"unknown bank action {action!r}; use {', '.join(ACTIONS)} (or none)")
    return text


def check_distances(value) -> dict | None:
    """Per-kind match distances of a bank (``{"pdq": 20}``), checked; None for the defaults."""
    if value in (None, {}, ""):
        return None
    if not isinstance(value, dict):
        raise BadInput(f"a bank's match distance is per kind, e.g. pdq=20 (got {value!r})")
    bits = {"pdq": 256, "phash": 64, "dhash": 64}
    out = {}
    for kind, v in value.items():
        if kind == "clip":
            if not isinstance(v, (int, float)) or not 0 < float(v) <= 1:
                raise BadInput(f"clip similarity {v!r} is outside (0, 1]")
            out[kind] = float(v)
            continue
        if kind not in bits:
            raise BadInput(
                f"unknown hash kind {kind!r} in a match distance; use pdq, phash, dhash or clip"
            )
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= bits[kind]:
            raise BadInput(f"{kind} distance {v!r} is outside 0..{bits[kind]} bits")
        out[kind] = v
    return out


@dataclass(frozen=True)
class BankSettings:
    """One bank's row: what it is, what a match in it means, and how it matches."""

    name: str
    label: str | None
    protected: bool
    description: str | None
    created: str
    version: str
    clip_spec: str | None = None
    action: str | None = None
    enabled: bool = True
    max_distance: dict | None = None

    @property
    def matching(self) -> tuple:
        """What a loaded copy of the bank needs to know besides its codes."""
        return (self.enabled, self.action, json.dumps(self.max_distance, sort_keys=True))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "protected": self.protected,
            "description": self.description,
            "created": self.created,
            "action": self.action,
            "enabled": self.enabled,
            "max_distance": dict(self.max_distance) if self.max_distance else None,
        }


class BankStore(Protocol):
    """The bank table: names, settings and versions (items stay with the index)."""

    def names(self) -> list[str]: ...
    def get(self, name: str) -> BankSettings | None: ...
    def all(self) -> dict[str, BankSettings]: ...
    def create(
        self, name: str, *, label=None, protected=False, description=None, action=None
    ) -> None: ...
    def configure(
        self,
        name: str,
        *,
        action=_KEEP,
        enabled=None,
        max_distance=_KEEP,
        label=None,
        description=None,
    ) -> BankSettings: ...
    def set_clip_spec(self, name: str, spec: str) -> None: ...
    def touch(self, name: str) -> None: ...
    def delete(self, name: str) -> None: ...


_COLUMNS = (
    "name, label, protected, description, created, version, clip_spec, action, "
    "enabled, max_distance"
)


def _settings(row) -> BankSettings:
    return BankSettings(
        row[0],
        row[1],
        bool(row[2]),
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        bool(row[8]),
        json.loads(row[9]) if row[9] else None,
    )


class SqliteBankStore:
    """:class:`BankStore` on the workspace database (table ``ref_sets``)."""

    def __init__(self, db):
        self.db = _open(db)
        self.conn = self.db.conn

    @classmethod
    def on(cls, conn) -> SqliteBankStore:
        """A store over a raw connection already migrated (an import's own handle)."""
        store = cls.__new__(cls)
        store.db, store.conn = None, conn
        return store

    def names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM ref_sets ORDER BY name")]

    def get(self, name: str) -> BankSettings | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM ref_sets WHERE name = ?", [name]
        ).fetchone()
        return None if row is None else _settings(row)

    def all(self) -> dict[str, BankSettings]:
        return {
            r[0]: _settings(r)
            for r in self.conn.execute(f"SELECT {_COLUMNS} FROM ref_sets ORDER BY name")
        }

    def create(
        self, name: str, *, label=None, protected=False, description=None, action=None
    ) -> None:
        """Create a bank, or update the label, protection, description and action given."""
        if not name or not name.strip():
            raise BadInput("a bank needs a name")
        action = check_action(action)
        with self.conn:
            self.conn.execute(
                """INSERT INTO ref_sets (name, label, protected, description, created, version,
                                         action)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET
                     label = COALESCE(excluded.label, label),
                     protected = MAX(protected, excluded.protected),
                     description = COALESCE(excluded.description, description),
                     action = COALESCE(excluded.action, action)""",
                [
                    name,
                    label,
                    int(bool(protected)),
                    description,
                    _now(),
                    secrets.token_hex(8),
                    action,
                ],
            )

    def configure(
        self,
        name: str,
        *,
        action=_KEEP,
        enabled=None,
        max_distance=_KEEP,
        label=None,
        description=None,
    ) -> BankSettings:
        """Change a bank's settings (those given); its items and version stay as they are,
        so a loaded copy is kept (the settings are read at every refresh)."""
        if self.get(name) is None:
            raise BadInput(f"no bank named {name!r}" + _known(self.names()))
        sets, args = [], []
        if action is not _KEEP:
            sets.append("action = ?")
            args.append(check_action(action))
        if enabled is not None:
            sets.append("enabled = ?")
            args.append(int(bool(enabled)))
        if max_distance is not _KEEP:
            sets.append("max_distance = ?")
            checked = check_distances(max_distance)
            args.append(json.dumps(checked, sort_keys=True) if checked else None)
        for column, value in (("label", label), ("description", description)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value or None)
        if sets:
            with self.conn:
                self.conn.execute(
                    f"UPDATE ref_sets SET {', '.join(sets)} WHERE name = ?", [*args, name]
                )
        return self.get(name)

    def set_clip_spec(self, name: str, spec: str) -> None:
        """The CLIP model a bank's embeddings were made with (to embed queries alike)."""
        with self.conn:
            self.conn.execute("UPDATE ref_sets SET clip_spec = ? WHERE name = ?", [spec, name])

    def touch(self, name: str) -> None:
        self.conn.execute(
            "UPDATE ref_sets SET version = ? WHERE name = ?", [secrets.token_hex(8), name]
        )

    def delete(self, name: str) -> None:
        self.conn.execute("DELETE FROM ref_sets WHERE name = ?", [name])


def _known(names: list[str]) -> str:
    return f" (banks: {', '.join(names)})" if names else " (there are no banks yet)"


def bank_store(db=None) -> BankStore:
    """The bank table of workspace database ``db`` for the configured storage backend."""
    stores.require_sqlite("bank")
    return SqliteBankStore(db)


# -- reading lists -----------------------------------------------------------------------


def parse_hash(kind: str, text: str) -> bytes | int:
    """A hex hash as stored: bytes for PDQ, a signed 64-bit int for pHash/dHash."""
    text = text.strip().lower()
    text = text.removeprefix("0x")
    want = HEX_DIGITS[kind]
    if len(text) != want:
        raise ValueError(f"a {kind} hash has {want} hex digits, this one {len(text)}")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{text[:20]!r} is not hexadecimal") from None
    if kind == "pdq":
        return raw
    v = int.from_bytes(raw, "big")
    return v - (1 << 64) if v >= 1 << 63 else v


def _signal_kind(value) -> str:
    t = str(value).strip().lower()
    for prefix in ("hash_", "photo_", "image_"):
        t = t.removeprefix(prefix)
    return t


def _quality(value) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        q = int(value)
    except (TypeError, ValueError):
        try:
            q = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"quality {value!r} is not a number") from None
    if not 0 <= q <= 100 or q != int(q):
        raise ValueError(f"quality {value!r} is not a whole number in 0..100")
    return int(q)


def _record(kind: str, fields: dict) -> tuple[bytes | int, str | None, int | None, dict]:
    """(hash, source id, quality, metadata) from one row's named fields; ValueError why not."""
    low = {str(k).strip().lower(): v for k, v in fields.items() if k is not None}
    used = set()
    for col in TYPE_COLUMNS:
        if low.get(col) not in (None, ""):
            used.add(col)
            if _signal_kind(low[col]) != kind:
                raise ValueError(f"signal type {low[col]!r} is not {kind}")
            break
    value = None
    signals = low.get("signals")
    if isinstance(signals, dict):
        used.add("signals")
        value = next((v for k, v in signals.items() if _signal_kind(k) == kind), None)
        if value is None:
            raise ValueError(f"no {kind} signal (has {', '.join(map(str, signals)) or 'none'})")
    else:
        for col in (kind, *HASH_COLUMNS):
            if low.get(col) not in (None, ""):
                value = low[col]
                used.add(col)
                break
    if value is None:
        raise ValueError(f"no {kind} hash (expected a column {kind!r} or 'hash')")
    code = parse_hash(kind, str(value))
    source_id = None
    for col in ID_COLUMNS:
        if low.get(col) not in (None, ""):
            source_id = str(low[col]).strip()
            used.add(col)
            break
    quality = None
    for col in QUALITY_COLUMNS:
        if col in low:
            used.add(col)
            quality = _quality(low[col])
            break
    meta = {}
    packed = low.get("metadata")
    if packed not in (None, ""):  # a JSON object column (as `index export` writes)
        used.add("metadata")
        if isinstance(packed, str):
            try:
                packed = json.loads(packed)
            except ValueError:
                raise ValueError("the metadata column is not a JSON object") from None
        if not isinstance(packed, dict):
            raise ValueError("the metadata column is not a JSON object")
        meta.update(packed)
    meta.update(
        {
            k: v
            for k, v in fields.items()
            if k is not None and str(k).strip().lower() not in used and v not in (None, "")
        }
    )
    return code, source_id, quality, meta


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix == ".csv":
        return "csv"
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                return (
                    "jsonl" if line.lstrip().startswith("{") else ("tsv" if "\t" in line else "csv")
                )
    return "csv"


def read_hashes(path, kind: str) -> Iterator[tuple[int, tuple | str]]:
    """(line number, (hash, source id, quality, metadata)) or (line number, why it was
    skipped) for each non-blank line of a hash list. The file is opened at once:
    BadInput here if it cannot be read."""
    if kind not in HEX_DIGITS:
        raise BadInput(f"unknown hash kind {kind!r}; use {', '.join(HEX_DIGITS)}")
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError("is a folder")
        fmt = _format(path)
        f = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed by _lines)
    except UnicodeDecodeError as e:
        raise BadInput(f"hash list is not UTF-8 text ({e.reason})", path=path) from None
    except OSError as e:
        raise BadInput(f"cannot read hash list ({e.strerror or e})", path=path) from None
    return _lines(f, path, kind, fmt)


def _lines(f, path: Path, kind: str, fmt: str):
    with f:
        try:
            if fmt == "jsonl":
                yield from _read_jsonl(f, kind)
            else:
                yield from _read_csv(f, kind, "\t" if fmt == "tsv" else ",")
        except UnicodeDecodeError as e:
            raise BadInput(f"hash list is not UTF-8 text ({e.reason})", path=path) from None


def _read_jsonl(f, kind: str):
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except RecursionError:
            yield n, "nested too deeply to read"
            continue
        except ValueError as e:
            yield n, f"not JSON ({e.msg})" if isinstance(e, json.JSONDecodeError) else str(e)
            continue
        if not isinstance(obj, dict):
            yield n, "not a JSON object"
            continue
        try:
            rec = _record(kind, obj)
        except ValueError as e:
            yield n, str(e)
            continue
        yield n, rec


def _row_parser(header: list[str], kind: str):
    """A fast parser for the data lines of a CSV/TSV with this header:
    fields -> (code, source id, quality, metadata JSON or None); ValueError why not."""
    low = [h.strip().lower() for h in header]

    def find(names):
        return next((low.index(c) for c in names if c in low), None)

    hi, ii, qi, ti = (
        find((kind, *HASH_COLUMNS)),
        find(ID_COLUMNS),
        find(QUALITY_COLUMNS),
        find(TYPE_COLUMNS),
    )
    mi = low.index("metadata") if "metadata" in low else None
    extra = [(i, header[i].strip()) for i in range(len(header)) if i not in {hi, ii, qi, ti, mi}]
    width = len(header)
    want = HEX_DIGITS[kind]

    def parse(fields: list[str]):
        if len(fields) > width:
            raise ValueError(f"{len(fields)} fields where the header has {width}")
        fields = fields + [""] * (width - len(fields))
        if ti is not None and fields[ti].strip() and _signal_kind(fields[ti]) != kind:
            raise ValueError(f"signal type {fields[ti].strip()!r} is not {kind}")
        text = fields[hi].strip()
        if text[:2] in ("0x", "0X"):
            text = text[2:]
        if len(text) != want:
            if not text:
                raise ValueError(f"no {kind} hash")
            raise ValueError(f"a {kind} hash has {want} hex digits, this one {len(text)}")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{text[:20]!r} is not hexadecimal") from None
        sid = fields[ii].strip() if ii is not None else ""
        quality = _quality(fields[qi]) if qi is not None else None
        meta = None
        if mi is not None and fields[mi].strip():
            try:
                meta = json.loads(fields[mi])
            except ValueError:
                meta = None
            if not isinstance(meta, dict):
                raise ValueError("the metadata column is not a JSON object")
        if extra:
            more = {name: fields[i] for i, name in extra if fields[i] != ""}
            if more:
                meta = {**(meta or {}), **more}
        return raw, sid or None, quality, meta

    parse.fast = None if (extra or mi is not None or ti is not None) else (hi, ii, qi, width)
    return parse


#: Lines per step of the bulk CSV path.
BULK_LINES = 16_384


def _bulk(lines: list[str], delimiter: str, kind: str, layout):
    """A chunk of plain data lines parsed at once: (codes, ids, qualities), or None
    when anything is unusual (then each line goes through the per-line parser).

    The chunk is split once, as one text, rather than line by line: every line must then
    hold exactly ``width`` fields, which the delimiter and newline counts prove."""
    hi, ii, qi, width = layout
    want = HEX_DIGITS[kind]
    n = len(lines)
    text = "".join(lines)
    if (
        "\r" in text
        or not text.endswith("\n")
        or text.count("\n") != n
        or text.count(delimiter) != (width - 1) * n
    ):
        return None
    fields = text[:-1].replace("\n", delimiter).split(delimiter)
    hashes = fields[hi::width]
    if len(hashes) != n or any(length != want for length in map(len, hashes)):
        return None
    try:
        raw = bytes.fromhex("".join(hashes))
    except ValueError:
        return None
    if len(raw) != n * want // 2:  # fromhex skips spaces
        return None
    if ii is None:
        ids = [raw[i * want // 2 : (i + 1) * want // 2].hex() for i in range(n)]
    else:
        ids = fields[ii::width]
        if " " in text or "\t" in text:  # ids are stripped as the per-line parser does
            ids = [i.strip() for i in ids]
        if "" in ids:
            return None
    if qi is None:
        quality = bytes([UNKNOWN_QUALITY]) * n
    else:
        qs = fields[qi::width]
        digits = "".join(qs)
        if not (digits.isascii() and digits.isdigit()) or any(not 0 < len(v) <= 3 for v in qs):
            return None  # signs, spaces, "1_0", empty cells: the per-line parser says why
        q = np.fromiter(map(int, qs), np.int64, n)
        if q.size and (q.min() < 0 or q.max() > 100):
            return None
        quality = q.astype(np.uint8).tobytes()
    return raw, ids, quality  # (pHash/dHash are stored big-endian: the hex order)


def _read_csv(f, kind: str, delimiter: str):
    parse = None
    n = 0
    while True:
        lines = list(islice(f, BULK_LINES))
        if not lines:
            return
        first = n + 1
        n += len(lines)
        if parse is not None and parse.fast and not any('"' in line for line in lines):
            got = _bulk(lines, delimiter, kind, parse.fast)
            if got is not None:
                yield n, ("bulk", *got)
                continue
        for k, line in enumerate(lines, first):
            if not line.strip():
                continue
            if '"' in line:
                if line.count('"') % 2:  # a quoted field that runs on past the line's end
                    yield (
                        k,
                        (
                            "a quoted field runs past the end of the line (records that "
                            "span lines are not read; keep each hash on one line)"
                        ),
                    )
                    continue
                try:
                    fields = next(csv.reader([line], delimiter=delimiter, strict=True))
                except (csv.Error, StopIteration) as e:
                    yield k, f"malformed line ({e})"
                    continue
            else:
                fields = line.rstrip("\r\n").split(delimiter)
            if parse is None:
                try:
                    parse_hash(kind, fields[0])
                    parse = _row_parser(["hash", "id", "quality"], kind)  # no header
                except ValueError:
                    names = {c.strip().lower() for c in fields}
                    if not names & {kind, *HASH_COLUMNS}:
                        yield (
                            k,
                            (
                                f"the header names no hash column (one of {kind}, "
                                f"{', '.join(HASH_COLUMNS)}); nothing imported"
                            ),
                        )
                        return
                    parse = _row_parser(fields, kind)
                    continue
            try:
                yield k, parse(fields)
            except ValueError as e:
                yield k, str(e)


def _to_raw(kind: str, code) -> bytes:
    if isinstance(code, bytes):
        return code
    return (code & (2**64 - 1)).to_bytes(8, "big")


# -- import / export ---------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _open(db):
    handle = connect(db) if db is None or isinstance(db, (str, os.PathLike)) else db
    migrate(handle, "detect.index", SCHEMA)
    return handle


def _create_set(conn, name, label, protected, description, action=None) -> None:
    SqliteBankStore.on(conn).create(
        name, label=label, protected=protected, description=description, action=action
    )


def _known_ids(conn, name: str, after_block: int = 0) -> tuple[set[str], int]:
    """Source ids of the set's hash blocks after ``after_block``, and the last block id."""
    ids: set[str] = set()
    last = after_block
    for bid, text in conn.execute(
        "SELECT id, source_ids FROM ref_hash_blocks WHERE set_name = ? AND id > ? ORDER BY id",
        [name, after_block],
    ):
        ids.update(text.split("\n"))
        last = bid
    return ids, last


def index_import(
    name: str,
    file,
    *,
    kind: str = "pdq",
    db=None,
    label: str | None = None,
    protected: bool = False,
    description: str | None = None,
    metadata: dict | None = None,
    batch: int = BATCH,
    action: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a hash list into reference set ``name`` (created if new); see the module doc.

    ``metadata`` applies to every item (a column of the same name wins). ``progress(n)``
    is called after each block with the hashes it held. ``action`` says what a match in
    the bank means (:data:`ACTIONS`; kept as it was when None). Library twin of
    ``provkit bank import``.
    """
    if kind not in HEX_DIGITS:
        raise BadInput(f"unknown hash kind {kind!r}; use {', '.join(HEX_DIGITS)}")
    batch = max(1, min(int(batch), BLOCK_SIZE))
    t0 = time.perf_counter()
    handle = _open(db)
    conn = handle.conn
    records = read_hashes(file, kind)  # opens the file: BadInput before anything is created
    _create_set(conn, name, label, protected, description, action)
    known, last_block = _known_ids(conn, name)  # ids the set held before (or gets meanwhile)
    added: set[str] = set()  # ids this import added: a second one in the list is an error
    counted: set[str] = set()  # ids this import found already present (likewise)
    base_meta = dict(metadata or {})
    errors: list[tuple[int, str]] = []
    invalid = imported = present = low = lines = 0
    codes, quality, ids, metas = bytearray(), bytearray(), [], []  # waiting to be written
    any_meta = bool(base_meta)
    source = Path(file).name

    width = HEX_DIGITS[kind] // 2
    empty_meta = json.dumps(base_meta, sort_keys=True) if base_meta else "{}"

    def write(codes: bytes, quality: bytes, ids: list[str], metas: list[str] | None):
        """One block in one transaction; ids a concurrent import added meanwhile are dropped."""
        nonlocal imported, present, last_block
        conn.execute("BEGIN IMMEDIATE")
        try:
            fresh, last_block = _known_ids(conn, name, last_block)
            known.update(fresh)
            dropped = 0
            if fresh and not fresh.isdisjoint(ids):
                keep = [i for i, sid in enumerate(ids) if sid not in fresh]
                dropped = len(ids) - len(keep)
                codes = b"".join(codes[i * width : (i + 1) * width] for i in keep)
                quality = bytes(quality[i] for i in keep)
                ids = [ids[i] for i in keep]
                metas = None if metas is None else [metas[i] for i in keep]
            if ids:
                cur = conn.execute(
                    """INSERT INTO ref_hash_blocks (set_name, kind, n, codes, quality,
                           source_ids, metadata, source, added) VALUES (?,?,?,?,?,?,?,?,?)""",
                    [
                        name,
                        kind,
                        len(ids),
                        codes,
                        quality,
                        "\n".join(ids),
                        "\n".join(metas) if metas is not None else "",
                        source,
                        _now(),
                    ],
                )
                last_block = cur.lastrowid
                conn.execute(
                    "UPDATE ref_sets SET version = ? WHERE name = ?", [secrets.token_hex(8), name]
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        imported += len(ids)
        present += dropped
        if progress:
            progress(len(ids) + dropped)

    def flush(final: bool = False):
        nonlocal codes, quality, ids, metas, any_meta
        while len(ids) >= batch or (final and ids):
            k = min(batch, len(ids))
            write(
                bytes(codes[: k * width]),
                bytes(quality[:k]),
                ids[:k],
                metas[:k] if any_meta else None,
            )
            del codes[: k * width], quality[:k], ids[:k], metas[:k]
        if not ids:
            any_meta = bool(base_meta)

    def bad(n: int, why: str):
        nonlocal invalid
        invalid += 1
        if len(errors) < MAX_REPORTED:
            errors.append((n, why))

    collecting = gc.isenabled()
    gc.disable()  # millions of short-lived lists: the cyclic collector would rescan the heap
    try:
        for n, rec in records:
            lines = n
            if isinstance(rec, str):
                bad(n, rec)
                continue
            if rec[0] == "bulk":  # many plain lines at once
                _, raw, bulk_ids, bulk_quality = rec
                if (
                    known.isdisjoint(bulk_ids)
                    and added.isdisjoint(bulk_ids)
                    and len(set(bulk_ids)) == len(bulk_ids)
                ):
                    added.update(bulk_ids)
                    codes += raw
                    quality += bulk_quality
                    ids.extend(bulk_ids)
                    metas.extend([empty_meta] * len(bulk_ids))
                    if kind == "pdq":
                        low += int((np.frombuffer(bulk_quality, np.uint8) < PDQ_MIN_QUALITY).sum())
                    flush()
                    continue
                first = n - len(bulk_ids) + 1  # a bulk chunk is whole lines, none blank
                records_here = [
                    (raw[i * width : (i + 1) * width], sid, bulk_quality[i], None, first + i)
                    for i, sid in enumerate(bulk_ids)
                ]
            else:
                records_here = [(*rec, n)]
            for code, sid, q, meta, n in records_here:
                raw_code = _to_raw(kind, code)
                if q == UNKNOWN_QUALITY and rec[0] == "bulk":
                    q = None
                given = sid is not None
                if not given:
                    sid = raw_code.hex()  # no id column: the hash is the id
                elif "\n" in sid or "\r" in sid:
                    bad(n, "the id holds a line break")
                    continue
                if given and (sid in added or sid in counted):
                    bad(n, f"the id {sid[:80]!r} appears earlier in this list; line skipped")
                    continue
                if sid in known or sid in added:
                    present += 1
                    if given:
                        counted.add(sid)
                    continue
                added.add(sid)
                if q is not None and q < PDQ_MIN_QUALITY and kind == "pdq":
                    low += 1
                codes += raw_code
                quality.append(UNKNOWN_QUALITY if q is None else q)
                ids.append(sid)
                if meta:
                    any_meta = True
                    metas.append(
                        json.dumps({**base_meta, **meta}, sort_keys=True, ensure_ascii=False)
                    )
                else:
                    metas.append(empty_meta)
            flush()
        flush(final=True)
    finally:
        if collecting:
            gc.enable()
        forget(handle, name)
    t_rows = time.perf_counter() - t0
    load_set(handle, name)  # build the set's file cache now, not on the first query
    return ImportReport(
        name,
        kind,
        str(file),
        lines,
        imported,
        present,
        low,
        invalid,
        tuple(errors),
        time.perf_counter() - t0,
        t_rows,
    )


def _block_lines(text: str, n: int, default: str = "{}") -> list[str]:
    return text.split("\n") if text else [default] * n


_DETAILS: dict[tuple[str, int], tuple[list[str], list[str], str]] = {}


def hash_details(db, item_ids, key: str | None = None) -> dict[int, tuple[str, dict, str]]:
    """item id -> (source id, metadata, added) for imported hashes (others left out).
    ``key``: ``db_key(db)`` when the caller already knows it (a lookup's hot path)."""
    by_block: dict[int, list[tuple[int, int]]] = {}
    for item_id in item_ids:
        where = split_item_id(int(item_id))
        if where is not None:
            by_block.setdefault(where[0], []).append((int(item_id), where[1]))
    out = {}
    key = key or db_key(db)
    for block, wanted in by_block.items():
        cached = _DETAILS.get((key, block))
        if cached is None:
            row = db.conn.execute(
                "SELECT n, source_ids, metadata, added FROM ref_hash_blocks WHERE id = ?", [block]
            ).fetchone()
            if row is None:
                continue
            cached = (row[1].split("\n"), _block_lines(row[2], row[0]), row[3])
            if len(_DETAILS) > 64:
                _DETAILS.clear()
            _DETAILS[(key, block)] = cached
        sids, metas, added = cached
        for item_id, pos in wanted:
            if pos < len(sids):
                out[item_id] = (sids[pos], json.loads(metas[pos] or "{}"), added)
    return out


def item_details(db, item_ids, key: str | None = None) -> dict[int, tuple[str | None, dict]]:
    """item id -> (partner id, metadata) for image items and imported hashes alike."""
    ids = [int(i) for i in item_ids]
    out = {i: (sid, meta) for i, (sid, meta, _) in hash_details(db, ids, key).items()}
    images = [i for i in ids if i < HASH_ID_BASE]
    for lo in range(0, len(images), 500):
        part = images[lo : lo + 500]
        for item_id, meta_json in db.conn.execute(
            f"SELECT id, metadata FROM ref_items WHERE id IN ({','.join('?' * len(part))})", part
        ):
            meta = json.loads(meta_json or "{}")
            out[item_id] = (partner_id_of(meta), meta)
    return out


def find_item(db, name: str, key) -> dict | None:
    """One live item of bank ``name`` by the partner's id, provkit's item id or an image's
    stored path or SHA-256: ``{"bank", "item_id", "partner_id", "metadata", "added", "signals"}``
    (``signals``: kind -> hex). None when no item has that key."""
    text = str(key)
    conn = db.conn
    for bid, kind, n, codes, sids, metas, removed, added in conn.execute(
        "SELECT id, kind, n, codes, source_ids, metadata, removed, added "
        "FROM ref_hash_blocks WHERE set_name = ? ORDER BY id",
        [name],
    ):
        ids = sids.split("\n")
        pos = None
        if text.isdigit() and split_item_id(int(text)) is not None:
            b, p = split_item_id(int(text))
            pos = p if b == bid and p < n else None
        elif text in ids:
            pos = ids.index(text)
        if pos is None or (removed and removed[pos]):
            continue
        width = len(codes) // n
        return {
            "bank": name,
            "item_id": hash_item_id(bid, pos),
            "partner_id": ids[pos],
            "metadata": json.loads(_block_lines(metas, n)[pos] or "{}"),
            "added": added,
            "signals": {kind: codes[pos * width : (pos + 1) * width].hex()},
        }
    partner = " OR ".join(f"json_extract(metadata, '$.{k}') = ?" for k in PARTNER_KEYS)
    row = conn.execute(
        "SELECT id, metadata, added, pdq, phash, dhash, path FROM ref_items "
        f"WHERE set_name = ? AND (path = ? OR sha256 = ? OR {partner} OR (? AND id = ?)) "
        "ORDER BY id LIMIT 1",
        [
            name,
            text,
            text,
            *[text] * len(PARTNER_KEYS),
            int(text.isdigit()),
            int(text) if text.isdigit() else 0,
        ],
    ).fetchone()
    if row is None:
        return None
    meta = json.loads(row[1] or "{}")
    return {
        "bank": name,
        "item_id": row[0],
        "partner_id": partner_id_of(meta),
        "metadata": meta,
        "added": row[2],
        "path": row[6],
        "signals": {
            "pdq": row[3].hex(),
            "phash": f"{row[4] & (2**64 - 1):016x}",
            "dhash": f"{row[5] & (2**64 - 1):016x}",
        },
    }


def remove_hashes(db, name: str, items) -> int:
    """Mark imported hashes removed, by item id or source id; returns how many were.
    The caller holds the transaction and stamps the set's version."""
    want_ids, want_sids = set(), set()
    for item in items:
        text = str(item)
        if text.isdigit() and split_item_id(int(text)) is not None:
            want_ids.add(int(text))
        else:
            want_sids.add(text)
    n_removed = 0
    rows = db.conn.execute(
        "SELECT id, n, source_ids, removed FROM ref_hash_blocks WHERE set_name = ?", [name]
    ).fetchall()
    for bid, n, text, removed in rows:
        mask = bytearray(removed or bytes(n))
        hit = 0
        for item_id in list(want_ids):
            b, pos = split_item_id(item_id)
            if b == bid and pos < n and not mask[pos]:
                mask[pos], hit = 1, hit + 1
        if want_sids:
            for pos, sid in enumerate(text.split("\n")):
                if sid in want_sids and not mask[pos]:
                    mask[pos], hit = 1, hit + 1
        if hit:
            db.conn.execute(
                "UPDATE ref_hash_blocks SET removed = ?, n_removed = n_removed + ? WHERE id = ?",
                [bytes(mask), hit, bid],
            )
            _DETAILS.pop((db_key(db), bid), None)
            n_removed += hit
    return n_removed


def hash_stats(db, name: str) -> dict:
    """Counts of a set's imported hashes: per kind, and PDQ flagged for low quality."""
    per_kind = {k: 0 for k in HEX_DIGITS}
    low = 0
    for kind, n, quality, removed in db.conn.execute(
        "SELECT kind, n, quality, removed FROM ref_hash_blocks WHERE set_name = ?", [name]
    ):
        q = np.frombuffer(quality, np.uint8)
        keep = np.frombuffer(removed, np.uint8) == 0 if removed else np.ones(n, bool)
        per_kind[kind] += int(keep.sum())
        if kind == "pdq":
            low += int(((q < PDQ_MIN_QUALITY) & keep).sum())
    return {"imported_hashes": per_kind, "low_quality_imported_pdq": low}


def index_export(name: str, out, *, db=None) -> ExportReport:
    """Write every hash of set ``name`` to ``out`` (.csv, .tsv or .jsonl).

    One record per hash: ``kind, hash, id, quality, metadata`` (metadata a JSON object
    column in CSV/TSV, merged into the object in JSONL). Image items give their three
    hashes with the stored path as id; imported hashes their kind and source id, and
    an empty quality when the list gave none. The file is written atomically and
    reads back with ``index import``. Library twin of ``provkit index export``.
    """
    t0 = time.perf_counter()
    handle = _open(db)
    conn = handle.conn
    if SqliteBankStore.on(conn).get(name) is None:
        raise BadInput(f"no bank named {name!r}")
    out = Path(out)
    fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}.get(
        out.suffix.lower()
    )
    if fmt is None:
        raise BadInput("export file must end in .csv, .tsv or .jsonl", path=out)
    count = 0
    with atomic_file(out) as raw_file:
        f = io.TextIOWrapper(raw_file, encoding="utf-8", newline="")
        writer = None
        if fmt != "jsonl":
            writer = csv.writer(f, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
            writer.writerow(["kind", "hash", "id", "quality", "metadata"])

        def emit(kind, hexed, ident, q, meta_json):
            if writer is None:
                rec = {"kind": kind, "hash": hexed, "id": ident}
                if q is not None:
                    rec["quality"] = q
                meta = json.loads(meta_json) if meta_json and meta_json != "{}" else {}
                rec.update({k: v for k, v in meta.items() if k not in rec})
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            else:
                writer.writerow(
                    [
                        kind,
                        hexed,
                        ident,
                        "" if q is None else q,
                        meta_json if meta_json and meta_json != "{}" else "",
                    ]
                )

        for path, ph, dh, pdq, q, meta in conn.execute(
            """SELECT path, phash, dhash, pdq, pdq_quality, metadata FROM ref_items
                   WHERE set_name = ? ORDER BY id""",
            [name],
        ):
            emit("pdq", pdq.hex(), path, q, meta)
            emit("phash", f"{ph & (2**64 - 1):016x}", path, None, meta)
            emit("dhash", f"{dh & (2**64 - 1):016x}", path, None, meta)
            count += 3
        for kind, n, codes, quality, sids, metas, removed in conn.execute(
            """SELECT kind, n, codes, quality, source_ids, metadata, removed
                   FROM ref_hash_blocks WHERE set_name = ? ORDER BY id""",
            [name],
        ):
            width = len(codes) // n
            hexed = codes.hex()
            sid_list = sids.split("\n")
            meta_list = _block_lines(metas, n)
            for i in range(n):
                if removed and removed[i]:
                    continue
                qi = quality[i]
                emit(
                    kind,
                    hexed[2 * width * i : 2 * width * (i + 1)],
                    sid_list[i],
                    None if qi == UNKNOWN_QUALITY or kind != "pdq" else qi,
                    meta_list[i],
                )
                count += 1
        f.flush()
        f.detach()  # the binary file stays open for atomic_file to sync and rename
    return ExportReport(name, str(out), count, time.perf_counter() - t0)
