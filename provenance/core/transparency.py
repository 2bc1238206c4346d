"""The ``provkit log`` verbs: checkpoints, inclusion and consistency proofs, receipts,
and their offline verification.

What a proof shows: that an entry (an issued asset's record, a decision) is in the log
whose signed checkpoint you hold, at a position, and (consistency) that a later
checkpoint extends an earlier one, i.e. nothing recorded before was changed, dropped or
reordered. What it does not show: that what was recorded is true. Verification
(:func:`verify` here, :func:`provenance.core.proofs.verify_receipt`) needs only the
files and the log's public key (``provkit log key``), never the database.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path

from provkit.provenance.core import merkle, note
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.files import atomic_write
from provkit.provenance.core.proofs import CONSISTENCY, INCLUSION, LogCheck, verify
from provkit.provenance.core.tlog import LOGS, origin, tlog_store

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "LogCheck",
    "LogKey",
    "checkpoint",
    "consistency",
    "key",
    "prove",
    "receipt",
    "receipt_path",
    "tile",
    "verify",
    "write_receipt",
]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _signer() -> note.Signer:
    signer = note.log_signer()
    if signer is None:
        raise ConfigError(
            "this workspace has no log key yet: run `provkit log key --init` "
            "(or `provkit keys init`)"
        )
    return signer


def _log_name(log: str) -> str:
    if log not in LOGS:
        raise BadInput(f"no log {log!r} (logs: {', '.join(LOGS)})")
    return log


# ------------------------------------------------------------------ key and checkpoint


@dataclass(frozen=True)
class LogKey:
    """``provkit log key``: the log key's name and public verifier key."""

    name: str
    verifier_key: str
    origins: tuple[str, ...]

    def to_json(self) -> dict:
        return {"name": self.name, "verifier_key": self.verifier_key, "origins": list(self.origins)}


def key(*, init: bool = False) -> LogKey:
    """The workspace's log verifier key (``init``: make the log key when missing)."""
    signer = note.log_signer(create=init) if init else _signer()
    return LogKey(
        signer.name, str(signer.verifier()), tuple(origin(log, signer.name) for log in LOGS)
    )


def checkpoint(log: str = "assets", db=None) -> note.Checkpoint:
    """``provkit log checkpoint``: sign the log's current tree now (and keep it as its
    latest checkpoint)."""
    store = tlog_store(db)
    signer = _signer()
    size = store.size(_log_name(log))
    cp = store.latest_checkpoint(log)
    if cp is None or cp.size != size:
        cp = note.sign_checkpoint(signer, origin(log, signer.name), size, store.root(log))
        store.save_checkpoint(log, cp)
    return cp


def _current(store, log: str) -> note.Checkpoint:
    cp = store.latest_checkpoint(log)
    if cp is None:
        signer = _signer()
        cp = note.sign_checkpoint(
            signer, origin(log, signer.name), store.size(log), store.root(log)
        )
        store.save_checkpoint(log, cp)
    return cp


# ------------------------------------------------------------------ proofs


@dataclass(frozen=True)
class InclusionProof:
    """An entry, its position, the audit path and the checkpoint it leads to."""

    log: str
    key: str
    index: int
    size: int
    entry: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str

    def to_json(self) -> dict:
        return {
            "type": INCLUSION,
            "log": self.log,
            "key": self.key,
            "index": self.index,
            "size": self.size,
            "entry": _b64(self.entry),
            "hashes": [_b64(h) for h in self.hashes],
            "checkpoint": self.checkpoint,
        }


def which_log(ref: str, log: str | None = None) -> str:
    """The log an asset id (16 hex digits: assets) or an audit row number (decisions)
    is in, unless ``log`` names it."""
    if log is not None:
        return _log_name(log)
    text = str(ref)
    return "decisions" if text.isdigit() and len(text) < 16 else "assets"


def prove(ref: str, *, log: str | None = None, db=None, checkpoint=None) -> InclusionProof:
    """``provkit log prove ASSET_ID|AUDIT_ROW``: the inclusion proof of the newest leaf
    of an asset (16 hex digits) or of an audit row (its seq), against a checkpoint of
    the log as it is now, or against ``checkpoint`` (a file or note text of this log that
    the verifier holds; the leaf must be older than it)."""
    log = which_log(ref, log)
    store = tlog_store(db, create=False)
    key_ = str(ref).lower()
    if log == "decisions":  # audit row N is leaf N - 1
        index = int(key_) - 1 if key_.isdigit() and 0 < int(key_) <= store.size(log) else None
    else:
        index = store.find(log, key_)
    if index is None:
        what = "audit row" if log == "decisions" else "asset"
        raise BadInput(f"no {what} {ref} in the {log} log")
    cp = _current(store, log) if checkpoint is None else _held(store, checkpoint, log)
    if index >= cp.size:
        raise BadInput(
            f"{ref} was recorded after that checkpoint (leaf {index}, checkpoint size "
            f"{cp.size}): ask for a proof against a later one"
        )
    key_, data = store.entry(log, index)
    hashes = merkle.inclusion_proof(index, cp.size, store.subtree(log))
    return InclusionProof(log, key_, index, cp.size, data, tuple(hashes), cp.note)


