"""The per-process budget of decoded pixels, and giving memory back after a big request.

Each request that carries images costs the declared pixels of its largest file
(:attr:`provkit.server.http.Workdir.pixels`, read from the headers before any work, capped
at the pixel limit: a file over it is refused before decoding). :class:`PixelBudget`
lets requests run while their costs together stay under the budget; a request that does
not fit waits, in arrival order, up to ``wait`` seconds, and then answers 503 with
``Retry-After``. A file's pixels are decoded one file at a time within a request, so
the budget bounds the decoded pixels a process holds at once, whatever the number of
threads.

After a request that held a large share, :func:`release_memory` asks glibc to hand freed
heap pages back to the system (``malloc_trim``): the decoder's buffers are freed when the
request ends, but glibc keeps them mapped otherwise, and the process stays at its peak.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections import deque
from contextlib import asynccontextmanager

from provkit.server.http import ApiError

MP = 1_000_000
#: Default budget of decoded pixels a ``provkit serve`` process holds at once.
DEFAULT_PIXEL_BUDGET = 64 * MP
#: Seconds a request waits for room before 503.
DEFAULT_WAIT = 10.0
#: A request holding at least this many pixels gives memory back when it ends.
TRIM_AFTER = 4 * MP


class PixelBudget:
    """Decoded pixels in flight in this process, at most ``total``; FIFO waiting."""

    def __init__(self, total: int = DEFAULT_PIXEL_BUDGET, wait: float = DEFAULT_WAIT):
        self.total = max(1, int(total))
        self.wait = wait
        self.in_use = 0
        self.refused = 0
        self._waiters: deque[tuple[int, asyncio.Future]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _grant(self) -> None:
        while self._waiters:
            need, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if self.in_use + need > self.total:
                return
            self._waiters.popleft()
            self.in_use += need
            fut.set_result(None)

    @asynccontextmanager
    async def hold(self, pixels: int):
        """Hold ``pixels`` (capped at the total) while the block runs; 503 + Retry-After
        after ``wait`` seconds without room."""
        need = min(max(0, int(pixels)), self.total)
        if need == 0:
            yield
            return
        if not self._waiters and self.in_use + need <= self.total:
            self.in_use += need
        else:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((need, fut))
            try:
                await asyncio.wait_for(asyncio.shield(fut), self.wait)
            except TimeoutError:
                if fut.done() and not fut.cancelled():  # granted just now: give it back
                    self.in_use -= need
                fut.cancel()
                self._grant()
                self.refused += 1
                raise ApiError(
                    503,
                    f"busy: images of {self.in_use / MP:.0f} megapixels are "
                    f"being decoded (budget {self.total / MP:.0f} MP); retry "
                    "shortly",
                    headers={"Retry-After": "2"},
                ) from None
        try:
            yield
        finally:
            self.in_use -= need
            self._grant()
            if need >= TRIM_AFTER:
                await asyncio.get_running_loop().run_in_executor(None, release_memory)

    def status(self) -> dict:
        return {
            "megapixels": round(self.total / MP, 1),
            "in_use_megapixels": round(self.in_use / MP, 1),
            "waiting": self.waiting,
            "refused": self.refused,
        }


_libc = None


def release_memory() -> bool:
    """Return freed heap memory to the system (glibc ``malloc_trim``); False elsewhere."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    trim = getattr(_libc, "malloc_trim", None) if _libc else None
    if trim is None:
        return False
    trim(0)
    return True


__all__ = ["DEFAULT_PIXEL_BUDGET", "PixelBudget", "release_memory"]
