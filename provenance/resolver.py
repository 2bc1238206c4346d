"""Soft-binding resolution: from pixels or a binding value back to an issued manifest.

:class:`SoftBindingResolver` has the shape of the C2PA soft-binding resolution API
(``supportedAlgorithms``, ``matches/byBinding``, ``matches/byContent``,
``manifests/{id}``) over this workspace's ledger, so an HTTP front can serve it.

Matching by content tries the watermark first (the pixels carry the asset id), then
the perceptual fingerprints (pHash and PDQ within the ledger's match distances). Either
only *identifies* a candidate: anyone can write provkit's public mark onto any picture.
A candidate is a match only when the copy's pixels are the asset's, the same or
honestly transformed (:mod:`provenance.relation`, against the reference rendition the
ledger kept at issue time); a locally edited copy or a picture that merely carries the
mark gets no manifest. A recovered manifest store is re-validated on its own with the SDK:
signature, certificate chain and assertion hashes must hold; its hard binding
(``assertion.dataHash``) is to the bytes originally issued and cannot match a
re-encoded copy, so that one code is expected and reported apart.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from provkit.provenance import watermark
from provkit.provenance.fingerprint import fingerprint_image
from provkit.provenance.ledger import (
    MAX_PDQ_DISTANCE,
    MAX_PHASH_DISTANCE,
    PDQ_MIN_QUALITY,
    Ledger,
    ledger_store,
)
from provkit.provenance.manifest import context, new_reader
from provkit.provenance.relation import Relation, content_boxes, relate
from provkit.provenance.status import HARD_BINDING_CODES, state_from_codes, status_codes

#: Alg name of the fingerprint matcher (not a registered soft-binding alg).
FINGERPRINT_ALG = "io.provkit.fingerprint.pdq-phash"

#: Fingerprint distances (bits) within which a ledger entry is a *candidate*: wider than
#: the near-duplicate limits (a caption or a crop moves pHash past 10), since a candidate
#: is only reported once its pixels are related (:mod:`provenance.relation`). Unrelated
#: pictures sit around 32 of 64 pHash and 128 of 256 PDQ bits apart.
CANDIDATE_PHASH = 16
CANDIDATE_PDQ = 48

#: ``decoded`` default of :meth:`SoftBindingResolver.match_by_content`: decode it there.
NOT_DECODED = object()


@dataclass(frozen=True)
class Match:
    """A ledger entry the content or binding points to."""

    manifest_id: str
    asset_id: str
    method: str  # "watermark" | "fingerprint"
    confidence: float | None = None
    distance: dict | None = None
    #: How the copy relates to the asset (:meth:`provenance.relation.Relation.to_json`).
    relation: dict | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def recovered_by(self) -> dict:
        if self.method == "watermark":
            return {"method": "watermark", "asset_id": self.asset_id, "confidence": self.confidence}
        return {"method": "fingerprint", "asset_id": self.asset_id, "distance": self.distance}


class SoftBindingResolver:
    """Soft-binding resolution over one ledger."""

    def __init__(self, db=None):
        self.ledger = db if isinstance(db, Ledger) else ledger_store(db, create=False)

    def supported_algorithms(self) -> dict:
        marks = [{"alg": watermark.SOFT_BINDING_ALG}]
        return {"watermarks": marks, "fingerprints": [{"alg": FINGERPRINT_ALG}]}

    def match_by_binding(self, alg: str, value: str | bytes) -> list[Match]:
        """Entries whose soft-binding value (asset id: hex, base64 or 8 bytes) is ``value``."""
        if alg != watermark.SOFT_BINDING_ALG:
            return []
        asset_id = _asset_id_from(value)
        asset = self.ledger.get(asset_id) if asset_id else None
        if asset is None:
            return []
        return [
            Match(
                manifest_id=asset.manifest_label,
                asset_id=asset.asset_id,
                method="watermark",
                confidence=1.0,
            )
        ]

    def match_by_content(
        self,
        image: Image.Image,
        *,
        max_results: int = 5,
        decoded=NOT_DECODED,
        size: tuple[int, int] | None = None,
        fingerprinter=None,
    ) -> list[Match]:
        """Entries whose pixels ``image`` has: the same or honestly transformed (each
        with its ``relation``). A mark or fingerprint pointing at an asset whose pixels
        the copy does not have is no match. ``size``: the copy's real size when
        ``image`` was decoded reduced."""
        out = []
        for m, rel in self.identify(
            image, max_results=max_results, decoded=decoded, size=size, fingerprinter=fingerprinter
        ):
            if rel.identifies:
                out.append(replace(m, relation=rel.to_json()))
        return out

    def identify(
        self,
        image: Image.Image,
        *,
        max_results: int = 5,
        decoded=NOT_DECODED,
        size: tuple[int, int] | None = None,
        fingerprinter=None,
    ) -> list[tuple[Match, Relation]]:
        """Every candidate the soft bindings point to, with how the copy relates to it."""
        found = self.candidates(
            image, max_results=max_results, decoded=decoded, fingerprinter=fingerprinter
        )
        return [
            (
                m,
                relate_asset(
                    image,
                    self.ledger.get(m.asset_id),
                    self.ledger.reference(m.asset_id),
                    size=size,
                    fingerprinter=fingerprinter,
                ),
            )
            for m in found
        ]

    def candidates(
        self, image: Image.Image, *, max_results: int = 5, decoded=NOT_DECODED, fingerprinter=None
    ) -> list[Match]:
        """Entries the soft bindings point to: the watermark's asset id, else fingerprints.
        Identification only: nothing here compares the pixels with the asset's.

        ``decoded``: the watermark the caller already read from ``image`` (the
        ``watermark.decode`` result, None for no mark), so it is not decoded twice;
        ``fingerprinter()`` gives the image's fingerprint when the caller shares one."""
        if decoded is NOT_DECODED:
            decoded = watermark.decode(image)
        if decoded is None:
            decoded = _decode_framed(image)
        if decoded is not None and decoded.third_party is None:
            asset = self.ledger.get(decoded.payload.hex())
            if asset is not None:
                return [
                    Match(
                        manifest_id=asset.manifest_label,
                        asset_id=asset.asset_id,
                        method="watermark",
                        confidence=float(decoded.confidence),
                    )
                ]
        fp = fingerprinter() if fingerprinter is not None else fingerprint_image(image)
        return [
            Match(
                manifest_id=a.manifest_label, asset_id=a.asset_id, method="fingerprint", distance=d
            )
            for a, d in self.ledger.by_fingerprint(
                fp, k=max_results, max_phash=CANDIDATE_PHASH, max_pdq=CANDIDATE_PDQ
            )
        ]

    def get_manifest(self, manifest_id: str) -> bytes | None:
        """The manifest store bytes for a manifest label (or an asset id)."""
        asset = self.ledger.by_manifest_label(manifest_id) or self.ledger.get(manifest_id)
        return self.ledger.manifest_store(asset.asset_id) if asset else None


