"""detect: is this image AI-made, and have we seen it before?

Evidence collectors (C2PA, metadata, watermarks, a CLIP classifier, near-duplicates in
reference sets) feed one verdict that names the items that decided it; ``scan`` runs
the same over folders in parallel. Heavy parts (torch, open_clip) load only when used.

    from detect import detect
    report = detect("upload.jpg", probe="probe.json")       # one path -> one DetectReport
    reports = detect(["a.jpg", "b.png"], db="work.db")     # many -> a list, errors in place
    report.verdict, [e.kind for e in report.decided_by], report.to_json()

Every ``provkit`` verb of this package has a function of the same name here:
``detect``, ``train`` (detect train), ``dupes``, and ``detect.scan.scan``; the ``index`` verbs are
``detect.reference_sets.add/list_/stats/remove``. Exports load on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "detect": "detect.verdict",
    "Detector": "detect.verdict",
    "DetectReport": "detect.verdict",
    "policy_context_for_file": "detect.verdict",
    "combine": "detect.verdict",
    "Evidence": "detect.evidence",
    "read_metadata": "detect.metadata",
    "load_model": "detect.clip",
    "ClipModel": "detect.clip",
    "Probe": "detect.classifier",
    "train": "detect.classifier",
    "train_probe": "detect.classifier",
    "ScanSummary": "detect.scan",
    "ReferenceIndex": "detect.index",
    "Match": "detect.index",
    "dupes": "detect.reference_sets",
    "DupesReport": "detect.reference_sets",
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
