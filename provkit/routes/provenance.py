"""HTTP routes of the provenance package: verify, sign, ledger, and the C2PA Soft
Binding Resolution API.

Each route parses the request, calls the library verb the CLI command calls
(:func:`provenance.verify.verify`, :func:`provenance.issue.sign`,
:class:`provenance.ledger.Ledger`, :class:`provenance.resolver.SoftBindingResolver`)
and returns the same JSON as ``--json``; no logic lives here.

Why one module: every provenance endpoint (verify, sign, ledger, soft-binding
resolution) shares the upload and auth dependencies declared here.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from provkit.provenance import watermark
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.imageio import EXTENSION_FOR_MIME, load_rgb, sniff
from provkit.provenance.issue import sign
from provkit.provenance.ledger import Ledger, ledger_store
from provkit.provenance.manifest import ManifestSpec, action_name
from provkit.provenance.resolver import FINGERPRINT_ALG, SoftBindingResolver
from provkit.provenance.verify import verify
from provkit.server.http import (
    ERRORS,
    ApiError,
    Caller,
    Read,
    ServiceConfig,
    Sign,
    Upload,
    Workdir,
    config,
    out_dir,
    run_cpu,
    run_cpu_to_end,
)
from provkit.server.thumbnails import ThumbnailStore, keeper

router = APIRouter(responses=ERRORS)
Files = Annotated[list[UploadFile], File(description="One or more images.")]


def _ledger(cfg: ServiceConfig) -> Ledger:
    return ledger_store(cfg.connection())


# --------------------------------------------------------------------------- verify


def verify_rows(paths, *, db=None, recover: bool = True, thumbnails=None) -> list[dict]:
    """``provkit verify --json``: one row per file, in order; an unreadable one says why.
    ``thumbnails``: as :func:`provenance.verify.verify_file` takes it."""
    results = verify(paths, db=db, recover=recover, thumbnails=thumbnails)
    return [
        {"path": str(p), "error": r.reason} if isinstance(r, BadInput) else r.to_json()
        for p, r in zip(paths, results, strict=True)
    ]


def thumbnails_mode(request: Request, thumbnails: str, caller: Caller):
    """``url`` (kept a while for ``caller``, see :mod:`provkit.server.thumbnails`),
    ``inline`` or ``none``."""
    if thumbnails == "url":
        return keeper(thumbnail_store_of(request), caller.name or "")
    return "inline" if thumbnails == "inline" else None


def thumbnail_store_of(request: Request) -> ThumbnailStore:
    return request.app.state.thumbnails


ThumbnailsParam = Annotated[
    Literal["url", "inline", "none"],
    Query(
        description="How the answer carries the manifests' thumbnails: `url` (default; each "
        "is fetched from /v1/verify/thumbnail/HANDLE for a few minutes), `inline` "
        "(data: URIs) or `none` (references only)."
    ),
]


@router.post("/v1/verify", tags=["verbs"], summary="provkit verify")
async def verify_route(
    request: Request,
    files: Files,
    recover: bool = True,
    thumbnails: ThumbnailsParam = "url",
    caller: Caller = Read,
    work: Workdir = Upload,
) -> list[dict]:
    """Validate the C2PA credentials of each upload (and recover stripped ones)."""
    paths = await work.save(files)
    rows = await run_cpu(
        request,
        verify_rows,
        paths,
        db=config(request).db,
        recover=recover,
        thumbnails=thumbnails_mode(request, thumbnails, caller),
    )
    return work.public(rows)


@router.get(
    "/v1/verify/thumbnail/{handle}",
    tags=["verbs"],
    response_class=Response,
    responses={
        200: {"content": {"image/*": {}}, "description": "A thumbnail a verify answer named."}
    },
)
def verify_thumbnail(request: Request, handle: str, caller: Caller = Read):
    """A manifest thumbnail named by a recent verify answer (kept a few minutes)."""
    store = thumbnail_store_of(request)
    found = store.get(handle, caller.name or "")
    if found is None:
        raise ApiError(
            404,
            "no such thumbnail (they are kept for a few minutes after the answer that named them)",
        )
    data, mime = found
    return Response(
        data,
        media_type=mime,
        headers={
            "Cache-Control": f"private, max-age={int(store.ttl)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


# --------------------------------------------------------------------------- sign


@router.post(
    "/v1/sign",
    tags=["verbs"],
    summary="provkit sign",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"image/*": {}},
            "description": "The sealed file; its asset id in the X-Provkit-Asset-Id header.",
        }
    },
)
async def sign_route(
    request: Request,
    file: Annotated[UploadFile, File(description="The image to seal.")],
    source_type: Annotated[str | None, Form()] = None,
    action: Annotated[str | None, Form()] = None,
    author: Annotated[str | None, Form()] = None,
    title: Annotated[str | None, Form()] = None,
    no_train: Annotated[bool, Form()] = False,
    watermark: Annotated[bool, Form()] = True,
    caller: Caller = Sign,
    work: Workdir = Upload,
):
    """Watermark, sign and record an upload; answer with the sealed file.

    The sealed file is kept in the server's output folder (its ledger row points
    there) and can be fetched again from ``/v1/ledger/{asset_id}/file``."""
    cfg = config(request)
    if action is not None:
        action_name(action)  # BadInput (422) before the upload is read: C2PA or reverse-DNS
    (src,) = await work.save([file])
    mime = sniff(src)
    name = Path(file.filename or "upload").stem[:60] or "upload"
    out = out_dir(cfg) / f"{secrets.token_hex(4)}-{_safe(name)}{EXTENSION_FOR_MIME[mime]}"
    spec = ManifestSpec(
        title=title, source_type=source_type, action=action, author=author, no_train=no_train
    )
    issued = await run_cpu_to_end(
        request, sign_released, src, out, spec=spec, watermark=watermark, db=cfg.db
    )
    return FileResponse(
        issued.path,
        media_type=issued.mime,
        filename=Path(issued.path).name,
        headers=_asset_headers(issued.asset_id, issued.manifest_label),
    )


def sign_released(src, out, *, spec, watermark: bool, db=None):
    """``provkit sign`` recorded ``staged``, then ``issued`` once the file is in place: a
    crash in between leaves a staged row that the next start of the server sweeps."""
    issued = sign(src, out, spec=spec, watermark=watermark, db=db, status="staged")
    ledger_store(db).mark(issued.asset_id, "issued")
    return issued


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _asset_headers(asset_id: str, label: str | None) -> dict:
    headers = {"X-Provkit-Asset-Id": asset_id}
    if label:
        headers["X-Provkit-Manifest"] = label
    return headers


# --------------------------------------------------------------------------- ledger


@router.get("/v1/ledger", tags=["verbs"], summary="provkit ledger list")
def ledger_list(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    source_type: str | None = None,
    caller: Caller = Read,
) -> list[dict]:
    """Issued assets, newest first."""
    rows = _ledger(config(request)).list(limit=limit, source_type=source_type)
    return [_no_server_paths(a.to_json()) for a in rows]


def _no_server_paths(row: dict) -> dict:
    """A ledger row as the API answers it: file names, never the server's folders (an
    upload's temporary path, the output folder)."""
    return {**row, **{k: Path(row[k]).name for k in ("path", "source_path") if row.get(k)}}


