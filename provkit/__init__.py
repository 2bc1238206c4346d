"""provkit: provenance for images — sign, watermark, verify, detect, and decide.

The everyday verbs carry the CLI's names and arguments::

    import provkit

    provkit.sign("photo.jpg", "signed.jpg", source_type="digitalCapture", author="A. Reporter")
    report = provkit.verify("signed.jpg")            # one path: a VerifyReport
    reports = provkit.verify(["a.jpg", "b.jpg"])     # several: a list, errors in place
    record = provkit.check("upload.jpg", pack="newsroom")
    provkit.scan("uploads/", "labels.jsonl", pack="platform")
    provkit.dupes("upload.jpg")
    provkit.recover("stripped.jpg", "restored.jpg")
    provkit.detect("upload.jpg")                     # the detect package is also the verb
    provkit.generate("a quiet harbour at dawn", n=2, out_dir="out")   # so is generate

``provkit.detect`` and ``provkit.generate`` are the library packages; calling one calls
its verb (``provkit.detect(...)`` is ``provkit.detect.detect(...)``), so the verb and
the package keep the one name the CLI gives them. The libraries below the app:
``provkit.provenance`` (identity and keys, C2PA, watermark, ledger, recovery),
``provkit.detect``, ``provkit.generate`` and ``provkit.policies``. Everything loads on
first use: ``import provkit`` imports none of them.
"""

from __future__ import annotations

import importlib

_VERBS = {
    "sign": "provkit.verbs",
    "verify": "provkit.verbs",
    "recover": "provkit.verbs",
    "check": "provkit.verbs",
    "scan": "provkit.verbs",
    "dupes": "provkit.verbs",
}
_ABOUT = "provkit.provenance.core.about"
_PACKAGES = ("provenance", "detect", "generate", "policies")

__all__ = [
    "__version__",
    "check",
    "detect",
    "dupes",
    "generate",
    "policies",
    "provenance",
    "recover",
    "scan",
    "sign",
    "verify",
]


def __getattr__(name):
    if name == "__version__":
        return importlib.import_module(_ABOUT).version()
    if name in _VERBS:
        value = getattr(importlib.import_module(_VERBS[name]), name)
    elif name in _PACKAGES:
        value = importlib.import_module(f"provkit.{name}")
    else:
        raise AttributeError(f"module 'provkit' has no attribute {name!r}")
    globals()[name] = value
    return value
