"""crJSON, the C2PA JSON report format (``provkit verify --format crjson``), for every state.

The SDK writes crJSON for a manifest it can read (``Reader.crjson()``); provkit reads the
file the way :func:`provenance.verify.read_c2pa` does (a ``.c2pa`` sidecar beside it; a
remote manifest only when asked, fetched by :mod:`provenance.remote`) and, where there is
no manifest to show (absent, stored remotely and not fetched, unparseable), writes a
crJSON document of its own with an empty ``manifests`` list and the reason in
``extras:`` fields. Every document has the root fields the crJSON specification requires
(``@context``, ``manifests``, ``jsonGenerator``); tests/test_crjson.py validates them
against the subset schema in tests/data/crjson-subset.schema.json (its source is named
there).
"""

from __future__ import annotations

from pathlib import Path

from provkit.provenance.core import about, imageio
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.guard import reading
from provkit.provenance.manifest import context, new_reader
from provkit.provenance.remote import fetch_manifest, read_sidecar, sidecar_for
from provkit.provenance.trust import resolve as resolve_trust
from provkit.provenance.verify import _crjson, _is_remote_error, _remote_url_from

CRJSON_CONTEXT = {"@vocab": "https://c2pa.org/crjson", "extras": "https://c2pa.org/crjson/extras"}


def crjson_file(path, *, trust=None, fetch_remote: bool = False, ocsp: bool = False) -> dict:
    """The crJSON for one file (``provkit verify --format crjson``): the C2PA JSON report
    format validators produce for the conformance program, from the SDK, read the way
    :func:`read_c2pa` reads (a sidecar beside the file, a remote manifest only when
    asked). Every state gives a crJSON document (crJSON specification, root fields
    ``@context``, ``manifests``, ``jsonGenerator``): with no manifest to show (absent,
    stored remotely and not fetched, unparseable) ``manifests`` is empty and provkit's
    state, its failure code and the remote address are ``extras:`` fields, as in
    ``--json``. BadInput only for a file that cannot be read at all."""

    p = Path(path)
    mime = imageio.sniff_media(p)
    ctx = context(trust_anchors=resolve_trust(trust).pem(), fetch_remote=False, ocsp=ocsp)
    try:
        with reading(p, "verify"), imageio.open_regular(p) as f:
            reader, stub = _crjson_reader(p, mime, f, ctx, fetch_remote)
            if stub is not None:
                return stub
            try:
                doc = _crjson(reader)
            finally:
                reader.close()
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    if doc is None:
        raise BadInput("this c2pa-python cannot produce crJSON (Reader.crjson is missing)", path=p)
    doc.setdefault("jsonGenerator", crjson_generator())
    return doc


def crjson_generator() -> dict:
    return {"name": about.NAME, "version": about.version()}


def crjson_stub(
    p: Path,
    state: str,
    *,
    code: str | None = None,
    explanation: str | None = None,
    remote_url: str | None = None,
) -> dict:
    """A crJSON document with no manifest to show, and why (``extras:``)."""
    doc = {
        "@context": CRJSON_CONTEXT,
        "manifests": [],
        "jsonGenerator": crjson_generator(),
        "extras:path": str(p),
        "extras:state": state,
    }
    if code:
        doc["extras:failure"] = [{"code": code, "explanation": explanation or code}]
    if remote_url:
        doc["extras:remote_url"] = remote_url
    return doc


def _crjson_reader(p: Path, mime: str, f, ctx, fetch_remote: bool):
    """``(reader, None)``, or ``(None, stub)`` when there is no manifest to show."""
    import c2pa

    try:
        return new_reader(mime, f, ctx), None
    except c2pa.C2paError.ManifestNotFound:
        side = sidecar_for(p)
        if side is None:
            return None, crjson_stub(p, "absent")
        data = read_sidecar(side)
    except c2pa.C2paError as e:
        msg = str(e)
        first = msg.splitlines()[0] if msg else "unknown error"
        side = sidecar_for(p)
        if not _is_remote_error(c2pa, e):
            return None, crjson_stub(p, "invalid", code="manifest.unreadable", explanation=first)
        if side is not None:
            data = read_sidecar(side)
        else:
            f.seek(0)
            url = _remote_url_from(msg, f.read(1 << 20))
            if not fetch_remote:
                return None, crjson_stub(p, "absent", remote_url=url)
            try:
                data = fetch_manifest(url or "")
            except BadInput as err:
                return None, crjson_stub(
                    p,
                    "absent",
                    code="manifest.inaccessible",
                    explanation=err.reason,
                    remote_url=url,
                )
    f.seek(0)
    try:
        return new_reader(mime, f, ctx, manifest_data=data), None
    except c2pa.C2paError as e:
        first = str(e).splitlines()[0] if str(e) else "unknown error"
        return None, crjson_stub(p, "invalid", code="manifest.unreadable", explanation=first)
