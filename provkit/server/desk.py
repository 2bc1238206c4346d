"""The verification desk: one record per image, shown on a page and saved as a report.

:func:`desk_record` gathers, for one file, what an editor asks: who made it and is
the signature good (:func:`provenance.routes.verify_rows`), is it AI-made
(:func:`detect.routes.detect_rows`), was it seen before (:func:`detect.routes.dupes_rows`,
with the reference items' thumbnails), and may it run (:func:`policies.routes.check_rows`
under a pack), plus the thumbnails its manifests carry. :func:`render_report` turns
records into one self-contained HTML file (inline CSS, images as data URIs), the same
for ``provkit report`` and the page's "Download report".

Routes: ``GET /`` (the page), ``POST /desk/record`` (an upload's record as an HTML
fragment, or the whole report with ``download=true``), ``/static/*``.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from provkit.detect.index import ReferenceIndex
from provkit.routes.detect import detect_rows, dupes_rows
from provkit.policies.pack import shipped_packs
from provkit.routes.policies import check_rows
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.files import atomic_write
from provkit.server.http import (
    ERRORS,
    ApiError,
    Caller,
    Read,
    Upload,
    Workdir,
    config,
    run_cpu,
    run_cpu_to_end,
)
from provkit.provenance.core.imageio import load_rgb, sniff
from provkit.provenance.manifest import context
from provkit.routes.provenance import verify_rows

HERE = Path(__file__).parent
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html"]))
router = APIRouter(responses=ERRORS)

#: What a verify state means for an editor, and whether it is a warning.
STATE_WORDS = {
    "trusted": ("Credentials valid, signer trusted", False),
    "valid": ("Credentials valid, signer not on a trust list", False),
    "recovered": ("Credentials recovered from the watermark or fingerprint", False),
    "absent": ("No Content Credentials", False),
    "invalid": ("Credentials INVALID", True),
    "mismatch": ("The watermark names an issued asset, but the pixels differ from it", True),
}
VERDICT_WORDS = {"ai-generated": "AI-generated", "ai-edited": "AI-edited",
                 "camera/authentic-claimed": "Camera capture claimed", "unknown": "Origin unknown"}


# --------------------------------------------------------------------------- record


def data_uri(data: bytes | None, mime: str = "image/jpeg") -> str | None:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}" if data else None


def manifest_thumbnails(path) -> dict[str, str]:
    """Thumbnails the file's manifests carry, as data URIs keyed by manifest label
    (and ``ingredient:TITLE`` for ingredients without a manifest)."""
    import c2pa

    out: dict[str, str] = {}
    try:
        mime = sniff(path)
        with open(path, "rb") as f:
            reader = c2pa.Reader(mime, f, context=context(trust_anchors=b""))
            try:
                store = json.loads(reader.json())
                for label, m in (store.get("manifests") or {}).items():
                    _thumb(reader, m.get("thumbnail"), label, out)
                    for ing in m.get("ingredients") or []:
                        key = ing.get("active_manifest") or f"ingredient:{ing.get('title')}"
                        if key not in out:
                            _thumb(reader, ing.get("thumbnail"), key, out)
            finally:
                reader.close()
    except (c2pa.C2paError, OSError, BadInput, ValueError):
        return out
    return out


def _thumb(reader, ref, key: str, out: dict) -> None:
    import c2pa

    if not ref or not ref.get("identifier") or key in out:
        return
    buf = io.BytesIO()
    try:
        reader.resource_to_stream(ref["identifier"], buf)
    except c2pa.C2paError:
        return
    if buf.getvalue():
        out[key] = data_uri(buf.getvalue(), ref.get("format") or "image/jpeg")


def _preview(path) -> str | None:
    try:
        img = load_rgb(path)
    except BadInput:
        return None
    img.thumbnail((480, 480))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=82)
    return data_uri(buf.getvalue())


def desk_record(path, *, name: str | None = None, db=None, pack: str | None = None,
                point: str = "publish", actor: str | None = None) -> dict:
    """Everything the desk shows for one image (see the module docstring)."""
    name = name or Path(path).name
    (verify,) = verify_rows([path], db=db)
    record = {"name": name, "verify": verify}
    if "error" in verify:
        record["error"] = verify["error"]
        return record
    (detected,) = detect_rows([path], db=db)
    record["detect"] = detected
    record["dupes"] = []
    index = ReferenceIndex(db)
    try:
        if index.set_names():
            (dupes,) = dupes_rows([path], db=db)
            for m in dupes.get("matches", []):
                m["thumbnail"] = data_uri(index.thumbnail(m["item_id"]))
            record["dupes"] = dupes.get("matches", [])
    finally:
        index.db.conn.close()
    if pack:
        (decision,) = check_rows(pack, [path], point=point, actor=actor, db=db)
        record["policy"] = decision
    record["thumbnails"] = manifest_thumbnails(path)
    record["preview"] = _preview(path)
    record["summary"], record["warning"] = summary(record)
    return record


def summary(record: dict) -> tuple[str, bool]:
    """One line: what it is, decided by what, signed by whom, trusted by what."""
    c2pa = record["verify"].get("c2pa", {})
    det = record.get("detect") or {}
    state_words, warning = STATE_WORDS.get(c2pa.get("state"), (c2pa.get("state"), False))
    causes = c2pa.get("causes") or []
    if causes:  # why they fail, in the words verify and check use (provenance.causes)
        why = "; ".join(c.get("phrase") or c["cause"] for c in causes)
        state_words += (": " if c2pa.get("state") == "invalid" else "; ") + why
        record["cause"] = c2pa.get("cause")
    parts = [VERDICT_WORDS.get(det.get("verdict"), det.get("verdict") or "unknown")]
    decided = det.get("decided_by") or []
    if decided:
        detail = ""
        for e in det.get("evidence", []):
            if e.get("kind") == decided[0] and e.get("finding"):
                detail = f": {e['finding']}"
                break
        parts[0] += f" (decided by {', '.join(decided)}{detail})"
    signer = c2pa.get("signer") or {}
    if signer.get("common_name"):
        who = signer["common_name"] + (f" ({signer['organization']})"
                                       if signer.get("organization") else "")
        parts.append(f"signed by {who}")
        trust = signer.get("trust_source")
        parts.append(f"trusted: {trust}" if trust else
                     ("trusted" if c2pa.get("state") == "trusted" else "signer not trusted"))
    parts.append(state_words)
    if record.get("dupes"):
        parts.append(f"{len(record['dupes'])} near-duplicate(s) on file")
    policy = record.get("policy")
    if policy and policy.get("outcome"):
        parts.append(f"policy {policy.get('pack')}: {policy['outcome'].upper()}")
        warning = warning or policy["outcome"] == "deny"
    return " — ".join(parts), warning


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
    return TEMPLATES.get_template("record.html").render(r=record)


def render_report(records: list[dict], *, pack: str | None = None) -> str:
    """A self-contained HTML report (no external files) of these records."""
    return TEMPLATES.get_template("report.html").render(
        records=records, css=_css(), pack=pack,
        made=datetime.now(UTC).isoformat(timespec="seconds"))


def report(paths, out, *, db=None, pack: str | None = None, point: str = "publish",
           actor: str | None = None) -> dict:
    """``provkit report``: write the desk's report of ``paths`` to ``out``."""
    records = desk_records(paths, db=db, pack=pack, point=point, actor=actor)
    atomic_write(out, render_report(records, pack=pack).encode("utf-8"))
    return {"out": str(out), "files": len(records),
            "errors": sum(1 for r in records if "error" in r)}


