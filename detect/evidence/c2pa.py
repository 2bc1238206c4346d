"""C2PA evidence: the file's Content Credentials, validated by provenance.verify (with
recovery of stripped credentials from the ledger), classified by the rule in
docs/detect.md."""

from __future__ import annotations

from provkit.detect.evidence.base import (
    AI_EDITED,
    AI_GENERATED,
    CAPTURE,
    BaseCollector,
    Evidence,
    FileContext,
    Found,
    finding_of,
    not_checked,
)
from provkit.provenance.core.errors import BadInput, describe
from provkit.provenance.core.vocabulary import (
    AI_EDITED_TYPES,
    AI_GENERATED_TYPES,
    ALGORITHMIC_TYPES,
    CAPTURE_TYPES,
    MAY_CONTAIN_AI_TYPES,
    SYNTHETIC_TYPES,
)
from provkit.provenance.signals import policy_signals
from provkit.provenance.verify import verify_file


class C2paCollector(BaseCollector):
    """``found["c2pa"]``: the verify report's ``c2pa`` part (None when verification failed)."""

    name = "c2pa"
    columns = (("c2pa", finding_of("c2pa")),)
    pixels = False

    def collect(self, ctx: FileContext) -> Found:
        try:
            report = verify_file(
                ctx.path,
                trust=self.options.trust,
                db=self.options.db,
                image=ctx.image,
                trust_local=self.options.trust_local,
                fingerprinter=ctx.fingerprint,
            )
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001  # a verifier failure is reported, never a silent pass
            why = f"C2PA verification failed ({describe(e, with_path=False)})"
            return Found([not_checked("c2pa", why)], None)
        c2pa = report.to_json()["c2pa"]
        return Found([classify_c2pa(c2pa)], c2pa)

    def context(self, data) -> dict:
        c2pa = data or {}
        return {
            "asset_id": c2pa.get("asset_id"),
            "c2pa": {
                "state": c2pa.get("state", "absent"),
                "digital_source_type": c2pa.get("digital_source_type"),
                "signer": c2pa.get("signer"),
                "training_mining": c2pa.get("training_mining") or {},
                "signals": policy_signals(c2pa.get("signals")),
                "trust_source": (c2pa.get("signer") or {}).get("trust_source"),
                "relation": (c2pa.get("relation") or {}).get("class"),
                "cause": c2pa.get("cause"),
                "causes": {c["cause"]: True for c in c2pa.get("causes") or []},
                "remote_url": c2pa.get("remote_url"),
                "ingredients_failed": [
                    {"title": i.get("title"), "when": i.get("when"), "cause": i.get("cause")}
                    for i in c2pa.get("failed_ingredients") or []
                ],
            },
        }


def _signer_name(c2pa: dict) -> str:
    signer = c2pa.get("signer") or {}
    if isinstance(signer, dict):
        return (
            signer.get("common_name")
            or signer.get("organization")
            or signer.get("name")
            or "an unnamed signer"
        )
    return str(signer)


