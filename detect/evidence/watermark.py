"""Watermark evidence: provkit's own mark (checked against the file's C2PA asset id) and
marks image generators leave (the Stable Diffusion XL mark).

The two readers are the most expensive evidence there is (docs/detect.md, cost table), so
unless ``Options.all_evidence`` is set each is skipped where its result cannot change the
verdict or the items that decided it (:func:`skip_reasons`); a skipped reader gives a
"not checked" item that says why."""

from __future__ import annotations

from provkit.detect.evidence.base import (
    AI_EDITED,
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
    columns = (
        ("watermark", finding_of("watermark")),
        ("third_party_watermark", finding_of("third-party-watermark")),
    )

    def collect(self, ctx: FileContext) -> Found:
        c2pa = ctx.found.get("c2pa")
        skip_mark, skip_third = (
            (None, None) if self.options.all_evidence else skip_reasons(c2pa, ctx.evidence)
        )
        items, summary = watermark_evidence(
            ctx.image, c2pa, skip_mark=skip_mark, skip_third_party=skip_third
        )
        return Found(items, summary)

    def context(self, data) -> dict:
        data = data or {}
        return {"asset_id": data.get("asset_id"), "watermark": data}


#: The order rule's reasons (docs/detect.md): each names what already answers the question.
SKIP_MARK = (
    "skipped: the file's own C2PA manifest validates, so its hard binding already "
    "covers these exact pixels and the mark could change neither the verdict nor "
    "what decided it (--all-evidence reads it)"
)
SKIP_THIRD_PARTY = (
    "skipped: decisive evidence of AI ({kinds}) already decides the verdict, "
    "and a generator's mark (strong) could change neither it nor what decided "
    "it (--all-evidence reads it)"
)


def skip_reasons(c2pa: dict | None, before) -> tuple[str | None, str | None]:
    """(why provkit's mark is not read, why the third-party marks are not read): None
    where the reader runs. The rule (docs/detect.md): a reader is skipped only when its
    finding cannot change the verdict or ``decided_by`` given the items ``before`` it:

    - provkit's mark is context (``moderate``, never AI evidence); when the file's own
      manifest is ``valid`` or ``trusted`` its hard binding covers these bytes, so
      recovery does not run and the mark could only repeat the signer's soft binding;
    - the third-party mark is ``strong`` AI evidence: it cannot change a verdict that a
      ``decisive`` AI item already decides (the strongest level decides, and it would
      not be at that level); after a decisive capture claim it could, so it is read.
    """
    state = (c2pa or {}).get("state")
    skip_mark = SKIP_MARK if state in ("valid", "trusted") else None
    decisive = sorted(
        {
            e.kind
            for e in before or ()
            if e.finding in (AI_GENERATED, AI_EDITED) and e.strength == "decisive"
        }
    )
    skip_third = SKIP_THIRD_PARTY.format(kinds=", ".join(decisive)) if decisive else None
    return skip_mark, skip_third


def watermark_evidence(
    image,
    c2pa: dict | None = None,
    *,
    skip_mark: str | None = None,
    skip_third_party: str | None = None,
) -> tuple[list[Evidence], dict]:
    """provkit's watermark and third-party generator marks (Stable Diffusion XL).

    Returns the items and the policy-context ``watermark`` dict. ``skip_mark`` /
    ``skip_third_party``: the reason a reader is not run (its item says "not checked").
    """
    summary = {
        "found": False,
        "scheme": None,
        "payload": None,
        "third_party": None,
        "asset_id": None,
    }
    decode, third_party_marks = wm.decode, wm.third_party_marks
    items = []
    mark = None
    if skip_mark:
        items.append(not_checked("watermark", skip_mark, skipped=True))
    else:
        try:
            if (
                c2pa
                and c2pa.get("state") in ("absent", "recovered", "mismatch")
                and "watermark" in c2pa
            ):
                mark = _from_report(c2pa["watermark"])  # recovery already read the pixels
            else:
                mark = decode(image)
        except Exception as e:  # noqa: BLE001
            items.append(
                not_checked("watermark", f"decoding failed ({describe(e, with_path=False)})")
            )
            mark = None
        else:
            if mark is None:
                items.append(
                    Evidence(
                        "watermark",
                        "none",
                        "none",
                        "No provkit watermark found (its absence proves nothing).",
                        {},
                    )
                )
    if mark is not None:
        payload = mark.payload.hex() if isinstance(mark.payload, bytes) else str(mark.payload)
        summary.update(found=True, scheme=mark.scheme, payload=payload, asset_id=payload)
        state = (c2pa or {}).get("state")
        bound_id = (c2pa or {}).get("asset_id")
        detail = (
            f"provkit watermark found: asset id {payload} "
            f"(confidence {float(mark.confidence):.2f}). "
        )
        if state == "recovered":
            detail += "Its ledger record is reported under c2pa."
        elif state == "mismatch":
            detail += (
                "Its ledger record does not match these pixels: the image was changed "
                "after it was issued (reported under c2pa)."
            )
        elif ((c2pa or {}).get("relation") or {}).get("class") == "not-this-asset":
            detail += (
                "Its asset is in this workspace's ledger, but these pixels are not that "
                "asset's: anyone can write this mark, so it identifies nothing here."
            )
        elif state in ("valid", "trusted", "invalid") and bound_id == payload:
            detail += "It matches the asset id of this file's own C2PA manifest (soft binding)."
        elif state in ("valid", "trusted", "invalid") and bound_id:
            detail += (
                f"It does NOT match this file's C2PA manifest (asset id {bound_id}): "
                "the credentials may have been moved from another image."
            )
        else:
            detail += (
                "This workspace's ledger has no record of it, so whether the image was "
                "generated or only signed by that provkit workspace is unknown."
            )
        items.append(
            Evidence(
                "watermark",
                "provkit-mark",
                "moderate",
                detail,
                {"asset_id": payload, "scheme": mark.scheme, "confidence": float(mark.confidence)},
            )
        )
    if skip_third_party:
        items.append(not_checked("third-party-watermark", skip_third_party, skipped=True))
        return items, summary
    try:
        marks = list(third_party_marks(image))
    except Exception as e:  # noqa: BLE001
        items.append(
            not_checked(
                "third-party-watermark", f"decoding failed ({describe(e, with_path=False)})"
            )
        )
        return items, summary
    if marks:
        names = ", ".join(sorted({str(m.third_party or m.scheme) for m in marks}))
        if summary["third_party"] is None:
            summary["third_party"] = names
            if not summary["found"]:
                summary.update(
                    found=True,
                    scheme=marks[0].scheme,
                    payload=marks[0].payload.hex()
                    if isinstance(marks[0].payload, bytes)
                    else str(marks[0].payload),
                )
        items.append(
            Evidence(
                "third-party-watermark",
                AI_GENERATED,
                "strong",
                f"Invisible watermark of an image generator found: {names} "
                f"(confidence {max(float(m.confidence) for m in marks):.2f}).",
                {"marks": [m.to_json() for m in marks]},
            )
        )
    else:
        items.append(
            Evidence(
                "third-party-watermark",
                "none",
                "none",
                "No Stable Diffusion / SDXL watermark found (most generators add "
                "none, and resizing or cropping removes it).",
                {},
            )
        )
    return items, summary


def _from_report(mark: dict | None):
    """The Decoded value a verify report carries as JSON (None: no provkit mark)."""
    if not mark or mark.get("third_party"):
        return None
    conf = mark.get("confidence")
    return Decoded(
        bytes.fromhex(mark["payload"]),
        float("nan") if conf is None else conf,
        mark.get("scheme") or "provkit",
        None,
    )
