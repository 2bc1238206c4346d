"""``provkit serve`` as a real process on a loopback port, over TCP: a verify, a burst of
concurrent mixed requests (no 5xx, every decision audited, the chain intact), and a
SIGKILL in the middle of a sign (after restart: no partial file, no orphan ledger row)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from provkit.provenance.issue import issue
from provkit.provenance.ledger import Ledger
from provkit.provenance.manifest import ManifestSpec

from provkit.server import tokens
from tests.fixtures_serve import Server, jpeg


@pytest.fixture
def small_signed(workspace, photos, tmp_path):
    src = tmp_path / "small.jpg"
    Image.fromarray(photos[1]).resize((256, 192)).save(src, quality=90)
    out = tmp_path / "small.signed.jpg"
    issued = issue(
        src,
        out,
        spec=ManifestSpec(source_type="digitalCapture"),
        watermark=False,
        db=workspace / "provkit.db",
    )
    return out, issued


CLIENTS, REQUESTS = 8, 300


def test_serve_over_tcp_under_concurrent_mixed_load_gives_no_5xx_and_audits_every_decision(
    workspace, small_signed, photos
):
    path, issued = small_signed
    db = workspace / "provkit.db"
    secret = tokens.create("load", ["read", "audit:read", "sets:write"], db=db).secret
    headers = {"Authorization": f"Bearer {secret}"}
    image = path.read_bytes()
    other = jpeg(photos[3][:128, :128], 80)
    server = Server(workspace, "--threads", "2", "--queue", "64")
    decisions = []
    lock = threading.Lock()
    try:
        # over TCP: one verify, the page, the spec; no token no read, no CDN-loaded /docs
        r = httpx.post(
            server.url + "/v1/verify",
            headers=headers,
            files=[("files", ("small.jpg", image, "image/jpeg"))],
        )
        assert r.status_code == 200 and r.json()[0]["c2pa"]["state"] == "trusted"
        assert r.json()[0]["c2pa"]["asset_id"] == issued.asset_id
        assert httpx.get(server.url + "/v1/ledger").status_code == 401
        page = httpx.get(server.url + "/")
        assert page.status_code == 200 and "Verification desk" in page.text
        docs = httpx.get(server.url + "/docs")  # the endpoint list, rendered here: no CDN
        assert docs.status_code == 200 and "/v1/verify" in docs.text
        assert "<script" not in docs.text and "https://" not in docs.text
        assert "/v1/verify" in httpx.get(server.url + "/openapi.json").json()["paths"]
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
            c.post("/v1/sets/archive/items", files=[("files", ("o.jpg", other))])
            pdq = c.post("/v1/hash", files={"file": ("o.jpg", other)}).json()["pdq"]
        binding = base64.b64encode(bytes.fromhex(issued.asset_id)).decode()

        def client(n: int) -> list[int]:
            codes = []
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
                for i in range(REQUESTS):
                    k = (i + n) % 50
                    if k == 0:
                        r = c.post(
                            "/v1/policy/check",
                            params={"pack": "newsroom"},
                            files=[("files", ("s.jpg", image))],
                        )
                        if r.status_code == 200:
                            with lock:
                                decisions.extend(d["outcome"] for d in r.json())
                    elif k in (1, 26):
                        r = c.post("/v1/verify", files=[("files", ("s.jpg", image))])
                    elif k in (2, 27):
                        r = c.post("/v1/hash", files={"file": ("o.jpg", other)})
                    elif k in (3, 13, 23):
                        r = c.get("/v1/lookup", params={"signal": "z" + pdq[1:]})  # 422
                    elif k in (4, 14):
                        r = c.post("/v1/verify", files=[("files", ("x.txt", b"plain text"))])
                    elif k == 5:
                        r = c.get("/v1/audit", params={"limit": 5})
                    elif k in (6, 16, 26):
                        r = c.get("/matches/byBinding", params={"alg": "x", "value": binding})
                    elif k == 7:
                        r = c.get("/v1/ledger/ffffffffffffffff")  # 404
                    elif k in (8, 18):
                        r = c.get("/status")
                    else:
                        r = c.get("/v1/lookup", params={"signal": pdq})
                    codes.append(r.status_code)
            return codes

        with ThreadPoolExecutor(CLIENTS) as pool:
            codes = [c for part in pool.map(client, range(CLIENTS)) for c in part]
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
            audit_rows, after = [], 0
            while after is not None:
                page = c.get("/v1/audit", params={"after": after, "limit": 1000}).json()
                audit_rows += page["rows"]
                after = page["next_after"]
            chain = c.get("/v1/audit/verify").json()
    finally:
        server.stop()
    assert len(codes) == CLIENTS * REQUESTS
    assert [c for c in codes if c >= 500] == []
    assert codes.count(200) > 0.6 * len(codes)
    assert decisions and len([r for r in audit_rows if r["actor"] == "load"]) == len(decisions)
    assert chain["ok"] is True and chain["rows"] == len(decisions)


def test_sigkill_during_sign_leaves_no_partial_file_nor_orphan_row(workspace, photos):
    db = workspace / "provkit.db"
    secret = tokens.create("studio", ["sign", "read"], db=db).secret
    big = Image.fromarray(photos[0]).resize((2048, 2048))
    body = jpeg(__import__("numpy").asarray(big), 92)
    served = workspace / "served"
    caught = False
    for _attempt in range(3):
        server = Server(workspace)
        done = threading.Event()

        def sign(url=server.url, done=done):
            try:
                httpx.post(
                    url + "/v1/sign",
                    headers={"Authorization": f"Bearer {secret}"},
                    data={"source_type": "digitalCapture"},
                    files={"file": ("big.jpg", body, "image/jpeg")},
                    timeout=60,
                )
            except httpx.TransportError:
                pass
            done.set()

        t = threading.Thread(target=sign)
        t.start()
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            if list(served.glob(".*.tmp")):
                server.kill()
                caught = True
                break
            time.sleep(0.002)
        t.join(60)
        if caught:
            break
        server.stop()
    assert caught, "the sign never got as far as writing its output"
    assert list(served.glob(".*.tmp")), "the kill left the half-written file (before restart)"
    server = Server(workspace)  # the restart sweeps what the crash left
    try:
        assert list(served.glob(".*.tmp")) == []
        for asset in Ledger(db).list():
            assert asset.path and Path(asset.path).is_file(), asset
            assert asset.status == "issued", asset
        r = httpx.post(
            server.url + "/v1/sign",
            headers={"Authorization": f"Bearer {secret}"},
            data={"source_type": "digitalCapture"},
            files={"file": ("again.jpg", jpeg(photos[1]), "image/jpeg")},
            timeout=60,
        )
        assert r.status_code == 200
    finally:
        server.stop()
    assert all(Path(a.path).is_file() for a in Ledger(db).list())


def test_serve_with_a_probe_gives_every_detect_the_classifier(workspace, photos, tmp_path):
    """``provkit serve --probe P --clip SPEC``: the workers load the classifier the CLI
    would, /status names it, and a detect over HTTP carries a classifier score."""
    pytest.importorskip("open_clip")
    import numpy as np
    from provkit.detect.classifier import Probe
    from provkit.detect.clip import load_model

    tiny = load_model("provkit-tiny-vit:random", device="cpu")
    dim = tiny.embed_dim
    probe = Probe(
        clip_model_id=tiny.model_id,
        clip_spec="provkit-tiny-vit:random",
        mean=(0.0,) * dim,
        std=(1.0,) * dim,
        weights=tuple(np.random.default_rng(0).normal(size=dim)),
        bias=0.0,
        calib_a=1.0,
        calib_b=0.0,
    ).save(tmp_path / "probe.json")
    server = Server(
        workspace, "--public-read", "--probe", str(probe), "--clip", "provkit-tiny-vit:random"
    )
    try:
        status = httpx.get(server.url + "/status", timeout=10).json()
        assert status["classifier"]["probe"] == str(probe.resolve())
        r = httpx.post(
            server.url + "/v1/detect",
            timeout=120,
            files=[("files", ("photo.jpg", jpeg(photos[0]), "image/jpeg"))],
        )
        assert r.status_code == 200, r.text
        (row,) = r.json()
        item = next(e for e in row["evidence"] if e["kind"] == "classifier")
        assert item["finding"] != "not checked" and row["score"] is not None
    finally:
        server.stop()


def test_serve_refuses_a_bad_probe_before_listening(workspace, tmp_path):
    bad = tmp_path / "probe.json"
    bad.write_text("{not json")
    p = subprocess.run(
        [sys.executable, "-m", "provkit.cli", "serve", "--port", "0", "--probe", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PROVKIT_HOME": str(workspace)},
        check=False,
    )
    assert p.returncode == 2
    assert "probe.json" in p.stderr and len(p.stderr.strip().splitlines()) == 1
