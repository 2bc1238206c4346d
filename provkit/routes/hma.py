"""An HMA-compatible surface: the hashing, matching and curation routes of Meta's
open-source Hasher-Matcher-Actioner service (OpenMediaMatch) under their own paths,
mapped onto provkit's banks and tokens.

A client written for OpenMediaMatch's REST API (``/h/hash``, ``/m/raw_lookup``,
``/m/lookup``, ``/c/banks``, ``/c/bank/<name>``, ``/c/bank/<name>/content``,
``/c/bank/<name>/signal``) talks to ``provkit serve`` unchanged, with two differences
said in docs/serve.md: provkit asks for a token (``Authorization: Bearer``; reads are
open when the service is started with public reads), and it never fetches a URL on a
caller's behalf (``?url=`` answers 422: a server that fetches what a caller names is a
server-side request forgery waiting to happen; upload the file instead).

Shapes follow OpenMediaMatch's blueprints (``hashing.py``,
``matching.py``, ``curation.py``); where provkit has more to say (the partner's id, the
item's metadata, the bank's action) it adds keys, never changes HMA's. A bank content
id is provkit's item id (an integer, as in HMA); the partner's own id travels beside it.
Every route is a thin shell over the same library calls as ``/v1/banks`` and
``/v1/lookup``.

Why one module of over 400 lines: it is one foreign API, kept whole so that it reads
against OpenMediaMatch's three blueprints side by side (hashing, matching, curation);
each route is a few lines over provkit's bank calls.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request

from provkit.detect.index import ReferenceIndex
from provkit.detect.lookup import SIGNAL_TYPES, hash_file
from provkit.detect.reference_sets import import_, remove_item, set_
from provkit.provenance.core.errors import BadInput
from provkit.routes.detect import bank_of, reload_banks
from provkit.server.http import (
    ERRORS,
    ApiError,
    Caller,
    Read,
    SetsWrite,
    Upload,
    Workdir,
    config,
    run_cpu,
    run_cpu_to_end,
)

router = APIRouter(responses=ERRORS, tags=["HMA-compatible"])

_NO_FETCH = (
    "provkit does not fetch URLs on a caller's behalf (that would let any caller "
    "make the server request any address); upload the file instead"
)
_TRUE = ("1", "true", "yes", "on")


def _index(request: Request) -> ReferenceIndex:
    return ReferenceIndex(config(request).connection())


def _bank_json(b) -> dict:
    """A bank as HMA's ``BankConfig`` (name, matching_enabled_ratio) plus provkit's keys."""
    return {
        "name": b.name,
        "matching_enabled_ratio": 1.0 if b.enabled else 0.0,
        "action": b.action,
        "items": b.items,
        "label": b.label,
    }


def _known(request: Request, name: str) -> ReferenceIndex:
    idx = _index(request)
    if name not in idx.set_names():
        raise ApiError(404, f"no bank named {name!r}")
    return idx


def _signal_types(types: str | None) -> list[str]:
    """The signal types asked for (``types=pdq,phash``); HMA's photo default is pdq."""
    if not types:
        return ["pdq"]
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in SIGNAL_TYPES]
    if unknown:
        raise ApiError(
            400, f"unknown signal type {', '.join(unknown)} (known: {', '.join(SIGNAL_TYPES)})"
        )
    return wanted


async def _one_upload(request: Request, work: Workdir):
    """The single file of a multipart request, whatever its field name (HMA names it by
    content type: ``photo``)."""
    form = await request.form()
    files = [v for _, v in form.multi_items() if hasattr(v, "filename") and v.filename]
    if len(files) != 1:
        raise ApiError(400, f"send one file (multipart/form-data), got {len(files)}")
    (path,) = await work.save(files)
    return path, form


# --------------------------------------------------------------------------- hashing


@router.get("/h/hash")
def hash_get(url: Annotated[str | None, Query()] = None, caller: Caller = Read):
    """HMA hashes the content at ``url``; provkit does not fetch URLs (422)."""
    raise ApiError(
        422,
        _NO_FETCH
        if url
        else "url is required (and provkit does not fetch URLs: POST the file to /h/hash instead)",
    )


