"""The evidence collectors, as a registry.

:data:`COLLECTORS` lists the collector factories in the order they run on a file (a
later one may read what an earlier one found: the watermark collector reuses the C2PA
collector's recovery). The verdict loops over it; scan's CSV columns, the JSON report
and the policy context are derived from it. A new kind of evidence is one new module
here with a :class:`~detect.evidence.base.Collector` plus one line in the list
(docs/detect.md shows an example).
"""

from __future__ import annotations

from provkit.detect.evidence.base import (
    AI_EDITED,
    AI_GENERATED,
    CAPTURE,
    NOT_CHECKED,
    STRENGTHS,
    BaseCollector,
    Collector,
    Evidence,
    FileContext,
    Found,
    Options,
    finding_of,
    not_checked,
)
from provkit.detect.evidence.c2pa import C2paCollector, classify_c2pa
from provkit.detect.evidence.classifier import ClassifierCollector, classifier_evidence
from provkit.detect.evidence.disclosure import DisclosureCollector, disclosure_evidence
from provkit.detect.evidence.duplicates import (
    DuplicatesCollector,
    check_index_sets,
    duplicates_evidence,
)
from provkit.detect.evidence.metadata import MetadataCollector, metadata_evidence
from provkit.detect.evidence.watermark import WatermarkCollector, watermark_evidence

#: Every collector, in the order it runs (and its CSV columns appear).
COLLECTORS: list = [
    C2paCollector,
    MetadataCollector,
    DisclosureCollector,
    WatermarkCollector,
    ClassifierCollector,
    DuplicatesCollector,
]


def csv_columns(collectors=None) -> tuple[tuple[str, object], ...]:
    """(column, cell function) of every collector, in registry order."""
    return tuple(col for c in (collectors or COLLECTORS) for col in c.columns)


__all__ = [
    "AI_EDITED",
    "AI_GENERATED",
    "CAPTURE",
    "COLLECTORS",
    "NOT_CHECKED",
    "STRENGTHS",
    "BaseCollector",
    "C2paCollector",
    "ClassifierCollector",
    "Collector",
    "DisclosureCollector",
    "DuplicatesCollector",
    "Evidence",
    "FileContext",
    "Found",
    "MetadataCollector",
    "Options",
    "WatermarkCollector",
    "check_index_sets",
    "classifier_evidence",
    "classify_c2pa",
    "csv_columns",
    "disclosure_evidence",
    "duplicates_evidence",
    "finding_of",
    "metadata_evidence",
    "not_checked",
    "watermark_evidence",
]