def _decode_framed(image: Image.Image):
    """The mark of a picture inside a uniform border (a screenshot's frame shifts the
    mark's grid): decoded from the framed part alone; None when there is no border."""
    boxes = content_boxes(np.asarray(image.convert("L"), dtype=np.float32))
    return watermark.decode(image.crop(boxes[-1])) if len(boxes) > 1 else None


def _asset_id_from(value) -> str | None:
    if isinstance(value, bytes):
        return value.hex() if len(value) == 8 else None
    v = value.strip().lower()
    if len(v) == 16 and all(c in "0123456789abcdef" for c in v):
        return v
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 8 else None


def revalidate(store: bytes, *, trust_pem: bytes = b"") -> tuple[dict, dict]:
    """Re-read a stored manifest store with the SDK; ``(reader JSON, validation summary)``."""
    reader = new_reader("application/c2pa", io.BytesIO(store), context(trust_anchors=trust_pem))
    try:
        parsed = json.loads(reader.json())
        sdk_state = (reader.get_validation_state() or "invalid").lower()
    finally:
        reader.close()
    results = parsed.get("validation_results")
    all_fails = status_codes(results)
    expected = [c for c in all_fails if c in HARD_BINDING_CODES]
    failures = [c for c in all_fails if c not in HARD_BINDING_CODES]
    state = state_from_codes(failures, status_codes(results, "success"))
    return parsed, {
        "label": parsed.get("active_manifest"),
        "state": state,
        "sdk_state": sdk_state,
        "failures": failures,
        "expected_failures": sorted(set(expected)),
        "checked": "standalone manifest store (signature, certificate chain, "
        "assertion hashes); its hard binding is to the issued bytes",
    }


def relate_asset(
    image: Image.Image,
    asset,
    reference: bytes | None,
    *,
    size: tuple[int, int] | None = None,
    fingerprinter=None,
) -> Relation:
    """:func:`relate` against an issued asset; one issued before reference renditions were
    kept is compared by its fingerprints only, which cannot find a local edit."""
    if reference is not None:
        try:
            return relate(image, reference, size=size)
        except (OSError, ValueError, KeyError) as e:  # a damaged row: fingerprints, said so
            damaged = f"the ledger's reference rendition cannot be read ({e})"
    else:
        damaged = None
    if asset is None or not asset.phash:
        return Relation(
            "not-this-asset",
            reason="the ledger holds neither a reference rendition nor fingerprints for this asset",
        )
    fp = fingerprinter() if fingerprinter is not None else fingerprint_image(image)
    bits = (int(asset.phash, 16) ^ int(fp.phash)).bit_count()
    ok = bits <= MAX_PHASH_DISTANCE
    if (
        asset.pdq
        and (asset.pdq_quality or 0) >= PDQ_MIN_QUALITY
        and fp.pdq_quality >= PDQ_MIN_QUALITY
    ):
        bits = (int(asset.pdq, 16) ^ int.from_bytes(fp.pdq, "big")).bit_count()
        ok = bits <= MAX_PDQ_DISTANCE
    if not ok:
        return Relation("not-this-asset", reason=f"its fingerprint is {bits} bits from the asset's")
    return Relation(
        "transformed",
        reason=(damaged or "the ledger holds no reference rendition for this asset")
        + f": compared by fingerprint only ({bits} bits), so local edits were "
        "not looked for",
    )
