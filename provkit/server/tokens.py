"""API tokens for ``provkit serve``: named, scoped, expiring, stored only as a hash.

``create`` returns the secret once (``pk_`` + 43 URL-safe characters, 256 bits);
the database keeps its SHA-256 (a secret this long needs no slow hash) with the
name, scopes, creation and expiry times. ``authenticate`` maps a presented secret
to its :class:`Token` or None (unknown, revoked or expired). The ``admin`` scope
implies every other scope.

Storage goes through :class:`TokenStore` (the seam of ``provenance/core/stores.py``): the
functions here check names, scopes and secrets, and only :class:`SqliteTokenStore`
touches the database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from provkit.provenance.core import stores
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.workspace import connect, migrate

#: Every scope a token can carry, and what it opens.
SCOPES = {
    "read": "verify, detect, dupes, policy check, hash, lookup, ledger and soft-binding reads",
    "sign": "sign uploads (POST /v1/sign)",
    "generate": "generate sealed images (POST /v1/generate)",
    "banks:read": "list a bank's contents (any item's thumbnail); never public",
    "banks:write": "create, fill, configure and delete banks",
    "audit:read": "read and verify the audit log",
    "admin": "everything above",
}
#: Old scope names, still accepted (kept one release): a token holding one has the new.
OLD_SCOPES = {"sets:write": "banks:write"}
PREFIX = "pk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_AGE = re.compile(r"^(\d+)([hdw])$")


@dataclass(frozen=True)
class Token:
    """A token's record (never its secret)."""

    name: str
    scopes: tuple[str, ...]
    created: str
    expires: str | None = None
    revoked: str | None = None

    def allows(self, scope: str) -> bool:
        have = {OLD_SCOPES.get(s, s) for s in self.scopes}
        return "admin" in have or OLD_SCOPES.get(scope, scope) in have

    @property
    def active(self) -> bool:
        return self.revoked is None and not _expired(self.expires)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "created": self.created,
            "expires": self.expires,
            "revoked": self.revoked,
            "active": self.active,
        }


@dataclass(frozen=True)
class Created:
    """A new token and its secret (shown once)."""

    token: Token
    secret: str

    def to_json(self) -> dict:
        return {**self.token.to_json(), "token": self.secret}


def _v1(db) -> None:
    db.execute("""CREATE TABLE api_tokens (
        name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
        created TEXT NOT NULL, expires TEXT, revoked TEXT)""")


MIGRATIONS = [_v1]


def _now() -> datetime:
    return datetime.now(UTC)


def _expired(expires: str | None) -> bool:
    return expires is not None and datetime.fromisoformat(expires) <= _now()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore(Protocol):
    """Where tokens live: records by name, looked up by the SHA-256 of their secret."""

    def exists(self, name: str) -> bool: ...
    def insert(self, token: Token, secret_hash: str) -> None: ...
    def all(self) -> list[Token]: ...
    def revoke(self, name: str, when: str) -> bool: ...
    def by_hash(self, secret_hash: str) -> tuple[Token, str] | None: ...


class SqliteTokenStore:
    """The ``api_tokens`` table of the workspace database."""

    def __init__(self, db=None):
        self.db = connect(db) if db is None or not hasattr(db, "execute") else db
        migrate(self.db, "provenance.tokens", MIGRATIONS)

    def exists(self, name: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM api_tokens WHERE name = ?", [name]).fetchone()
            is not None
        )

    def insert(self, token: Token, secret_hash: str) -> None:
        with self.db.conn:
            self.db.execute(
                "INSERT INTO api_tokens (name, hash, scopes, created, expires) "
                "VALUES (?, ?, ?, ?, ?)",
                [token.name, secret_hash, " ".join(token.scopes), token.created, token.expires],
            )

    def all(self) -> list[Token]:
        rows = self.db.execute(
            "SELECT name, scopes, created, expires, revoked FROM api_tokens ORDER BY created, name"
        )
        return [_row(r) for r in rows]

    def revoke(self, name: str, when: str) -> bool:
        with self.db.conn:
            cur = self.db.execute(
                "UPDATE api_tokens SET revoked = COALESCE(revoked, ?) WHERE name = ?", [when, name]
            )
        return cur.rowcount > 0

    def by_hash(self, secret_hash: str) -> tuple[Token, str] | None:
        r = self.db.execute(
            "SELECT name, scopes, created, expires, revoked, hash FROM api_tokens WHERE hash = ?",
            [secret_hash],
        ).fetchone()
        return None if r is None else (_row(r), r[5])


def token_store(db=None) -> TokenStore:
    """The token store of the configured backend (``[storage] backend``)."""
    if isinstance(db, SqliteTokenStore):
        return db
    stores.require_sqlite("token")
    return SqliteTokenStore(db)


def parse_expires(value: str | None) -> str | None:
    """``30d``, ``12h``, ``2w`` from now, or an ISO date/time; None for no expiry."""
    if value is None:
        return None
    m = _AGE.match(value.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        try:
            delta = {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
            return (_now() + delta).isoformat(timespec="seconds")
        except OverflowError:
            raise BadInput(
                f"--expires {value!r}: too far in the future (the latest is 9999-12-31)"
            ) from None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(
            f"--expires {value!r}: give an age like 30d, 12h, 2w or an ISO date"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when <= _now():
        raise BadInput(f"--expires {value!r} is in the past")
    return when.isoformat(timespec="seconds")


def create(name: str, scopes, *, expires: str | None = None, db=None) -> Created:
    """A new token NAME with ``scopes``; the secret is in the result and nowhere else."""
    if not _NAME.match(name or ""):
        raise BadInput(f"token name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
    scopes = tuple(dict.fromkeys(OLD_SCOPES.get(s, s) for s in scopes))
    if not scopes:
        raise BadInput(f"a token needs at least one --scope ({', '.join(SCOPES)})")
    unknown = [s for s in scopes if s not in SCOPES and s not in OLD_SCOPES]
    if unknown:
        raise BadInput(f"unknown scope {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    store = token_store(db)
    if store.exists(name):
        raise BadInput(f"a token named {name!r} exists already (revoke it first)")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = Token(name, scopes, _now().isoformat(timespec="seconds"), parse_expires(expires))
    store.insert(token, _hash(secret))
    return Created(token, secret)


def _row(r) -> Token:
    return Token(r[0], tuple(r[1].split()), r[2], r[3], r[4])


def list_(db=None) -> list[Token]:
    """Every token (active, expired and revoked), oldest first."""
    return token_store(db).all()


def revoke(name: str, db=None) -> Token:
    """Revoke token NAME; it stops working at once. BadInput if there is no such token."""
    store = token_store(db)
    if not store.revoke(name, _now().isoformat(timespec="seconds")):
        raise BadInput(f"no token named {name!r}")
    return next(t for t in store.all() if t.name == name)


def any_active(db=None) -> bool:
    return any(t.active for t in list_(db))


def authenticate(secret: str, db=None) -> Token | None:
    """The active token whose secret this is, or None."""
    if not secret.startswith(PREFIX) or len(secret) > 128:
        return None
    digest = _hash(secret)
    found = token_store(db).by_hash(digest)
    if found is None or not hmac.compare_digest(found[1], digest):
        return None
    token = found[0]
    return token if token.active else None
