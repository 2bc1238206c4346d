"""provenance: identity and keys, C2PA signing and validation, the invisible
watermark, and the ledger of issued assets; also the root ``provkit`` CLI.

Public verbs (imported on first use, so ``import provenance`` stays light):
``sign``, ``ManifestSpec``, ``verify_file``, ``recover``, ``Ledger``,
``SoftBindingResolver``; the issuing pipeline is ``provenance.issue.issue``.
"""

_LAZY = {
    "sign": "provenance.issue",
    "Issued": "provenance.issue",
    "ManifestSpec": "provenance.manifest",
    "verify_file": "provenance.verify",
    "VerifyReport": "provenance.verify",
    "recover": "provenance.recover",
    "SoftBindingResolver": "provenance.resolver",
    "Ledger": "provenance.ledger",
}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("provkit")
    except PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "0.0.0"


def __getattr__(name):
    if name == "__version__":
        value = globals()["__version__"] = _package_version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'provenance' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
