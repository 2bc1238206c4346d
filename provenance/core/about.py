"""provkit's own name and version.

``VERSION`` is the distribution's version, written here once so that a report can name
it without scanning the installed distributions (``importlib.metadata.version`` costs a
few milliseconds on every run); tests/test_one_house.py holds it equal to pyproject.toml.
"""

from __future__ import annotations

NAME = "provkit"
VERSION = "0.1.0"


def version() -> str:
    return VERSION
