"""Evidence items and the one small protocol every evidence collector follows.

An :class:`Evidence` is one typed, independent finding with a strength and a sentence.
A collector never raises for a capability that is missing or broken: that becomes an
item with finding ``"not checked"`` and the reason, so a report never passes silently
over something it did not look at. Only a file that cannot be read at all (BadInput)
stops that file.

Strengths, weakest first: ``none`` (a note), ``weak``, ``moderate``, ``strong``,
``decisive``. Findings that point to a verdict: ``ai-generated``, ``ai-edited`` and
``capture-claimed``; every other finding is context.

A collector (see :class:`Collector`) is made once per detector from the
:class:`Options` and then called per file with a :class:`FileContext`. It declares what
it contributes besides its evidence items: scan CSV ``columns``, keys of the JSON
report (:meth:`~Collector.report_json`) and parts of the policy context's ``asset``
(:meth:`~Collector.context`, given to :func:`provenance.core.context.asset`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from PIL import Image
from provkit.provenance.fingerprint import fingerprint_image

STRENGTHS = ("none", "weak", "moderate", "strong", "decisive")
NOT_CHECKED = "not checked"
AI_GENERATED, AI_EDITED, CAPTURE = "ai-generated", "ai-edited", "capture-claimed"


@dataclass(frozen=True)
class Evidence:
    """One finding: what was looked at (kind), what it says, how much it weighs, why."""

    kind: str
    finding: str
    strength: str
    detail: str
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.strength not in STRENGTHS:
            raise ValueError(f"unknown strength {self.strength!r}")

    @property
    def rank(self) -> int:
        return STRENGTHS.index(self.strength)

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "finding": self.finding,
            "strength": self.strength,
            "detail": self.detail,
            "data": self.data,
        }


def not_checked(kind: str, reason: str, **data) -> Evidence:
    return Evidence(kind, NOT_CHECKED, "none", f"Not checked: {reason}", data)


@dataclass(frozen=True)
class Options:
    """What a detector was configured with; each collector reads the part it needs.

    ``db`` is an open workspace database; ``probe`` and ``clip`` are paths/specs or
    loaded objects; ``trust`` the trust anchors verification uses (a PEM path or bytes) and ``trust_local``
    whether the workspace's own CA is trusted as well."""

    db: Any = None
    trust: Any = None
    trust_local: bool = True
    probe: Any = None
    clip: Any = None
    index_sets: tuple | None = None
    threshold: float = 0.8
    search_index: bool = True
    low_threshold: float | None = None  # the classifier's abstain band: (low, threshold)
    #: False: an expensive reader is skipped where its result cannot change the verdict or
    #: what decided it (the rule in docs/detect.md; the item says "not checked" and why);
    #: True: every collector reads everything.
    all_evidence: bool = False


@dataclass
class FileContext:
    """One file under examination: decoded once, hashed once, shared by every collector.

    ``found`` holds what the collectors before this one found (their name -> data), so
    a later collector can use an earlier one's result (the watermark collector reuses
    the mark that recovery read); ``evidence`` the items they gave so far (the order
    rule of docs/detect.md reads it)."""

    path: str
    image: Image.Image | None  # None: not a still image provkit decodes (PDF, audio, video)
    sha256: str
    options: Options
    found: dict = field(default_factory=dict)
    evidence: list = field(default_factory=list)
    _fingerprint: Any = field(default=None, repr=False)

    def fingerprint(self):
        """The image's perceptual fingerprint (its ``sha256`` field is the file's),
        computed once for every collector that needs it (recovery, the duplicates search)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint_image(self.image, sha256=self.sha256)
        return self._fingerprint


class Found(NamedTuple):
    """What :meth:`Collector.collect` returns: its items and its data for ``found``."""

    evidence: list[Evidence]
    data: Any = None


class Collector(Protocol):
    """One kind of evidence. Made once per detector: ``factory(options)``."""

    #: Its key in ``FileContext.found`` (and in docs/detect.md's table).
    name: str
    #: scan CSV columns: (column name, function of the JSON row giving the cell's text).
    columns: tuple[tuple[str, Callable[[dict], str]], ...]
    #: True: the detector calls :meth:`collect_many` once per chunk (it must not raise);
    #: False: :meth:`collect` per file.
    batched: bool

    def collect(self, ctx: FileContext) -> Found:
        """Evidence for one file; raises only BadInput for a file that cannot be read."""

    def collect_many(self, ctxs: Sequence[FileContext]) -> list[Found]:
        """The same for several files at once (a model runs batched)."""

    def report_json(self, data) -> dict:
        """Keys this collector adds to ``DetectReport.to_json()``."""

    def context(self, data) -> dict:
        """Keyword arguments for :func:`provenance.core.context.asset`."""


class BaseCollector:
    """Defaults for the optional parts of :class:`Collector`."""

    name = ""
    columns: tuple = ()
    batched = False
    pixels = True  # needs decoded pixels (False: runs on PDF, audio and video too)

    def __init__(self, options: Options):
        self.options = options

    def collect(self, ctx: FileContext) -> Found:  # pragma: no cover - every collector has one
        raise NotImplementedError

    def collect_many(self, ctxs: Sequence[FileContext]) -> list[Found]:
        return [self.collect(c) for c in ctxs]

    def report_json(self, data) -> dict:
        return {}

    def context(self, data) -> dict:
        return {}


def finding_of(kind: str) -> Callable[[dict], str]:
    """A CSV cell: the finding of the row's evidence item of ``kind`` ("" if none)."""

    def cell(row: dict) -> str:
        for e in row.get("evidence") or []:
            if e.get("kind") == kind:
                return e.get("finding") or ""
        return ""

    return cell
