"""The policy decision context: its documented shape and the one builder of its ``asset``.

``SCHEMA`` is the whole context with the value a missing field takes (``None`` means
"not provided / not checked"; rules guard for it: ``asset.score != null && ...``). The
policy engine fills and prunes contexts by it; :func:`asset` is the only code that
builds an ``asset`` object (detect's verdict, generate's output check and the scan rows
all call it), so the shape is written here once. docs/architecture.md shows it.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from provkit.provenance.core.clock import utc_now
from provkit.provenance.core.vocabulary import CAUSES


class ListOf:
    """A schema list whose entries have the shape ``item``."""

    def __init__(self, item: dict):
        self.item = item


#: One field per failure cause (:data:`provenance.core.vocabulary.CAUSES`): true when a
#: failure of that cause was found (``asset.c2pa.causes.content_altered``).
CAUSE_FIELDS = {cause: False for cause in CAUSES}
#: An ingredient whose credentials failed: ``when`` ``added`` (its validator recorded the
#: failure) or ``now`` (re-validation found it), ``cause`` one of CAUSES.
FAILED_INGREDIENT = {"title": None, "when": None, "cause": None}
C2PA = {
    "state": None,
    "digital_source_type": None,
    "signer": None,
    "training_mining": {},
    "trust_source": None,
    "signals": {"inception": [], "transformation": []},
    "relation": None,
    "cause": None,
    "causes": CAUSE_FIELDS,
    "remote_url": None,
    "ingredients_failed": ListOf(FAILED_INGREDIENT),
}
WATERMARK = {"found": False, "scheme": None, "payload": None, "third_party": None}
METADATA = {"digital_source_type": None, "generator": None}
DUPLICATE = {
    "set": None,
    "protected": False,
    "kind": None,
    "distance": None,
    "age_days": None,
    "published": None,
    "label": None,
    "item": None,
    "bank": None,
    "action": None,
    "partner_id": None,
    "metadata": {},
}
#: Fields a prepared context (``policy check --context``) may leave out: they default to
#: "no failure cause found" and "no recovery relation measured" (older providers and
#: hand-written contexts predate them).
OPTIONAL_FIELDS = (
    "asset.c2pa.cause",
    "asset.c2pa.causes",
    "asset.c2pa.remote_url",
    "asset.c2pa.ingredients_failed",
    "asset.c2pa.relation",
)
#: AI-content disclosures the file carries (docs/compliance.md): the GB 45438 implicit
#: label (TC260 XMP, any producer's), the SB 942 latent fields, the visible labels.
DISCLOSURE = {
    "tc260": {
        "present": False,
        "label": None,
        "producer": None,
        "produce_id": None,
        "propagator": None,
        "propagate_id": None,
        "well_formed": None,
    },
    "sb942": {
        "present": False,
        "complete": False,
        "provider": None,
        "system": None,
        "version": None,
        "time": None,
        "id": None,
    },
    "visible_label": {"present": False, "regimes": [], "meets_gb_size": False},
}
ASSET = {
    "path": None,
    "sha256": None,
    "asset_id": None,
    "verdict": None,
    "score": None,
    "decided_by": [],
    "c2pa": C2PA,
    "watermark": WATERMARK,
    "metadata": METADATA,
    "duplicates": ListOf(DUPLICATE),
    "disclosure": DISCLOSURE,
}
SCHEMA: dict = {
    "point": None,
    "actor": {"id": None, "role": None, "org": None},
    "request": {
        "prompt": None,
        "negative_prompt": None,
        "backend": None,
        "model": None,
        "allow_training": False,
    },
    "asset": ASSET,
    "now": None,
    "params": {},
}


def _fill(shape: dict, given: dict | None) -> dict:
    given = given or {}
    out = {}
    for key, default in shape.items():
        value = given.get(key)
        out[key] = copy.deepcopy(default) if value is None else value
    return out


#: Item metadata keys that give the date an item was first published or first seen, in
#: the order they are looked for (``provkit index add --metadata published=2019-03-14``).
PUBLISHED_KEYS = ("published", "first_seen", "date_published", "date_taken")


def parse_when(value) -> datetime | None:
    """An aware datetime from an ISO date or date-time (EXIF ``2019:03:14 10:00:00`` too)."""
    if value is None:
        return None
    text = str(value).strip()
    if len(text) >= 10 and text[4] == ":" and text[7] == ":":  # EXIF DateTimeOriginal
        text = text[:10].replace(":", "-") + text[10:]
    try:
        when = datetime.fromisoformat(text)  # "Z" too (Python 3.11+)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def duplicate(match: dict, now: datetime | None = None) -> dict:
    """A near-duplicate match (``detect.index.Match.to_json()``) as an ``asset.duplicates``
    entry: ``item`` is the reference file's path (its id if the path is unknown),
    ``bank`` the bank it is in (``set``: the same, its old name, kept one release),
    ``action`` what a match there means (deny, review, label, allow, or None) and
    ``partner_id`` the item's id in the partner's own list and ``metadata`` the item's
    own fields (a partner list's columns: category, tags...).

    ``published`` is the item's own first-published (or first-seen) date from its
    metadata (:data:`PUBLISHED_KEYS`), else None; ``age_days`` counts from that date, or,
    when the item has none, from when it was indexed."""
    now = now or utc_now()
    meta = match.get("metadata") or {}
    published_at = next((w for w in (parse_when(meta.get(k)) for k in PUBLISHED_KEYS) if w), None)
    since = published_at or parse_when(match.get("added"))
    age = None if since is None else max(0.0, (now - since).total_seconds() / 86400)
    item = match.get("path") or match.get("source_id") or match.get("item_id")
    bank = match.get("bank") or match.get("set")
    partner = match.get("partner_id") or match.get("source_id")
    return {
        "set": bank,
        "protected": bool(match.get("protected")),
        "kind": match.get("kind"),
        "distance": match.get("distance"),
        "age_days": age,
        "published": published_at.date().isoformat() if published_at else None,
        "label": match.get("label"),
        "item": None if item is None else str(item),
        "bank": bank,
        "action": match.get("action"),
        "partner_id": None if partner is None else str(partner),
        "metadata": dict(meta),
    }


def _c2pa(given: dict | None) -> dict:
    """``asset.c2pa``: ``signals`` holds the credible signal names only, ``trust_source``
    defaults to the signer's, ``causes`` has one boolean per cause (the primary ``cause``
    among them), ``ingredients_failed`` the failed ingredients."""
    out = _fill({k: v for k, v in C2PA.items() if k != "ingredients_failed"}, given)
    causes = out["causes"] if isinstance(out["causes"], dict) else {}
    out["causes"] = {c: bool(causes.get(c)) for c in CAUSES}
    if out["cause"] is not None and out["cause"] in out["causes"]:
        out["causes"][out["cause"]] = True
    out["ingredients_failed"] = [
        _fill(FAILED_INGREDIENT, i)
        for i in (given or {}).get("ingredients_failed") or []
        if isinstance(i, dict)
    ]
    signals = out["signals"] or {}
    out["signals"] = {
        "inception": list(signals.get("inception") or []),
        "transformation": list(signals.get("transformation") or []),
    }
    if out["trust_source"] is None and isinstance(out["signer"], dict):
        out["trust_source"] = out["signer"].get("trust_source")
    return out


def _disclosure(given: dict | None) -> dict:
    """``asset.disclosure`` in its documented shape (each part filled by its defaults)."""
    given = given or {}
    return {key: _fill(shape, given.get(key)) for key, shape in DISCLOSURE.items()}


def asset(
    *,
    path=None,
    sha256=None,
    asset_id=None,
    verdict=None,
    score=None,
    c2pa=None,
    watermark=None,
    metadata=None,
    duplicates=(),
    decided_by=(),
    now: datetime | None = None,
    disclosure: dict | None = None,
) -> dict:
    """The ``asset`` object of a decision context, in the documented shape.

    Each part takes the documented fields of what it is given (a missing or None field
    gets its default; other fields are dropped); ``duplicates`` are match dicts
    (``Match.to_json()``) or entries already made by :func:`duplicate`.
    """
    now = now or utc_now()
    wm = _fill(WATERMARK, watermark)
    wm["found"] = bool(wm["found"])
    return {
        "path": None if path is None else str(path),
        "sha256": sha256,
        "asset_id": asset_id,
        "verdict": verdict,
        "score": score,
        "decided_by": list(decided_by or ()),
        "c2pa": _c2pa(c2pa),
        "watermark": wm,
        "metadata": _fill(METADATA, metadata),
        "duplicates": [
            _fill(DUPLICATE, d if "age_days" in d else duplicate(d, now)) for d in duplicates
        ],
        "disclosure": _disclosure(disclosure),
    }
