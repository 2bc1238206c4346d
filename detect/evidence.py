"""Evidence items: one typed, independent finding each, with a strength and a sentence.

Every collector returns :class:`Evidence` values and never raises for a capability
that is missing or broken: that becomes an item with finding ``"not checked"`` and
the reason, so a report never passes silently over something it did not look at.

Strengths, weakest first: ``none`` (a note), ``weak``, ``moderate``, ``strong``,
``decisive``. Findings that point to a verdict: ``ai-generated``, ``ai-edited`` and
``capture-claimed``; every other finding is context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detect.metadata import (
    AI_EDITED_TYPES,
    AI_GENERATED_TYPES,
    ALGORITHMIC_TYPES,
    CAPTURE_TYPES,
    SYNTHETIC_TYPES,
    Metadata,
    read_metadata,
)
from provenance.core.errors import describe

STRENGTHS = ("none", "weak", "moderate", "strong", "decisive")
NOT_CHECKED = "not checked"
AI_GENERATED, AI_EDITED, CAPTURE = "ai-generated", "ai-edited", "capture-claimed"


@dataclass(frozen=True)
class Evidence:
    """One finding: what was looked at (kind), what it says, how much it weighs, why."""

    kind: str
    finding: str
    strength: str
    detail: str
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.strength not in STRENGTHS:
            raise ValueError(f"unknown strength {self.strength!r}")

    @property
    def rank(self) -> int:
        return STRENGTHS.index(self.strength)

    def to_json(self) -> dict:
        return {"kind": self.kind, "finding": self.finding, "strength": self.strength,
                "detail": self.detail, "data": self.data}


def not_checked(kind: str, reason: str, **data) -> Evidence:
    return Evidence(kind, NOT_CHECKED, "none", f"Not checked: {reason}", data)


# -- C2PA ------------------------------------------------------------------------------


def c2pa_evidence(path, *, trust_anchors=None, db=None, image=None,
                  trust_local: bool = True) -> tuple[Evidence, dict | None]:
    """The C2PA state via provenance.verify; returns the item and the raw ``c2pa`` dict.

    ``image``: the file already decoded (recovery of stripped credentials then does not
    decode it again).

    BadInput (unreadable file) propagates: the caller reports the file as an error.
    """
    try:
        from provenance.verify import verify_file
    except ImportError as e:
        return not_checked("c2pa", f"the C2PA verifier is unavailable ({e})"), None
    from provenance.core.errors import BadInput

    try:
        report = verify_file(path, trust_anchors=trust_anchors, db=db, image=image,
                             trust_local=trust_local)
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001  # a verifier failure is reported, never a silent pass
        why = f"C2PA verification failed ({describe(e, with_path=False)})"
        return not_checked("c2pa", why), None
    c2pa = report.to_json()["c2pa"]
    return classify_c2pa(c2pa), c2pa


def _signer_name(c2pa: dict) -> str:
    signer = c2pa.get("signer") or {}
    if isinstance(signer, dict):
        return (signer.get("common_name") or signer.get("organization") or signer.get("name")
                or "an unnamed signer")
    return str(signer)


def classify_c2pa(c2pa: dict) -> Evidence:
    """Turn a verify report's ``c2pa`` part into one evidence item (the rule in docs/detect.md)."""
    state = c2pa.get("state", "absent")
    dst = c2pa.get("digital_source_type")
    action_types = {a.get("digital_source_type") for a in c2pa.get("actions") or []
                    if isinstance(a, dict)} - {None}
    ai_actions = action_types & (AI_GENERATED_TYPES | AI_EDITED_TYPES)
    data = {"state": state, "digital_source_type": dst, "signer": c2pa.get("signer")}
    who = _signer_name(c2pa)
    if state == "absent":
        return Evidence("c2pa", "absent", "none",
                        "No C2PA manifest (Content Credentials) in the file or the ledger.", data)
    if dst in AI_GENERATED_TYPES or dst in ALGORITHMIC_TYPES:
        finding = AI_GENERATED
    elif dst in AI_EDITED_TYPES or ai_actions:
        finding = AI_EDITED
    elif dst in CAPTURE_TYPES:
        finding = CAPTURE
    else:
        finding = None
    problems = "; ".join(c2pa.get("explanation") or c2pa.get("failures") or []) or "a check failed"
    if state == "invalid":
        if finding in (AI_GENERATED, AI_EDITED):
            return Evidence("c2pa", finding, "weak",
                            f"The C2PA manifest is invalid ({problems}); it claims {dst}, "
                            "but an invalid manifest cannot be relied on.", data)
        return Evidence("c2pa", "invalid", "none",
                        f"The C2PA manifest is invalid ({problems}); nothing it claims can be "
                        "relied on, and it is no sign of authenticity.", data)
    how = {"trusted": f"signed by {who}, a trusted signer",
           "valid": f"validly signed by {who} (signer not on your trust list)",
           "recovered": "recovered from this workspace's ledger (the file itself carries none)"
           }.get(state, state)
    if finding == AI_GENERATED:
        strength = "strong" if state == "recovered" else "decisive"
        if dst in ALGORITHMIC_TYPES:
            return Evidence("c2pa", finding, strength,
                            f"The C2PA manifest, {how}, declares the image generated by an "
                            f"algorithm ({dst}: no trained model declared); counted as generated, "
                            "not captured.", data)
        return Evidence("c2pa", finding, strength,
                        f"The C2PA manifest, {how}, declares the image AI-generated ({dst}).", data)
    if finding == AI_EDITED:
        what = dst if dst in AI_EDITED_TYPES else f"an AI step in its actions ({', '.join(sorted(ai_actions))})"
        strength = "strong" if state == "recovered" else "decisive"
        return Evidence("c2pa", finding, strength,
                        f"The C2PA manifest, {how}, records AI editing: {what}.", data)
    if finding == CAPTURE:
        strength = {"trusted": "decisive", "recovered": "moderate"}.get(state, "weak")
        if state == "recovered" and (c2pa.get("recovered_manifest") or {}).get("state") == "trusted":
            strength = "decisive"  # the ledger's own trusted record, matched by the pixels
        return Evidence("c2pa", finding, strength,
                        f"The C2PA manifest, {how}, claims a capture ({dst}) with no AI step "
                        "recorded. This is the signer's claim, not a check of the pixels.", data)
    kind_note = f"source type {dst}" if dst else "no digital source type"
    if dst in SYNTHETIC_TYPES:
        kind_note += " (synthetic, not declared as AI)"
    return Evidence("c2pa", "signed", "none",
                    f"The C2PA manifest, {how}, states {kind_note}.", data)


