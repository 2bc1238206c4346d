"""HTTP helpers every package's router uses: who is calling, where uploads go, and
the bounded pool CPU work runs in.

The foundation layer's HTTP counterpart of :mod:`provenance.core.options`: each
package (provenance, detect, policies, generate) builds its own ``APIRouter`` from
these pieces, and :mod:`provenance.server.app` composes the routers into one app.

- :func:`require` is the auth dependency: ``Authorization: Bearer pk_...`` mapped to
  a :class:`Caller` through :mod:`provenance.core.tokens`; 401 without a usable token,
  403 for a token that lacks the scope; ``--public-read`` opens ``read`` to anyone.
- :class:`Workdir` is one request's private temporary folder: uploads are written
  there (size-limited, 413), and the folder is deleted when the route returns.
  :meth:`Workdir.public` puts the uploader's file names back in place of the
  temporary paths, in results and in error messages.
- :class:`CpuPool` runs library calls in a fixed number of threads with a bounded
  queue (503 + ``Retry-After`` when it is full) and a per-request time limit.
- :class:`ApiError` is a 4xx/5xx answer with a JSON body ``{"error": ..., "status": ...}``.

Why one module over 400 lines: the caller, the upload folder (with its decode cost) and
the pool are what every route takes together, and a router imports them as one set.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from fastapi import Depends, Request, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from provkit.provenance.core import imagecost, imageio
from provkit.provenance.core.workspace import connect, home
from provkit.server import tokens

MB = 1 << 20
#: Defaults of ``provkit serve`` (each has an option).
MAX_UPLOAD = 50 * MB
MAX_FILES = 32
TIME_LIMIT = 60.0
QUEUE = 16


class ApiError(Exception):
    """An HTTP answer other than success, with a message for the caller."""

    def __init__(self, status: int, message: str, *, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, in one line, and the HTTP status."""

    error: str
    status: int


#: The error answers a route may give, for its OpenAPI description (always JSON, also for
#: routes that answer an image or HTML on success).
ERRORS = {
    code: {
        "description": why,
        "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
    }
    for code, why in {
        400: "bad request (missing or malformed parameter)",
        401: "no token, or an unknown, revoked or expired one",
        403: "the token lacks the scope",
        404: "no such item",
        409: "the workspace is not set up for this (e.g. no banks, no policy pack)",
        413: "upload larger than the limit",
        422: "unusable input: not an image, truncated, too many pixels, bad parameters",
        503: "busy (queue full) or over the time limit; see Retry-After",
    }.items()
}


@dataclass
class ServiceConfig:
    """What ``provkit serve`` was started with; one per app (``app.state.config``)."""

    db: str | None = None
    public_read: bool = False
    max_upload: int = MAX_UPLOAD
    max_files: int = MAX_FILES
    time_limit: float = TIME_LIMIT
    cpu_threads: int = 2
    queue: int = QUEUE
    out_dir: Path | None = None
    temp_dir: Path | None = None
    pixel_budget: int = 64_000_000
    budget_wait: float = 10.0
    max_pixels_per_byte: int | None = None
    public_max_pixels: int | None = None  # the pixel limit for anonymous callers
    public_url: str | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def connection(self):
        """This thread's handle on the workspace database (SQLite handles stay in a thread)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.db)
        return db


def config(request: Request) -> ServiceConfig:
    return request.app.state.config


@dataclass(frozen=True)
class Caller:
    """Who made a request: a token's name and scopes, or the anonymous public reader."""

    name: str | None
    scopes: tuple[str, ...]

    @property
    def actor(self) -> str:
        """The name recorded in the audit log."""
        return self.name or "anonymous"


_bearer = Depends(
    HTTPBearer(auto_error=False, description="An API token from `provkit tokens create`.")
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def authorize(cfg: ServiceConfig, authorization: str | None, scope: str) -> Caller:
    """The caller behind an ``Authorization`` value if it may use ``scope`` (else 401/403):
    one rule for every route (:func:`require`) and the lookup fast path."""
    if not authorization:
        if scope == "read" and cfg.public_read:
            return Caller(None, ("read",))
        raise ApiError(
            401,
            f"this endpoint needs a token with the {scope!r} scope "
            "(Authorization: Bearer TOKEN; see `provkit tokens create`)",
            headers=_CHALLENGE,
        )
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "the Authorization header must be 'Bearer TOKEN'", headers=_CHALLENGE)
    token = tokens.authenticate(secret.strip(), cfg.connection())
    if token is None:
        raise ApiError(401, "unknown, revoked or expired token", headers=_CHALLENGE)
    if not token.allows(scope):
        raise ApiError(
            403,
            f"token {token.name!r} lacks the {scope!r} scope (it has: {', '.join(token.scopes)})",
        )
    return Caller(token.name, token.scopes)


