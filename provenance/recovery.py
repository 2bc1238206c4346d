"""Recovering stripped credentials in a verification: an ``absent`` report becomes
``recovered`` when the ledger knows the pixels (see :mod:`provenance.resolver`).

Recovery is not validation. A watermark says where an image came from, not that it is
unchanged: a stripped file matched by its watermark (or fingerprint) is ``recovered``
only when its pixels still match the fingerprints the ledger recorded for that asset
within the match limits (PDQ <= :data:`~provenance.ledger.MAX_PDQ_DISTANCE` bits where
both have a usable one, otherwise pHash <= :data:`~provenance.ledger.MAX_PHASH_DISTANCE`).
Otherwise the state is ``mismatch``: "the watermark names asset X, but the picture
differs from what X issued", and nothing of X's manifest is vouched for.
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

#: Recovery reads the watermark (at a 512 px short side) and the fingerprints (256 px):
#: a JPEG is decoded reduced, to no less than this on either side.
RECOVERY_DRAFT = (1024, 1024)


def recover_report(report, *, db=None, trust=None, trust_local: bool = True,
                   image: Image.Image | None = None, fingerprinter=None):
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
    matches = resolver.match_by_content(image, decoded=decoded, fingerprinter=fingerprinter)
    if not matches:
        notes = list(report.explanation)
        if mark and not mark.get("third_party"):
            notes.append(f"It carries a provkit watermark (asset id {mark.get('payload')}) "
                         "that this ledger does not know.")
        return replace(report, watermark=mark, explanation=notes)
    match = matches[0]
    store = resolver.get_manifest(match.manifest_id)
    if store is None:
        return replace(report, watermark=mark)
    asset = resolver.ledger.get(match.asset_id)
    pixels = pixel_match(image, asset, fingerprint=fingerprinter())
    if not pixels["match"]:
        return _mismatch(report, match, mark, pixels)
    resolved = resolve_trust(trust, trust_local=trust_local)
    parsed, summary = revalidate(store, trust_pem=resolved.pem())
    how = (f"the watermark (asset id {match.asset_id})" if match.method == "watermark" else
           "its perceptual fingerprint (" + ", ".join(
               f"{k} {v} bits" for k, v in (match.distance or {}).items()) + " apart)")
    recovered = report_from_store(report.path, parsed, state="recovered",
                                  failures=summary["failures"], raw=store, trust=resolved,
                                  mime=report.format)
    notes = [("No C2PA manifest is embedded; the credentials were recovered from the ledger "
              f"by {how}."),
             f"The recovered manifest re-validates as {summary['state']}."]
    notes += explain(summary["failures"])
    notes.append("Its pixels match what the ledger recorded for that asset ("
                 + _distances(pixels["distance"]) + ").")
    return replace(recovered, recovered_by=match.recovered_by(), recovered_manifest=summary,
                   watermark=mark, explanation=notes, pixel_match=pixels)


def _once(make):
    """``make`` called at most once: a zero-argument function remembering its value."""
    box = []

    def get():
        if not box:
            box.append(make())
        return box[0]

    return get


def pixel_match(image: Image.Image, asset, *, fingerprint=None) -> dict:
    """Whether ``image`` still looks like what the ledger recorded for ``asset``:
    ``{"match": bool, "distance": {"phash": bits, "pdq": bits}, "limits": {...}}``.

    Without recorded fingerprints nothing can be compared, and that is no match."""
    limits = {"phash": MAX_PHASH_DISTANCE, "pdq": MAX_PDQ_DISTANCE}
    if asset is None or not asset.phash:
        return {"match": False, "distance": {}, "limits": limits,
                "problem": "the ledger holds no fingerprints for this asset"}
    fp = fingerprint if fingerprint is not None else fingerprint_image(image)
    distance = {"phash": (int(asset.phash, 16) ^ int(fp.phash)).bit_count()}
    usable = asset.pdq and (asset.pdq_quality or 0) >= PDQ_MIN_QUALITY and \
        fp.pdq_quality >= PDQ_MIN_QUALITY
    if usable:
        distance["pdq"] = (int(asset.pdq, 16) ^ int.from_bytes(fp.pdq, "big")).bit_count()
    # PDQ (256 bits, made for this) decides where both have a usable one: a resized,
    # recompressed copy of a smooth generated picture can move pHash past its limit while
    # PDQ stays a few bits off, and an edit moves PDQ well past its own. pHash otherwise.
    ok = distance["pdq"] <= limits["pdq"] if "pdq" in distance else \
        distance["phash"] <= limits["phash"]
    return {"match": bool(ok), "distance": distance, "limits": limits}


def _distances(distance: dict) -> str:
    names = {"phash": "pHash", "pdq": "PDQ"}
    parts = [f"{names[k]} {v}" for k, v in distance.items()]
    return (", ".join(parts) + " bits") if parts else "no fingerprints to compare"


def _mismatch(report, match, mark, pixels):
    """``mismatch``: the ledger knows the asset the mark names, but not these pixels."""
    if match.method == "watermark":
        named = f"The watermark names asset {match.asset_id}"
    else:
        named = f"The perceptual fingerprint points to asset {match.asset_id}"
    if pixels.get("problem"):
        why = f"{named}, but {pixels['problem']}, so the picture cannot be checked against it."
    else:
        why = (f"{named}, but the picture differs from what {match.asset_id} issued "
               f"({_distances(pixels['distance'])}; the match limits are pHash "
               f"{pixels['limits']['phash']} and PDQ {pixels['limits']['pdq']} bits).")
    notes = ["No C2PA manifest is embedded.", why,
             ("Its credentials are not recovered: a mark says where an image came from, not "
              "that it is unchanged; this copy was edited after it was issued.")]
    return replace(report, state="mismatch", asset_id=match.asset_id,
                   recovered_by=match.recovered_by(), watermark=mark, explanation=notes,
                   pixel_match=pixels)
