"""The one clock: the current UTC time, and as the ISO-8601 text provkit writes."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def now_iso(timespec: str = "seconds") -> str:
    """The current UTC time as ISO-8601 (``2026-01-31T12:00:00+00:00``; the audit log asks
    for ``timespec="microseconds"``): the ``now`` of decision contexts and every
    timestamp provkit records."""
    return utc_now().isoformat(timespec=timespec)
