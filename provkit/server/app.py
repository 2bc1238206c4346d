"""The FastAPI app of ``provkit serve``: each package's router, status, errors, limits.

:func:`create_app` composes the routers of provenance, detect, policies and
generate with the desk page, and adds what every route shares (``provkit serve`` runs
it behind the lookup fast path, :func:`create_service`):

- ``GET /status`` (readiness: 503 ``INDEX-NOT-LOADED`` until the reference sets are
  in memory, 503 ``INDEX-STALE`` when they have not been re-checked for a while) and
  ``GET /status/live`` (liveness);
- a body-size limit in front of everything (413 before a byte is parsed);
- one JSON error shape, ``{"error": "...", "status": N}``, for every refusal: a
  library :class:`ProvkitError` becomes a 4xx naming the cause (upload names, not
  temporary paths), request validation 422, and only a bug a 500;
- a background thread re-checks the reference sets every ``refresh`` seconds.

:func:`sweep_outputs` clears what a crash left in the output folder and the upload
folder (``provkit serve`` runs it before listening).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from provkit.detect import hamming
from provkit.detect.lookup import ReferenceBank
from provkit.provenance.core import imagecost, imageio
from provkit.provenance.core.errors import BadInput, ConfigError, ProvkitError, Refused
from provkit.provenance.ledger import ledger_store
from provkit.routes.detect import router as detect_router
from provkit.routes.generate import router as generate_router
from provkit.routes.hma import router as hma_router
from provkit.routes.log import router as log_router
from provkit.routes.policies import router as policies_router
from provkit.routes.provenance import router as provenance_router
from provkit.routes.public import router as public_router
from provkit.server.budget import PixelBudget
from provkit.server.desk import mount_static
from provkit.server.desk import router as desk_router
from provkit.server.http import (
    UPLOAD_PREFIX,
    ApiError,
    CpuPool,
    ServiceConfig,
    out_dir,
    uploads_dir,
)
from provkit.server.lookup_fast import LookupFastPath
from provkit.server.thumbnails import thumbnail_store

log = logging.getLogger("provkit.serve")

#: Seconds between background checks of the reference sets.
REFRESH = 2.0
#: /status says INDEX-STALE when the last successful check is older than this.
STALE_AFTER = 60.0


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def _public(request: Request, message: str) -> str:
    work = getattr(request.state, "workdir", None)
    return work.public(message) if work is not None else message


def _status_for(error: ProvkitError) -> int:
    if isinstance(error, Refused):
        return 403
    if isinstance(error, ConfigError):
        return 409
    return 422


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return _error(e.status, _public(request, e.message), e.headers)

    @app.exception_handler(ProvkitError)
    async def provkit_error(request: Request, e: ProvkitError):
        return _error(_status_for(e), _public(request, str(e)))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        parts = []
        for err in e.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        return _error(e.status_code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception):  # a bug, never bad input: logged whole
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(e).__name__}); see the server log")

    @app.exception_handler(sqlite3.DatabaseError)
    async def storage(request: Request, e: sqlite3.DatabaseError):  # damaged or altered store
        log.error("database error on %s %s: %s", request.method, request.url.path, e)
        return _error(
            503,
            "the workspace database cannot serve this request (a table is "
            "missing or damaged); run `provkit audit verify` and see the server "
            "log",
            {"Retry-After": "60"},
        )

    @app.exception_handler(UnicodeDecodeError)
    async def undecodable(request: Request, e: UnicodeDecodeError):
        return _error(400, "the request is not valid UTF-8 text")


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        message = f"upload larger than the limit of {self.limit / (1 << 20):g} MB"
        if declared is not None and declared.isdigit() and int(declared) > self.limit + 65536:
            return await _send_json(send, 413, message)
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit + 65536:  # room for the multipart envelope
                    raise _TooLarge
            return msg

        async def tracking_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, message)


class _TooLarge(Exception):
    pass


async def _send_json(send, status: int, message: str) -> None:
    import json

    body = json.dumps({"error": message, "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def sweep_outputs(cfg: ServiceConfig) -> dict:
    """After a crash: remove every request's upload folder left in the uploads folder,
    half-written files in the output folder, and the files and ledger rows of assets
    there still ``staged`` (sealed, but never handed out).

    ``provkit serve`` calls it once before it starts listening; it must not run while
    another server writes into the same folder."""
    removed_uploads = 0
    uploads = uploads_dir(cfg)
    if uploads.is_dir():
        for left in uploads.glob(UPLOAD_PREFIX + "*"):
            shutil.rmtree(left, ignore_errors=True)
            removed_uploads += 1
    folder = out_dir(cfg).resolve()
    removed_files = 0
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed_files += 1
    book = ledger_store(cfg.db)
    forgotten = []
    try:
        for asset in book.list():
            path = Path(asset.path) if asset.path else None
            if asset.status != "staged" or path is None or folder not in path.resolve().parents:
                continue
            path.unlink(missing_ok=True)
            book.forget(asset.asset_id)
            forgotten.append(asset.asset_id)
    finally:
        book.db.conn.close()
    return {
        "removed_uploads": removed_uploads,
        "removed_temp_files": removed_files,
        "forgotten_staged_assets": forgotten,
    }


def _refresher(app: FastAPI, stop: threading.Event, interval: float) -> None:
    bank: ReferenceBank = app.state.bank
    while True:
        try:
            bank.refresh()
        except Exception as e:  # noqa: BLE001 - keep serving the copy we have; /status says
            bank.last_error = f"{type(e).__name__}: {e}"
        if stop.wait(interval):
            return


def create_app(
    cfg: ServiceConfig | None = None,
    *,
    refresh: float = REFRESH,
    max_pixels: int | None = None,
    public_detection: bool = False,
    public_rate: float = 30.0,
) -> FastAPI:
    """The whole service for one workspace. ``public_detection``: also the token-free SB 942
    page and API (provkit/routes/public.py), ``public_rate`` requests a minute per client."""
    cfg = cfg or ServiceConfig()
    if max_pixels is not None:
        imageio.set_max_pixels(max_pixels)
    imagecost.set_max_pixels_per_byte(cfg.max_pixels_per_byte)
    hamming.use_compiled()  # a long-running process: the compiled search, if numba is here

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = CpuPool(cfg.cpu_threads, cfg.queue, cfg.time_limit)  # fresh per run
        stop = threading.Event()
        thread = threading.Thread(
            target=_refresher, args=(app, stop, refresh), name="provkit-sets", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            app.state.pool.close()

    app = FastAPI(
        title="provkit",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,  # Swagger/ReDoc load from a CDN: off
        description="Provenance API: verify, detect, dupes, policy, sign, generate, ledger, "
        "audit, reference sets, hash and lookup (HMA-style), and the C2PA Soft "
        'Binding Resolution API. Errors are `{"error", "status"}`.',
    )
    app.state.config = cfg
    app.state.pool = CpuPool(cfg.cpu_threads, cfg.queue, cfg.time_limit)
    app.state.bank = ReferenceBank(cfg.db)
    app.state.budget = PixelBudget(cfg.pixel_budget, cfg.budget_wait)
    app.state.thumbnails = thumbnail_store()
    app.state.started = time.time()
    _install_errors(app)
    app.add_middleware(BodyLimit, limit=cfg.max_upload)

    @app.get("/status", tags=["status"], responses={503: {"description": "not ready"}})
    def status() -> dict:
        """Readiness: 200 once the reference sets are in memory and recently re-checked."""
        bank = app.state.bank.status()
        body = {
            "status": "ready",
            "sets": bank,
            "queue": {"pending": app.state.pool.pending, "capacity": app.state.pool.capacity},
            "classifier": {
                "probe": os.environ.get("PROVKIT_PROBE") or None,
                "clip": os.environ.get("PROVKIT_CLIP") or None,
            },
            "max_pixels": imageio.max_pixels(),
            "decode_budget": app.state.budget.status(),
            "search": hamming.engine(),
        }
        if not bank["ready"]:
            return JSONResponse({**body, "status": "INDEX-NOT-LOADED"}, status_code=503)
        if bank["checked_seconds_ago"] is not None and bank["checked_seconds_ago"] > max(
            STALE_AFTER, 5 * refresh
        ):
            return JSONResponse({**body, "status": "INDEX-STALE"}, status_code=503)
        return body

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        """The API's endpoints as one page, rendered here from the OpenAPI schema (Swagger
        UI would load its scripts from a CDN); the schema itself is /openapi.json."""
        return HTMLResponse(api_page(app.openapi()))

    @app.get("/status/live", tags=["status"])
    def live() -> dict:
        """Liveness: the process answers."""
        return {"status": "live", "uptime_seconds": round(time.time() - app.state.started, 1)}

    for router in (
        provenance_router,
        detect_router,
        policies_router,
        generate_router,
        hma_router,
        log_router,
        desk_router,
    ):
        app.include_router(router)
    if public_detection:  # the only routes without a token (SB 942's free tool)
        app.state.public_rate = float(public_rate)
        app.include_router(public_router)
    mount_static(app)
    return app


def create_service(
    cfg: ServiceConfig | None = None,
    *,
    refresh: float = REFRESH,
    max_pixels: int | None = None,
    **public,
) -> LookupFastPath:
    """What ``provkit serve`` runs: :func:`create_app` behind the lookup fast path
    (:class:`detect.lookup_fast.LookupFastPath`; ``.state`` is the app's). ``public``:
    ``public_detection`` and ``public_rate`` for :func:`create_app`."""
    return LookupFastPath(create_app(cfg, refresh=refresh, max_pixels=max_pixels, **public))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("provkit")
    except Exception:  # noqa: BLE001
        return "0"


__all__ = ["BadInput", "create_app", "create_service", "sweep_outputs"]


def api_page(schema: dict) -> str:
    """A self-contained HTML list of the schema's operations: method, path, summary."""
    from html import escape

    rows = []
    for path, ops in sorted(schema.get("paths", {}).items()):
        for method, op in ops.items():
            summary = op.get("summary") or (op.get("description") or "").split("\n")[0]
            rows.append(
                f"<tr><td><code>{escape(method.upper())}</code></td>"
                f"<td><code>{escape(path)}</code></td><td>{escape(summary)}</td></tr>"
            )
    info = schema.get("info", {})
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(info.get('title', 'API'))} API</title><style>body{{font:15px/1.4 "
        "system-ui,sans-serif;margin:2em;max-width:70em}td{padding:.2em .8em;vertical-align:"
        "top}tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        f"<h1>{escape(info.get('title', 'API'))} {escape(str(info.get('version', '')))}</h1>"
        f"<p>{escape(info.get('description', ''))}</p><p>The machine-readable schema: "
        "<a href='/openapi.json'>/openapi.json</a>.</p><table>"
        + "".join(rows)
        + "</table></body></html>"
    )
