"""Disclosure evidence: the AI labels the laws ask for, read as evidence with words.

- ``tc260``: the GB 45438 implicit label, the ``TC260:AIGC`` XMP property of any
  producer (read by the metadata collector, without decoding pixels). Unsigned metadata,
  as strong as an XMP digital source type: Label 1 is a producer's declaration that the
  content is AI-generated; Labels 2 and 3 ("possibly", "suspected") weigh little.
- ``sb942``: the SB 942 latent disclosure (provider, system and version, time, id) in the
  C2PA manifest, embedded or recovered from the ledger through the watermark.
- ``visible-label``: the record of explicit labels drawn into the pixels before sealing.

The C2PA items weigh what the manifest they sit in weighs: nothing when it is invalid.
"""

from __future__ import annotations

from provkit.detect.evidence.base import AI_GENERATED, BaseCollector, Evidence, FileContext, Found
from provkit.provenance import disclosure as disclosure_lib
from provkit.provenance.tc260 import LABELS

#: the C2PA states whose assertions count, and the strength they give
_C2PA_STRENGTH = {"trusted": "strong", "valid": "moderate", "recovered": "strong"}


class DisclosureCollector(BaseCollector):
    """``found["disclosure"]``: the policy context's ``asset.disclosure``."""

    name = "disclosure"
    columns = ()  # scan's CSV keeps its columns; the JSON rows carry these items
    pixels = False

    def collect(self, ctx: FileContext) -> Found:
        items, data = disclosure_evidence(ctx.found.get("metadata"), ctx.found.get("c2pa"))
        return Found(items, data)

    def report_json(self, data) -> dict:
        return {"disclosure": data or None}  # the key always there: rows keep one shape

    def context(self, data) -> dict:
        return {"disclosure": data}


def disclosure_evidence(metadata: dict | None, c2pa: dict | None) -> tuple[list[Evidence], dict]:
    """Evidence items and ``asset.disclosure`` from the metadata and C2PA collectors' data."""
    items: list[Evidence] = []
    data = {
        "tc260": {"present": False},
        "sb942": {"present": False},
        "visible_label": {"present": False, "regimes": [], "meets_gb_size": False},
    }
    block = (metadata or {}).get("tc260")
    if block:
        items.append(_tc260_item(block))
        f = block.get("fields") or {}
        data["tc260"] = {
            "present": True,
            "label": f.get("Label"),
            "producer": f.get("ContentProducer") or None,
            "produce_id": f.get("ProduceID") or None,
            "propagator": f.get("ContentPropagator") or None,
            "propagate_id": f.get("PropagateID") or None,
            "well_formed": bool(block.get("well_formed")),
        }
    c2pa = c2pa or {}
    state = c2pa.get("state") or "absent"
    found = c2pa.get("disclosure") or {}
    if found.get("sb942") is not None:
        sb = found["sb942"] if isinstance(found["sb942"], dict) else {}
        problems = disclosure_lib.sb942_problems(sb)
        data["sb942"] = {
            "present": True,
            "complete": not problems,
            "provider": sb.get("provider"),
            "system": sb.get("system"),
            "version": sb.get("system_version"),
            "time": sb.get("time"),
            "id": sb.get("id"),
        }
        items.append(_sb942_item(sb, problems, state))
    visible = found.get("visible_labels")
    if isinstance(visible, dict) and visible.get("labels"):
        labels = [x for x in visible["labels"] if isinstance(x, dict)]
        size = visible.get("image_size")
        size = tuple(size) if isinstance(size, list) and len(size) == 2 else None
        meets = any(x.get("regime") == "cn" and disclosure_lib.gb_size_ok(x, size) for x in labels)
        data["visible_label"] = {
            "present": state in _C2PA_STRENGTH,
            "regimes": sorted({str(x.get("regime")) for x in labels}),
            "meets_gb_size": meets and state in _C2PA_STRENGTH,
        }
        items.append(_visible_item(labels, meets, state))
    return items, data


def _tc260_item(block: dict) -> Evidence:
    f = block.get("fields") or {}
    producer, pid = f.get("ContentProducer") or "unnamed", f.get("ProduceID") or "none"
    words = f"implicit AI label (GB 45438): producer {producer}, id {pid}"
    if f.get("ContentPropagator"):
        words += f", propagated by {f['ContentPropagator']} (id {f.get('PropagateID') or 'none'})"
    if not block.get("well_formed"):
        why = "; ".join(block.get("problems") or []) or "malformed"
        return Evidence(
            "tc260",
            "malformed",
            "none",
            f"A TC260 AIGC block is present but malformed ({why}); {words}.",
            {"fields": f},
        )
    label = str(f.get("Label"))
    meaning = LABELS.get(label, label)
    strength = "strong" if label == "1" else "weak"
    return Evidence(
        "tc260",
        AI_GENERATED,
        strength,
        f"{words[0].upper()}{words[1:]}: Label {label} ({meaning}). Unsigned "
        "metadata: anyone can write or strip it.",
        {"fields": f},
    )


def _sb942_item(sb: dict, problems: list[str], state: str) -> Evidence:
    words = (
        f"latent AI disclosure (California SB 942): provider {sb.get('provider') or '?'}, "
        f"system {sb.get('system') or '?'} {sb.get('system_version') or ''}".rstrip()
        + f", made {sb.get('time') or '?'}, id {sb.get('id') or '?'}"
    )
    where = (
        "recovered from the ledger through the watermark"
        if state == "recovered"
        else f"in a {state} C2PA manifest"
    )
    if state not in _C2PA_STRENGTH:
        return Evidence(
            "sb942",
            "invalid",
            "none",
            f"A {words} is {where}; an invalid manifest cannot be relied on.",
            {"sb942": sb, "state": state},
        )
    if problems:
        return Evidence(
            "sb942",
            "incomplete",
            "none",
            f"A {words} is {where}, but incomplete ({'; '.join(problems)}).",
            {"sb942": sb, "state": state, "problems": problems},
        )
    return Evidence(
        "sb942",
        AI_GENERATED,
        _C2PA_STRENGTH[state],
        f"A {words}, {where}.",
        {"sb942": sb, "state": state},
    )


def _visible_item(labels: list[dict], meets: bool, state: str) -> Evidence:
    texts = ", ".join(
        f"{x.get('text')!r} ({x.get('regime')}, {x.get('position')}, {x.get('text_height_px')} px)"
        for x in labels
    )
    size = " meeting the GB 45438 minimum size" if meets else ""
    if state not in _C2PA_STRENGTH:
        return Evidence(
            "visible-label",
            "invalid",
            "none",
            f"The manifest records visible AI labels ({texts}), but it is "
            f"{state}: the record cannot be relied on.",
            {"labels": labels},
        )
    return Evidence(
        "visible-label",
        AI_GENERATED,
        _C2PA_STRENGTH[state],
        f"Visible AI labels were drawn into the pixels before sealing{size}: "
        f"{texts} (recorded in the {state} manifest; the pixels themselves are "
        "not inspected).",
        {"labels": labels},
    )
