"""Short-lived grants for one reference item's thumbnail.

Item ids run in sequence, so fetching thumbnails by id would list a set's images:
``GET /v1/banks/{name}/items/{id}/thumbnail`` needs the ``banks:read`` scope. A match
answer that shows a reader an item's picture (the desk page's near-duplicates) names
the thumbnail with a grant: ``?grant=EXPIRY.MAC``, an HMAC over the set, the item and
the expiry, good for :data:`TTL` seconds, for that item only.

The key comes from :data:`provkit.server.connections.CONFIG_ENV` (``provkit serve``
makes one per start and gives it to every worker), else it is made per process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time

from provkit.server.connections import CONFIG_ENV

#: Seconds a grant stays good.
TTL = 600
_key: bytes | None = None


def _secret() -> bytes:
    global _key
    if _key is None:
        shared = json.loads(os.environ.get(CONFIG_ENV) or "{}").get("grant_secret")
        _key = bytes.fromhex(shared) if shared else secrets.token_bytes(32)
    return _key


def _mac(bank: str, item_id, expiry: int) -> str:
    message = f"{bank}\0{item_id}\0{expiry}".encode()
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()[:32]


def grant(bank: str, item_id, ttl: int = TTL) -> str:
    """A grant to fetch item ``item_id`` of set ``bank``'s thumbnail for ``ttl`` seconds."""
    expiry = int(time.time()) + ttl
    return f"{expiry}.{_mac(bank, item_id, expiry)}"


def granted(bank: str, item_id, value: str | None) -> bool:
    """Whether ``value`` is a grant for this item that has not expired."""
    if not value or "." not in value:
        return False
    expiry, _, mac = value.partition(".")
    if not expiry.isdigit() or int(expiry) < time.time():
        return False
    return hmac.compare_digest(mac, _mac(bank, item_id, int(expiry)))


__all__ = ["TTL", "grant", "granted"]
