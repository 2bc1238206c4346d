"""``provkit recover``: re-attach recovered credentials to a stripped image as a new
manifest whose parentOf ingredient is the recovered one.

Only a copy whose pixels are the issued asset's, the same or honestly transformed
(:mod:`provenance.relation`), gets credentials; the new manifest records what was done
to it as measured (``c2pa.resized``, ``c2pa.cropped``, ``c2pa.transcoded``; a border as
``c2pa.edited``), and ``c2pa.repackaged`` only for the very same pixels. A locally edited
copy, or a picture that only carries the mark, is refused with the reason."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from provkit.provenance import keys, watermark
from provkit.provenance.core import imageio
from provkit.provenance.core.errors import BadInput, Refused
from provkit.provenance.core.files import atomic_file
from provkit.provenance.issue import resolve_output
from provkit.provenance.manifest import (
    ASSET_ASSERTION,
    new_builder,
    provkit_agent,
    soft_binding_assertion,
)
from provkit.provenance.recovery import _RANK, file_size
from provkit.provenance.resolver import SoftBindingResolver, revalidate
from provkit.provenance.trust import resolve as resolve_trust
from provkit.provenance.verify import read_c2pa

#: Assertions of the recovered manifest that the new one repeats: who made the image and
#: what it may be used for (an author, a do-not-train rule) survive the recovery.
REPEATED_ASSERTIONS = (
    "stds.schema-org.CreativeWork",
    "cawg.training-mining",
    "c2pa.training-mining",
)


def _what_it_said(parsed: dict) -> dict:
    """The recovered active manifest's source type (IRI) and the assertions to repeat."""
    manifest = (parsed.get("manifests") or {}).get(parsed.get("active_manifest")) or {}
    source_type, repeated = None, []
    for a in manifest.get("assertions") or []:
        label = str(a.get("label", ""))
        base = label.split("__", 1)[0]
        if base in ("c2pa.actions", "c2pa.actions.v2") and source_type is None:
            for action in (a.get("data") or {}).get("actions") or []:
                if action.get("digitalSourceType"):
                    source_type = action["digitalSourceType"]
                    break
        elif base in REPEATED_ASSERTIONS and a.get("data") is not None:
            repeated.append({"label": base, "data": a["data"]})
    return {"source_type": source_type, "assertions": repeated}


