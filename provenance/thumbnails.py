"""The thumbnails a manifest store carries, and how a verify answer refers to them.

A report names each thumbnail by reference (``{"format", "identifier"}``: the JUMBF
URI inside the file), on the active manifest, on each ingredient node and on the
thumbnail hint. The pictures themselves are added only when a caller asks:

- ``thumbnails="inline"``: each reference gets ``data``, a ``data:`` URI (``provkit
  verify --json --thumbnails``, the self-contained report);
- ``thumbnails=keep``, a callable ``keep(data: bytes, mime: str) -> str``: each gets
  ``url``, whatever ``keep`` answers (the server keeps the bytes for a while under an
  unguessable handle and answers its address; see :mod:`provkit.server.thumbnails`);
- ``None`` (the default): references only, so an answer stays small.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace

from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.imageio import sniff_media
from provkit.provenance.manifest import context, new_reader, resource_bytes

#: Most thumbnails read from one file, and the largest one kept (bytes).
MAX_THUMBNAILS = 64
MAX_THUMBNAIL_BYTES = 2 << 20

Mode = str | Callable[[bytes, str], str] | None


def _refs(store: dict) -> dict[str, str]:
    """identifier -> format of every thumbnail the store's manifests and ingredients name."""
    out: dict[str, str] = {}
    for m in (store.get("manifests") or {}).values():
        for ref in [m.get("thumbnail")] + [i.get("thumbnail") for i in m.get("ingredients") or []]:
            if isinstance(ref, dict) and isinstance(ref.get("identifier"), str):
                out.setdefault(ref["identifier"], str(ref.get("format") or "image/jpeg"))
            if len(out) >= MAX_THUMBNAILS:
                return out
    return out


def collect(reader, store: dict) -> dict[str, tuple[bytes, str]]:
    """``identifier -> (bytes, mime)`` for the thumbnails of an open c2pa ``Reader``
    (a resource the SDK cannot give, or an oversized one, is left out)."""
    found = {}
    for identifier, mime in _refs(store).items():
        data = resource_bytes(reader, identifier)
        if data and len(data) <= MAX_THUMBNAIL_BYTES and mime.startswith("image/"):
            found[identifier] = (data, mime)
    return found


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def fill(c2pa: dict, found: dict[str, tuple[bytes, str]], mode: Mode) -> dict:
    """A verify answer's ``c2pa`` part with ``data`` or ``url`` on each thumbnail
    reference whose picture is in ``found`` (the thumbnail, every ingredient node, the
    thumbnail hint)."""
    if not mode or not found:
        return c2pa
    made: dict[str, dict] = {}

    def one(ref):
        if not isinstance(ref, dict) or ref.get("identifier") not in found:
            return ref
        identifier = ref["identifier"]
        if identifier not in made:
            data, mime = found[identifier]
            if mode == "inline":
                made[identifier] = {"data": data_uri(data, mime)}
            else:
                url = mode(data, mime)
                made[identifier] = {"url": url} if url else {}
        return {**ref, **made[identifier]}

    def walk(nodes):
        out = []
        for node in nodes or []:
            if isinstance(node, dict) and "thumbnail" in node:
                node = {
                    **node,
                    "thumbnail": one(node["thumbnail"]),
                    "ingredients": walk(node.get("ingredients")),
                }
            out.append(node)
        return out

    thumbnail = one(c2pa.get("thumbnail"))
    out = {**c2pa, "thumbnail": thumbnail, "ingredients": walk(c2pa.get("ingredients"))}
    check = c2pa.get("thumbnail_check")
    if check and isinstance(thumbnail, dict):
        out["thumbnail_check"] = {
            **check,
            **{k: thumbnail[k] for k in ("data", "url") if k in thumbnail},
        }
    return out


def attach(report, found: dict[str, tuple[bytes, str]], mode: Mode):
    """:func:`fill` on a :class:`~provenance.report.VerifyReport`."""
    if not mode or not found:
        return report
    filled = fill(
        {
            "thumbnail": report.thumbnail,
            "ingredients": report.ingredients,
            "thumbnail_check": report.thumbnail_check,
        },
        found,
        mode,
    )
    return replace(
        report,
        thumbnail=filled["thumbnail"],
        ingredients=filled["ingredients"],
        thumbnail_check=filled["thumbnail_check"],
    )


def of_file(path) -> dict[str, tuple[bytes, str]]:
    """The thumbnails a file's manifest store carries (:func:`collect`); empty for a file
    without one or one the SDK cannot read. Opens no connection."""
    import c2pa

    try:
        mime = sniff_media(path)
        with open(path, "rb") as f:
            reader = new_reader(mime, f, context(trust_anchors=b""))
            try:
                return collect(reader, json.loads(reader.json()))
            finally:
                reader.close()
    except (c2pa.C2paError, OSError, BadInput, ValueError):
        return {}
