"""The free public AI detection page and API (California SB 942), without a token.

``provkit serve --public-detection`` mounts:

- ``GET /public``: a small page (no script, style or font fetched from anywhere) that
  sends an image to the endpoint below and shows the answer;
- ``POST /public/v1/detect``: the image as the raw body (with its content type) or as
  the multipart field ``file``; the answer is
  :func:`provenance.comply.public_detect`'s: whether the image carries a recognised AI
  disclosure, and the provider, system, version, time and id, resolved from the
  watermark through the ledger when the metadata was stripped.

Nothing is collected: the upload lives in the request's private temporary folder and is
deleted before the answer is sent; no file name, address or content is logged or
stored (the answer names no file). Each client (its address, kept only as a salted hash
in memory) may make ``--public-rate`` requests a minute: past that,
429 with ``Retry-After``. The service's budgets apply as everywhere: the upload limit
(413), the pixel limit (422), the CPU queue and time limit (503).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from provkit.provenance.public import public_detect
from provkit.server.http import ERRORS, ApiError, Upload, Workdir, config, run_cpu

router = APIRouter(responses={**ERRORS, 429: {"description": "over the per-client rate"}})

#: the most clients the limiter remembers at once (stale ones are dropped first)
MAX_CLIENTS = 50_000


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, bursts up to that.

    Clients are keys made from their address with a random per-process salt; the address
    itself is never kept."""

    def __init__(self, per_minute: float):
        self.rate = max(per_minute, 0.001) / 60.0
        self.burst = max(1.0, float(per_minute))
        self._salt = secrets.token_bytes(16)
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _key(self, client: str) -> bytes:
        return hashlib.blake2b(client.encode(), key=self._salt, digest_size=12).digest()

    def take(self, client: str) -> float:
        """0 when the request may go on, else the seconds until it could."""
        key, now = self._key(client), time.monotonic()
        with self._lock:
            tokens, since = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            if len(self._buckets) > MAX_CLIENTS:
                self._forget(now)
        return wait

    def _forget(self, now: float) -> None:
        full = self.burst / self.rate  # seconds after which any bucket is full again
        for key in [k for k, (_, t) in self._buckets.items() if now - t > full]:
            del self._buckets[key]
        while len(self._buckets) > MAX_CLIENTS:  # all recent: drop the oldest
            del self._buckets[min(self._buckets, key=lambda k: self._buckets[k][1])]


def limiter(request: Request) -> RateLimiter:
    state = request.app.state
    if getattr(state, "public_limiter", None) is None:
        state.public_limiter = RateLimiter(getattr(state, "public_rate", 30.0))
    return state.public_limiter


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/public/v1/detect",
    tags=["public"],
    summary="SB 942 public AI detection",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/webp": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
async def public_detect_route(request: Request, work: Workdir = Upload) -> dict:
    """Whether an image carries a recognised AI disclosure, and its provider, system,
    version, time and id (no token; nothing kept)."""
    wait = limiter(request).take(_client(request))
    if wait > 0:
        raise ApiError(
            429,
            "too many requests from this client; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=4)
        try:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ApiError(400, "send the image as the multipart field 'file'")
            path = await work.save_one(upload)
        finally:
            await form.close()
    else:
        path = await work.save_stream(request, "image")
    if work.received == 0:
        raise ApiError(400, "send the image as the request body or the multipart field 'file'")
    answer = await run_cpu(request, public_detect, path, db=config(request).db)
    return answer.to_json()


@router.get("/public", response_class=HTMLResponse, include_in_schema=False)
def public_page() -> HTMLResponse:
    """The page: choose an image, see what it discloses. Everything is inline."""
    return HTMLResponse(
        PAGE,
        headers={
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src 'self' blob:; form-action 'self'",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AI content detection</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dt{font-weight:600}#out{margin-top:1.5rem}.note{color:#555;font-size:.9rem}
.yes{color:#8a1c00}.no{color:#333}
</style></head><body>
<h1>Is this image AI-generated? What does it disclose?</h1>
<p>Choose an image. This page reads the AI disclosures it carries (Content Credentials,
California SB 942 latent disclosure, China's GB 45438 implicit label, the invisible
watermark) and shows the provider, system, version, time and identifier.</p>
<p class="note">Free and anonymous: the image is read and deleted at once; nothing about
you or the image is kept. An image without a disclosure may still be AI-generated.</p>
<form id="f"><input type="file" id="file" name="file" accept="image/*" required>
<button type="submit">Check</button></form>
<div id="out" aria-live="polite"></div>
<script>
const out = document.getElementById('out');
function row(dl, k, v) {
  const dt = document.createElement('dt'); dt.textContent = k;
  const dd = document.createElement('dd'); dd.textContent = v == null ? '-' : String(v);
  dl.append(dt, dd);
}
document.getElementById('f').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const file = document.getElementById('file').files[0];
  if (!file) return;
  out.textContent = 'Checking...';
  const body = new FormData(); body.append('file', file);
  const r = await fetch('/public/v1/detect', {method: 'POST', body});
  const d = await r.json();
  out.textContent = '';
  if (!r.ok) { out.textContent = 'Error: ' + (d.error || r.status); return; }
  const h = document.createElement('p');
  h.className = d.disclosure ? 'yes' : 'no';
  h.id = 'verdict';
  h.textContent = d.disclosure ? 'This image carries an AI disclosure.'
                               : 'No recognised AI disclosure found.';
  const dl = document.createElement('dl'); dl.id = 'fields';
  row(dl, 'Provider', d.provider); row(dl, 'System', d.system);
  row(dl, 'Version', d.version); row(dl, 'Created', d.time); row(dl, 'Identifier', d.id);
  row(dl, 'Read from', d.resolved_by);
  const notes = document.createElement('ul');
  for (const n of d.notes || []) { const li = document.createElement('li'); li.textContent = n; notes.append(li); }
  out.append(h, dl, notes);
});
</script></body></html>
"""
