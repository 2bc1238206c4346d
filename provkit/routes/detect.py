"""HTTP routes of the detect package: detect, dupes, banks, hash and lookup.

Banks live under ``/v1/banks`` (the old ``/v1/sets`` paths and the ``index`` query
parameter still work for one release, left out of the OpenAPI description).

Why one module of over 400 lines: detect, dupes, the bank routes and hash-and-lookup
share the banks held in memory (``bank_of``), their reload after a change and the
request models of bank items; the HMA-compatible routes (:mod:`provkit.routes.hma`)
reuse them.

Thin shells over :func:`detect.verdict.detect`, :class:`detect.index.ReferenceIndex`
and :mod:`detect.lookup`; the same JSON as the CLI's ``--json``. Lookups read the
app's :class:`detect.lookup.ReferenceBank` (``app.state.bank``), the sets held in
memory; a change made through these routes reloads it at once, a change made by the
CLI within the server's refresh interval.
"""

from __future__ import annotations

import json
import os
import re
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from provkit.detect.index import ReferenceIndex
from provkit.detect.lookup import (
    LOOKUP_LIMIT,
    LOOKUP_LIMIT_MAX,
    MAX_DISTANCE,
    SIGNAL_TYPES,
    ReferenceBank,
    hash_file,
    page,
)
from provkit.detect.reference_sets import dupes, import_, remove_item, set_
from provkit.detect.verdict import detect
from provkit.provenance.core.errors import BadInput, ProvkitError
from provkit.server.grants import granted
from provkit.server.http import (
    ERRORS,
    ApiError,
    Caller,
    Read,
    ServiceConfig,
    SetsWrite,
    Upload,
    Workdir,
    config,
    run_cpu,
    run_cpu_to_end,
)

router = APIRouter(responses=ERRORS)
Files = Annotated[list[UploadFile], File(description="One or more images.")]


def bank_of(request: Request) -> ReferenceBank:
    """The app's banks in memory (``app.state.bank``)."""
    return request.app.state.bank


def _index(cfg: ServiceConfig) -> ReferenceIndex:
    return ReferenceIndex(cfg.connection())


# --------------------------------------------------------------------------- detect


def detect_rows(paths, *, db=None, index_sets=None) -> list[dict]:
    """``provkit detect --json``: one record per file (an unreadable one says why)."""
    results = detect(
        paths,
        db=db,
        index_sets=index_sets,
        probe=os.environ.get("PROVKIT_PROBE") or None,
        clip=os.environ.get("PROVKIT_CLIP") or None,
    )
    return [
        {"path": str(p), "error": r.reason} if isinstance(r, ProvkitError) else r.to_json()
        for p, r in zip(paths, results, strict=True)
    ]


BankQuery = Annotated[list[str] | None, Query(description="Search only these banks")]
OldBankQuery = Annotated[list[str] | None, Query(include_in_schema=False)]


def _banks(bank, index):
    """``bank`` query values, with the old ``index`` spelling (kept one release)."""
    names = [*(bank or ()), *(index or ())]
    return names or None


@router.post("/v1/detect", tags=["verbs"], summary="provkit detect")
async def detect_route(
    request: Request,
    files: Files,
    bank: BankQuery = None,
    index: OldBankQuery = None,
    caller: Caller = Read,
    work: Workdir = Upload,
) -> list[dict]:
    """Evidence and a verdict for each upload: is it AI-made?"""
    paths = await work.save(files)
    rows = await run_cpu(
        request, detect_rows, paths, db=config(request).db, index_sets=_banks(bank, index)
    )
    return work.public(rows)


# --------------------------------------------------------------------------- dupes


def dupes_rows(paths, *, db=None, sets=None, k: int = 10) -> list[dict]:
    """``provkit dupes --json``: near-duplicates of each file in the reference sets
    (:func:`detect.reference_sets.dupes`, CLIP not checked: the service answers fast)."""
    return [
        r.to_json() | ({"matches": []} if r.error is not None else {})
        for r in dupes(paths, sets=sets, k=k, clip=False, db=db)
    ]


@router.post("/v1/dupes", tags=["verbs"], summary="provkit dupes")
async def dupes_route(
    request: Request,
    files: Files,
    bank: BankQuery = None,
    index: OldBankQuery = None,
    k: Annotated[int, Query(ge=1, le=1000)] = 10,
    caller: Caller = Read,
    work: Workdir = Upload,
) -> list[dict]:
    """Near-duplicates of each upload in the banks (pHash, dHash, PDQ, crops), each with
    its bank, partner id, metadata, action and distance."""
    paths = await work.save(files)
    rows = await run_cpu(
        request, dupes_rows, paths, db=config(request).db, sets=_banks(bank, index), k=k
    )
    return work.public(rows)


