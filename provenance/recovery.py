"""Recovering stripped credentials in a verification: an ``absent`` report becomes
``recovered`` when the ledger knows the pixels (see :mod:`provenance.resolver`)."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image

from provenance.core import imageio
from provenance.report import report_from_store
from provenance.resolver import SoftBindingResolver, revalidate, watermark_module
from provenance.status import explain
from provenance.trust import trust_pem

#: Recovery reads the watermark (at a 512 px short side) and the fingerprints (256 px):
#: a JPEG is decoded reduced, to no less than this on either side.
RECOVERY_DRAFT = (1024, 1024)


def recover_report(report, *, db=None, trust_anchors=None, trust_local: bool = True,
                   image: Image.Image | None = None):
    """Turn an ``absent`` report into ``recovered`` when the ledger knows the pixels.

    ``image``: the file's decoded pixels, if the caller has them. The watermark is
    decoded once, here, and handed to the resolver."""
    image = image if image is not None else imageio.open_image(report.path, draft=RECOVERY_DRAFT)
    wm = watermark_module()
    decoded = wm.decode(image) if wm is not None else None
    mark = decoded.to_json() if decoded is not None else None
    resolver = SoftBindingResolver(db)
    matches = resolver.match_by_content(image, decoded=decoded)
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
    parsed, summary = revalidate(store, trust_pem=trust_pem(trust_anchors,
                                                            trust_local=trust_local))
    how = (f"the watermark (asset id {match.asset_id})" if match.method == "watermark" else
           "its perceptual fingerprint (" + ", ".join(
               f"{k} {v} bits" for k, v in (match.distance or {}).items()) + " apart)")
    recovered = report_from_store(report.path, parsed, state="recovered",
                                  failures=summary["failures"], raw=store)
    notes = [("No C2PA manifest is embedded; the credentials were recovered from the ledger "
              f"by {how}."),
             f"The recovered manifest re-validates as {summary['state']}."]
    notes += explain(summary["failures"])
    return replace(recovered, recovered_by=match.recovered_by(), recovered_manifest=summary,
                   watermark=mark, explanation=notes)