@router.post("/h/hash")
async def hash_post(
    request: Request,
    types: Annotated[str | None, Query()] = None,
    caller: Caller = Read,
    work: Workdir = Upload,
) -> dict:
    """The signals of one uploaded photo: ``{"pdq": HEX}`` (``types=pdq,phash,dhash`` for
    more)."""
    wanted = _signal_types(types)
    path, _ = await _one_upload(request, work)
    signals = await run_cpu(request, hash_file, path)
    return {t: signals[t] for t in wanted}


# --------------------------------------------------------------------------- matching


def _lookup(
    request: Request, signal: str, signal_type: str, banks: str | None = None
) -> dict[str, list[dict]]:
    """Per bank, its matches (HMA's ``banks=A,B`` limits the banks; unknown names are
    left out, as HMA filters by name)."""
    try:
        found = bank_of(request).lookup(signal_type, signal)
    except BadInput as e:
        raise ApiError(400, e.reason) from None
    wanted = {b.strip() for b in banks.split(",") if b.strip()} if banks else None
    return {
        bank: [{**m, "distance": str(m["distance"])} for m in matches]
        for bank, matches in found.items()
        if matches and (wanted is None or bank in wanted)
    }


@router.get("/m/raw_lookup")
async def raw_lookup(
    request: Request,
    signal: Annotated[str, Query(max_length=64)],
    signal_type: Annotated[str, Query()],
    include_distance: Annotated[str, Query()] = "false",
    banks: Annotated[str | None, Query()] = None,
    caller: Caller = Read,
) -> dict:
    """``{"matches": [content id, ...]}`` over every bank switched on for matching; with
    ``include_distance=true``, ``[{"bank_content_id", "distance"}]`` (distance a string, as
    HMA writes it), closest first."""
    found = _lookup(request, signal, signal_type, banks)
    flat = sorted(
        (m for ms in found.values() for m in ms),
        key=lambda m: (int(m["distance"]), m["bank_content_id"]),
    )
    if include_distance.strip().lower() in _TRUE:
        return {
            "matches": [
                {"bank_content_id": m["bank_content_id"], "distance": m["distance"]} for m in flat
            ]
        }
    return {"matches": [m["bank_content_id"] for m in flat]}


@router.get("/m/lookup")
async def lookup_get(
    request: Request,
    signal: Annotated[str | None, Query(max_length=64)] = None,
    signal_type: Annotated[str | None, Query()] = None,
    url: Annotated[str | None, Query()] = None,
    banks: Annotated[str | None, Query()] = None,
    caller: Caller = Read,
) -> dict:
    """Per bank, its matches: ``{"BANK": [{"bank_content_id", "distance", "partner_id",
    "metadata"}]}``. ``url=`` is refused (provkit does not fetch URLs)."""
    if url:
        raise ApiError(422, _NO_FETCH)
    if not signal or not signal_type:
        raise ApiError(400, "Either url or both signal and signal_type are required")
    return _lookup(request, signal, signal_type, banks)


@router.post("/m/lookup")
async def lookup_post(
    request: Request,
    types: Annotated[str | None, Query()] = None,
    banks: Annotated[str | None, Query()] = None,
    caller: Caller = Read,
    work: Workdir = Upload,
) -> dict:
    """Hash one uploaded photo and look each signal up: ``{"pdq": {"BANK": [...]}}``."""
    wanted = _signal_types(types)
    path, _ = await _one_upload(request, work)
    signals = await run_cpu(request, hash_file, path)
    return {t: _lookup(request, signals[t], t, banks) for t in wanted}


@router.get("/m/index/status")
def index_status(
    request: Request, signal_type: Annotated[str | None, Query()] = None, caller: Caller = Read
) -> dict:
    """Per signal type: ``{"present", "built_to", "size"}`` as HMA answers (``built_to``:
    the Unix time the in-memory copy was last checked, -1 before; ``size``: items in the
    banks switched on; provkit holds every kind in one copy)."""
    if signal_type is not None and signal_type not in SIGNAL_TYPES:
        raise ApiError(400, f"No such signal type '{signal_type}'")
    bank = bank_of(request)
    status = bank.status()
    size = sum(s["items"] for s in status["sets"].values() if s.get("enabled", True))
    built = int(bank.checked_at) if bank.checked_at is not None else -1
    kinds = [signal_type] if signal_type else list(SIGNAL_TYPES)
    return {t: {"present": status["ready"], "built_to": built, "size": size} for t in kinds}


