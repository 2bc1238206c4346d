"""Connection hygiene for ``provkit serve``: what uvicorn does not enforce by itself.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) and answers 503
past ``limit_concurrency``, but it waits forever for a request's headers and body: a
client sending a byte every few seconds holds a connection, and a few hundred of them
hold the server. :class:`GuardedHttp` is uvicorn's httptools protocol with:

- a **header timeout**: the request line and headers must arrive within
  ``header_timeout`` seconds of the connection opening (or of the previous response):
  else 408 and the connection is closed;
- a **body deadline**: after ``body_timeout`` seconds the body must keep arriving at
  ``min_rate`` bytes/s on average (time spent paused because the app has not read the
  body yet does not count), else the connection is closed;
- a **send timeout**: a client that stops reading the answer for ``send_timeout``
  seconds is dropped;
- caps on **open connections** in this process and **per client address** (a new
  connection past either is closed at once);
- at most ``max_requests`` requests per keep-alive connection (the last answer says
  ``connection: close``);
- at most :data:`MAX_HEAD` bytes of request line and headers (400, closed).

The settings come from :data:`provkit.server.service.CONFIG_ENV` (``"connections"``),
read once per worker process, so every worker that uvicorn spawns applies the same.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CONFIG_ENV = "PROVKIT_SERVE_CONFIG"
#: Largest request line plus headers, in bytes (400 and closed above).
MAX_HEAD = 32 * 1024


@dataclass(frozen=True)
class Limits:
    """What the server enforces on each connection (``provkit serve`` options)."""

    header_timeout: float = 10.0
    body_timeout: float = 20.0
    min_rate: int = 16_384
    send_timeout: float = 30.0
    max_connections: int = 512
    max_per_client: int = 32
    max_requests: int = 1000
    keep_alive: float = 5.0

    def to_json(self) -> dict:
        return asdict(self)


_limits: Limits | None = None
_per_client: Counter = Counter()
_open = 0


def limits() -> Limits:
    global _limits
    if _limits is None:
        raw = json.loads(os.environ.get(CONFIG_ENV) or "{}").get("connections") or {}
        _limits = Limits(**raw)
    return _limits


_BODY_408 = b'{"error": "the request headers took too long", "status": 408}'
_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: "
    + str(len(_BODY_408)).encode()
    + b"\r\n\r\n"
    + _BODY_408
)


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with header/body/send timeouts and connection caps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.guard = limits()
        self._timer = None
        self._counted = False
        self._requests = 0
        self._body_started = 0.0
        self._body_bytes = 0
        self._in_body = False
        self._write_timer = None
        self._head_bytes = 0

    # -- connection caps
    def connection_made(self, transport) -> None:
        global _open
        super().connection_made(transport)
        host = self.client[0] if self.client else "?"
        if _open >= self.guard.max_connections or (
            self.guard.max_per_client and _per_client[host] >= self.guard.max_per_client
        ):
            self.logger.warning("connection from %s refused: too many open", host)
            transport.abort()
            return
        _open += 1
        _per_client[host] += 1
        self._counted = True
        self._arm(self.guard.header_timeout, self._header_expired)

    def connection_lost(self, exc) -> None:
        global _open
        self._cancel()
        self._cancel_write()
        if self._counted:
            self._counted = False
            _open -= 1
            host = self.client[0] if self.client else "?"
            _per_client[host] -= 1
            if _per_client[host] <= 0:
                del _per_client[host]
        super().connection_lost(exc)

    # -- timers
    def _arm(self, seconds: float, callback) -> None:
        self._cancel()
        self._timer = self.loop.call_later(seconds, callback)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # nothing being answered
            self.transport.write(_TIMEOUT_408)
        self.transport.close()

    def _body_check(self) -> None:
        self._timer = None
        if self.transport.is_closing() or not self._in_body:
            return
        if self.flow.read_paused:  # the app has not read what came: not the client's fault
            self._body_started += 1.0
            self._arm(1.0, self._body_check)
            return
        elapsed = time.monotonic() - self._body_started
        if self._body_bytes >= self.guard.min_rate * elapsed:
            self._arm(1.0, self._body_check)
            return
        self.logger.warning("closing a connection whose request body arrives too slowly")
        self.transport.close()

    # -- the parser's callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._timer is None:  # a keep-alive connection's next request
            self._arm(self.guard.header_timeout, self._header_expired)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._requests += 1
        if self.cycle is not None and self._requests >= self.guard.max_requests:
            self.cycle.keep_alive = False
        self._in_body = True
        self._body_started = time.monotonic()
        self._body_bytes = 0
        self._arm(self.guard.body_timeout, self._body_check)

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > MAX_HEAD:
            raise ValueError("request head too large")  # the parser answers 400, closes
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD:
            raise ValueError("request head too large")
        super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the keep-alive timer (uvicorn's) runs until the next request's first byte; the
        # header timeout starts with that byte (on_message_begin)

    # -- a client that stops reading
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.guard.send_timeout, self._send_expired)

    def resume_writing(self) -> None:
        self._cancel_write()
        super().resume_writing()

    def _cancel_write(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _send_expired(self) -> None:
        self._write_timer = None
        if not self.transport.is_closing():
            self.transport.abort()


def uvicorn_options(lim: Limits) -> dict:
    """The uvicorn settings that go with ``lim``."""
    return {
        "http": GuardedHttp,
        "timeout_keep_alive": max(1, round(lim.keep_alive)),
        "limit_concurrency": lim.max_connections + 64,
        "h11_max_incomplete_event_size": 16 * 1024,
    }


__all__ = ["GuardedHttp", "Limits", "limits", "uvicorn_options"]
