"""The picture against the thumbnails its credentials carry: hints, never validations
(how a report refers to the thumbnails themselves is :mod:`provenance.thumbnails`).

:func:`thumbnail_check` compares the current pixels with the manifest's claim thumbnail
(PDQ at the thumbnail's size) when the hard binding fails; :func:`compare_ingredients`
does the same for an ingredient that failed when it was added (the picture as added
against the thumbnail its own manifest signed). :mod:`provenance.causes` reads these
comparisons: "content altered" only when a picture is shown to differ.
"""

from __future__ import annotations

import io

from PIL import Image
from provkit.provenance.core import imageio
from provkit.provenance.core.errors import describe
from provkit.provenance.manifest import resource_bytes
from provkit.provenance.status import entries as status_entries
from provkit.provenance.status import hard_binding_kind


def _resource(c2pa, reader, ref) -> bytes | None:
    return resource_bytes(reader, ref.get("identifier") if isinstance(ref, dict) else None)


def ingredient_thumbnails(c2pa, reader, store: dict) -> dict:
    """For each ingredient of the active manifest whose recorded validation has a
    hard-binding failure: ``{index: (thumbnail of the ingredient as added, claim
    thumbnail of its own manifest)}``, the two pictures to compare."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    out = {}
    for i, ing in enumerate(active.get("ingredients") or []):
        recorded = status_entries(ing.get("validation_results")) or [
            {
                "code": s.get("code"),
                "hard_binding": hard_binding_kind(s.get("code") or "", s.get("explanation")),
            }
            for s in ing.get("validation_status") or []
            if isinstance(s, dict)
        ]
        if not any(e.get("hard_binding") for e in recorded):
            continue
        child = manifests.get(ing.get("active_manifest")) or {}
        added = _resource(c2pa, reader, ing.get("thumbnail"))
        signed = _resource(c2pa, reader, child.get("thumbnail"))
        if added and signed:
            out[i] = (added, signed)
        if len(out) >= 8:
            break
    return out


def compare_ingredients(ingredients: list, thumbs: dict) -> list:
    """The top-level ingredient nodes with ``thumbnail_check``: the picture as it was
    added against the thumbnail its own manifest signed (a hint, as for the file)."""
    out = []
    for i, node in enumerate(ingredients):
        if i in thumbs and isinstance(node, dict):
            added, signed = thumbs[i]
            try:
                with Image.open(io.BytesIO(added)) as img:
                    img.load()
                    now = imageio.to_rgb(img)
            except Exception:  # noqa: BLE001 - a thumbnail that does not decode is no evidence
                out.append(node)
                continue
            node = dict(node, thumbnail_check=thumbnail_check(None, signed, None, image=now))
        out.append(node)
    return out


def thumbnail_bytes(c2pa, reader, store: dict) -> bytes | None:
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest")) or {}
    return resource_bytes(reader, (manifest.get("thumbnail") or {}).get("identifier"))


#: PDQ distance (of 256 bits) under which the picture is taken to still look like its
#: thumbnail (PDQ's own confident-match threshold is 31).
THUMBNAIL_MATCH_BITS = 31


def thumbnail_check(path, thumb: bytes, thumbnail: dict | None, *, image=None) -> dict:
    """The current pixels against the manifest's claim thumbnail, both at the
    thumbnail's size: PDQ distance and a sentence. A hint, never a validation: a
    thumbnail is small and made by the signer."""
    import numpy as np  # only here: a credential-bearing file is verified without numpy
    from provkit.provenance.fingerprint import _pdq, hamming

    out = {"hint": True, "thumbnail": dict(thumbnail or {})}
    try:
        small = Image.open(io.BytesIO(thumb))
        small.load()
        small = imageio.to_rgb(small)
        current = image if image is not None else imageio.load_rgb(path)
        current = imageio.to_rgb(current).resize(small.size, Image.BILINEAR)
        a, qa = _pdq(np.asarray(small))
        b, qb = _pdq(np.asarray(current))
    except Exception as e:  # noqa: BLE001  # a hint that cannot be computed says so
        return out | {
            "distance": None,
            "sentence": f"The picture could not be compared with its thumbnail ({describe(e)}).",
        }
    distance = hamming(a, b)
    looks = distance <= THUMBNAIL_MATCH_BITS
    out.update(
        distance=distance, threshold=THUMBNAIL_MATCH_BITS, looks_alike=looks, quality=[qa, qb]
    )
    if looks:
        out["sentence"] = (
            f"Hint, not a validation: the picture still looks like the thumbnail "
            f"signed with it (PDQ distance {distance} of 256 bits)."
        )
    else:
        out["sentence"] = (
            f"Hint, not a validation: the picture no longer looks like the "
            f"thumbnail signed with it (PDQ distance {distance} of 256 bits)."
        )
    return out
