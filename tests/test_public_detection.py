"""The free public AI detection page and API (SB 942) on a real ``provkit serve`` process:
no token, the provenance data of a stripped and resized copy resolved through the
watermark, nothing kept on disk, 429 past the per-client rate, everything else still
behind tokens; and the HTTP sign route applying the workspace's disclosure profile."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from provkit.generate import Generator
from provkit.provenance.public import public_detect

from tests.fixtures_desk import CHROMIUM, CHROMIUM_ARGS
from tests.fixtures_provenance import strip_and_degrade
from tests.fixtures_serve import Server, make_app

RATE = 5


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def public_server(tmp_path_factory):
    """(server, stripped copy, the original's SB 942 fields, the server's temp folder, its
    workspace): one server process for the module (the page test runs before the test that
    spends the rate)."""
    home = tmp_path_factory.mktemp("public-home")
    folder = tmp_path_factory.mktemp("public")
    temp = folder / "server-tmp"
    temp.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVKIT_HOME", str(home))
        mp.delenv("PROVKIT_DB", raising=False)
        gen = Generator(
            "builtin",
            out_dir=folder / "made",
            disclose="eu,us-ca,cn",
            provider="Example Studio",
            cn_producer="001EXAMPLE",
        )
        (sealed,) = gen.generate("a harbour at dawn", n=1, seed=21, size=(448, 384))
        stripped = strip_and_degrade(
            Path(sealed.path), folder / "stripped.jpg", quality=80, scale=0.7
        )
        mp.setenv("TMPDIR", str(temp))  # the server's own temp folder (uploads land there)
        server = Server(home, "--public-detection", "--public-rate", str(RATE))
    try:
        yield server, stripped, sealed.disclosures["sb942"], temp, home
    finally:
        server.stop()


def test_the_public_page_in_chromium_shows_the_answer_for_a_stripped_copy(public_server):
    """The page in real Chromium (headless, /usr/bin/chromium): no token asked, the file
    chosen, the provenance data shown, no request to any other site."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the browser test cannot run: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    server, stripped, sb942, _, _ = public_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            elsewhere = []
            page.on(
                "request",
                lambda r: (
                    elsewhere.append(r.url)
                    if not r.url.startswith((server.url, "data:", "blob:"))
                    else None
                ),
            )
            page.goto(server.url + "/public")
            page.set_input_files("#file", str(stripped))
            page.get_by_role("button", name="Check").click()
            page.wait_for_selector("#fields")
            assert page.locator("#verdict").inner_text() == "This image carries an AI disclosure."
            shown = page.locator("#fields").inner_text()
            for value in (sb942["provider"], sb942["system"], sb942["time"], sb942["id"]):
                assert value in shown
            assert elsewhere == []
        finally:
            browser.close()


def test_public_detection_answers_for_a_stripped_copy_without_a_token_keeps_nothing_and_limits(
    public_server,
):
    server, stripped, sb942, temp, workspace = public_server
    body = stripped.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    before = {p: p.stat().st_mtime_ns for p in _files_under(workspace)}

    # 1. the raw body, no token: provider, system, version, time and id from the watermark
    raw = httpx.post(
        server.url + "/public/v1/detect",
        content=body,
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert raw.status_code == 200, raw.text
    answer = raw.json()
    assert answer["disclosure"] is True and answer["credentials"] == "recovered"
    assert (
        answer["provider"],
        answer["system"],
        answer["version"],
        answer["time"],
        answer["id"],
    ) == (sb942["provider"], sb942["system"], sb942["system_version"], sb942["time"], sb942["id"])
    assert "watermark" in answer["resolved_by"]
    assert "stripped.jpg" not in raw.text  # the answer names no file

    # 2. the multipart field "file" gives the same answer
    form = httpx.post(
        server.url + "/public/v1/detect",
        timeout=60,
        files={"file": ("stripped.jpg", body, "image/jpeg")},
    )
    assert form.status_code == 200 and form.json() == answer

    # 3. the page is served without a token and fetches nothing from elsewhere
    page = httpx.get(server.url + "/public", timeout=10)
    assert page.status_code == 200 and "/public/v1/detect" in page.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text)
    assert "default-src 'none'" in page.headers["content-security-policy"]

    # 4. everything else still needs a token
    assert (
        httpx.post(
            server.url + "/v1/detect", timeout=10, files={"files": ("a.jpg", body, "image/jpeg")}
        ).status_code
        == 401
    )
    assert httpx.get(server.url + "/v1/ledger", timeout=10).status_code == 401

    # 5. nothing kept: no file in the server's temp folder, no copy of the upload in the
    # workspace, no new or changed file there but the database and its journal
    assert _files_under(temp) == []
    for path in _files_under(workspace):
        assert hashlib.sha256(path.read_bytes()).hexdigest() != digest, path
        if before.get(path) != path.stat().st_mtime_ns:
            assert path.name.startswith("provkit.db"), path

    # 6. past the rate (RATE a minute per client; two used above), 429 with Retry-After
    codes = []
    for _ in range(RATE + 2):
        r = httpx.post(
            server.url + "/public/v1/detect",
            content=b"x",
            headers={"Content-Type": "image/jpeg"},
            timeout=10,
        )
        codes.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            break
    assert codes[-1] == 429 and codes.count(429) == 1
    assert set(codes[:-1]) <= {422}  # the junk bodies were answered, as bad input

    server.stop()
    log = server.proc.stdout.read().decode(errors="replace")
    assert "stripped" not in log and "127.0.0.1:" not in log.replace(server.url, "")