# --------------------------------------------------------------------------- routes


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request):
    cfg = config(request)
    html = TEMPLATES.get_template("desk.html").render(
        public_read=cfg.public_read, packs=shipped_packs())
    return HTMLResponse(html)


@router.post("/desk/record", tags=["desk"], response_class=HTMLResponse,
             responses={200: {"content": {"text/html": {}},
                              "description": "The record as HTML"}})
async def record_route(request: Request,
                       file: Annotated[UploadFile, File(description="An image.")],
                       pack: Annotated[str | None, Form(max_length=64)] = None,
                       download: Annotated[bool, Form()] = False,
                       caller: Caller = Read,
                       work: Workdir = Upload):
    """The desk's record of one upload: an HTML fragment, or with ``download`` the
    self-contained report file. The policy decision (with ``pack``) is audited."""
    if pack == "":
        pack = None
    if pack is not None and pack not in shipped_packs():
        raise ApiError(404, f"no policy pack {pack!r}")
    (path,) = await work.save([file])
    sniff(path)  # not an image: a 422 naming the cause, before any work
    run = run_cpu if pack is None else run_cpu_to_end  # a decision is audited: it finishes
    rec = await run(request, desk_record, path, name=file.filename, db=config(request).db,
                    pack=pack, actor=caller.actor)
    rec = work.public(rec)
    if download:
        return Response(render_report([rec], pack=pack), media_type="text/html",
                        headers={"Content-Disposition": 'attachment; filename="report.html"'})
    return HTMLResponse(render_fragment(rec))


def mount_static(app) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
