"""The one guard around third-party readers: any failure becomes a BadInput naming the file.

Decoders, parsers and SDKs (Pillow, c2pa-python, cryptography, numpy, xml, json) raise
whatever their authors chose: ``ValueError``, ``RecursionError``, ``InvalidVersion``,
ASN.1 errors, ``struct.error``, ``MemoryError``... A provenance tool fed a hostile file
must answer with one line naming the file and the cause, and a batch must go on with
the next file. So every reader entry point runs under :func:`reading` (or is decorated
with :func:`guarded`) instead of each caller catching a list of types it guessed.
"""

from __future__ import annotations

import contextlib
import functools

from provkit.provenance.core.errors import BadInput, ProvkitError


def _cause(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply to read"
    if isinstance(error, MemoryError):
        return "needs more memory than provkit allows for one file"
    text = str(error).strip().splitlines()
    first = text[0][:200] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def as_bad_input(error: BaseException, path, what: str = "read") -> BadInput:
    """The BadInput for a reader failure: ``PATH: cannot read (TypeName: first line)``."""
    if isinstance(error, BadInput) and error.path is None and path is not None:
        return BadInput(error.reason, path=path)
    if isinstance(error, ProvkitError):
        return error  # type: ignore[return-value]
    return BadInput(f"cannot {what} ({_cause(error)})", path=path)


@contextlib.contextmanager
def reading(path, what: str = "read"):
    """Run a reader on ``path``; any exception (not a ProvkitError) becomes BadInput.

    ``KeyboardInterrupt`` and ``SystemExit`` pass through (they are no input's fault)."""
    try:
        yield
    except ProvkitError as e:
        if isinstance(e, BadInput) and e.path is None and path is not None:
            raise BadInput(e.reason, path=path) from None
        raise
    except Exception as e:  # the point: one guard for every reader error
        raise as_bad_input(e, path, what) from e


def guarded(what: str = "read"):
    """Decorator form of :func:`reading` for a function whose first argument is the path."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(path, *args, **kwargs):
            with reading(path, what):
                return fn(path, *args, **kwargs)

        return inner

    return wrap


class TimeLimit(BadInput):
    """A file took longer than the per-file time limit of a batch (``scan --time-limit``)."""


@contextlib.contextmanager
def time_limit(seconds: float | None, path):
    """Stop the work on ``path`` after ``seconds`` of wall time with :class:`TimeLimit`.

    Uses ``SIGALRM``, so it applies in the main thread of a process (scan's workers);
    elsewhere, or with ``seconds`` None/0, it does nothing. Work inside a C call (one
    decoder call) is stopped when the call returns; the pixel and text budgets bound
    those calls."""
    import signal
    import threading

    if (
        not seconds
        or threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "setitimer")
    ):
        yield
        return

    def expired(signum, frame):
        raise TimeLimit(
            f"took longer than the per-file time limit of {seconds:g} s; skipped", path=path
        )

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
