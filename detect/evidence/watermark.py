"""Watermark evidence: provkit's own mark (checked against the file's C2PA asset id) and
marks image generators leave (the Stable Diffusion XL mark)."""

from __future__ import annotations

from provkit.detect.evidence.base import (
    AI_GENERATED,
    BaseCollector,
    Evidence,
    FileContext,
    Found,
    finding_of,
    not_checked,
)
from provkit.provenance import watermark as wm
from provkit.provenance.core.errors import describe
from provkit.provenance.watermark import Decoded


class WatermarkCollector(BaseCollector):
    """``found["watermark"]``: the policy context's ``watermark`` summary (and asset id).
    Runs after the C2PA collector, whose recovery may already have read the mark."""

    name = "watermark"
    columns = (("watermark", finding_of("watermark")),
               ("third_party_watermark", finding_of("third-party-watermark")))

    def collect(self, ctx: FileContext) -> Found:
        items, summary = watermark_evidence(ctx.image, ctx.found.get("c2pa"))
        return Found(items, summary)

    def context(self, data) -> dict:
        data = data or {}
        return {"asset_id": data.get("asset_id"), "watermark": data}


def watermark_evidence(image, c2pa: dict | None = None) -> tuple[list[Evidence], dict]:
    """provkit's watermark and third-party generator marks (Stable Diffusion XL).

    Returns the items and the policy-context ``watermark`` dict.
    """
    summary = {"found": False, "scheme": None, "payload": None, "third_party": None,
               "asset_id": None}
    decode, third_party_marks = wm.decode, wm.third_party_marks
    items = []
    try:
        if c2pa and c2pa.get("state") in ("absent", "recovered", "mismatch") and \
                "watermark" in c2pa:
            mark = _from_report(c2pa["watermark"])  # recovery already read the pixels
        else:
            mark = decode(image)
    except Exception as e:  # noqa: BLE001
        items.append(not_checked("watermark", f"decoding failed ({describe(e, with_path=False)})"))
        mark = None
    else:
        if mark is None:
            items.append(Evidence("watermark", "none", "none",
                                  "No provkit watermark found (its absence proves nothing).", {}))
    if mark is not None:
        payload = mark.payload.hex() if isinstance(mark.payload, bytes) else str(mark.payload)
        summary.update(found=True, scheme=mark.scheme, payload=payload, asset_id=payload)
        state = (c2pa or {}).get("state")
        bound_id = (c2pa or {}).get("asset_id")
        detail = (f"provkit watermark found: asset id {payload} "
                  f"(confidence {float(mark.confidence):.2f}). ")
        if state == "recovered":
            detail += "Its ledger record is reported under c2pa."
        elif state == "mismatch":
            detail += ("Its ledger record does not match these pixels: the image was changed "
                       "after it was issued (reported under c2pa).")
        elif ((c2pa or {}).get("relation") or {}).get("class") == "not-this-asset":
            detail += ("Its asset is in this workspace's ledger, but these pixels are not that "
                       "asset's: anyone can write this mark, so it identifies nothing here.")
        elif state in ("valid", "trusted", "invalid") and bound_id == payload:
            detail += "It matches the asset id of this file's own C2PA manifest (soft binding)."
        elif state in ("valid", "trusted", "invalid") and bound_id:
            detail += (f"It does NOT match this file's C2PA manifest (asset id {bound_id}): "
                       "the credentials may have been moved from another image.")
        else:
            detail += ("This workspace's ledger has no record of it, so whether the image was "
                       "generated or only signed by that provkit workspace is unknown.")
        items.append(Evidence("watermark", "provkit-mark", "moderate", detail,
                              {"asset_id": payload, "scheme": mark.scheme,
                               "confidence": float(mark.confidence)}))
    try:
        marks = list(third_party_marks(image))
    except Exception as e:  # noqa: BLE001
        items.append(not_checked("third-party-watermark", f"decoding failed ({describe(e, with_path=False)})"))
        return items, summary
    if marks:
        names = ", ".join(sorted({str(m.third_party or m.scheme) for m in marks}))
        if summary["third_party"] is None:
            summary["third_party"] = names
            if not summary["found"]:
                summary.update(found=True, scheme=marks[0].scheme,
                               payload=marks[0].payload.hex()
                               if isinstance(marks[0].payload, bytes) else str(marks[0].payload))
        items.append(Evidence("third-party-watermark", AI_GENERATED, "strong",
                              f"Invisible watermark of an image generator found: {names} "
                              f"(confidence {max(float(m.confidence) for m in marks):.2f}).",
                              {"marks": [m.to_json() for m in marks]}))
    else:
        items.append(Evidence("third-party-watermark", "none", "none",
                              "No Stable Diffusion / SDXL watermark found (most generators add "
                              "none, and resizing or cropping removes it).", {}))
    return items, summary


def _from_report(mark: dict | None):
    """The Decoded value a verify report carries as JSON (None: no provkit mark)."""
    if not mark or mark.get("third_party"):
        return None
    conf = mark.get("confidence")
    return Decoded(bytes.fromhex(mark["payload"]), float("nan") if conf is None else conf,
                   mark.get("scheme") or "provkit", None)