@router.get("/v1/ledger/{asset_id}", tags=["verbs"], summary="provkit ledger show")
def ledger_show(request: Request, asset_id: str, caller: Caller = Read) -> dict:
    """One issued asset, with its manifest."""
    book = _ledger(config(request))
    asset = book.get(asset_id)
    if asset is None:
        raise ApiError(404, f"no asset {asset_id} in the ledger")
    return {**_no_server_paths(asset.to_json()), "manifest": book.manifest_json(asset.asset_id)}


@router.get(
    "/v1/ledger/{asset_id}/file",
    tags=["verbs"],
    response_class=FileResponse,
    responses={200: {"content": {"image/*": {}}, "description": "The sealed file."}},
)
def ledger_file(request: Request, asset_id: str, caller: Caller = Read):
    """The sealed file of an asset this server signed or generated."""
    cfg = config(request)
    asset = _ledger(cfg).get(asset_id)
    folder = out_dir(cfg).resolve()
    path = Path(asset.path).resolve() if asset and asset.path else None
    if path is None or folder not in path.parents or not path.is_file():
        raise ApiError(404, f"no file of asset {asset_id} is served here")
    return FileResponse(
        path,
        media_type=asset.mime,
        filename=path.name,
        headers=_asset_headers(asset.asset_id, asset.manifest_label),
    )


# ------------------------------------------------- C2PA Soft Binding Resolution API


class Algorithm(BaseModel):
    alg: str


class SupportedAlgorithms(BaseModel):
    watermarks: list[Algorithm]
    fingerprints: list[Algorithm]


class MatchItem(BaseModel):
    manifestId: str
    endpoint: str | None = None
    similarityScore: float | None = Field(None, ge=0, le=100)


class Matches(BaseModel):
    matches: list[MatchItem]


class BindingQuery(BaseModel):
    alg: str
    value: str = Field(description="The soft-binding value, base64 (or 16 hex characters).")


def _resolver(cfg: ServiceConfig) -> SoftBindingResolver:
    return SoftBindingResolver(_ledger(cfg))


