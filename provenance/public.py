"""The answer of the free public AI detection endpoint (California SB 942).

:func:`public_detect` reads one image (its C2PA credentials, recovered through the
watermark from the ledger when stripped; its GB 45438 implicit label) and says whether it
carries a recognised AI disclosure, with the provider, system and version, time and id.
It reads only: nothing about the caller or the file is kept or recorded. The HTTP shell
is provkit/routes/public.py (``provkit serve --public-detection``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from provkit.provenance import tc260
from provkit.provenance.comply import AI_TYPES, SIGNED
from provkit.provenance.core import imageio
from provkit.provenance.verify import verify_file


@dataclass(frozen=True)
class PublicAnswer:
    """What SB 942's free detection tool reports for one image: whether it carries a
    recognised AI disclosure, and the provenance data (provider, system and version,
    time, id), from the file's own manifest or resolved from its watermark through the
    ledger when the metadata was stripped. Nothing about the caller or the file name."""

    disclosure: bool
    ai_generated: bool | None
    provider: str | None = None
    system: str | None = None
    version: str | None = None
    time: str | None = None
    id: str | None = None
    resolved_by: str | None = None
    credentials: str = "absent"
    tc260: dict | None = None
    watermark: dict | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["notes"] = list(self.notes)
        return d


def public_detect(path, *, db=None, trust=None) -> PublicAnswer:
    """``POST /public/v1/detect``: the SB 942 answer for one image (see
    :class:`PublicAnswer`). Reads only; keeps and records nothing."""
    report = verify_file(path, db=db, trust=trust)
    c = report.to_json()["c2pa"]
    state = c.get("state") or "absent"
    found = c.get("disclosure") or {}
    sb = found.get("sb942") if isinstance(found.get("sb942"), dict) else None
    block = found.get("tc260")
    mark = c.get("watermark")
    notes: list[str] = []
    fields: dict = {}
    resolved = None
    usable = state in SIGNED or (
        state == "recovered" and (c.get("recovered_manifest") or {}).get("state") in SIGNED
    )
    if sb and usable:
        fields = {
            "provider": sb.get("provider"),
            "system": sb.get("system"),
            "version": sb.get("system_version"),
            "time": sb.get("time"),
            "id": sb.get("id"),
        }
        resolved = (
            ("the watermark, through the provider's ledger (the file's metadata was stripped)")
            if state == "recovered"
            else "the file's C2PA manifest"
        )
        notes.append("The SB 942 latent disclosure was read from " + resolved + ".")
    elif usable:
        created = next((a for a in c.get("actions") or [] if a.get("digital_source_type")), {})
        signer = c.get("signer") or {}
        fields = {
            "provider": signer.get("organization") or signer.get("common_name"),
            "system": created.get("software_agent"),
            "version": None,
            "time": signer.get("time"),
            "id": c.get("asset_id"),
        }
        resolved = "the C2PA manifest (no SB 942 assertion; read from its signer and actions)"
        notes.append(
            "No SB 942 assertion; the provider and system are the C2PA signer and software agent."
        )
    elif state == "invalid":
        notes.append(
            "A C2PA manifest is present but does not validate; nothing it says is reported."
        )
    elif state == "mismatch":
        fields = {"id": c.get("asset_id")}
        resolved = "the watermark (the picture differs from what was issued)"
        notes.append(
            "The watermark names an issued asset, but this picture differs from it: "
            "only the id is reported."
        )
    dst = c.get("digital_source_type") if usable else None
    tc_ok = isinstance(block, dict) and block.get("well_formed")
    if tc_ok:
        f = block.get("fields") or {}
        notes.append(
            f"Implicit AI label (GB 45438): producer {f.get('ContentProducer')}, id "
            f"{f.get('ProduceID')}, Label {f.get('Label')} (unsigned metadata)."
        )
        fields.setdefault("id", f.get("ProduceID"))
    third = (mark or {}).get("third_party")
    if third:
        notes.append(f"{third} found in the pixels.")
    iptc = None if usable else _iptc_source_type(path)
    if iptc in AI_TYPES:
        notes.append(
            f"Its XMP metadata declares the IPTC digital source type {iptc} (unsigned metadata)."
        )
    ai = (
        True
        if (
            dst in AI_TYPES
            or (tc_ok and str((block.get("fields") or {}).get("Label")) == "1")
            or third
            or (sb and usable)
            or iptc in AI_TYPES
        )
        else None
    )
    present = bool((sb and usable) or dst in AI_TYPES or tc_ok or third or iptc in AI_TYPES)
    if not present and not notes:
        notes.append(
            "No recognised AI disclosure: no C2PA manifest, no GB 45438 label, no "
            "watermark this service resolves. That is no proof the image was not "
            "AI-generated."
        )
    wm = None
    if mark:
        wm = {
            "found": True,
            "scheme": mark.get("scheme"),
            "payload": mark.get("payload"),
            "third_party": third,
        }
    return PublicAnswer(
        disclosure=present,
        ai_generated=ai,
        resolved_by=resolved,
        credentials=state,
        tc260=block if isinstance(block, dict) else None,
        watermark=wm,
        notes=tuple(notes),
        **{k: fields.get(k) for k in ("provider", "system", "version", "time", "id")},
    )


#: the XMP of a file's head that is searched for an IPTC digital source type
_HEAD = 16 << 20
_DST = re.compile(rb"digitalsourcetype/([A-Za-z]+)")


def _iptc_source_type(path) -> str | None:
    """The IPTC digital source type a JPEG, PNG or WebP file's XMP declares (any writer)."""
    p = Path(path)
    mime = imageio.sniff_media(p)
    if mime not in ("image/jpeg", "image/png", "image/webp"):
        return None
    for packet in tc260.xmp_packets(imageio.read_head(p, _HEAD), mime):
        m = _DST.search(packet)
        if m:
            return m.group(1).decode()
    return None
