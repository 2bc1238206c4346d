"""Recovering stripped credentials: from pixels back to the manifest they were issued with.

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
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from policies.errors import BadInput, Refused
from provenance import imageio
from provenance.ledger import Ledger
from provenance.manifest import ASSET_ASSERTION
from provenance.verify import HARD_BINDING_CODES, _codes, state_from_codes

#: Alg name of the fingerprint matcher (not a registered soft-binding alg).
FINGERPRINT_ALG = "io.provkit.fingerprint.pdq-phash"
#: ``decoded`` default of :meth:`SoftBindingResolver.match_by_content`: decode it there.
NOT_DECODED = object()


def _watermark():
    try:
        from provenance import watermark
    except ImportError:
        return None
    return watermark if hasattr(watermark, "decode") else None


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
        self.ledger = db if isinstance(db, Ledger) else Ledger(db, create=False)

    def supported_algorithms(self) -> dict:
        wm = _watermark()
        marks = [{"alg": wm.SOFT_BINDING_ALG}] if wm else []
        return {"watermarks": marks, "fingerprints": [{"alg": FINGERPRINT_ALG}]}

    def match_by_binding(self, alg: str, value: str | bytes) -> list[Match]:
        """Entries whose soft-binding value (asset id: hex, base64 or 8 bytes) is ``value``."""
        wm = _watermark()
        if wm is None or alg != wm.SOFT_BINDING_ALG:
            return []
        asset_id = _asset_id_from(value)
        asset = self.ledger.get(asset_id) if asset_id else None
        if asset is None:
            return []
        return [Match(manifest_id=asset.manifest_label, asset_id=asset.asset_id,
                      method="watermark", confidence=1.0)]

    def match_by_content(self, image: Image.Image, *, max_results: int = 5,
                         decoded=NOT_DECODED) -> list[Match]:
        """Entries matching the pixels: the watermark's asset id, else fingerprints.

        ``decoded``: the watermark the caller already read from ``image`` (the
        ``watermark.decode`` result, None for no mark), so it is not decoded twice."""
        if decoded is NOT_DECODED:
            wm = _watermark()
            decoded = wm.decode(image) if wm is not None else None
        if decoded is not None and decoded.third_party is None:
            asset = self.ledger.get(decoded.payload.hex())
            if asset is not None:
                return [Match(manifest_id=asset.manifest_label, asset_id=asset.asset_id,
                              method="watermark", confidence=float(decoded.confidence))]
        from provenance.fingerprint import fingerprint_image

        fp = fingerprint_image(image)
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
    import json

    import c2pa

    from provenance.manifest import context

    ctx = context(trust_anchors=trust_pem)
    reader = c2pa.Reader("application/c2pa", io.BytesIO(store), context=ctx)
    try:
        parsed = json.loads(reader.json())
        sdk_state = (reader.get_validation_state() or "invalid").lower()
    finally:
        reader.close()
    results = parsed.get("validation_results")
    all_fails = _codes(results)
    expected = [c for c in all_fails if c in HARD_BINDING_CODES]
    failures = [c for c in all_fails if c not in HARD_BINDING_CODES]
    state = state_from_codes(failures, _codes(results, "success"))
    return parsed, {"label": parsed.get("active_manifest"), "state": state,
                    "sdk_state": sdk_state, "failures": failures,
                    "expected_failures": sorted(set(expected)),
                    "checked": "standalone manifest store (signature, certificate chain, "
                               "assertion hashes); its hard binding is to the issued bytes"}


def recover_report(report, *, db=None, trust_anchors=None, trust_local: bool = True,
                   image: Image.Image | None = None):
    """Turn an ``absent`` report into ``recovered`` when the ledger knows the pixels.

    ``image``: the file's decoded pixels, if the caller has them. The watermark is
    decoded once, here, and handed to the resolver."""
    from provenance.verify import explain, report_from_store, trust_pem

    image = image if image is not None else imageio.open_image(report.path)
    wm = _watermark()
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


def recover(path, out_path, *, db=None, identity=None, trust_anchors=None,
            force: bool = False) -> dict:
    """Re-attach recovered credentials: sign ``path`` into ``out_path`` with a new manifest
    (``c2pa.opened`` the recovered manifest as parentOf, then ``c2pa.repackaged``).

    An existing ``out_path`` is refused unless ``force``."""
    import c2pa

    from provenance import keys
    from provenance.files import atomic_file
    from provenance.issue import encode, resolve_output
    from provenance.manifest import provkit_agent, soft_binding_assertion
    from provenance.verify import read_c2pa, trust_pem

    src = Path(path)
    out = Path(out_path)
    src_mime = imageio.sniff(src)
    out_mime = resolve_output(out, src_path=src, src_mime=src_mime, force=force)
    current = read_c2pa(src, trust_anchors=trust_anchors)
    if current.state != "absent" or current.remote_url:
        raise BadInput(f"already carries a C2PA manifest (state {current.state}); nothing to "
                       "recover", path=src)
    image = imageio.open_image(src)
    resolver = SoftBindingResolver(db)
    matches = resolver.match_by_content(image)
    if not matches:
        raise Refused("no issued asset matches this image (no known watermark, no fingerprint "
                      "within the match distance)", path=src)
    match = matches[0]
    store = resolver.get_manifest(match.manifest_id)
    parsed, summary = revalidate(store, trust_pem=trust_pem(trust_anchors))
    if summary["state"] == "invalid":
        raise Refused(f"the recovered manifest does not re-validate ({summary['failures']})",
                      path=src)
    payload = src.read_bytes() if out_mime == src_mime else encode(image, out_mime, path=out)
    assertions = [{"label": "c2pa.actions.v2", "data": {"actions": [
        {"action": "c2pa.opened", "parameters": {"ingredientIds": ["recovered"]}},
        {"action": "c2pa.repackaged", "softwareAgent": provkit_agent(),
         "parameters": {"recovered_by": match.recovered_by()}},
    ]}}, {"label": ASSET_ASSERTION, "data": {"asset_id": match.asset_id}}]
    wm = _watermark()
    if match.method == "watermark" and wm is not None:
        assertions.append(soft_binding_assertion(wm.SOFT_BINDING_ALG, match.asset_id))
    asset = resolver.ledger.get(match.asset_id)
    # The recovered store becomes the parent ingredient's manifest, with the results of
    # its standalone re-validation recorded beside it.
    ingredient = {"title": Path(asset.path or f"{match.asset_id}").name, "relationship": "parentOf",
                  "label": "recovered", "format": asset.mime or src_mime,
                  "active_manifest": summary["label"],
                  "validation_results": parsed.get("validation_results"),
                  "manifest_data": {"format": "application/c2pa",
                                    "identifier": "recovered.c2pa"}}
    definition = {"claim_generator_info": [provkit_agent()], "title": out.name,
                  "ingredients": [ingredient], "assertions": assertions}
    identity = identity or keys.load_or_init()

    def write(f):
        builder = c2pa.Builder(definition)
        try:
            builder.add_resource("recovered.c2pa", io.BytesIO(store))
            signer = identity.c2pa_signer()
            try:
                builder.sign(signer, out_mime, io.BytesIO(payload), f)
            finally:
                signer.close()
        finally:
            builder.close()

    try:
        with atomic_file(out, overwrite=force) as f:
            write(f)
    except FileExistsError:
        raise BadInput("output already exists (use --force to replace it)", path=out) from None
    except (c2pa.C2paError, OSError) as e:
        raise BadInput(f"signing failed: {e}", path=out) from None
    return {"path": str(out), "asset_id": match.asset_id, "recovered_by": match.recovered_by(),
            "recovered_manifest": summary["label"], "signer": identity.signer_json()}
