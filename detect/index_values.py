"""The values the bank index returns: a bank, what an add did, one match."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from provkit.provenance.core import context


@dataclass(frozen=True)
class RefSet:
    """A bank and its size: what a match in it means (``action``), whether it takes part
    in matching (``enabled``) and its own match distances (None: the defaults)."""

    name: str
    label: str | None
    protected: bool
    description: str | None
    created: str
    items: int
    with_clip: int = 0
    clip_model: str | None = None
    action: str | None = None
    enabled: bool = True
    max_distance: dict | None = None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "protected": self.protected,
            "description": self.description,
            "created": self.created,
            "items": self.items,
            "with_clip": self.with_clip,
            "clip_model": self.clip_model,
            "action": self.action,
            "enabled": self.enabled,
            "max_distance": dict(self.max_distance) if self.max_distance else None,
        }


#: The one word: a bank (the class keeps its first name for one release).
Bank = RefSet


@dataclass(frozen=True)
class AddReport:
    """What one ``add`` did: counts, and the files that could not be used (with why)."""

    set: str
    added: int
    already_present: int
    errors: tuple[tuple[str, str], ...]
    seconds: float
    clip_model: str | None = None

    def to_json(self) -> dict:
        return {
            "set": self.set,
            "added": self.added,
            "already_present": self.already_present,
            "failed": len(self.errors),
            "errors": [{"path": p, "reason": r} for p, r in self.errors],
            "seconds": round(self.seconds, 3),
            "clip_model": self.clip_model,
        }


@dataclass(frozen=True)
class Match:
    """One bank item close to the query, and why it counts as a duplicate.

    ``set`` is the bank's name (``bank`` in JSON; ``set`` kept there one release).
    ``kind`` is the strongest signal that matched (pdq, phash, dhash, clip) and
    ``distance`` its value (bits; for clip, 1 - cosine similarity). ``distances``
    holds every hash distance (the closest over the item's crops). ``partner_id`` is
    the item's id in the partner's own list (an imported hash's id, or the ``id`` an
    image item was added with), ``metadata`` every column it came with, ``action`` what
    a match in the bank means (deny, review, label, allow; None: report only).
    """

    set: str
    item_id: int
    path: str
    kind: str
    distance: float
    distances: dict
    clip_similarity: float | None
    protected: bool
    label: str | None
    added: str
    sha256: str = ""
    exact: bool = False
    metadata: dict = field(default_factory=dict)
    #: the item's id in the list it was imported from (None for an image item)
    source_id: str | None = None
    partner_id: str | None = None
    action: str | None = None

    @property
    def bank(self) -> str:
        return self.set

    def to_json(self) -> dict:
        return {
            "bank": self.set,
            "partner_id": self.partner_id,
            "action": self.action,
            "set": self.set,
            "item_id": self.item_id,
            "path": self.path,
            "kind": self.kind,
            "distance": self.distance,
            "distances": dict(self.distances),
            "clip_similarity": self.clip_similarity,
            "protected": self.protected,
            "label": self.label,
            "added": self.added,
            "sha256": self.sha256,
            "exact": self.exact,
            "metadata": dict(self.metadata),
            "source_id": self.source_id,
        }

    def policy_json(self, now: datetime | None = None) -> dict:
        """This match as an ``asset.duplicates`` entry of a policy decision context
        (docs/architecture.md): ``item`` is the reference file's path (its id if the
        path is unknown), ``age_days`` how long ago the item was indexed."""
        return context.duplicate(self.to_json(), now)
