"""Manifests kept outside the file: a ``.c2pa`` sidecar beside it, or a remote address.

:func:`sidecar_for` finds the sidecar of a media file (``photo.jpg`` -> ``photo.c2pa``);
:func:`fetch_manifest` fetches a remote manifest store, only when the user asked
(``provkit verify --fetch-remote``), bounded in size (:data:`MAX_MANIFEST_BYTES`) and
time (:data:`FETCH_TIMEOUT`), over http(s) only. provkit fetches it itself and hands the
bytes to the SDK, so the SDK never opens a connection of its own.
"""

from __future__ import annotations

import time
from pathlib import Path

from provkit.provenance.core.errors import BadInput

#: Largest remote manifest store fetched (real stores are tens or hundreds of KB).
MAX_MANIFEST_BYTES = 16 << 20
#: Seconds a remote fetch may take in all (connect, headers and body).
FETCH_TIMEOUT = 10.0
#: Largest sidecar read.
MAX_SIDECAR_BYTES = 64 << 20


def sidecar_for(path: Path) -> Path | None:
    """The ``.c2pa`` sidecar beside ``path`` (same name, suffix ``.c2pa``), if there is one."""
    p = Path(path)
    if p.suffix.lower() == ".c2pa":
        return None
    for candidate in (p.with_suffix(".c2pa"), p.with_name(p.name + ".c2pa")):
        if candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> bytes:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SIDECAR_BYTES:
            raise BadInput(f"sidecar larger than {MAX_SIDECAR_BYTES >> 20} MB", path=p)
        return p.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read the sidecar ({e.strerror or e})", path=p) from None


def _opener():
    """An opener that follows a redirect only to another http(s) address (urllib is
    imported here: verify without --fetch-remote never loads it)."""
    import urllib.error
    import urllib.request

    class HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if not str(newurl).lower().startswith(("http://", "https://")):
                raise urllib.error.HTTPError(
                    newurl, code, "redirect to a non-http address", headers, fp
                )
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(HttpOnlyRedirects)


def fetch_manifest(
    url: str, *, limit: int = MAX_MANIFEST_BYTES, timeout: float = FETCH_TIMEOUT
) -> bytes:
    """The manifest store at ``url``; BadInput naming the address and the cause when it
    cannot be had within ``limit`` bytes and ``timeout`` seconds."""
    if not str(url).lower().startswith(("http://", "https://")):
        raise BadInput(f"remote manifest {url!r}: only http:// and https:// are fetched")
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Accept": "application/c2pa"})
    try:
        with _opener().open(request, timeout=timeout) as reply:
            declared = reply.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise BadInput(
                    f"remote manifest {url}: {declared} bytes, more than the {limit} fetched"
                )
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise BadInput(f"remote manifest {url}: not fetched within {timeout:g} s")
                chunk = reply.read(min(1 << 16, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise BadInput(f"remote manifest {url}: more than the {limit} bytes fetched")
    except urllib.error.HTTPError as e:
        raise BadInput(f"remote manifest {url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise BadInput(f"remote manifest {url}: cannot fetch ({reason})") from None
    data = b"".join(chunks)
    if not data:
        raise BadInput(f"remote manifest {url}: empty answer")
    return data
