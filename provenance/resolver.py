"""Soft-binding resolution: from pixels or a binding value back to an issued manifest.

:class:`SoftBindingResolver` has the shape of the C2PA soft-binding resolution API
(``supportedAlgorithms``, ``matches/byBinding``, ``matches/byContent``,
``manifests/{id}``) over this workspace's ledger, so an HTTP front can serve it.

Matching by content tries the watermark first (exact: the pixels carry the asset
id), then the perceptual fingerprints (pHash and PDQ within the ledger's match
distances). A recovered manifest store is re-validated on its own with the SDK:
signature, certificate chain and assertion hashes must hold; its hard binding
(``assertion.dataHash``) is to the bytes originally issued and cannot match a
re-encoded copy, so that one code is expected and reported apart.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass

from PIL import Image

from provkit.provenance import watermark
from provkit.provenance.fingerprint import fingerprint_image
from provkit.provenance.ledger import Ledger, ledger_store
from provkit.provenance.manifest import context, new_reader
from provkit.provenance.status import HARD_BINDING_CODES, state_from_codes, status_codes

#: Alg name of the fingerprint matcher (not a registered soft-binding alg).
FINGERPRINT_ALG = "io.provkit.fingerprint.pdq-phash"

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

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def recovered_by(self) -> dict:
        if self.method == "watermark":
            return {"method": "watermark", "asset_id": self.asset_id,
                    "confidence": self.confidence}
        return {"method": "fingerprint", "asset_id": self.asset_id,
                "distance": self.distance}

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
        return [Match(manifest_id=asset.manifest_label, asset_id=asset.asset_id,
                      method="watermark", confidence=1.0)]

    def match_by_content(self, image: Image.Image, *, max_results: int = 5,
                         decoded=NOT_DECODED, fingerprinter=None) -> list[Match]:
        """Entries matching the pixels: the watermark's asset id, else fingerprints.

        ``decoded``: the watermark the caller already read from ``image`` (the
        ``watermark.decode`` result, None for no mark), so it is not decoded twice;
        ``fingerprinter()`` gives the image's fingerprint when the caller shares one."""
        if decoded is NOT_DECODED:
            decoded = watermark.decode(image)
        if decoded is not None and decoded.third_party is None:
            asset = self.ledger.get(decoded.payload.hex())
            if asset is not None:
                return [Match(manifest_id=asset.manifest_label, asset_id=asset.asset_id,
                              method="watermark", confidence=float(decoded.confidence))]
        fp = fingerprinter() if fingerprinter is not None else fingerprint_image(image)
        return [Match(manifest_id=a.manifest_label, asset_id=a.asset_id, method="fingerprint",
                      distance=d) for a, d in self.ledger.by_fingerprint(fp, k=max_results)]

    def get_manifest(self, manifest_id: str) -> bytes | None:
        """The manifest store bytes for a manifest label (or an asset id)."""
        asset = self.ledger.by_manifest_label(manifest_id) or self.ledger.get(manifest_id)
        return self.ledger.manifest_store(asset.asset_id) if asset else None

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
    return parsed, {"label": parsed.get("active_manifest"), "state": state,
                    "sdk_state": sdk_state, "failures": failures,
                    "expected_failures": sorted(set(expected)),
                    "checked": "standalone manifest store (signature, certificate chain, "
                               "assertion hashes); its hard binding is to the issued bytes"}