@dataclass(frozen=True)
class Recovered:
    """What ``provkit recover`` wrote: the new file and the issued asset it names."""

    path: str
    asset_id: str
    recovered_by: dict
    recovered_manifest: str | None
    signer: dict
    #: How the copy relates to the issued asset, and the actions recorded for it.
    relation: dict | None = None
    actions: list | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def recover(
    path, out_path, *, db=None, identity=None, trust=None, force: bool = False
) -> Recovered:
    """Re-attach recovered credentials: sign ``path`` into ``out_path`` with a new manifest
    (``c2pa.opened`` the recovered manifest as parentOf, then the actions measured by
    :func:`copy_actions`) that repeats what the original said: its digital source type,
    author and training rules.

    An existing ``out_path`` is refused unless ``force``."""
    import c2pa

    src = Path(path)
    out = Path(out_path)
    src_mime = imageio.sniff(src)
    out_mime = resolve_output(out, src_path=src, src_mime=src_mime, force=force)
    resolved = resolve_trust(trust)
    current = read_c2pa(src, trust=resolved)
    if current.state != "absent" or current.remote_url:
        raise BadInput(
            f"already carries a C2PA manifest (state {current.state}); nothing to recover", path=src
        )
    image = imageio.open_image(src)
    resolver = SoftBindingResolver(db)
    found = resolver.identify(image, size=file_size(src))
    found = [f for f in found if f[0].method == "watermark" or f[1].cls != "not-this-asset"]
    if not found:
        raise Refused(
            "no issued asset matches this image (no known watermark, no fingerprint "
            "within the match distance)",
            path=src,
        )
    match, relation = min(found, key=lambda f: _RANK[f[1].cls])
    if not relation.identifies:
        raise Refused(
            f"the {match.method} names asset {match.asset_id}, but "
            + relation.sentence()[0].lower()
            + relation.sentence()[1:].rstrip(".")
            + "; its credentials are not re-attached",
            path=src,
        )
    store = resolver.get_manifest(match.manifest_id)
    parsed, summary = revalidate(store, trust_pem=resolved.pem())
    if summary["state"] == "invalid":
        raise Refused(
            f"the recovered manifest does not re-validate ({summary['failures']})", path=src
        )
    payload = (
        src.read_bytes() if out_mime == src_mime else imageio.encode(image, out_mime, path=out)
    )
    said = _what_it_said(parsed)
    opened = {"action": "c2pa.opened", "parameters": {"ingredientIds": ["recovered"]}}
    if said["source_type"]:  # the new manifest repeats how the original was made
        opened["digitalSourceType"] = said["source_type"]
    steps = copy_actions(
        relation,
        src_mime=src_mime,
        out_mime=out_mime,
        issued_mime=(resolver.ledger.get(match.asset_id).mime or src_mime),
    )
    for step in steps:
        step["softwareAgent"] = provkit_agent()
    steps[-1].setdefault("parameters", {})["recovered_by"] = match.recovered_by()
    assertions = [
        {"label": "c2pa.actions.v2", "data": {"actions": [opened, *steps]}},
        {"label": ASSET_ASSERTION, "data": {"asset_id": match.asset_id}},
        *said["assertions"],
    ]
    if match.method == "watermark":
        assertions.append(soft_binding_assertion(watermark.SOFT_BINDING_ALG, match.asset_id))
    asset = resolver.ledger.get(match.asset_id)
    # The recovered store becomes the parent ingredient's manifest, with the results of
    # its standalone re-validation recorded beside it.
    ingredient = {
        "title": Path(asset.path or f"{match.asset_id}").name,
        "relationship": "parentOf",
        "label": "recovered",
        "format": asset.mime or src_mime,
        "active_manifest": summary["label"],
        "validation_results": parsed.get("validation_results"),
        "manifest_data": {"format": "application/c2pa", "identifier": "recovered.c2pa"},
    }
    definition = {
        "claim_generator_info": [provkit_agent()],
        "title": out.name,
        "ingredients": [ingredient],
        "assertions": assertions,
    }
    identity = identity or keys.for_signing()

    def write(f):
        builder = new_builder(definition)
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
    return Recovered(
        path=str(out),
        asset_id=match.asset_id,
        recovered_by=match.recovered_by(),
        recovered_manifest=summary["label"],
        signer=identity.signer_json(),
        relation=relation.to_json(),
        actions=[a["action"] for a in steps],
    )


def copy_actions(relation, *, src_mime: str, out_mime: str, issued_mime: str) -> list[dict]:
    """The C2PA actions that turned the issued picture into this copy, as measured."""
    out = []
    crop = {k: v for k, v in (relation.crop or {}).items() if v >= 0.005}
    if crop:
        out.append(
            {
                "action": "c2pa.cropped",
                "parameters": {
                    "description": "cropped "
                    + ", ".join(f"{k} {v:.1%}" for k, v in crop.items())
                    + " of the issued picture (measured)",
                    "crop": crop,
                },
            }
        )
    if relation.scale is not None and abs(relation.scale - 1) > 0.01:
        out.append(
            {
                "action": "c2pa.resized",
                "parameters": {
                    "description": f"resized to {relation.scale:.3f}x the issued size (measured)",
                    "scale": relation.scale,
                },
            }
        )
    padded = {k: v for k, v in (relation.padding or {}).items() if v > 0}
    if padded:
        out.append(
            {
                "action": "c2pa.edited",
                "parameters": {
                    "description": "a uniform border added ("
                    + ", ".join(f"{k} {v} px" for k, v in padded.items())
                    + ")"
                },
            }
        )
    reencoded = (relation.noise or 0) >= 0.5 or src_mime != issued_mime or out_mime != src_mime
    if reencoded:
        out.append(
            {
                "action": "c2pa.transcoded",
                "parameters": {
                    "description": f"re-encoded ({issued_mime} issued, {out_mime} written; "
                    f"pixel noise {relation.noise or 0:.1f} grey levels)"
                },
            }
        )
    if not out:  # the issued pixels, in the issued format: only the container changed
        out.append(
            {
                "action": "c2pa.repackaged",
                "parameters": {"description": "the issued pixels, stripped of their credentials"},
            }
        )
    return out