def require(scope: str) -> Callable:
    """A dependency that admits callers holding ``scope``; 401/403 otherwise."""
    if scope not in tokens.SCOPES:
        raise ValueError(f"unknown scope {scope}")

    # async: a token check is one indexed SELECT, cheaper than a hop to a worker thread;
    # the bearer parameter declares the scheme in the OpenAPI description
    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = _bearer
    ) -> Caller:
        caller = authorize(config(request), request.headers.get("authorization"), scope)
        request.state.caller = caller
        return caller

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


#: Route defaults: ``caller: Caller = Read`` admits holders of the ``read`` scope, etc.
Read = Depends(require("read"))
Sign = Depends(require("sign"))
Generate = Depends(require("generate"))
SetsWrite = Depends(require("banks:write"))
AuditRead = Depends(require("audit:read"))

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Workdir:
    """One request's temporary folder, deleted when the request ends."""

    def __init__(self, cfg: ServiceConfig):
        self.cfg = cfg
        root = uploads_dir(cfg)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=root))
        self.names: dict[str, str] = {}
        self.received = 0
        self.pixels = 0  # the declared pixels of the largest image saved (the decode cost)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def new_path(self, name: str) -> Path:
        """A fresh path in this folder for a file the caller calls ``name``."""
        safe = _SAFE.sub("_", Path(name or "upload").name)[-80:].lstrip(".") or "upload"
        folder = self.path / str(len(self.names))
        folder.mkdir()
        path = folder / safe
        self.names[str(path)] = name or "upload"
        return path

    async def save(self, files: list[UploadFile]) -> list[Path]:
        """Write uploads here; 413 past the upload limit, 400 for too many or none."""
        if not files:
            raise ApiError(400, "no file uploaded (send multipart/form-data with 'files')")
        if len(files) > self.cfg.max_files:
            raise ApiError(413, f"{len(files)} files in one request; at most {self.cfg.max_files}")
        return [await self.save_one(f) for f in files]

    async def save_one(self, upload: UploadFile) -> Path:
        path = self.new_path(upload.filename or "upload")
        async with await anyio.open_file(path, "wb") as out:
            while chunk := await upload.read(MB):
                self.add_bytes(len(chunk))
                await out.write(chunk)
        return self.costed(path)

    async def save_stream(self, request: Request, name: str) -> Path:
        """Write a raw request body here (an image sent as the body itself)."""
        path = self.new_path(name)
        async with await anyio.open_file(path, "wb") as out:
            async for chunk in request.stream():
                self.add_bytes(len(chunk))
                await out.write(chunk)
        return self.costed(path)

    def save_bytes(self, data: bytes, name: str) -> Path:
        self.add_bytes(len(data))
        path = self.new_path(name)
        path.write_bytes(data)
        return path

    def costed(self, path: Path) -> Path:
        """Count ``path``'s declared pixels (header only; at most the pixel limit, over
        which the reader refuses it undecoded) in this request's decode cost."""
        size = imagecost.declared(path)
        if size is not None and size.pixels <= imageio.max_pixels():
            self.pixels = max(self.pixels, size.pixels)
        return path

    def add_bytes(self, n: int) -> None:
        self.received += n
        if self.received > self.cfg.max_upload:
            raise ApiError(413, f"upload larger than the limit of {_size(self.cfg.max_upload)}")

    def public(self, data):
        """``data`` with every temporary path replaced by the name the caller gave."""
        return _replace_paths(data, self.names) if self.names else data


def _replace_paths(data, names: dict[str, str]):
    if isinstance(data, str):
        for tmp, name in names.items():
            data = data.replace(tmp, name)
        return data
    if isinstance(data, dict):
        return {k: _replace_paths(v, names) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_replace_paths(v, names) for v in data]
    return data


def _size(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n} bytes"


def workdir(request: Request):
    """Dependency: a :class:`Workdir` for this request, removed when the route returns."""
    work = Workdir(config(request))
    request.state.workdir = work
    try:
        yield work
    finally:
        work.close()


#: Use as ``work: Workdir = Upload`` so the folder is gone before the answer is sent.
Upload = Depends(workdir, scope="function")


class RequestStopped(BaseException):
    """Raised inside a pool thread whose request ran past the time limit.

    A BaseException, so no reader guard or per-file ``except Exception`` turns it into
    one file's error and goes on with the next: the whole request's work stops."""


