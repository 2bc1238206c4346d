"""``provkit serve`` as the open internet meets it: a real server process on 127.0.0.1.

- decompression bombs (header-only, truncated, flat canvases in a few bytes, in every
  format provkit decodes) are refused within seconds while the server stays under 1.5 GB
  resident, also three at once;
- a lookup cannot become a listing: ``max_distance`` is capped per signal type, answers
  are paged, and item thumbnails need ``banks:read``, which no public reader has;
- clients that send headers or a body a byte at a time are dropped within the timeouts,
  and one address cannot hold more than its share of connections.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image
from provkit.detect.index_bank import index_import

from provkit.server import tokens
from tests.fixtures_bombs import bombs
from tests.fixtures_serve import Server, jpeg

RSS_CEILING = 1.5 * (1 << 30)
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0


class RssWatch:
    """The largest resident size of a process, sampled every 20 ms while in use."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def bomb_files():
    return bombs()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A public-read server with short timeouts, a PDQ bank and tokens by scope."""
    home = tmp_path_factory.mktemp("hostile")
    db = home / "provkit.db"
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, 32, dtype=np.uint8)
    codes = []
    for i in range(300):  # 300 codes within 40 bits of one another, 300 random ones
        near = base.copy()
        for bit in rng.choice(256, size=int(rng.integers(0, 20)), replace=False):
            near[bit // 8] ^= 1 << (bit % 8)
        codes.append(near.tobytes().hex())
    codes += [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(300)]
    listing = home / "partner.csv"
    listing.write_text(
        "id,hash,quality\n" + "".join(f"p-{i},{h},90\n" for i, h in enumerate(codes))
    )
    index_import("partner", listing, db=db)
    secrets = {
        name: tokens.create(name, scopes, db=db).secret
        for name, scopes in (
            ("reader", ["read"]),
            ("lister", ["read", "banks:read"]),
            ("signer", ["sign"]),
        )
    }
    server = Server(
        home,
        "--public-read",
        "--threads",
        "2",
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--body-timeout",
        str(BODY_TIMEOUT),
        "--keep-alive",
        "2",
        "--max-connections-per-client",
        "40",
    )
    try:
        yield (
            server,
            {k: {"Authorization": f"Bearer {v}"} for k, v in secrets.items()},
            base.tobytes().hex(),
        )
    finally:
        server.stop()


# ------------------------------------------------------------------ bombs


def _post_bomb(url: str, name: str, data: bytes, headers: dict) -> tuple[str, int, float, str]:
    started = time.monotonic()
    r = httpx.post(url + "/v1/hash", files={"file": (name, data)}, timeout=30, headers=headers)
    return name, r.status_code, time.monotonic() - started, r.text


def test_every_bomb_is_refused_within_seconds_and_the_server_stays_small(served, bomb_files):
    server, auth, _ = served
    assert len(bomb_files) >= 10
    with RssWatch(server.proc.pid) as rss:
        for name, data in bomb_files.items():
            # a token holder: the 50 MP limit, so the cost check is what refuses them
            name, status, seconds, text = _post_bomb(server.url, name, data, auth["reader"])
            assert status == 422, (name, status, text)
            assert name in text and "/tmp" not in text  # the caller's name, no server path
            assert "too large" not in text, text
            assert seconds <= 3.0, (name, seconds)
        for name in ("png-tiny-idat", "jpeg-truncated", "gif-tiny-lzw", "webp-flat-lossless"):
            # anonymous: the public 24 MP limit refuses them first
            _, status, _, text = _post_bomb(server.url, name, bomb_files[name], {})
            assert status == 422 and "24,000,000" in text, text
        # the batch verbs give the file an error row and answer 200
        rows = httpx.post(
            server.url + "/v1/detect",
            headers=auth["reader"],
            timeout=30,
            files=[("files", (n, d)) for n, d in list(bomb_files.items())[:8]],
        ).json()
        assert all("error" in row for row in rows), rows
        # a signer's upload is refused before sealing
        r = httpx.post(
            server.url + "/v1/sign",
            headers=auth["signer"],
            timeout=30,
            files={"file": ("flat.webp", bomb_files["webp-flat-lossless"])},
        )
        assert r.status_code == 422, r.text
    assert rss.peak < RSS_CEILING, rss.peak


def test_three_bombs_at_once_are_refused_and_the_server_stays_small(served, bomb_files):
    server, auth, _ = served
    chosen = [
        "webp-flat-lossless",
        "png-tiny-idat",
        "avif-flat" if "avif-flat" in bomb_files else "jpeg-truncated",
    ]
    with RssWatch(server.proc.pid) as rss, ThreadPoolExecutor(3) as pool:
        for _round in range(3):
            results = list(
                pool.map(lambda n: _post_bomb(server.url, n, bomb_files[n], auth["reader"]), chosen)
            )
            for name, status, seconds, text in results:
                assert status == 422, (name, text)
                assert seconds <= 3.0, (name, seconds)
    assert rss.peak < RSS_CEILING, rss.peak
    status = httpx.get(server.url + "/status").json()
    assert status["max_pixels"] == 50_000_000
    assert status["decode_budget"]["in_use_megapixels"] == 0


def test_a_large_real_image_is_decoded_within_the_budget_and_memory_comes_back(served):
    server, _, _ = served
    y, x = np.mgrid[0:4000, 0:6000]
    pixels = np.stack([(x // 24) % 256, (y // 16) % 256, ((x + y) // 40) % 256], -1)
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, "PNG", compress_level=1)  # 24 MP
    proc = psutil.Process(server.proc.pid)
    before = proc.memory_info().rss
    with RssWatch(server.proc.pid) as rss:
        r = httpx.post(
            server.url + "/v1/detect", files={"files": ("big.png", buf.getvalue())}, timeout=60
        )
    assert r.status_code == 200, r.text
    time.sleep(0.3)
    after = proc.memory_info().rss
    print(f"RSS before {before >> 20} MB, peak {rss.peak >> 20} MB, after {after >> 20} MB")
    assert after - before < (rss.peak - before) / 2 + (64 << 20)  # most of the peak returned


# ------------------------------------------------------------------ lookups


def test_max_distance_is_capped_per_signal_type(served):
    server, _auth, probe = served
    for signal_type, signal, cap in (
        ("pdq", probe, 64),
        ("phash", "0" * 16, 16),
        ("dhash", "f" * 16, 16),
    ):
        ok = httpx.get(
            server.url + "/v1/lookup",
            params={"signal": signal, "signal_type": signal_type, "max_distance": cap},
        )
        assert ok.status_code == 200, ok.text
        over = httpx.get(
            server.url + "/v1/lookup",
            params={"signal": signal, "signal_type": signal_type, "max_distance": cap + 1},
        )
        assert over.status_code == 422, over.text
    assert (
        httpx.get(
            server.url + "/v1/lookup", params={"signal": probe, "max_distance": 256}
        ).status_code
        == 422
    )


def test_lookup_answers_are_paged(served):
    server, _, probe = served
    seen, offset = [], 0
    while True:
        r = httpx.get(
            server.url + "/v1/lookup",
            params={"signal": probe, "max_distance": 40, "limit": 120, "offset": offset},
        )
        assert r.status_code == 200
        rows = r.json()["partner"]
        assert len(rows) <= 120
        seen += rows
        if "x-provkit-more" not in r.headers:
            break
        assert r.headers["x-provkit-more"] == "partner"
        offset = int(r.headers["x-provkit-next-offset"])
    assert len(seen) == 300 and len({row["bank_content_id"] for row in seen}) == 300
    distances = [row["distance"] for row in seen]
    assert distances == sorted(distances)
    # the default page is 100, also through the fast path
    first = httpx.get(server.url + f"/v1/lookup?signal={probe}&max_distance=40")
    assert len(first.json()["partner"]) == 100 and first.headers["x-provkit-more"] == "partner"
    assert (
        httpx.get(server.url + "/v1/lookup", params={"signal": probe, "limit": 1001}).status_code
        == 422
    )


def test_listing_a_sets_items_needs_sets_read_which_no_public_reader_has(served):
    server, auth, probe = served
    item = httpx.get(server.url + "/v1/lookup", params={"signal": probe}).json()["partner"][0][
        "bank_content_id"
    ]
    url = f"{server.url}/v1/sets/partner/items/{item}/thumbnail"
    assert httpx.get(url).status_code == 403  # anonymous under --public-read: no grant
    assert httpx.get(url, headers=auth["reader"]).status_code == 403
    assert httpx.get(url, headers=auth["lister"]).status_code in (200, 404)  # hash items: none
    # a grant names one item for a while: a forged, expired or other item's grant does not
    from provkit.server import grants

    assert httpx.get(url + "?grant=9999999999.00", headers=auth["reader"]).status_code == 403
    other = grants.grant("partner", item + 1)  # this process's key is not the server's
    assert httpx.get(url + f"?grant={other}").status_code == 403


# ------------------------------------------------------------------ slow clients


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _closed(s: socket.socket) -> bool:
    """Whether the server has closed this connection (reads EOF or a reset)."""
    s.setblocking(False)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def test_slow_header_and_body_senders_are_dropped_within_the_timeouts(served):
    server, _, _ = served
    slow_headers = [_connect(server.port) for _ in range(30)]
    slow_body = [_connect(server.port) for _ in range(5)]
    for s in slow_body:
        s.sendall(
            b"POST /v1/hash HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream"
            b"\r\nContent-Length: 1000000\r\n\r\n"
        )
    started = time.monotonic()
    # a valid request line, then header lines without end, a byte at a time
    stream = b"GET /status/live HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: 1\r\n" * 500
    sent = 0
    deadline = started + HEADER_TIMEOUT + BODY_TIMEOUT + 6
    while time.monotonic() < deadline:
        for s in slow_headers:
            try:
                s.send(stream[sent : sent + 1])
            except OSError:
                pass
        sent += 1
        for s in slow_body:
            try:
                s.send(b"x")
            except OSError:
                pass
        if all(_closed(s) for s in slow_headers + slow_body):
            break
        # the server still answers others meanwhile
        assert httpx.get(server.url + "/status/live", timeout=5).status_code == 200
        time.sleep(0.25)
    elapsed = time.monotonic() - started
    left = sum(not _closed(s) for s in slow_headers + slow_body)
    for s in slow_headers + slow_body:
        s.close()
    assert left == 0, f"{left} slow connections still open after {elapsed:.1f} s"


def test_one_address_cannot_hold_more_than_its_share_of_connections(served):
    server, _, _ = served
    held = [_connect(server.port) for _ in range(60)]
    time.sleep(0.3)
    refused = sum(_closed(s) for s in held)
    for s in held:
        s.close()
    assert refused >= 20, refused  # the cap is 40 per address
    time.sleep(0.3)
    assert httpx.get(server.url + "/status/live").status_code == 200


def test_an_idle_keep_alive_connection_is_closed(served):
    server, _, _ = served
    s = _connect(server.port)
    s.sendall(b"GET /status/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in s.recv(4096).split(b"\r\n")[0]
    time.sleep(3.5)  # keep-alive is 2 s
    assert _closed(s)
    s.close()


# ------------------------------------------------------------------ the small ones


def _one_hash(workspace):
    listing = workspace / "one.csv"
    listing.write_text("id,hash,quality\nx-1," + "ab" * 32 + ",90\n")
    return listing


def test_small_hardening_items(workspace, photos):
    """action vocabulary, the public URL instead of Host, no server paths in ledger
    answers, the generate schema at the library's limits, and a dropped audit table
    answered as one line (in-process, the real app)."""
    from fastapi.testclient import TestClient

    from provkit.server.app import create_service
    from tests.fixtures_serve import make_config, wait_ready

    cfg = make_config(workspace, public_url="https://verify.example.org")
    sign = {
        "Authorization": "Bearer "
        + tokens.create("s", ["sign", "read", "generate"], db=workspace / "provkit.db").secret
    }
    image = jpeg(photos[1][:256, :256], 90)
    with TestClient(create_service(cfg, refresh=0.2)) as api:
        wait_ready(api)
        for bad in ("<b>x</b>", "c2pa.evil", "Com.Example.x y", "x.y"):
            r = api.post(
                "/v1/sign", headers=sign, files={"file": ("p.jpg", image)}, data={"action": bad}
            )
            assert r.status_code == 422 and "action" in r.json()["error"], r.text
        r = api.post(
            "/v1/sign",
            headers=sign,
            files={"file": ("p.jpg", image)},
            data={"action": "com.example.retouched", "source_type": "digitalCapture"},
        )
        assert r.status_code == 200, r.text
        asset = r.headers["x-provkit-asset-id"]
        row = api.get(f"/v1/ledger/{asset}", headers=sign).json()
        assert "/" not in (row.get("source_path") or "") and "/" not in (row.get("path") or "")
        found = api.get(
            "/matches/byBinding",
            headers={**sign, "Host": "evil.example"},
            params={"alg": "io.provkit.watermark", "value": asset},
        )
        for m in found.json().get("matches", []):
            assert m["endpoint"] == "https://verify.example.org"
        r = api.post("/v1/generate", headers=sign, json={"prompt": "x", "width": 64})
        assert r.status_code == 422
        # a thumbnail grant made in this process (the app's key) opens that item only
        from provkit.server import grants

        index_import("bank", _one_hash(workspace), db=workspace / "provkit.db")
        url = "/v1/sets/bank/items/1/thumbnail"
        assert api.get(url, headers=sign).status_code == 403
        assert api.get(url + "?grant=" + grants.grant("bank", 1), headers=sign).status_code == 404
        assert api.get(url + "?grant=" + grants.grant("bank", 2), headers=sign).status_code == 403
        assert (
            api.get(url + "?grant=" + grants.grant("bank", 1, ttl=-5), headers=sign).status_code
            == 403
        )
        import sqlite3

        first = api.post(
            "/v1/policy/check",
            headers=sign,
            params={"pack": "newsroom"},
            files=[("files", ("p.jpg", image))],
        )
        assert first.status_code == 200 and "audit_seq" in first.text, first.text
        con = sqlite3.connect(workspace / "provkit.db")
        con.execute("DROP TABLE audit_checkpoints")
        con.commit()
        con.close()
        r = api.post(
            "/v1/policy/check",
            headers=sign,
            params={"pack": "newsroom"},
            files=[("files", ("p.jpg", image))],
        )
        assert r.status_code != 500 and "sqlite" not in r.text.lower(), r.text
        assert "the audit log cannot record this decision" in r.text, r.text


def test_an_oversized_request_head_is_refused(served):
    server, _, _ = served
    s = _connect(server.port)
    s.sendall(
        b"GET /status/live HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    )
    answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    s.close()


def test_the_decode_budget_queues_then_answers_503_with_retry_after():
    import asyncio

    from provkit.server.budget import PixelBudget
    from provkit.server.http import ApiError

    async def scenario():
        budget = PixelBudget(total=50_000_000, wait=0.3)
        order = []

        async def job(name, pixels, hold):
            async with budget.hold(pixels):
                order.append(name)
                await asyncio.sleep(hold)

        # the second waits for the first, then runs: a queue, in arrival order
        await asyncio.gather(job("a", 40_000_000, 0.1), job("b", 40_000_000, 0.0))
        assert order == ["a", "b"] and budget.in_use == 0
        # a third that cannot get room within the wait is refused with Retry-After
        first = asyncio.create_task(job("c", 50_000_000, 1.0))
        await asyncio.sleep(0.05)
        with pytest.raises(ApiError) as e:
            await job("d", 10_000_000, 0.0)
        assert e.value.status == 503 and e.value.headers["Retry-After"]
        await first
        assert budget.in_use == 0 and budget.refused == 1
        async with budget.hold(0):  # no image: no wait
            pass

    asyncio.run(scenario())


def test_an_anonymous_caller_has_the_lower_pixel_limit(served):
    server, auth, _ = served
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:5000, 0:5400]  # 27 MP: over the public 24 MP, under the 50 MP limit
    pixels = np.stack([(x // 7) % 256, (y // 5) % 256, rng.integers(0, 8, x.shape) * 30], -1)
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, "JPEG", quality=70)
    data = buf.getvalue()
    anonymous = httpx.post(server.url + "/v1/hash", files={"file": ("big.jpg", data)}, timeout=60)
    assert anonymous.status_code == 422 and "24,000,000" in anonymous.text, anonymous.text
    reader = httpx.post(
        server.url + "/v1/hash",
        files={"file": ("big.jpg", data)},
        headers=auth["reader"],
        timeout=60,
    )
    assert reader.status_code == 200, reader.text
