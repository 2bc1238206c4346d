"""detect: is this image AI-made, and have we seen it before?

Evidence collectors (C2PA, metadata, watermarks, a CLIP classifier, near-duplicates in
reference sets) feed one verdict that names the items that decided it; ``scan`` runs
the same over folders in parallel. Heavy parts (torch, open_clip) load only when used.

    from provkit.detect import detect
    report = detect("upload.jpg", probe="probe.json")       # one path -> one DetectReport
    reports = detect(["a.jpg", "b.png"], db="work.db")     # many -> a list, errors in place
    report.verdict, [e.kind for e in report.decided_by], report.to_json()

Every ``provkit`` verb of this package has a function of the same name here:
``detect``, ``train`` (detect train), ``dupes``, and ``detect.scan.scan``; the ``index`` verbs are
``detect.reference_sets.add/list_/stats/remove``. Exports load on first use.
"""

from __future__ import annotations

import importlib
import sys
import types

_EXPORTS = {
    "detect": "provkit.detect.verdict",
    "Detector": "provkit.detect.verdict",
    "DetectReport": "provkit.detect.verdict",
    "policy_context_for_file": "provkit.detect.verdict",
    "combine": "provkit.detect.verdict",
    "Evidence": "provkit.detect.evidence",
    "read_metadata": "provkit.detect.metadata",
    "load_model": "provkit.detect.clip",
    "ClipModel": "provkit.detect.clip",
    "Probe": "provkit.detect.classifier",
    "train": "provkit.detect.classifier",
    "train_probe": "provkit.detect.classifier",
    "ScanSummary": "provkit.detect.scan",
    "ReferenceIndex": "provkit.detect.index",
    "Match": "provkit.detect.index",
    "dupes": "provkit.detect.reference_sets",
    "DupesReport": "provkit.detect.reference_sets",
}

__all__ = [  # noqa: RUF022 (grouped by module, as in _EXPORTS)
    "detect",
    "Detector",
    "DetectReport",
    "policy_context_for_file",
    "combine",
    "Evidence",
    "read_metadata",
    "load_model",
    "ClipModel",
    "Probe",
    "train",
    "train_probe",
    "ScanSummary",
    "ReferenceIndex",
    "Match",
    "dupes",
    "DupesReport",
]


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        return getattr(module, name)
    raise AttributeError(f"module 'detect' has no attribute {name!r}")


class _Verb(types.ModuleType):
    """The package is also its verb: ``provkit.detect(...)`` calls ``provkit.detect.detect(...)``
    (the CLI's ``provkit detect``), so one name serves both."""

    def __call__(self, *args, **kwargs):
        return self.detect(*args, **kwargs)


sys.modules[__name__].__class__ = _Verb