# --------------------------------------------------------------------------- curation


@router.get("/c/banks")
def banks_index(request: Request, caller: Caller = Read) -> list[dict]:
    """Every bank as HMA's bank config (plus provkit's action and size)."""
    return [_bank_json(b) for b in _index(request).sets()]


@router.post("/c/banks", status_code=201)
async def bank_create(request: Request, caller: Caller = SetsWrite) -> dict:
    """Create a bank from ``{"name": NAME, "enabled": true}`` (provkit also reads
    ``"action"``)."""
    data = await _json_object(request)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "Field `name` is required")
    idx = _index(request)
    if name in idx.set_names():
        raise ApiError(403, "Bank already exists")  # HMA's answer to a second create
    try:
        idx.create_set(name, action=data.get("action"))
        idx.configure(name, enabled=_enabled(data, default=True))
    except BadInput as e:
        raise ApiError(400, e.reason) from None
    reload_banks(request)
    return _bank_json(idx.get_set(name))


def _enabled(data: dict, default=None):
    if "enabled_ratio" in data or "matching_enabled_ratio" in data:
        ratio = data.get("enabled_ratio", data.get("matching_enabled_ratio"))
        if ratio not in (0, 1, 0.0, 1.0) or isinstance(ratio, bool):
            raise ApiError(
                400,
                "provkit switches a bank on (1.0) or off (0.0) for matching; "
                "a partial enabled ratio is not supported",
            )
        return bool(ratio)
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise ApiError(400, "`enabled` must be true or false")
        return data["enabled"]
    return default


