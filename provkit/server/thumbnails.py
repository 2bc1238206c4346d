"""Thumbnails served by URL: what a verify answer points to instead of embedding.

A verify answer names each manifest thumbnail by ``url``
(``/v1/verify/thumbnail/HANDLE``, read scope). When the server answers, it keeps the
thumbnail's bytes under a fresh random handle (128 bits, so an address cannot be
guessed) for :data:`TTL` seconds, for the caller whose answer named it (another token
gets 404), then deletes them; nothing else of the upload is kept (the upload itself is
deleted before the answer is sent).

:class:`ThumbnailStore` is the interface; :class:`FolderThumbnailStore` keeps the
bytes as files in one private folder, which every worker process of one server shares
(the handle is the file name, the file's age its expiry), so an answer made by one
worker can be fetched from another. This is a cache of short-lived copies, not
workspace state, so it does not live in the workspace database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Protocol

from provkit.provenance.core.workspace import home

#: Seconds a kept thumbnail stays reachable.
TTL = 600.0
#: Most bytes the folder holds; past it the oldest thumbnails go first.
MAX_BYTES = 256 << 20
#: Formats served (never SVG: a picture that can carry script).
SUFFIX_FOR_MIME = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}
MIME_FOR_SUFFIX = {v: k for k, v in SUFFIX_FOR_MIME.items()}
HANDLE = re.compile(r"^[A-Za-z0-9_-]{22}$")
#: The path a handle is served at.
ROUTE = "/v1/verify/thumbnail/{handle}"


class ThumbnailStore(Protocol):
    ttl: float

    def keep(self, data: bytes, mime: str, owner: str = "") -> str | None:
        """Keep ``data`` for ``ttl`` seconds for ``owner`` (the caller whose answer names
        it); its handle (None for a format not served)."""

    def get(self, handle: str, owner: str = "") -> tuple[bytes, str] | None:
        """The bytes and type under ``handle`` while it lives, for its owner; None
        otherwise."""

    def sweep(self) -> int:
        """Delete expired thumbnails (and the oldest past the size cap); how many."""


class FolderThumbnailStore:
    """A :class:`ThumbnailStore` in one folder (mode 0700, files 0600)."""

    def __init__(self, folder: Path, *, ttl: float = TTL, max_bytes: int = MAX_BYTES):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ttl, self.max_bytes = ttl, max_bytes
        self._lock = threading.Lock()
        self._swept = 0.0

    def keep(self, data: bytes, mime: str, owner: str = "") -> str | None:
        suffix = SUFFIX_FOR_MIME.get(mime)
        if suffix is None:
            return None
        if time.monotonic() - self._swept > min(30.0, self.ttl / 4):
            self.sweep()
        handle = secrets.token_urlsafe(16)
        path = self.folder / f"{handle}.{_tag(owner)}.{suffix}"
        tmp = self.folder / f".{handle}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return handle

    def _path(self, handle: str, owner: str) -> Path | None:
        if not HANDLE.match(handle or ""):
            return None
        for path in self.folder.glob(f"{handle}.*.*"):
            tag = path.name.split(".")[1]
            if path.suffix[1:] in MIME_FOR_SUFFIX and hmac.compare_digest(tag, _tag(owner)):
                return path
        return None

    def get(self, handle: str, owner: str = "") -> tuple[bytes, str] | None:
        path = self._path(handle, owner)
        if path is None:
            return None
        try:
            if time.time() - path.stat().st_mtime > self.ttl:
                path.unlink(missing_ok=True)
                return None
            return path.read_bytes(), MIME_FOR_SUFFIX[path.suffix[1:]]
        except OSError:
            return None

    def sweep(self) -> int:
        with self._lock:
            self._swept = time.monotonic()
            now, removed, alive = time.time(), 0, []
            for path in self.folder.iterdir():
                try:
                    st = path.stat()
                except OSError:
                    continue
                if now - st.st_mtime > self.ttl:
                    path.unlink(missing_ok=True)
                    removed += 1
                else:
                    alive.append((st.st_mtime, st.st_size, path))
            total = sum(size for _, size, _ in alive)
            for _, size, path in sorted(alive):
                if total <= self.max_bytes:
                    break
                path.unlink(missing_ok=True)
                total -= size
                removed += 1
            return removed


def _tag(owner: str) -> str:
    """A short fixed-length mark of the owner for the file name (not a secret)."""
    return hashlib.sha256(owner.encode()).hexdigest()[:16]


def thumbnail_store(*, ttl: float = TTL) -> ThumbnailStore:
    """The server's thumbnail store: a folder in the workspace's cache, shared by the
    server's workers (apart from the uploads' folder, which holds nothing past a request)."""
    return FolderThumbnailStore(home() / "cache" / "thumbnails", ttl=ttl)


def keeper(store: ThumbnailStore, owner: str = ""):
    """``keep(data, mime) -> url`` for :func:`provenance.verify.verify` (the path
    relative to the server, fetched only by ``owner``; a format not served gets no url)."""

    def keep(data: bytes, mime: str) -> str | None:
        handle = store.keep(data, mime, owner)
        return ROUTE.format(handle=handle) if handle else None

    return keep