def _read_held(checkpoint) -> tuple[note.Checkpoint, str, object]:
    """A checkpoint of this workspace's logs (a file or note text), its signature
    checked: ``(checkpoint, log name, how to name it in errors)``."""
    if isinstance(checkpoint, str) and "\n" in checkpoint:
        text, where = checkpoint[: note.MAX_NOTE + 1], "the checkpoint"
    else:
        text, where = note.load_note(checkpoint), checkpoint
    signer = _signer()
    try:
        cp = note.read_checkpoint(text, signer.verifier())
    except BadInput as e:
        raise type(e)(e.reason, path=where) from None
    log = cp.origin.rsplit("/", 1)[-1]
    if cp.origin != origin(log, signer.name) or log not in LOGS:
        raise BadInput(
            f"the checkpoint is of log {cp.origin!r}, not one of this workspace's", path=where
        )
    return cp, log, where


def _held(store, checkpoint, log: str) -> note.Checkpoint:
    """A checkpoint the verifier holds, for ``log``, whose tree the stored log still has."""
    cp, of, where = _read_held(checkpoint)
    if of != log:
        raise BadInput(f"the checkpoint is of the {of} log, not the {log} log", path=where)
    size = store.size(log)
    if cp.size > size or store.subtree(log)(0, cp.size) != cp.root:
        raise BadInput(
            f"this log does not hold the tree the checkpoint signs ({cp.size} leaves): it "
            "was rewritten or cut since, or the checkpoint is of another database",
            path=where,
        )
    return cp


@dataclass(frozen=True)
class ConsistencyProof:
    """That the log now (``checkpoint``) extends an older checkpoint."""

    log: str
    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]
    old_checkpoint: str
    checkpoint: str

    def to_json(self) -> dict:
        return {
            "type": CONSISTENCY,
            "log": self.log,
            "old_size": self.old_size,
            "new_size": self.new_size,
            "hashes": [_b64(h) for h in self.hashes],
            "old_checkpoint": self.old_checkpoint,
            "checkpoint": self.checkpoint,
        }


def consistency(old_checkpoint, *, db=None) -> ConsistencyProof:
    """``provkit log consistency OLD_CHECKPOINT``: the proof that the log now extends the
    checkpoint in that file, or given as note text (its signature by this workspace's
    log key is checked first)."""
    old, log, where = _read_held(old_checkpoint)
    store = tlog_store(db, create=False)
    cp = _current(store, log)
    if old.size > cp.size:
        raise BadInput(
            f"the checkpoint is of a tree of {old.size} leaves but the log holds "
            f"{cp.size}: it was cut, or the checkpoint is of another database",
            path=where,
        )
    hashes = merkle.consistency_proof(old.size, cp.size, store.subtree(log))
    return ConsistencyProof(log, old.size, cp.size, tuple(hashes), old.note, cp.note)


# ------------------------------------------------------------------ tiles (C2SP tlog-tiles)


def parse_tile_path(level: str, rest: str) -> tuple[int | None, int, int]:
    """``(level or None for entries, tile index, width)`` from the parts of a
    ``tile/<L>/<N>[.p/<W>]`` path (N as zero-padded 3-digit elements, all but the last
    prefixed ``x``); BadInput for anything else."""
    m = re.fullmatch(r"((?:x\d{3}/)*\d{3})(?:\.p/(\d{1,3}))?", rest)
    if not m or not (level == "entries" or re.fullmatch(r"\d{1,2}", level)):
        raise BadInput("not a tile path: tile/<L>/<N>[.p/<W>]")
    index = int(m.group(1).replace("x", "").replace("/", ""))
    width = int(m.group(2)) if m.group(2) else 256
    if not 1 <= width <= 256 or (m.group(2) and width == 256):
        raise BadInput("a partial tile's width is 1 to 255")
    return (None if level == "entries" else int(level)), index, width


def tile(log: str, level: str, path: str, *, db=None) -> bytes:
    """One tile (hashes) or entry bundle of a log, as the C2SP layout serves them;
    BadInput when the tree has no such tile (yet)."""
    lvl, index, width = parse_tile_path(level, path)
    store = tlog_store(db, create=False)
    data = (
        store.entries_tile(_log_name(log), index, width)
        if lvl is None
        else store.tile(_log_name(log), lvl, index, width)
    )
    if data is None:
        raise BadInput(f"the {log} log has no tile {level}/{path}")
    return data


# ------------------------------------------------------------------ receipts


def receipt(asset_id: str, *, db=None) -> dict:
    """An inclusion receipt of an issued asset (the JSON of its inclusion proof)."""
    return prove(asset_id, log="assets", db=db).to_json()


def receipt_path(out, *, force: bool = False) -> Path:
    """Where an output's receipt goes (``<out>.receipt.json``); BadInput when one is
    there already and ``force`` is not given (ask before the work, not after it)."""
    path = Path(f"{out}.receipt.json")
    if not force and path.exists():
        raise BadInput("a receipt is already there (use --force to replace it)", path=path)
    return path


def write_receipt(asset_id: str, out, *, db=None, force: bool = False) -> str:
    """``<out>.receipt.json`` beside an output; returns its path."""
    path = receipt_path(out, force=force)
    data = json.dumps(receipt(asset_id, db=db), indent=1).encode() + b"\n"
    try:
        atomic_write(path, data, overwrite=force)
    except FileExistsError:
        raise BadInput(
            "a receipt is already there (use --force to replace it)", path=path
        ) from None
    return str(path)