def public_url(request: Request) -> str:
    """This server's base URL for answers: ``--public-url``, else the address it listens
    on; never the request's ``Host`` header, which the caller chooses."""
    configured = config(request).public_url
    if configured:
        return configured.rstrip("/")
    host, port = request.scope.get("server") or ("127.0.0.1", None)
    scheme = request.scope.get("scheme", "http")
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(scheme)
    return (
        f"{scheme}://{host}"
        + (f":{port}" if port and port != default else "")
        + request.scope.get("root_path", "")
    )


def _matches(request: Request, found) -> dict:
    endpoint = public_url(request)
    out = []
    for m in found:
        if not m.manifest_id:
            continue
        relation = (m.relation or {}).get("class")
        if relation == "same-pixels" or (m.relation is None and m.method == "watermark"):
            # the same pixels; or byBinding: the binding value itself, no picture compared
            score = 100.0 * float(m.confidence if m.confidence is not None else 1.0)
        elif relation == "transformed" and (m.relation or {}).get("correlation") is not None:
            score = min(99.0, 100.0 * float(m.relation["correlation"]))
        elif m.method == "fingerprint" and (m.distance or {}).get("pdq") is not None:
            score = min(99.0, 100.0 * (1 - m.distance["pdq"] / 256))
        else:
            score = None
        out.append(
            {
                "manifestId": m.manifest_id,
                "endpoint": endpoint,
                "similarityScore": None if score is None else round(min(score, 100.0), 2),
            }
        )
    return {"matches": out}


@router.get(
    "/services/supportedAlgorithms", tags=["soft-binding"], response_model=SupportedAlgorithms
)
def supported_algorithms(request: Request, caller: Caller = Read):
    """The soft-binding algorithms this resolver answers for."""
    return _resolver(config(request)).supported_algorithms()


def _by_binding(request: Request, alg: str, value: str) -> dict:
    if not alg or not value:
        raise ApiError(400, "give alg and value (the binding, base64)")
    return _matches(request, _resolver(config(request)).match_by_binding(alg, value))


@router.get("/matches/byBinding", tags=["soft-binding"], response_model=Matches)
def matches_by_binding_get(request: Request, alg: str, value: str, caller: Caller = Read):
    """Manifests whose soft binding ``alg`` has this value."""
    return _by_binding(request, alg, value)


@router.post("/matches/byBinding", tags=["soft-binding"], response_model=Matches)
def matches_by_binding_post(request: Request, query: BindingQuery, caller: Caller = Read):
    """Manifests whose soft binding ``alg`` has this value."""
    return _by_binding(request, query.alg, query.value)


def _by_content(path: Path, cfg: ServiceConfig, max_results: int):
    image = load_rgb(path)
    return _resolver(cfg).match_by_content(image, max_results=max_results, size=image.size)


@router.post(
    "/matches/byContent",
    tags=["soft-binding"],
    response_model=Matches,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def matches_by_content(
    request: Request,
    alg: str | None = None,
    max_results: Annotated[int, Query(alias="maxResults", ge=1, le=100)] = 5,
    caller: Caller = Read,
    work: Workdir = Upload,
):
    """Manifests of issued assets whose pixels the media in the body has: found by its
    watermark, else its fingerprints, and then compared with the asset's reference
    rendition. Only the same pixels (``similarityScore`` 100 times the mark's confidence)
    or an honestly transformed copy (resized, re-encoded, cropped, framed: at most 99, the
    registered pixels' correlation) match; a locally edited copy, or a picture that only
    carries a mark naming an asset, gets no match."""
    cfg = config(request)
    path = await work.save_stream(request, "body")
    if work.received == 0:
        raise ApiError(400, "send the image itself as the request body")
    found = await run_cpu(request, _by_content, path, cfg, max_results)
    if alg:
        found = [m for m in found if _alg_of(m) == alg]
    return work.public(_matches(request, found))


def _alg_of(match) -> str:
    return watermark.SOFT_BINDING_ALG if match.method == "watermark" else FINGERPRINT_ALG


@router.get(
    "/manifests/{manifestId}",
    tags=["soft-binding"],
    response_class=Response,
    responses={
        200: {"content": {"application/c2pa": {}}, "description": "The C2PA manifest store."}
    },
)
def get_manifest(request: Request, manifestId: str, caller: Caller = Read):
    """The manifest store with this manifest id (or asset id), as ``application/c2pa``."""
    store = _resolver(config(request)).get_manifest(manifestId)
    if store is None:
        raise ApiError(404, f"no manifest {manifestId}")
    return Response(store, media_type="application/c2pa")


__all__ = ["router", "thumbnails_mode", "verify_rows"]