# -- metadata --------------------------------------------------------------------------


def metadata_evidence(path) -> tuple[list[Evidence], Metadata | None]:
    """XMP source type and generator marks. BadInput propagates (unreadable file)."""
    meta = read_metadata(path)
    items = []
    dst = meta.digital_source_type
    if dst in AI_GENERATED_TYPES or dst in ALGORITHMIC_TYPES:
        items.append(Evidence("xmp", AI_GENERATED, "strong",
                              f"XMP metadata declares the digital source type {dst} "
                              "(unsigned metadata, but written by generators, rarely forged).",
                              {"digital_source_type": dst}))
    elif dst in AI_EDITED_TYPES:
        items.append(Evidence("xmp", AI_EDITED, "strong",
                              f"XMP metadata declares the digital source type {dst}.",
                              {"digital_source_type": dst}))
    elif dst:
        items.append(Evidence("xmp", "source-type", "none",
                              f"XMP metadata declares the digital source type {dst}; "
                              "unsigned, so it is no proof of how the image was made.",
                              {"digital_source_type": dst}))
    else:
        items.append(Evidence("xmp", "absent", "none",
                              "No IPTC digital source type in XMP metadata." if meta.xmp
                              else "No XMP metadata.", {}))
    if meta.generator:
        detail = f"{meta.generator} generator metadata found in {meta.generator_source}"
        if meta.generator_detail and meta.generator_detail != meta.generator:
            detail += f": {meta.generator_detail!r}"
        items.append(Evidence("generator-metadata", AI_GENERATED, "strong", detail + ".",
                              {"generator": meta.generator, "source": meta.generator_source}))
    else:
        note = "No generator metadata (PNG text chunks, EXIF Software, XMP CreatorTool)."
        if meta.camera:
            note += f" EXIF names a camera ({meta.camera}); that is unsigned and proves nothing."
        items.append(Evidence("generator-metadata", "absent", "none", note,
                              {"software": meta.software, "camera": meta.camera}))
    return items, meta


