"""provkit's own name and version (the installed distribution's; 0.0.0 in a bare checkout)."""

from __future__ import annotations

import functools

NAME = "provkit"


@functools.cache
def version() -> str:
    from importlib import metadata  # stdlib, but slow to import: only when asked

    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "0.0.0"
