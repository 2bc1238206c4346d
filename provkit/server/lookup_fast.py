"""``GET /v1/lookup`` without FastAPI: the hot path of a platform's upload pipeline.

FastAPI's middleware, routing and parameter machinery cost about 0.5 ms a request,
more than the search itself. :class:`LookupFastPath` is the outermost ASGI layer of
``provkit serve`` (:func:`provenance.server.app.create_service`): it answers a plain
lookup (``key=value`` pairs without escapes, each parameter valid and given once, no
body, a caller the route would admit, sets that exist) with the bytes
:func:`detect.routes.lookup_route` would answer, and hands every other request to the
app, so that route stays the endpoint's one description (OpenAPI, validation, every
error answer). ``tests/test_serve_lookup_fast.py`` holds the two to the same answers.
"""

from __future__ import annotations

import json
import re

from provkit.detect.lookup import LOOKUP_LIMIT, MAX_DISTANCE, SIGNAL_TYPES
from provkit.server.http import authorize

#: The query of a lookup the fast path answers: plain ``key=value`` pairs, no escapes.
_PLAIN_QUERY = re.compile(rb"[A-Za-z0-9_.~=&-]*")
_DISTANCE = re.compile(r"0|[1-9][0-9]{0,2}")
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _fast_lookup(state, scope) -> bytes | None:
    """The JSON body :func:`lookup_route` would answer 200 with, or None for any request
    it might answer otherwise (the app then answers it, errors included)."""
    query = scope.get("query_string", b"")
    if not _PLAIN_QUERY.fullmatch(query):
        return None
    signal = signal_type = max_distance = None
    sets: list[str] = []
    for part in query.decode("ascii").split("&"):
        key, eq, value = part.partition("=")
        if not eq:
            return None
        if key in ("bank", "index") and value:  # index: the old spelling
            sets.append(value)
        elif key == "signal" and signal is None and len(value) <= 64:
            signal = value
        elif key == "signal_type" and signal_type is None and value in SIGNAL_TYPES:
            signal_type = value
        elif (
            key == "max_distance"
            and max_distance is None
            and _DISTANCE.fullmatch(value)
            and int(value) <= max(MAX_DISTANCE.values())
        ):
            max_distance = int(value)
        else:  # unknown, repeated or out-of-range: the route says what is wrong
            return None
    if signal is None:
        return None
    auth = None
    for name, value in scope["headers"]:
        if name == b"authorization" and auth is None:
            auth = value
        elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return None  # a body: the app's limits apply
    try:
        authorize(state.config, None if auth is None else auth.decode("latin-1"), "read")
        found = state.bank.lookup(
            signal_type or "pdq",
            signal,
            sets=sets or None,
            max_distance=max_distance,
            limit=LOOKUP_LIMIT,
        )
    except Exception:  # noqa: BLE001 - the route gives the answer (and logs a bug)
        return None
    if any(len(rows) > LOOKUP_LIMIT for rows in found.values()):
        return None  # more than a page: the route answers, with its paging headers
    # byte for byte what JSONResponse renders
    return json.dumps(found, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class LookupFastPath:
    """An ASGI app: plain ``GET /v1/lookup`` answered here (same rule, :func:`authorize`;
    same library call, :meth:`detect.lookup.ReferenceBank.lookup`), the rest by ``app``.
    ``.state`` is the app's."""

    def __init__(self, app):
        self.app = app
        self.state = app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/v1/lookup":
            body = _fast_lookup(self.state, scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", str(len(body)).encode()), *_JSON_HEADERS],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


__all__ = ["LookupFastPath"]