async def _json_object(request: Request) -> dict:
    try:
        data = json.loads(await request.body() or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


@router.get("/c/bank/{name}")
def bank_show(request: Request, name: str, caller: Caller = Read) -> dict:
    """One bank's config."""
    return _bank_json(_known(request, name).get_set(name))


@router.put("/c/bank/{name}")
async def bank_update(request: Request, name: str, caller: Caller = SetsWrite) -> dict:
    """Switch a bank on or off (``enabled`` / ``enabled_ratio`` 0 or 1) or change its
    ``action``; renaming is not supported."""
    idx = _known(request, name)
    data = await _json_object(request)
    if data.get("name") not in (None, name):
        raise ApiError(400, "provkit does not rename banks; create a new one")
    options = {"enabled": _enabled(data)}
    if "action" in data:
        options["action"] = data["action"]
    try:
        bank = set_(name, db=idx.db, **options)
    except BadInput as e:
        raise ApiError(400, e.reason) from None
    reload_banks(request)
    return _bank_json(bank)


@router.delete("/c/bank/{name}")
def bank_delete(request: Request, name: str, caller: Caller = SetsWrite) -> dict:
    """Remove a bank and its content."""
    _known(request, name).remove(name)
    reload_banks(request)
    return {"message": "Done"}


def _content_metadata(raw) -> tuple[str | None, dict]:
    """(partner id, metadata) from a ``metadata`` JSON value: ``content_id`` (or ``id``)
    is the partner's id; ``json`` (HMA's free-form part) and every other key the
    metadata."""
    if raw in (None, ""):
        return None, {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(400, "metadata is not JSON") from None
    if not isinstance(raw, dict):
        raise ApiError(400, "metadata must be a JSON object")
    meta = dict(raw)
    partner = meta.pop("content_id", None) or meta.pop("id", None)
    nested = meta.pop("json", None)
    if isinstance(nested, dict):
        meta.update(nested)
    return (None if partner is None else str(partner)), meta


@router.post("/c/bank/{name}/content")
async def bank_add_content(
    request: Request,
    name: str,
    url: Annotated[str | None, Query()] = None,
    caller: Caller = SetsWrite,
    work: Workdir = Upload,
) -> dict:
    """Add one uploaded photo to bank NAME: ``{"id": content id, "signals": {"pdq":
    HEX}}``. A ``metadata`` form field (JSON: ``content_id``, ``json``) gives the partner's
    id and metadata. ``url=`` is refused (provkit does not fetch URLs)."""
    if url:
        raise ApiError(422, _NO_FETCH)
    idx = _known(request, name)
    path, form = await _one_upload(request, work)
    partner, meta = _content_metadata(form.get("metadata") or request.query_params.get("metadata"))
    if partner is not None:
        meta["id"] = partner
    signals = await run_cpu(request, hash_file, path)
    label = f"upload:{work.names[str(path)]}"
    cfg = config(request)  # the worker thread opens its own connection
    report = await run_cpu_to_end(
        request,
        lambda: ReferenceIndex(cfg.connection()).add(
            name, [path], metadata=meta, workers=1, names={str(path): label}
        ),
    )
    if report.errors:
        raise ApiError(400, f"{work.names[str(path)]}: {report.errors[0][1]}")
    item = idx.item(name, partner or label) or idx.item(name, signals["sha256"])
    reload_banks(request)
    return {
        "id": item["item_id"] if item else None,
        "signals": {"pdq": signals["pdq"]},
        "partner_id": partner,
    }


@router.post("/c/bank/{name}/signal")
async def bank_add_signal(
    request: Request, name: str, caller: Caller = SetsWrite, work: Workdir = Upload
) -> dict:
    """Add a hash to bank NAME from ``{"pdq": HEX}`` (optionally ``"metadata"``):
    ``{"id": content id, "signals": {...}}``."""
    idx = _known(request, name)
    data = await _json_object(request)
    partner, meta = _content_metadata(data.get("metadata"))
    kinds = [k for k in SIGNAL_TYPES if k in data]
    if len(kinds) != 1:
        raise ApiError(
            400, f'send one signal, e.g. {{"pdq": HEX}} (known: {", ".join(SIGNAL_TYPES)})'
        )
    kind = kinds[0]
    record = {"hash": str(data[kind]), **({"id": partner} if partner else {}), "metadata": meta}
    listed = work.save_bytes((json.dumps(record) + "\n").encode(), "signal.jsonl")
    report = await run_cpu_to_end(
        request, lambda: import_(name, listed, kind=kind, db=config(request).connection())
    )
    if report.invalid:
        raise ApiError(400, report.errors[0][1] if report.errors else "invalid signal")
    key = partner or str(data[kind]).strip().lower().removeprefix("0x")
    item = idx.item(name, key)
    reload_banks(request)
    return {
        "id": item["item_id"] if item else None,
        "signals": {kind: key if not partner else str(data[kind])},
        "partner_id": partner,
    }


def _content_json(request: Request, name: str, content_id: str, signals: bool) -> dict:
    idx = _known(request, name)
    item = idx.item(name, content_id)
    if item is None:
        raise ApiError(404, f"content '{content_id}' not found")
    bank = idx.get_set(name)
    out = {
        "id": item["item_id"],
        "disable_until_ts": 0,
        "collab_metadata": {},
        "original_media_uri": None,
        "bank": {"name": bank.name, "matching_enabled_ratio": 1.0 if bank.enabled else 0.0},
        "partner_id": item["partner_id"],
        "metadata": item["metadata"],
        "added": item["added"],
    }
    if signals:
        out["signals"] = item["signals"]
    return out


@router.get("/c/bank/{name}/content/{content_id}")
def bank_get_content(
    request: Request,
    name: str,
    content_id: str,
    include_signals: Annotated[str, Query()] = "false",
    caller: Caller = Read,
) -> dict:
    """One content item by its id (provkit's item id, or the partner's id), as HMA's
    ``BankContentResponse`` plus the partner's id and metadata; ``include_signals=true``
    adds its hashes."""
    return _content_json(request, name, content_id, include_signals.strip().lower() in _TRUE)


@router.delete("/c/bank/{name}/content/{content_id}")
def bank_delete_content(
    request: Request, name: str, content_id: str, caller: Caller = SetsWrite
) -> dict:
    """Remove one content item by its id (provkit's item id, or the partner's id)."""
    _known(request, name)
    result = remove_item(name, [content_id], db=config(request).connection())
    if not result.removed_items:
        raise ApiError(404, f"no content {content_id!r} in bank {name!r}")
    reload_banks(request)
    return {"deleted": result.removed_items}


__all__ = ["router"]
