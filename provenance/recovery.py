"""Recovering stripped credentials in a verification: an ``absent`` report becomes
``recovered`` when the ledger knows the pixels (see :mod:`provenance.resolver`).

Identification is not authentication. A watermark or fingerprint *identifies* an issued
asset X; the copy's pixels are then compared with X's reference rendition
(:mod:`provenance.relation`), and the relation decides what the report says:

- ``same-pixels`` and ``transformed``: ``recovered``. X's manifest is re-validated and
  reported (its source type, author, training rules: the attribution survives an honest
  copy), with ``relation`` saying how the copy relates (resized, re-encoded, cropped by
  how much). Only ``same-pixels`` means the credentials describe these very pixels.
- ``locally-edited``: ``mismatch``. ``identified`` says which asset it came from (issued
  by whom, when, its source type and training rules); ``relation`` says where it was
  edited. Nothing of X's manifest is vouched for.
- ``not-this-asset``: ``absent``. The mark names X but the picture is not X's: anyone can
  write provkit's public mark, so it says nothing about this picture, or about X.
"""

from __future__ import annotations

from dataclasses import replace

from PIL import Image
from provkit.provenance import watermark
from provkit.provenance.core import imageio
from provkit.provenance.fingerprint import fingerprint_image
from provkit.provenance.ledger import MAX_PDQ_DISTANCE, MAX_PHASH_DISTANCE, PDQ_MIN_QUALITY
from provkit.provenance.report import report_from_store
from provkit.provenance.resolver import SoftBindingResolver, revalidate
from provkit.provenance.status import explain
from provkit.provenance.trust import resolve as resolve_trust
from provkit.provenance.words import source_type_words, training_words

#: Recovery reads the watermark (at a 512 px short side) and the fingerprints (256 px):
#: a JPEG is decoded reduced, to no less than this on either side.
RECOVERY_DRAFT = (1024, 1024)

#: Which candidate to report when none identifies: an edit found beats a mismatch.
_RANK = {"same-pixels": 0, "transformed": 1, "locally-edited": 2, "not-this-asset": 3}


def file_size(path) -> tuple[int, int] | None:
    """The image's real size from its header (a draft decode reports a reduced one)."""
    try:
        with Image.open(path) as img:
            return img.size
    except Exception:  # noqa: BLE001 - the decoded pixels' size then stands
        return None


def recover_report(
    report,
    *,
    db=None,
    trust=None,
    trust_local: bool = True,
    image: Image.Image | None = None,
    fingerprinter=None,
):
    """Turn an ``absent`` report into ``recovered`` when the ledger knows the pixels.

    ``image``: the file's decoded pixels, if the caller has them. The watermark is
    decoded once, here, and handed to the resolver; the fingerprint is computed once
    (``fingerprinter()`` when the caller shares its own)."""
    image = image if image is not None else imageio.open_image(report.path, draft=RECOVERY_DRAFT)
    if fingerprinter is None:
        fingerprinter = _once(lambda: fingerprint_image(image))
    decoded = watermark.decode(image)
    mark = decoded.to_json() if decoded is not None else None
    resolver = SoftBindingResolver(db)
    found = resolver.identify(
        image, decoded=decoded, size=file_size(report.path), fingerprinter=fingerprinter
    )
    # a fingerprint candidate whose pixels do not relate was only a look-alike: no finding
    found = [f for f in found if f[0].method == "watermark" or f[1].cls != "not-this-asset"]
    if not found:
        notes = list(report.explanation)
        if mark and not mark.get("third_party"):
            notes.append(
                f"It carries a provkit watermark (asset id {mark.get('payload')}) "
                "that this ledger does not know."
            )
        return replace(report, watermark=mark, explanation=notes)
    match, relation = min(found, key=lambda f: _RANK[f[1].cls])
    store = resolver.get_manifest(match.manifest_id)
    if store is None:
        return replace(report, watermark=mark)
    rel = relation.to_json()
    if relation.cls == "not-this-asset":
        return _mark_only(report, match, mark, rel)
    resolved = resolve_trust(trust, trust_local=trust_local)
    parsed, summary = revalidate(store, trust_pem=resolved.pem())
    issued = report_from_store(
        report.path,
        parsed,
        state="recovered",
        failures=summary["failures"],
        raw=store,
        trust=resolved,
        mime=report.format,
    )
    identified = _identified(match, resolver.ledger.get(match.asset_id), issued)
    if relation.cls == "locally-edited":
        return _edited(report, match, mark, rel, identified)
    how = (
        f"the watermark (asset id {match.asset_id})"
        if match.method == "watermark"
        else "its perceptual fingerprint ("
        + ", ".join(f"{k} {v} bits" for k, v in (match.distance or {}).items())
        + " apart)"
    )
    notes = [
        (f"No C2PA manifest is embedded; the credentials were recovered from the ledger by {how}."),
        identified["sentence"],
        f"The recovered manifest re-validates as {summary['state']}.",
    ]
    notes += explain(summary["failures"])
    notes.append(rel["sentence"])
    if not relation.vouches:
        notes.append(
            "The recovered credentials describe the issued picture; this copy is "
            "identified as it, not authenticated: they vouch for no pixel of it."
        )
    return replace(
        issued,
        recovered_by=match.recovered_by(),
        recovered_manifest=summary,
        watermark=mark,
        explanation=notes,
        relation=rel,
        identified=identified,
        pixel_match=_pixel_summary(rel),
    )