def _raise_in(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """Raise ``exc_type`` in thread ``thread_id`` at its next Python instruction (a C call
    under way, one decoder call, finishes first; the pixel and text budgets bound those).
    ``None`` clears a stop not yet delivered."""
    import ctypes

    set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    done = set_async(
        ctypes.c_ulong(thread_id), None if exc_type is None else ctypes.py_object(exc_type)
    )
    if done > 1:  # never happens for a live id; undo rather than hit several threads
        set_async(ctypes.c_ulong(thread_id), None)
    return done == 1


class CpuPool:
    """A fixed number of threads for CPU work, with a bounded queue and a time limit.

    Work past the time limit answers 503 and is stopped: :class:`RequestStopped` is raised
    in its thread at the next Python instruction, so the slot comes back and nothing of
    the stopped work is kept. Work that writes (sign, generate, audited decisions, set
    imports) runs with ``stop=False``: it answers 503 too but finishes, so no half-made
    asset or decision is left."""

    def __init__(self, threads: int, queue: int, time_limit: float):
        self.threads = max(1, threads)
        self.capacity = self.threads + max(0, queue)
        self.time_limit = time_limit
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="provkit-cpu")
        self._queued: set[int] = set()  # tokens of calls accepted and not finished
        self._running: dict[int, int] = {}  # token -> thread id, while its call runs
        self._sent: set[int] = set()  # tokens whose thread was sent a stop
        self._next = 0
        self._lock = threading.Lock()
        self.stopped = 0  # calls stopped at the time limit

    @property
    def pending(self) -> int:
        return len(self._queued)

    def _call(self, token: int, fn, args, kwargs):
        thread_id = threading.get_ident()
        with self._lock:
            if token not in self._queued:  # stopped before it started
                raise RequestStopped
            self._running[token] = thread_id
        try:
            return fn(*args, **kwargs)
        finally:
            self._finish(token, thread_id)

    def _finish(self, token: int, thread_id: int) -> None:
        for _ in range(3):  # a stop sent just as fn returned lands here, once at most
            try:
                with self._lock:
                    self._running.pop(token, None)
                    self._queued.discard(token)
                    if token in self._sent:  # no stop may reach the thread's next call
                        self._sent.discard(token)
                        _raise_in(thread_id, None)
                return
            except RequestStopped:
                continue

    def _stop(self, token: int) -> None:
        with self._lock:
            thread_id = self._running.get(token)
            if thread_id is None:  # not started: it never will
                if token in self._queued:
                    self._queued.discard(token)
                    self.stopped += 1
                return
            if token not in self._sent and _raise_in(thread_id, RequestStopped):
                self._sent.add(token)
                self.stopped += 1

    async def run(self, fn, *args, stop: bool = True, **kwargs):
        """``fn(*args, **kwargs)`` in the pool; 503 when the queue is full or time runs out.

        ``stop``: stop the work at the time limit (False: let it finish in its thread)."""
        with self._lock:
            if len(self._queued) >= self.capacity:
                raise ApiError(
                    503,
                    f"busy: {len(self._queued)} requests in progress or queued; retry shortly",
                    headers={"Retry-After": "1"},
                )
            self._next += 1
            token = self._next
            self._queued.add(token)
        try:
            future = self.executor.submit(self._call, token, fn, args, kwargs)
        except RuntimeError:  # shutting down
            with self._lock:
                self._queued.discard(token)
            raise ApiError(
                503, "the server is shutting down", headers={"Retry-After": "5"}
            ) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.time_limit)
        except TimeoutError:
            if stop:
                self._stop(token)
            raise ApiError(
                503,
                f"the request took longer than the limit of {self.time_limit:g} s",
                headers={"Retry-After": "5"},
            ) from None

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def pool(request: Request) -> CpuPool:
    return request.app.state.pool


def _cost(request: Request) -> int:
    work = getattr(request.state, "workdir", None)
    return work.pixels if work is not None else 0


def _limit(request: Request) -> int | None:
    """The pixel limit for this caller: ``public_max_pixels`` for anonymous ones."""
    caller = getattr(request.state, "caller", None)
    anonymous = caller is None or caller.name is None
    return config(request).public_max_pixels if anonymous else None


def _limited(pixel_limit: int | None, fn, /, *args, **kwargs):
    with imageio.pixel_limit(pixel_limit):
        return fn(*args, **kwargs)


async def run_cpu(request: Request, fn, *args, **kwargs):
    """Run a library call that only reads in the app's :class:`CpuPool` (stopped at the
    time limit), once the decode budget has room for the request's images."""
    async with request.app.state.budget.hold(_cost(request)):
        return await pool(request).run(_limited, _limit(request), fn, *args, **kwargs)


async def run_cpu_to_end(request: Request, fn, *args, **kwargs):
    """Run a library call that writes (an asset, a decision, a set) in the app's
    :class:`CpuPool`: past the time limit it answers 503 but is not stopped."""
    async with request.app.state.budget.hold(_cost(request)):
        return await pool(request).run(_limited, _limit(request), fn, *args, stop=False, **kwargs)


#: The name of each request's upload folder starts with this (the startup sweep's mark).
UPLOAD_PREFIX = "req-"


def uploads_dir(cfg: ServiceConfig) -> Path:
    """Where each request's upload folder is made: ``temp_dir``, else ``$PROVKIT_HOME/
    uploads``; ``provkit serve`` empties it of upload folders before it listens."""
    return Path(cfg.temp_dir) if cfg.temp_dir else home() / "uploads"


def out_dir(cfg: ServiceConfig) -> Path:
    """Where sealed outputs of sign and generate are kept (their ledger rows point here)."""
    path = Path(cfg.out_dir) if cfg.out_dir else home() / "served"
    path.mkdir(parents=True, exist_ok=True)
    return path