# -- watermarks ------------------------------------------------------------------------


def watermark_evidence(image, c2pa: dict | None = None) -> tuple[list[Evidence], dict]:
    """provkit's watermark and third-party generator marks (Stable Diffusion XL).

    Returns the items and the policy-context ``watermark`` dict.
    """
    summary = {"found": False, "scheme": None, "payload": None, "third_party": None,
               "asset_id": None}
    try:
        from provenance import watermark as wm

        decode, third_party_marks = wm.decode, wm.third_party_marks
    except (ImportError, AttributeError) as e:
        reason = f"the watermark decoder is unavailable ({e})"
        return [not_checked("watermark", reason), not_checked("third-party-watermark", reason)], summary
    items = []
    try:
        if c2pa and c2pa.get("state") in ("absent", "recovered") and "watermark" in c2pa:
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
    from provenance.watermark import Decoded

    conf = mark.get("confidence")
    return Decoded(bytes.fromhex(mark["payload"]), float("nan") if conf is None else conf,
                   mark.get("scheme") or "provkit", None)


# -- classifier ------------------------------------------------------------------------


def classifier_evidence(probability: float, probe, threshold: float = 0.8) -> Evidence:
    """One item from a calibrated probe probability."""
    metrics = probe.metrics or {}
    auc = metrics.get("heldout_auc")
    quality = f" (probe held-out AUC {auc:.3f})" if isinstance(auc, (int, float)) else ""
    data = {"probability": float(probability), "threshold": threshold,
            "clip_model_id": probe.clip_model_id, "heldout_auc": auc}
    if probability >= threshold:
        return Evidence("classifier", AI_GENERATED, "moderate",
                        f"The CLIP classifier gives probability {probability:.2f} that the image "
                        f"is AI-generated{quality}.", data)
    if probability <= 1 - threshold:
        return Evidence("classifier", "no-ai-signal", "none",
                        f"The CLIP classifier gives probability {probability:.2f} of AI{quality}; "
                        "a classifier cannot show that an image is authentic.", data)
    return Evidence("classifier", "inconclusive", "weak",
                    f"The CLIP classifier is unsure: probability {probability:.2f} of AI{quality}.",
                    data)


# -- near-duplicates -------------------------------------------------------------------


def duplicates_evidence(matches: list, clip_not_checked: dict | None = None) -> Evidence:
    """The near-duplicate item; ``clip_not_checked`` (set -> reason) names sets whose
    CLIP similarity could not be checked, so a hash-only search is never passed off as
    a full one."""
    rows = [m.to_json() if hasattr(m, "to_json") else dict(m) for m in matches]
    unchecked = dict(clip_not_checked or {})
    note = "".join(f" CLIP similarity not checked for set {name}: {why}."
                   for name, why in sorted(unchecked.items()))
    extra = {"clip_not_checked": unchecked} if unchecked else {}
    if not rows:
        return Evidence("duplicates", "no match", "none",
                        "No near-duplicate in the reference sets searched." + note,
                        {"count": 0, **extra})
    sets = sorted({str(r.get("set")) for r in rows})
    protected = sorted({str(r.get("set")) for r in rows if r.get("protected")})
    detail = f"{len(rows)} near-duplicate(s) in reference set(s) {', '.join(sets)}"
    if protected:
        detail += f"; protected set(s): {', '.join(protected)}"
    return Evidence("duplicates", "match", "none", detail + "." + note,
                    {"count": len(rows), "sets": sets, "protected": protected, **extra})
