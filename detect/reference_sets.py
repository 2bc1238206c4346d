"""The ``provkit bank`` verbs (add, import, export, list, stats, set, remove, remove-item)
and ``provkit dupes``. (``provkit index`` is the old name of the group, kept one release.)

Each takes ``db`` (a path, a Database or None for the workspace database) and returns
a small value with ``to_json()``; :class:`detect.index.ReferenceIndex` does the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from provkit.detect.index import AddReport, ReferenceIndex, RefSet
from provkit.detect.index_bank import ExportReport, ImportReport, index_export, index_import
from provkit.detect.index_inputs import read_sources
from provkit.provenance.core.errors import BadInput, ConfigError


def add(
    name: str,
    sources: Iterable,
    *,
    db=None,
    label: str | None = None,
    protected: bool = False,
    description: str | None = None,
    action: str | None = None,
    metadata: dict | None = None,
    clip=None,
    crops: bool = True,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> AddReport:
    """``provkit bank add``: images from folders, image files or list files into set
    ``name`` (created if new). ``on_start(n)`` is called once the files are known."""
    paths, item_meta = [], {}
    for source in sources:
        p, m = read_sources(source)
        paths += p
        item_meta.update(m)
    if on_start:
        on_start(len(paths))
    return ReferenceIndex(db).add(
        name,
        paths,
        label=label,
        protected=protected,
        description=description,
        action=action,
        clip=clip,
        metadata=metadata,
        item_metadata=item_meta,
        crops=crops,
        workers=workers,
        progress=progress,
    )


def list_(db=None) -> list[RefSet]:
    """``provkit bank list``: every bank, by name, with its action and matching switch."""
    return ReferenceIndex(db).sets()


_UNSET = object()


def set_(
    name: str,
    *,
    db=None,
    action=_UNSET,
    enabled: bool | None = None,
    max_distance=_UNSET,
    label: str | None = None,
    description: str | None = None,
) -> RefSet:
    """``provkit bank set``: change bank ``name``'s action (deny, review, label, allow or
    None), whether it takes part in matching, its own match distances per kind
    (``{"pdq": 20}``; None for the defaults), label or description. Items stay."""
    options = {
        k: v for k, v in (("action", action), ("max_distance", max_distance)) if v is not _UNSET
    }
    return ReferenceIndex(db).configure(
        name, enabled=enabled, label=label, description=description, **options
    )


@dataclass(frozen=True)
class ItemsRemoved:
    """``provkit bank remove-item``: how many items went, and the ids that matched none."""

    bank: str
    removed_items: int
    not_found: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "bank": self.bank,
            "removed_items": self.removed_items,
            "not_found": list(self.not_found),
        }


def remove_item(name: str, ids: Sequence, *, db=None) -> ItemsRemoved:
    """Items of bank ``name`` removed by the partner's id (an imported hash's id, or the
    ``id`` an image item was added with), provkit's item id, or an image's stored path."""
    index = ReferenceIndex(db)
    index.get_set(name)
    removed, missing = 0, []
    for item in dict.fromkeys(str(i) for i in ids):
        n = index.remove(name, [item])
        removed += n
        if not n:
            missing.append(item)
    return ItemsRemoved(name, removed, tuple(missing))


@dataclass(frozen=True)
class SetStats:
    """``provkit bank stats``: a set's size and fingerprint health."""

    values: dict

    def to_json(self) -> dict:
        return dict(self.values)


def stats(name: str, db=None) -> SetStats:
    return SetStats(ReferenceIndex(db).stats(name))


@dataclass(frozen=True)
class Removed:
    """``provkit bank remove``: what went."""

    set: str
    removed_items: int
    removed_set: bool

    def to_json(self) -> dict:
        return dict(self.__dict__)


def remove(name: str, items: Sequence | None = None, *, db=None) -> Removed:
    """A whole bank, or only some of its items (partner ids, item ids or stored paths)."""
    n = ReferenceIndex(db).remove(name, list(items) if items else None)
    return Removed(name, n, not items)


@dataclass(frozen=True)
class DupesReport:
    """The near-duplicates of one file (``error`` when the file could not be read)."""

    path: str
    matches: tuple = ()
    clip_not_checked: dict = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict:
        out = {"path": self.path, "matches": [m.to_json() for m in self.matches]}
        if self.clip_not_checked:
            out["clip_not_checked"] = dict(self.clip_not_checked)
        if self.error is not None:
            out["error"] = self.error
        return out


def dupes(
    files: Sequence,
    *,
    sets: Sequence[str] | None = None,
    max_distance=None,
    k: int = 10,
    clip=None,
    db=None,
    progress: Callable[[int], None] | None = None,
) -> list[DupesReport]:
    """``provkit dupes``: near-duplicates of each file in the banks.

    A file that cannot be read gets a report with its ``error`` (the others go on); no
    reference sets at all, or an unknown set name, is a ConfigError/BadInput at once."""
    index = ReferenceIndex(db)
    if not index.set_names():
        raise ConfigError("no banks in this workspace; add one with `provkit bank add NAME DIR`")
    for name in sets or ():
        index.get_set(name)
    out = []
    for f in files:
        try:
            matches = index.search(
                f, sets=list(sets) if sets else None, max_distance=max_distance, k=k, clip=clip
            )
            out.append(DupesReport(str(f), tuple(matches), dict(index.clip_not_checked or {})))
        except BadInput as e:
            if e.path is None:
                raise
            out.append(DupesReport(str(f), error=e.reason))
        if progress:
            progress(1)
    return out


def import_(name: str, file, *, kind: str = "pdq", db=None, **options) -> ImportReport:
    """``provkit bank import``: a hash list (CSV/TSV, JSONL, ThreatExchange/HMA export)
    into bank ``name``, each item with the partner's id and metadata; ``action=`` says
    what a match there means. See :func:`detect.index_bank.index_import`."""
    return index_import(name, file, kind=kind, db=db, **options)


def export(name: str, out, *, db=None) -> ExportReport:
    """``provkit bank export``: every hash of bank ``name`` to ``out`` (.csv/.tsv/.jsonl)."""
    return index_export(name, out, db=db)
