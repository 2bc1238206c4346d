"""provenance: identity and keys, C2PA signing and validation, the invisible
watermark, and the ledger of issued assets; also the root ``provkit`` CLI."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("provkit")
except PackageNotFoundError:  # pragma: no cover - a bare checkout
    __version__ = "0.0.0"