def test_without_the_option_there_is_no_public_endpoint(workspace):
    with TestClient(make_app(workspace)) as client:
        assert client.get("/public").status_code == 404
        assert client.post("/public/v1/detect", content=b"x").status_code in (404, 405)


def test_an_image_without_a_disclosure_says_so_without_claiming_it_is_real(photo_path):
    answer = public_detect(photo_path)
    assert answer.disclosure is False and answer.ai_generated is None
    assert answer.provider is None and answer.id is None
    assert any("no proof" in n for n in answer.notes)


def test_the_public_app_answers_an_empty_body_with_400(workspace):
    from provkit.server.app import create_service
    from tests.fixtures_serve import make_config

    app = create_service(make_config(workspace), refresh=0.2, public_detection=True)
    with TestClient(app) as client:
        r = client.post("/public/v1/detect", content=b"", headers={"Content-Type": "image/png"})
        assert r.status_code == 400 and "request body" in r.json()["error"]
        r = client.post("/public/v1/detect", files={"other": ("a.png", b"xx", "image/png")})
        assert r.status_code == 400 and "'file'" in r.json()["error"]
    assert os.environ.get("PROVKIT_HOME")


def test_another_generators_iptc_source_type_counts_as_a_disclosure(tmp_path, photos):
    from PIL import Image

    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        '02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://'
        'iptc.org/std/Iptc4xmpExt/2008-02-29/"><Iptc4xmpExt:DigitalSourceType>http://cv.'
        "iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia</Iptc4xmpExt:"
        "DigitalSourceType></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    path = tmp_path / "other-generator.jpg"
    Image.fromarray(photos[3]).save(path, quality=90, xmp=xmp.encode())
    answer = public_detect(path)
    assert answer.disclosure is True and answer.ai_generated is True
    assert answer.provider is None and answer.credentials == "absent"
    assert any("trainedAlgorithmicMedia" in n for n in answer.notes)


def test_the_rate_limiter_refills_and_keeps_no_address(monkeypatch):
    from provkit.routes import public as public_routes

    now = [1000.0]
    monkeypatch.setattr(public_routes.time, "monotonic", lambda: now[0])
    limiter = public_routes.RateLimiter(per_minute=2)
    assert [limiter.take("203.0.113.9") for _ in range(2)] == [0.0, 0.0]
    wait = limiter.take("203.0.113.9")
    assert 29 < wait <= 30  # one request a 30 s
    assert limiter.take("198.51.100.7") == 0.0  # another client has its own bucket
    now[0] += 30
    assert limiter.take("203.0.113.9") == 0.0
    assert all(b"203.0.113.9" not in key for key in limiter._buckets)


def test_the_http_sign_route_applies_the_workspace_profile_to_ai_images(workspace, photo_path):
    from tests.fixtures_serve import token, wait_ready

    (workspace / "provkit.toml").write_text(
        '[disclosure]\nregimes = ["us-ca", "cn"]\nprovider = "Studio"\nsystem = "m"\n'
        'system_version = "2"\ncn_producer = "001HTTP"\n'
    )
    headers = token(workspace, "signer", "sign")
    with TestClient(make_app(workspace)) as client:
        wait_ready(client)
        made = {}
        for kind in ("trainedAlgorithmicMedia", "digitalCapture"):
            r = client.post(
                "/v1/sign",
                headers=headers,
                data={"source_type": kind},
                files={"file": ("a.jpg", photo_path.read_bytes())},
            )
            assert r.status_code == 200, r.text
            made[kind] = r.content
    from provkit.provenance import tc260

    block = tc260.read_bytes(made["trainedAlgorithmicMedia"], "image/jpeg")
    assert block is not None and block.producer == "001HTTP"
    assert tc260.read_bytes(made["digitalCapture"], "image/jpeg") is None
