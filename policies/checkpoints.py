"""Signed checkpoints: the workspace's audit key, held outside the database.

A hash chain shows that rows were edited, deleted or reordered, but not that someone
who can write the database appended (or rewrote and re-hashed) rows: they can compute
the hashes as well as provkit. So provkit signs the chain head with a key the database
does not hold (a signed tree head, as Certificate Transparency logs publish), and
verification checks those signatures: rows after the last signed head, or a signed head
that no longer matches its row, are caught.

The key is Ed25519, ``$PROVKIT_HOME/keys/audit.key`` (0600, folder 0700), made on first
use; ``audit.pub`` beside it is what a verifier elsewhere needs. The last head signed for
each database is also kept in ``keys/audit-heads/`` so a dropped audit table, or rows cut
from the end, are caught without an anchor the user kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from provkit.provenance.core import workspace
from provkit.provenance.core.files import atomic_write

KEY_NAME, PUB_NAME, HEADS = "audit.key", "audit.pub", "audit-heads"


def key_folder() -> Path:
    d = workspace.home() / "keys"
    if _READY.get(str(d)):
        return d
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if (d.stat().st_mode & 0o777) != 0o700:
        os.chmod(d, 0o700)
    _READY[str(d)] = True
    return d


_READY: dict[str, bool] = {}


@contextlib.contextmanager
def _lock(d: Path):
    import fcntl

    fd = os.open(d / ".audit.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "r+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_KEY_CACHE: dict = {}


def _private_key(create: bool = True):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    d = key_folder()
    path = d / KEY_NAME
    try:
        st = path.stat()
        cached = _KEY_CACHE.get(str(path))
        if cached and cached[0] == (st.st_ino, st.st_mtime_ns):
            return cached[1]
    except OSError:
        pass
    if not path.exists():
        if not create:
            return None
        with _lock(d):
            if not path.exists():
                key = ed25519.Ed25519PrivateKey.generate()
                pem = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                pub = key.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
                atomic_write(d / PUB_NAME, pub.hex().encode() + b"\n", mode=0o600)
                atomic_write(path, pem, mode=0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    st = path.stat()
    _KEY_CACHE[str(path)] = ((st.st_ino, st.st_mtime_ns), key)
    return key


def public_key_hex() -> str | None:
    """The workspace's audit public key (hex), or None when none was ever made."""
    path = key_folder() / PUB_NAME
    if not path.exists():
        key = _private_key(create=False)
        if key is None:
            return None
        from cryptography.hazmat.primitives import serialization

        return (
            key.public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            .hex()
        )
    return path.read_text().strip()


def key_id(pub_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(pub_hex)).hexdigest()[:16]


def canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sign(payload: dict) -> dict:
    """``payload`` with ``key_id`` added, and its ``signature`` (hex) over the canonical JSON."""
    from cryptography.hazmat.primitives import serialization

    key = _private_key()
    pub = (
        key.public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        .hex()
    )
    body = {**payload, "key_id": key_id(pub)}
    return {**body, "signature": key.sign(canonical(body)).hex()}


def verify(signed: dict, pub_hex: str | None = None) -> bool:
    """Whether ``signed`` (from :func:`sign`) carries a good signature by ``pub_hex``
    (default: this workspace's audit key)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pub_hex = pub_hex or public_key_hex()
    if not pub_hex or not isinstance(signed, dict):
        return False
    body = {k: v for k, v in signed.items() if k != "signature"}
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub_hex))
        key.verify(bytes.fromhex(str(signed.get("signature", ""))), canonical(body))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return body.get("key_id") == key_id(pub_hex)


def _head_file(db_file: str) -> Path:
    name = hashlib.sha256(os.path.realpath(db_file).encode()).hexdigest()[:24]
    return key_folder() / HEADS / f"{name}.json"


#: A process rewrites a database's remembered head at most this often; the newest one is
#: written when the process exits (the database's own checkpoints cover every append).
REMEMBER_EVERY_S = 1.0
_PENDING: dict[str, dict] = {}
_LAST_WRITE: dict[str, float] = {}


def remember_head(db_file: str | None, signed: dict) -> None:
    """Keep the latest signed head of a database file outside it (only ever moves forward;
    written at most every :data:`REMEMBER_EVERY_S` per process, and at exit)."""
    if not db_file:
        return
    import atexit
    import time

    now = time.monotonic()
    if now - _LAST_WRITE.get(db_file, -1e9) < REMEMBER_EVERY_S:
        if not _PENDING:
            atexit.register(flush_heads)
        _PENDING[db_file] = signed
        return
    _LAST_WRITE[db_file] = now
    _PENDING.pop(db_file, None)
    _write_head(db_file, signed)


def flush_heads() -> None:
    """Write the heads :func:`remember_head` held back."""
    while _PENDING:
        db_file, signed = _PENDING.popitem()
        try:
            _write_head(db_file, signed)
        except OSError:
            pass


def _write_head(db_file: str, signed: dict) -> None:
    path = _head_file(db_file)
    d = key_folder()
    with _lock(d):
        current = last_head(db_file)
        if current is not None and current.get("seq", 0) >= signed.get("seq", 0):
            return
        path.parent.mkdir(mode=0o700, exist_ok=True)
        # rewritten in place, neither renamed nor fsynced (it changes on every append, and
        # a rename over it flushes on ext4): after a crash it may lag behind or be torn,
        # which only makes it a weaker anchor (it is then ignored), never a false alarm
        # (the database's own checkpoints are committed with their rows)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            data = json.dumps(signed).encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)


def last_head(db_file: str | None) -> dict | None:
    """The last signed head remembered for a database file (None when none)."""
    if not db_file:
        return None
    path = _head_file(db_file)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
