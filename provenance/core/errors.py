"""The one exception family of provkit.

Every error a user can cause carries a message meant for them and an exit code
(2 for bad usage or unreadable input, 1 for a finding the user asked to fail on).
The CLI prints ``str(error)`` as one line on stderr and exits with ``exit_code``;
library code raises and never prints.
"""

from __future__ import annotations

#: Characters that would let a file name forge lines or hide text in a terminal report.
_CONTROL = {
    *map(chr, range(32)),
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
}


def shown(path) -> str:
    """A path as human output prints it: as it is, or quoted with escapes (Python's repr)
    when it holds a line break or another control character, so a file name can never
    forge a result line ("x.jpg: TRUSTED ...") in a report read line by line."""
    text = str(path)
    return repr(text) if any(c in _CONTROL for c in text) else text


class ProvkitError(Exception):
    """Base class: a message for the user and an exit code for the CLI."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None):
        self.path = str(path) if path is not None else None
        self.reason = message
        super().__init__(f"{shown(self.path)}: {message}" if self.path else message)


class BadInput(ProvkitError):
    """A file or value that cannot be used: missing, corrupt, too large, wrong type."""


class ConfigError(ProvkitError):
    """A workspace, key, model or policy configuration that is missing or wrong."""


class Refused(ProvkitError):
    """A deliberate refusal (a policy deny, a failed check the user asked for)."""

    exit_code = 1


def describe(error: BaseException, *, with_path: bool = True) -> str:
    """One line for a user: a ProvkitError's own message, else ``TypeName: text``."""
    if isinstance(error, ProvkitError):
        return str(error) if with_path else error.reason
    return f"{type(error).__name__}: {error}"