def _identified(match, asset, issued) -> dict:
    """Which issued asset the copy came from, and what its credentials said of it."""
    signer = issued.signer or (asset.signer if asset else None) or {}
    who = signer.get("organization") or signer.get("common_name") or "an unnamed signer"
    when = (asset.created if asset else None) or signer.get("time")
    parts = [f"issued by {who}" + (f" on {str(when)[:10]}" if when else "")]
    what = source_type_words(issued.digital_source_type)
    if what:
        parts.append(what)
    if issued.author:
        parts.append("author " + ", ".join(str(a) for a in issued.author))
    parts += [t.rstrip(".") for t in training_words(issued.training_mining or {})]
    return {
        "asset_id": match.asset_id,
        "by": match.method,
        "signer": signer or None,
        "issued": when,
        "digital_source_type": issued.digital_source_type,
        "author": list(issued.author or []),
        "training_mining": dict(issued.training_mining or {}),
        "sentence": f"Identified as a copy of asset {match.asset_id} (" + "; ".join(parts) + ").",
    }


def _pixel_summary(rel: dict) -> dict:
    return {
        "match": rel["class"] in ("same-pixels", "transformed"),
        "relation": rel["class"],
        "correlation": rel.get("correlation"),
        "changed": rel.get("changed"),
    }


def _named(match) -> str:
    if match.method == "watermark":
        return f"The watermark names asset {match.asset_id}"
    return f"The perceptual fingerprint points to asset {match.asset_id}"


def _edited(report, match, mark, rel, identified):
    """``mismatch``: a locally edited copy of an issued asset, the edit located."""
    notes = [
        "No C2PA manifest is embedded.",
        identified["sentence"],
        rel["sentence"],
        (
            "Its credentials are not recovered: they describe the picture as issued, and "
            "this copy was edited after it was issued."
        ),
    ]
    return replace(
        report,
        state="mismatch",
        asset_id=match.asset_id,
        recovered_by=match.recovered_by(),
        watermark=mark,
        explanation=notes,
        relation=rel,
        identified=identified,
        pixel_match=_pixel_summary(rel),
    )


def _mark_only(report, match, mark, rel):
    """``absent``: a soft binding names an asset whose pixels this picture does not have."""
    notes = list(report.explanation)
    if match.method == "watermark":
        notes.append(
            f"It carries a provkit watermark naming asset {match.asset_id}, but its "
            f"pixels are not that asset's ({rel.get('reason') or 'they do not match'}). "
            "Anyone can write a provkit watermark: this mark identifies nothing, and "
            "it says nothing about that asset."
        )
    return replace(report, watermark=mark, explanation=notes, relation=rel)


def _once(make):
    """``make`` called at most once: a zero-argument function remembering its value."""
    box = []

    def get():
        if not box:
            box.append(make())
        return box[0]

    return get


def pixel_match(image: Image.Image, asset, *, fingerprint=None) -> dict:
    """Whether ``image``'s fingerprints are within the match limits of those the ledger
    recorded for ``asset``: ``{"match": bool, "distance": {"phash": bits, "pdq": bits},
    "limits": {...}}``. A whole-picture hash: it cannot see a local edit (bench/recovery.py
    measures it beside :mod:`provenance.relation`); recovery decides by the relation.

    Without recorded fingerprints nothing can be compared, and that is no match."""
    limits = {"phash": MAX_PHASH_DISTANCE, "pdq": MAX_PDQ_DISTANCE}
    if asset is None or not asset.phash:
        return {
            "match": False,
            "distance": {},
            "limits": limits,
            "problem": "the ledger holds no fingerprints for this asset",
        }
    fp = fingerprint if fingerprint is not None else fingerprint_image(image)
    distance = {"phash": (int(asset.phash, 16) ^ int(fp.phash)).bit_count()}
    usable = (
        asset.pdq
        and (asset.pdq_quality or 0) >= PDQ_MIN_QUALITY
        and fp.pdq_quality >= PDQ_MIN_QUALITY
    )
    if usable:
        distance["pdq"] = (int(asset.pdq, 16) ^ int.from_bytes(fp.pdq, "big")).bit_count()
    # PDQ (256 bits, made for this) decides where both have a usable one: a resized,
    # recompressed copy of a smooth generated picture can move pHash past its limit while
    # PDQ stays a few bits off, and an edit moves PDQ well past its own. pHash otherwise.
    ok = (
        distance["pdq"] <= limits["pdq"]
        if "pdq" in distance
        else distance["phash"] <= limits["phash"]
    )
    return {"match": bool(ok), "distance": distance, "limits": limits}


def _distances(distance: dict) -> str:
    names = {"phash": "pHash", "pdq": "PDQ"}
    parts = [f"{names[k]} {v}" for k, v in distance.items()]
    return (", ".join(parts) + " bits") if parts else "no fingerprints to compare"