# --------------------------------------------------------------------------- sets


Action = Literal["deny", "review", "label", "allow"]


class SetSpec(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    label: str | None = None
    protected: bool = False
    description: str | None = None
    action: Action | None = Field(None, description="What a match means to a policy")
    enabled: bool | None = Field(None, description="Whether the bank takes part in matching")
    max_distance: dict[str, float] | None = Field(
        None, description='The bank\'s own match distance per kind, e.g. {"pdq": 20}'
    )


class BankSettingsSpec(BaseModel):
    """Fields to change; those left out stay as they are (``action``/``max_distance``
    null clear them)."""

    action: Action | None = None
    enabled: bool | None = None
    max_distance: dict[str, float] | None = None
    label: str | None = None
    description: str | None = None


class HashItem(BaseModel):
    pdq: str = Field(description="64 hex characters")
    phash: str | None = None
    dhash: str | None = None
    pdq_quality: int | None = Field(None, ge=0, le=100)
    id: str | None = Field(None, description="The sharer's content id")
    metadata: dict = Field(default_factory=dict)


class HashItems(BaseModel):
    items: list[HashItem] = Field(max_length=100_000)


def _ints(values: dict | None) -> dict | None:
    """JSON numbers of a distance dict as the store takes them (bits are whole)."""
    if not values:
        return None
    return {
        k: (float(v) if k == "clip" else int(v) if float(v).is_integer() else v)
        for k, v in values.items()
    }


@router.get("/v1/banks", tags=["banks"], summary="provkit bank list")
@router.get("/v1/sets", include_in_schema=False)
def sets_list(request: Request, caller: Caller = Read) -> list[dict]:
    """Banks, their sizes, actions and whether each takes part in matching."""
    return [s.to_json() for s in _index(config(request)).sets()]


@router.post(
    "/v1/banks",
    tags=["banks"],
    status_code=201,
    responses={
        200: {
            "description": "The bank existed: its label, protection, "
            "description and settings were updated."
        }
    },
)
@router.post("/v1/sets", include_in_schema=False, status_code=201)
def sets_create(
    request: Request, spec: SetSpec, response: Response, caller: Caller = SetsWrite
) -> dict:
    """Create a bank (201), or update an existing one's label, protection, description
    and settings (200)."""
    idx = _index(config(request))
    existed = spec.name in idx.set_names()
    idx.create_set(
        spec.name,
        label=spec.label,
        protected=spec.protected,
        description=spec.description,
        action=spec.action,
    )
    settings = {"enabled": spec.enabled}
    if spec.max_distance is not None:
        settings["max_distance"] = _ints(spec.max_distance)
    if spec.enabled is not None or "max_distance" in settings:
        idx.configure(spec.name, **settings)
    _reload(request)
    if existed:
        response.status_code = 200
    return idx.get_set(spec.name).to_json()


def _known_set(request: Request, name: str):
    idx = _index(config(request))
    if name not in idx.set_names():
        raise ApiError(404, f"no bank named {name!r}")
    return idx


@router.get("/v1/banks/{name}", tags=["banks"], summary="provkit bank stats")
@router.get("/v1/sets/{name}", include_in_schema=False)
def sets_show(request: Request, name: str, caller: Caller = Read) -> dict:
    """Size, settings and fingerprint health of one bank."""
    return _known_set(request, name).stats(name)


@router.patch("/v1/banks/{name}", tags=["banks"], summary="provkit bank set")
def bank_set(
    request: Request, name: str, spec: BankSettingsSpec, caller: Caller = SetsWrite
) -> dict:
    """Change a bank's action, matching switch, match distance, label or description;
    fields left out stay as they are."""
    _known_set(request, name)
    given = spec.model_dump(exclude_unset=True)
    if "max_distance" in given:
        given["max_distance"] = _ints(given["max_distance"])
    result = set_(name, db=config(request).connection(), **given)
    _reload(request)
    return result.to_json()


@router.delete("/v1/banks/{name}", tags=["banks"], summary="provkit bank remove")
@router.delete("/v1/sets/{name}", include_in_schema=False)
def sets_delete(request: Request, name: str, caller: Caller = SetsWrite) -> dict:
    """Remove a bank and its items."""
    n = _known_set(request, name).remove(name)
    _reload(request)
    return {"bank": name, "set": name, "removed_items": n, "removed_set": True}


@router.get("/v1/banks/{name}/items/{item}", tags=["banks"])
def bank_item(request: Request, name: str, item: str, caller: Caller = Read) -> dict:
    """One bank item by the partner's id (or provkit's item id): its ids, metadata, hashes
    and when it was added."""
    found = _known_set(request, name).item(name, item)
    if found is None:
        raise ApiError(404, f"no item {item!r} in bank {name!r}")
    return found


@router.delete("/v1/banks/{name}/items/{item}", tags=["banks"], summary="provkit bank remove-item")
def bank_remove_item(request: Request, name: str, item: str, caller: Caller = SetsWrite) -> dict:
    """Remove one item by the partner's id (or provkit's item id); 404 if none matched."""
    _known_set(request, name)
    result = remove_item(name, [item], db=config(request).connection())
    if not result.removed_items:
        raise ApiError(404, f"no item {item!r} in bank {name!r}")
    _reload(request)
    return result.to_json()


@router.post("/v1/banks/{name}/items", tags=["banks"], summary="provkit bank add")
@router.post("/v1/sets/{name}/items", include_in_schema=False)
async def sets_add(
    request: Request,
    name: str,
    files: Annotated[list[UploadFile] | None, File()] = None,
    metadata: Annotated[
        str | None, Form(description="JSON object stored with every uploaded item")
    ] = None,
    items: Annotated[
        str | None, Form(description='JSON {"items": [{"pdq": HEX, ...}]} instead of files')
    ] = None,
    caller: Caller = SetsWrite,
    work: Workdir = Upload,
) -> dict:
    """Add uploads (fingerprinted, with a thumbnail) or hashes with metadata to set NAME.

    Send multipart ``files`` (and optional ``metadata``), or ``items``: a JSON list of
    hashes as a hash exchange delivers them; a JSON body ``{"items": [...]}`` works too.
    Uploaded images are not kept: only their fingerprints and a small thumbnail."""
    cfg = config(request)
    if not _valid_name(name):
        raise ApiError(400, f"set name {name!r}: use letters, digits, '_', '.' or '-'")
    if request.headers.get("content-type", "").startswith("application/json"):
        items = (await request.body()).decode("utf-8", "replace")
    if items is not None:
        entries = _parse_items(items)
        listed = work.save_bytes(
            "".join(json.dumps(e) + "\n" for e in entries).encode(), "items.jsonl"
        )
        report = await run_cpu_to_end(request, lambda: _import_items(cfg, name, listed))
    elif files:
        meta = _parse_object(metadata, "metadata") if metadata else {}
        paths = await work.save(files)
        names = {str(p): f"upload:{work.names[str(p)]}" for p in paths}
        report = await run_cpu_to_end(
            request, lambda: _index(cfg).add(name, paths, metadata=meta, workers=1, names=names)
        )
    else:
        raise ApiError(400, "send 'files' (images) or 'items' (hashes)")
    _reload(request)
    return work.public(report.to_json())


class _Imported:
    """A hash-list import (:func:`detect.reference_sets.import_`) in an add's shape."""

    def __init__(self, report):
        self.report = report

    def to_json(self) -> dict:
        r = self.report
        return {
            "set": r.set,
            "added": r.imported,
            "already_present": r.already_present,
            "failed": r.invalid,
            "low_quality": r.low_quality,
            "errors": [{"path": f"entry {n}", "reason": why} for n, why in r.errors],
            "seconds": round(r.seconds, 3),
            "clip_model": None,
        }


def _import_items(cfg: ServiceConfig, name: str, listed) -> _Imported:
    """PDQ hashes sent as JSON, stored as a hash bank by the library import (one PDQ
    item each; an entry's pHash/dHash are kept in its metadata)."""
    return _Imported(import_(name, listed, kind="pdq", db=cfg.connection()))


_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _valid_name(name: str) -> bool:
    return bool(_SET_NAME.match(name))


def _parse_object(text: str, what: str) -> dict:
    try:
        value = json.loads(text)
    except RecursionError:
        raise ApiError(422, f"{what} is nested too deeply to read") from None
    except ValueError as e:
        raise ApiError(400, f"{what} is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    return value


def _parse_items(text: str) -> list[dict]:
    try:
        value = json.loads(text)
    except RecursionError:
        raise ApiError(422, "items is nested too deeply to read") from None
    except ValueError as e:
        raise ApiError(400, f"items is not JSON ({e})") from None
    if isinstance(value, dict):
        value = value.get("items")
    if not isinstance(value, list) or not value:
        raise ApiError(400, 'items must be a non-empty JSON list (or {"items": [...]})')
    return value


@router.get(
    "/v1/banks/{name}/items/{item_id}/thumbnail",
    tags=["banks"],
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "A small JPEG."}},
)
@router.get(
    "/v1/sets/{name}/items/{item_id}/thumbnail", include_in_schema=False, response_class=Response
)
def sets_thumbnail(
    request: Request,
    name: str,
    item_id: int,
    grant: Annotated[
        str | None, Query(description="the grant a match answer names the thumbnail with")
    ] = None,
    caller: Caller = Read,
):
    """The small JPEG stored for a reference item: with the ``banks:read`` scope, or with
    the grant a match answer gave (item ids run in sequence, so without either this
    would list a set's images to anyone who may read)."""
    if not (set(caller.scopes) & {"banks:read", "admin"} or granted(name, item_id, grant)):
        raise ApiError(
            403,
            "a reference item's thumbnail needs the 'banks:read' scope, or "
            "the grant of a match answer that named it",
        )
    thumb = _known_set(request, name).thumbnail(item_id)
    if not thumb:
        raise ApiError(404, f"no thumbnail for item {item_id} of set {name!r}")
    return Response(
        thumb, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


def _reload(request: Request) -> None:
    try:
        bank_of(request).refresh()
    except ProvkitError as e:  # kept serving the old copy; /status says so
        bank_of(request).last_error = str(e)


# --------------------------------------------------------------------------- HMA


class Signals(BaseModel):
    pdq: str
    pdq_quality: int
    phash: str
    dhash: str
    sha256: str | None = None


class LookupMatch(BaseModel):
    bank_content_id: int
    distance: int
    partner_id: str | None = Field(None, description="The item's id in the partner's list")
    metadata: dict = Field(default_factory=dict, description="The item's own metadata")


@router.post("/v1/hash", tags=["hash and match"], response_model=Signals)
async def hash_route(
    request: Request,
    file: Annotated[UploadFile, File(description="An image.")],
    caller: Caller = Read,
    work: Workdir = Upload,
):
    """The signals of an upload: pdq (with its quality), phash, dhash."""
    (path,) = await work.save([file])
    return await run_cpu(request, hash_file, path)


SignalType = Annotated[str, Query(pattern="^(" + "|".join(SIGNAL_TYPES) + ")$")]


@router.get("/v1/lookup", tags=["hash and match"], response_model=dict[str, list[LookupMatch]])
async def lookup_route(
    request: Request,
    signal: Annotated[str, Query(max_length=64)],
    signal_type: SignalType = "pdq",
    bank: BankQuery = None,
    index: OldBankQuery = None,
    max_distance: Annotated[
        int | None,
        Query(
            ge=0,
            le=max(MAX_DISTANCE.values()),
            description="at most 64 for pdq, 16 for phash and dhash",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=LOOKUP_LIMIT_MAX)] = LOOKUP_LIMIT,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    caller: Caller = Read,
):
    """Per bank, the items whose ``signal_type`` is within the match distance of ``signal``
    (the caller's ``max_distance``, at most 64 for PDQ and 16 for pHash and dHash, else
    the bank's own, else the default), each with the partner's id and metadata, closest
    first, at most ``limit`` per bank from ``offset`` on: when a bank has more, the answer
    names it in ``X-Provkit-More`` and gives ``X-Provkit-Next-Offset``. Banks switched
    off for matching are left out.

    Answered on the event loop: a lookup in memory takes well under a millisecond.
    ``provkit serve`` answers the plain ones before they reach this route, with the
    same bytes (:mod:`provkit.server.lookup_fast`)."""
    try:
        found = bank_of(request).lookup(
            signal_type,
            signal,
            sets=_banks(bank, index),
            max_distance=max_distance,
            limit=limit,
            offset=offset,
        )
    except BadInput as e:
        raise ApiError(404 if e.reason.startswith("no bank named") else 422, e.reason) from None
    found, more = page(found, limit)
    headers = (
        {"X-Provkit-More": ",".join(more), "X-Provkit-Next-Offset": str(offset + limit)}
        if more
        else None
    )
    # already plain JSON: skip re-validating the response model
    return JSONResponse(found, headers=headers)


class HashAndMatch(BaseModel):
    signals: Signals
    matches: dict[str, list[LookupMatch]]


@router.post("/v1/lookup", tags=["hash and match"], response_model=HashAndMatch)
async def lookup_upload(
    request: Request,
    file: Annotated[UploadFile, File(description="An image.")],
    signal_type: SignalType = "pdq",
    bank: BankQuery = None,
    index: OldBankQuery = None,
    caller: Caller = Read,
    work: Workdir = Upload,
):
    """Hash an upload and look its signal up: the signals and, per bank, the matches."""
    (path,) = await work.save([file])
    signals = await run_cpu(request, hash_file, path)
    try:
        matches, _ = page(
            bank_of(request).lookup(
                signal_type, signals[signal_type], sets=_banks(bank, index), limit=LOOKUP_LIMIT
            ),
            LOOKUP_LIMIT,
        )
    except BadInput as e:
        raise ApiError(404, e.reason) from None
    return {"signals": signals, "matches": matches}


__all__ = ["bank_of", "detect_rows", "dupes_rows", "reload_banks", "router"]

reload_banks = _reload
