"""HTTP routes of the Merkle logs: checkpoints, proofs, and the C2SP ``tlog-tiles``
layout, read-only, with the same auth as the other read routes (``read``), except the
decisions log's entries, which are audit rows (``audit:read``, as ``/v1/audit``).

Thin shells over :mod:`provkit.provenance.core.transparency` (the ``provkit log``
verbs). Each log also answers at ``/v1/log/<log>/checkpoint`` (the signed note as
text) and ``/v1/log/<log>/tile/<L>/<N>[.p/<W>]`` (hashes) and
``/v1/log/<log>/tile/entries/<N>[.p/<W>]`` (entry bundles), so a monitor or witness that
reads tiled logs can follow it with no provkit code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from provkit.provenance.core import transparency
from provkit.provenance.core.errors import BadInput
from provkit.server.http import ERRORS, ApiError, Caller, Read, authorize, config

router = APIRouter(responses=ERRORS)
LogName = Literal["assets", "decisions"]


def _entries_of(request: Request, log: str) -> None:
    """A decisions-log entry is an audit row (actor, subject, reasons): reading one needs
    the ``audit:read`` scope, as ``/v1/audit`` does. Hashes and checkpoints say nothing
    of the rows and stay ``read``."""
    if log == "decisions":
        authorize(config(request), request.headers.get("authorization"), "audit:read")


@router.get("/v1/log/checkpoint", tags=["log"], summary="provkit log checkpoint")
def log_checkpoint(request: Request, log: LogName = "assets", caller: Caller = Read) -> dict:
    """The log's latest signed checkpoint (origin, size, base64 root, note text)."""
    return transparency.checkpoint(log, db=config(request).connection()).to_json()


@router.get("/v1/log/proof/{ref}", tags=["log"], summary="provkit log prove")
def log_prove(
    request: Request, ref: str, log: LogName | None = None, caller: Caller = Read
) -> dict:
    """The inclusion proof of an asset (16 hex digits) or an audit row (its number; with
    the audit row itself as the entry, so it needs the ``audit:read`` scope)."""
    if len(ref) > 64:
        raise ApiError(422, "an asset id or an audit row number")
    _entries_of(request, transparency.which_log(ref, log))
    return transparency.prove(ref, log=log, db=config(request).connection()).to_json()


@router.post("/v1/log/consistency", tags=["log"], summary="provkit log consistency")
def log_consistency(
    request: Request,
    checkpoint: Annotated[str, Body(media_type="text/plain", max_length=65536)],
    caller: Caller = Read,
) -> dict:
    """The proof that the log now extends the checkpoint sent as the body (note text)."""
    return transparency.consistency(checkpoint, db=config(request).connection()).to_json()


@router.get(
    "/v1/log/{log}/checkpoint",
    tags=["log"],
    summary="C2SP checkpoint",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def tiles_checkpoint(request: Request, log: LogName, caller: Caller = Read) -> Response:
    """The latest checkpoint as the signed note (text/plain), as tiled logs serve it."""
    cp = transparency.checkpoint(log, db=config(request).connection())
    return Response(
        cp.note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/v1/log/{log}/tile/{level}/{path:path}",
    tags=["log"],
    summary="C2SP tile",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
)
def tiles_tile(
    request: Request, log: LogName, level: str, path: str, caller: Caller = Read
) -> Response:
    """A tile of hashes (``<L>/<N>``) or of entries (``entries/<N>``); ``.p/<W>``: its
    first W hashes (a partial tile). A tile the tree does not have (yet) is a 404.
    The decisions log's entry bundles are audit rows: ``audit:read``."""
    if level == "entries":
        _entries_of(request, log)
    try:
        data = transparency.tile(log, level, path, db=config(request).connection())
    except BadInput as e:
        raise ApiError(404, e.reason) from None
    immutable = ".p/" not in path
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"
        },
    )


__all__ = ["router"]
