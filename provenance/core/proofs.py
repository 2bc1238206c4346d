"""Checking the logs' checkpoints, proofs and receipts offline: nothing but the files and
the log's public verifier key, never a database.

Kept apart from :mod:`provenance.core.transparency` (which reads the stored log) so that
``provkit verify --receipt`` and ``provkit log verify`` load no storage code.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from provkit.provenance.core import merkle, note
from provkit.provenance.core.errors import BadInput

INCLUSION, CONSISTENCY = "provkit-log-inclusion", "provkit-log-consistency"
MAX_PROOF = 1024 * 1024


@dataclass(frozen=True)
class LogCheck:
    """What the files showed, checked with the log's public key alone."""

    ok: bool
    statement: str
    origin: str | None = None
    size: int | None = None
    index: int | None = None
    key: str | None = None
    entry: dict | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _load_json(path) -> dict:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_PROOF:
            raise BadInput("too large to be a proof", path=p)
        data = json.loads(p.read_bytes())
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    except ValueError:
        raise BadInput("not a JSON proof", path=p) from None
    if not isinstance(data, dict) or data.get("type") not in (INCLUSION, CONSISTENCY):
        raise BadInput('not a provkit log proof (no known "type")', path=p)
    return data


def _hashes(data: dict, path) -> list[bytes]:
    try:
        out = [base64.b64decode(h, validate=True) for h in data["hashes"]]
    except (KeyError, TypeError, ValueError):
        raise BadInput("the proof's hashes are not a list of base64 strings", path=path) from None
    if len(out) > 130:
        raise BadInput("the proof has too many hashes", path=path)
    return out


def _decode_entry(data: bytes) -> dict | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else {"entry": value}


def verify(*, checkpoint, key, proof=None) -> LogCheck:
    """``provkit log verify``: the checkpoint's signature by ``key`` (a verifier key or
    a file holding one), then the proof (inclusion or consistency) against it. Reads
    the files only."""
    verifier = note.verifier_from(key)
    try:
        cp = note.read_checkpoint(note.load_note(checkpoint), verifier)
    except note.SignatureError as e:
        return LogCheck(False, f"{checkpoint}: {e.reason}")
    except BadInput as e:
        if e.path:
            raise
        raise BadInput(e.reason, path=checkpoint) from None
    if proof is None:
        return LogCheck(
            True,
            f"checkpoint of {cp.origin} at size {cp.size} is signed by {verifier.name}",
            cp.origin,
            cp.size,
        )
    data = _load_json(proof)
    hashes = _hashes(data, proof)
    if data["type"] == INCLUSION:
        return _verify_inclusion(cp, data, hashes)
    return _verify_consistency(cp, data, hashes, verifier)


def _verify_inclusion(cp: note.Checkpoint, data: dict, hashes) -> LogCheck:
    try:
        index, size = int(data["index"]), int(data["size"])
        entry = base64.b64decode(data["entry"], validate=True)
    except (KeyError, TypeError, ValueError):
        return LogCheck(False, "the inclusion proof has no valid index, size or entry")
    if size != cp.size:
        return LogCheck(
            False,
            f"the proof is for a tree of {size} leaves but the checkpoint "
            f"is of {cp.size}: ask for a proof against this checkpoint",
            cp.origin,
            cp.size,
        )
    if not merkle.verify_inclusion(merkle.leaf_hash(entry), index, size, hashes, cp.root):
        return LogCheck(
            False,
            f"the entry is NOT at position {index} of {cp.origin} at size "
            f"{cp.size}: the entry, its position or the proof was changed",
            cp.origin,
            cp.size,
            index,
        )
    return LogCheck(
        True,
        f"entry {data.get('key')} is at position {index} of {cp.origin}, "
        f"in the tree of {cp.size} leaves the checkpoint signs",
        cp.origin,
        cp.size,
        index,
        str(data.get("key")),
        _decode_entry(entry),
    )


def _same(a: note.Checkpoint, b: note.Checkpoint) -> bool:
    return (a.origin, a.size, a.root) == (b.origin, b.size, b.root)


def _verify_consistency(cp: note.Checkpoint, data: dict, hashes, verifier) -> LogCheck:
    """The checkpoint you hold is the proof's older one (does the log now extend it?) or
    its newer one (does it extend the older one named in the proof?); both checkpoints
    must be signed by ``verifier``."""
    try:
        new = note.read_checkpoint(str(data["checkpoint"]), verifier)
        old = note.read_checkpoint(str(data["old_checkpoint"]), verifier)
    except (KeyError, BadInput) as e:
        return LogCheck(
            False,
            f"a checkpoint in the proof does not verify: {getattr(e, 'reason', e)}",
            cp.origin,
            cp.size,
        )
    if not (_same(cp, old) or _same(cp, new)) or new.origin != old.origin:
        return LogCheck(
            False,
            "the proof is not about your checkpoint (neither of its two checkpoints is yours)",
            cp.origin,
            cp.size,
        )
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, hashes):
        return LogCheck(
            False,
            f"{new.origin} at size {new.size} does NOT extend the checkpoint at size "
            f"{old.size}: the log was rewritten in between",
            cp.origin,
            new.size,
        )
    mine = "your checkpoint" if _same(cp, old) else "the older checkpoint in the proof"
    return LogCheck(
        True,
        f"{new.origin} at size {new.size} extends {mine} at size {old.size}: nothing "
        "recorded before it was changed, dropped or reordered",
        cp.origin,
        new.size,
    )


# ------------------------------------------------------------------ receipts


@dataclass(frozen=True)
class ReceiptCheck:
    """``provkit verify --receipt``: what a receipt shows about a file."""

    ok: bool
    statement: str
    asset_id: str | None = None
    index: int | None = None
    log_key: str | None = None
    same_bytes: bool | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def verify_receipt(path, receipt_path, log_key) -> ReceiptCheck:
    """Check a receipt offline: its checkpoint's signature by ``log_key``, the entry's
    inclusion, and whether ``path`` holds the very bytes the entry records."""
    verifier = note.verifier_from(log_key)
    data = _load_json(receipt_path)
    if data["type"] != INCLUSION:
        raise BadInput("not an inclusion receipt", path=receipt_path)
    try:
        cp = note.read_checkpoint(str(data.get("checkpoint", "")), verifier)
    except BadInput as e:
        return ReceiptCheck(
            False,
            f"the receipt's checkpoint does not verify with log key {verifier.name}: {e.reason}",
            log_key=str(verifier),
        )
    check = _verify_inclusion(cp, data, _hashes(data, receipt_path))
    if not check.ok:
        return ReceiptCheck(False, check.statement, log_key=str(verifier))
    entry = check.entry or {}
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=path) from None
    same = entry.get("sha256") == digest
    where = (
        f"at position {check.index} of {cp.origin}, in the tree of {cp.size} leaves its "
        "signed checkpoint states (a consistency proof from that checkpoint shows the "
        "log was not rewritten since)"
    )
    if same:
        text = (
            f"issued by the workspace whose log key is {verifier}, as asset "
            f"{entry.get('asset_id')} ({entry.get('event')}), {where}"
        )
    else:
        text = (
            f"the receipt is good for asset {entry.get('asset_id')} ({where}), but this "
            "file's bytes are not the ones recorded: it speaks of the asset, not of "
            "this copy"
        )
    return ReceiptCheck(same, text, entry.get("asset_id"), check.index, str(verifier), same)
