"""The verification desk: a batch of images, one row and one card each.

:func:`desk_record` gathers, for one file, the one-line ``check`` answer and its
record (:func:`provkit.answers.check`: credentials, evidence, near-duplicates and the
pack's decision), the manifests' thumbnails (by URL on the page, inline in a report:
:mod:`provenance.thumbnails`) and the near-duplicates with their reference pictures.
:func:`provkit.server.card.card` turns a record into words; ``card.html`` shows them.
:func:`render_report` writes records as one self-contained HTML file (inline CSS,
pictures as data URIs, no script), the same for ``provkit report`` and the page's
"Download report".

Routes: ``GET /`` (the page: drop or choose many files, a table filled in as answers
arrive, a card per row), ``POST /desk/record`` (one upload's card as an HTML fragment,
or the report with ``download=true``), ``/static/*``.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from provkit.answers import check
from provkit.detect.index import ReferenceIndex
from provkit.policies.pack import shipped_packs
from provkit.provenance.core.context import duplicate
from provkit.provenance.core.errors import BadInput, shown
from provkit.provenance.core.files import atomic_write
from provkit.provenance.core.imageio import load_rgb, sniff_media
from provkit.provenance.thumbnails import data_uri, fill, of_file
from provkit.routes.detect import dupes_rows
from provkit.routes.detect import router as detect_router
from provkit.routes.provenance import thumbnails_mode
from provkit.server.card import card
from provkit.server.grants import grant
from provkit.server.http import (
    ERRORS,
    ApiError,
    Caller,
    Read,
    Upload,
    Workdir,
    config,
    run_cpu_to_end,
)

HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
TEMPLATES.globals["card"] = card
TEMPLATES.filters["sentence"] = lambda s: s[:1].upper() + s[1:] if isinstance(s, str) else s
router = APIRouter(responses=ERRORS)
#: The page runs only its own script and style and shows only its own pictures (and the
#: browser's local ones): manifest text that slipped through could run nothing.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _reference_thumbnail_route() -> str:
    """Where the detect router serves a reference item's picture (read scope and the
    grant this page names it with, :mod:`provkit.server.grants`)."""
    for route in detect_router.routes:
        path = getattr(route, "path", "")
        if path.endswith("/items/{item_id}/thumbnail"):
            return path
    return "/v1/sets/{name}/items/{item_id}/thumbnail"


REFERENCE_THUMBNAIL = _reference_thumbnail_route()


def reference_thumbnail_url(bank: str, item_id) -> str:
    head, _, _ = REFERENCE_THUMBNAIL.partition("/items/")
    head = head[: head.rindex("{")] + quote(str(bank), safe="")
    return f"{head}/items/{item_id}/thumbnail?grant={grant(str(bank), item_id)}"


# --------------------------------------------------------------------------- record


def _preview(path) -> str | None:
    """The picture itself, small, as a data URI (for the self-contained report)."""
    try:
        img = load_rgb(path)
    except BadInput:
        return None
    img.thumbnail((480, 480))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return data_uri(buf.getvalue(), "image/jpeg")


def seen_before(path, *, db=None, thumbnails=None) -> list[dict]:
    """Near-duplicates in the reference sets, each with its date and, where the set keeps
    one, its picture (``thumbnails``: ``"inline"``, anything else true: by URL)."""
    index = ReferenceIndex(db)
    try:
        if not index.set_names():
            return []
        (found,) = dupes_rows([path], db=db)
        out = []
        for m in found.get("matches") or []:
            m = {**m, "published": duplicate(m)["published"]}
            item_id = m.get("item_id")
            picture = index.thumbnail(item_id) if thumbnails and item_id is not None else None
            if picture and thumbnails == "inline":
                m["thumbnail"] = {"data": data_uri(picture, "image/jpeg")}
            elif picture:
                bank = m.get("bank") or m.get("set")
                m["thumbnail"] = {"url": reference_thumbnail_url(bank, item_id)}
            out.append(m)
        return out
    finally:
        index.db.conn.close()


def desk_record(
    path,
    *,
    name: str | None = None,
    db=None,
    pack: str | None = None,
    point: str | None = None,
    actor: str | None = None,
    thumbnails=None,
    dry_run: bool = False,
) -> dict:
    """Everything the desk shows for one file (see the module docstring).

    ``thumbnails``: ``"inline"``, a ``keep`` callable (:mod:`provenance.thumbnails`) or
    None. The decision is recorded in the audit log unless ``dry_run``."""
    name = name or Path(path).name
    (rec,) = check([path], pack=pack, point=point, db=db, actor=actor, dry_run=dry_run)
    if rec.error:
        return {"name": name, "error": rec.error}
    data = rec.to_json()
    credentials = data["credentials"]
    if thumbnails and credentials.get("state") in ("valid", "trusted", "invalid"):
        credentials = fill(credentials, of_file(path), thumbnails)
    prefix = f"{shown(Path(path).name)}: "
    line = rec.line()
    return {
        "name": name,
        "line": line.removeprefix(prefix),
        "outcome": rec.outcome,
        "check": data,
        "credentials": credentials,
        "seen": seen_before(path, db=db, thumbnails=thumbnails),
        "preview": _preview(path) if thumbnails == "inline" else None,
    }


def desk_records(paths, *, names=None, **kwargs) -> list[dict]:
    """:func:`desk_record` for each file; an unreadable one gets its error, not a stop."""
    out = []
    for i, p in enumerate(paths):
        name = names[i] if names else None
        try:
            out.append(desk_record(p, name=name, **kwargs))
        except BadInput as e:
            out.append({"name": name or Path(p).name, "error": e.reason})
    return out


# --------------------------------------------------------------------------- render


def _css() -> str:
    return (HERE / "static" / "desk.css").read_text(encoding="utf-8")


def render_fragment(record: dict) -> str:
    return TEMPLATES.get_template("card.html").render(r=record, n=0)


def render_report(records: list[dict], *, pack: str | None = None) -> str:
    """A self-contained HTML report (no external files, no script) of these records."""
    return TEMPLATES.get_template("report.html").render(
        records=records, css=_css(), pack=pack, made=datetime.now(UTC).isoformat(timespec="seconds")
    )


def report(
    paths,
    out,
    *,
    db=None,
    pack: str | None = None,
    point: str = "publish",
    actor: str | None = None,
) -> dict:
    """``provkit report``: write the desk's report of ``paths`` to ``out`` (the decision
    is audited when a pack is named)."""
    records = desk_records(
        paths, db=db, pack=pack, point=point, actor=actor, thumbnails="inline", dry_run=pack is None
    )
    atomic_write(out, render_report(records, pack=pack).encode("utf-8"))
    return {
        "out": str(out),
        "files": len(records),
        "errors": sum(1 for r in records if "error" in r),
    }


# --------------------------------------------------------------------------- routes


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request):
    cfg = config(request)
    html = TEMPLATES.get_template("desk.html").render(
        public_read=cfg.public_read, packs=shipped_packs()
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.post(
    "/desk/record",
    tags=["desk"],
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "The card as HTML"}},
)
async def record_route(
    request: Request,
    file: Annotated[UploadFile, File(description="A file to check.")],
    pack: Annotated[str | None, Form(max_length=64)] = None,
    download: Annotated[bool, Form()] = False,
    caller: Caller = Read,
    work: Workdir = Upload,
):
    """The desk's card of one upload (an HTML fragment whose root carries the one-line
    answer and the decision), or with ``download`` the self-contained report. The
    decision is audited with the caller as the actor."""
    pack = pack or None
    if pack is not None and pack not in shipped_packs():
        raise ApiError(404, f"no policy pack {pack!r}")
    (path,) = await work.save([file])
    try:
        sniff_media(path)
    except BadInput as e:  # a card saying why, so a batch goes on
        rec = {"name": file.filename or "upload", "error": e.reason}
    else:
        mode = "inline" if download else thumbnails_mode(request, "url", caller)
        rec = await run_cpu_to_end(
            request,
            desk_record,
            path,
            name=file.filename,
            db=config(request).db,
            pack=pack,
            actor=caller.actor,
            thumbnails=mode,
        )
    rec = work.public(rec)
    if download:
        return Response(
            render_report([rec], pack=pack),
            media_type="text/html",
            headers={"Content-Disposition": 'attachment; filename="report.html"'},
        )
    return HTMLResponse(render_fragment(rec))


def mount_static(app) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