def classify_c2pa(c2pa: dict) -> Evidence:
    """Turn a verify report's ``c2pa`` part into one evidence item (the rule in docs/detect.md)."""
    state = c2pa.get("state", "absent")
    dst = c2pa.get("digital_source_type")
    action_types = {
        a.get("digital_source_type") for a in c2pa.get("actions") or [] if isinstance(a, dict)
    } - {None}
    ai_actions = action_types & (AI_GENERATED_TYPES | AI_EDITED_TYPES)
    signals = c2pa.get("signals") or {}
    data = {
        "state": state,
        "digital_source_type": dst,
        "signer": c2pa.get("signer"),
        "signals": {
            k: signals.get(k) or [] for k in ("inception", "transformation", "not_credible")
        },
        "signal_rules": [
            {"signal": r.get("signal"), "rule_id": r.get("rule_id")}
            for r in signals.get("rules") or []
        ],
        "trust_source": (c2pa.get("signer") or {}).get("trust_source"),
    }
    who = _signer_name(c2pa)
    relation = c2pa.get("relation") or {}
    data["relation"] = relation.get("class")
    if state == "absent":
        if relation.get("class") == "not-this-asset":
            return Evidence(
                "c2pa",
                "absent",
                "none",
                "No C2PA manifest in the file. A provkit mark in it names an issued "
                "asset whose pixels this picture does not have: anyone can write "
                "such a mark, so it is evidence of nothing (not of that asset, nor "
                "of an edit).",
                data,
            )
        return Evidence(
            "c2pa",
            "absent",
            "none",
            "No C2PA manifest (Content Credentials) in the file or the ledger.",
            data,
        )
    if state == "mismatch":
        why = (
            " ".join((c2pa.get("explanation") or [])[1:3])
            or "The watermark names an issued asset, but the picture differs from it."
        )
        data["pixel_match"] = c2pa.get("pixel_match")
        data["identified"] = c2pa.get("identified")
        return Evidence(
            "c2pa",
            "mismatch",
            "none",
            f"{why} Nothing the issued credentials say holds for this copy: it is "
            "no sign of authenticity.",
            data,
        )
    if dst in AI_GENERATED_TYPES or dst in ALGORITHMIC_TYPES:
        finding = AI_GENERATED
    elif dst in AI_EDITED_TYPES or ai_actions:
        finding = AI_EDITED
    elif dst in CAPTURE_TYPES:
        finding = CAPTURE
    else:
        finding = None
    problems = "; ".join(c2pa.get("explanation") or c2pa.get("failures") or []) or "a check failed"
    causes = [c.get("phrase") or c.get("cause") for c in c2pa.get("causes") or []]
    data["cause"] = c2pa.get("cause")
    if causes:  # why, in the words check and the desk use (provenance.causes)
        problems = f"{'; '.join(causes)}: {problems}"
    if state == "invalid":
        if finding in (AI_GENERATED, AI_EDITED):
            return Evidence(
                "c2pa",
                finding,
                "weak",
                f"The C2PA manifest is invalid ({problems}); it claims {dst}, "
                "but an invalid manifest cannot be relied on.",
                data,
            )
        return Evidence(
            "c2pa",
            "invalid",
            "none",
            f"The C2PA manifest is invalid ({problems}); nothing it claims can be "
            "relied on, and it is no sign of authenticity.",
            data,
        )
    source = (c2pa.get("signer") or {}).get("trust_source")
    copy = relation.get("class") == "transformed"
    if state == "valid" and source:
        state = "trusted"  # a trusted signer whose only failure is elsewhere (an identity)
    how = {
        "trusted": f"signed by {who}, trusted via the {source}"
        if source
        else f"signed by {who}, a trusted signer",
        "valid": f"validly signed by {who}, an unrecognised signer (not on your trust list)",
        "recovered": (
            "recovered from this workspace's ledger for a transformed copy of the "
            "issued picture ("
            + (relation.get("sentence") or "").rstrip(".")
            + "; identified, not authenticated)"
        )
        if copy
        else "recovered from this workspace's ledger (the file itself carries none)",
    }.get(state, state)
    if finding == AI_GENERATED:
        strength = "strong" if state == "recovered" else "decisive"
        if dst in ALGORITHMIC_TYPES:
            return Evidence(
                "c2pa",
                finding,
                strength,
                f"The C2PA manifest, {how}, declares the image generated by an "
                f"algorithm ({dst}: no trained model declared); counted as generated, "
                "not captured.",
                data,
            )
        return Evidence(
            "c2pa",
            finding,
            strength,
            f"The C2PA manifest, {how}, declares the image AI-generated ({dst}).",
            data,
        )
    if finding == AI_EDITED:
        what = (
            dst
            if dst in AI_EDITED_TYPES
            else f"an AI step in its actions ({', '.join(sorted(ai_actions))})"
        )
        strength = "strong" if state == "recovered" else "decisive"
        return Evidence(
            "c2pa",
            finding,
            strength,
            f"The C2PA manifest, {how}, records AI editing: {what}.",
            data,
        )
    if finding == CAPTURE and set(signals.get("not_credible") or []) & {
        "capturedMedia",
        "capturedMediaStitched",
    }:
        product = ((c2pa.get("signer") or {}).get("conforming_product") or {}).get("product")
        return Evidence(
            "c2pa",
            "capture-not-credible",
            "none",
            f"The C2PA manifest, {how}, claims a camera capture ({dst}), but the "
            f"Conforming Products List does not allow {product or 'its product'} to "
            "claim capture: the claim is not credible and counts for nothing.",
            data,
        )
    if finding == CAPTURE:
        strength = {"trusted": "decisive", "recovered": "moderate"}.get(state, "weak")
        if state == "valid":
            return Evidence(
                "c2pa",
                finding,
                strength,
                f"Camera capture claimed by an unrecognised signer ({who}, not on "
                f"your trust list): the manifest claims {dst} with no AI step. "
                "Nobody you trust vouches for it.",
                data,
            )
        if (
            state == "recovered"
            and (c2pa.get("recovered_manifest") or {}).get("state") == "trusted"
            and relation.get("class") == "same-pixels"
        ):
            strength = "decisive"  # the ledger's own trusted record, the very same pixels
        return Evidence(
            "c2pa",
            finding,
            strength,
            f"The C2PA manifest, {how}, claims a capture ({dst}) with no AI step "
            "recorded. This is the signer's claim, not a check of the pixels.",
            data,
        )
    kind_note = f"source type {dst}" if dst else "no digital source type"
    if dst in MAY_CONTAIN_AI_TYPES:
        kind_note += (
            " (a composite or screenshot: not a camera capture, and it may contain generative AI)"
        )
    elif dst in SYNTHETIC_TYPES:
        kind_note += " (synthetic, not declared as AI)"
    return Evidence(
        "c2pa", "signed", "none", f"The C2PA manifest, {how}, states {kind_note}.", data
    )
