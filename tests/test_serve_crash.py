"""``kill -9`` at many points while ``provkit serve`` receives signs and uploads: after the
next start, no caller's upload is left on disk.

Five servers on five workspaces run at once; each is killed four times, at a different
moment of a burst of signs and detects (20 kill points in all), and restarted. Every
restart must have swept the previous crash's upload folders before it answers.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from provkit.server import tokens
from tests.fixtures_serve import Server, jpeg

WORKSPACES, ROUNDS = 5, 4


def _uploads(home) -> list:
    folder = home / "uploads"
    return sorted(folder.glob("req-*")) if folder.is_dir() else []


def _burst(url: str, headers: dict, image: bytes, stop: threading.Event) -> None:
    def one(n: int):
        while not stop.is_set():
            try:
                if n % 2:
                    httpx.post(
                        url + "/v1/sign",
                        headers=headers,
                        timeout=10,
                        files={"file": (f"photo{n}.jpg", image)},
                        data={"source_type": "digitalCapture"},
                    )
                else:
                    httpx.post(
                        url + "/v1/detect",
                        headers=headers,
                        timeout=10,
                        files=[("files", (f"upload{n}.jpg", image))],
                    )
            except httpx.HTTPError:
                return  # the server is gone

    for n in range(3):
        threading.Thread(target=one, args=(n,), daemon=True).start()


def _crash_rounds(home, image: bytes, offset: float) -> list[int]:
    """Kill the server ROUNDS times during bursts; the uploads on disk at each kill."""
    db = home / "provkit.db"
    headers = {"Authorization": "Bearer " + tokens.create("crash", ["read", "sign"], db=db).secret}
    at_kill = []
    for r in range(ROUNDS):
        server = Server(home, "--threads", "1", "--queue", "8")
        assert _uploads(home) == [], "a restart left the previous crash's uploads"
        stop = threading.Event()
        _burst(server.url, headers, image, stop)
        deadline = time.monotonic() + 20
        while not _uploads(home) and time.monotonic() < deadline:  # uploads under way
            time.sleep(0.01)
        time.sleep((offset + r * 0.13) % 0.5)  # then a different point each time
        at_kill.append(len(_uploads(home)))
        server.kill()
        stop.set()
    last = Server(home)
    try:
        assert _uploads(home) == []
    finally:
        last.stop()
    return at_kill


@pytest.mark.slow
def test_kill_9_at_twenty_points_leaves_no_upload_after_restart(tmp_path_factory):
    rng = np.random.default_rng(3)
    image = jpeg(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), 85)
    homes = [tmp_path_factory.mktemp(f"crash{i}") for i in range(WORKSPACES)]
    with ThreadPoolExecutor(WORKSPACES) as pool:
        counts = list(pool.map(lambda a: _crash_rounds(a[1], image, a[0] * 0.2), enumerate(homes)))
    kills = [n for per_home in counts for n in per_home]
    assert len(kills) >= 20
    # the kills really hit requests in flight: uploads were on disk at most of them
    assert sum(1 for n in kills if n > 0) >= 10, kills
    for home in homes:
        assert _uploads(home) == []
