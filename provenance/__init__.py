"""provenance: identity and keys, C2PA signing and validation, the invisible
watermark, and the ledger of issued assets; also the root ``provkit`` CLI.

Public verbs (imported on first use, so ``import provenance`` stays light):
``sign``, ``ManifestSpec``, ``verify_file``, ``Ledger``, ``SoftBindingResolver``; the
issuing pipeline is ``provenance.issue.issue``, the recover verb
``provenance.recover.recover``.
"""

import importlib

from provkit.provenance.core import about

_LAZY = {
    "sign": "provkit.provenance.issue",
    "Issued": "provkit.provenance.issue",
    "ManifestSpec": "provkit.provenance.manifest",
    "verify_file": "provkit.provenance.verify",
    "VerifyReport": "provkit.provenance.verify",
    "SoftBindingResolver": "provkit.provenance.resolver",
    "Ledger": "provkit.provenance.ledger",
}


def __getattr__(name):
    if name == "__version__":
        value = globals()["__version__"] = about.version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'provenance' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
