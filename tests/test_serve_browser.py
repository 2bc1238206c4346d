"""The desk page in real Chromium (Playwright driving /usr/bin/chromium, headless) against
``provkit serve`` on loopback: token prompt, a sealed image's summary, ingredient tree and
thumbnails, near-duplicates with reference thumbnails, a tampered image's warning, a
non-image's error, and the downloaded report.

Without Chromium (or the playwright package) these skip with the reason; under
``CI=true`` a missing browser fails instead."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from PIL import Image

from provkit.server import tokens
from tests.fixtures_serve import Server, sealed_with_ingredient, tampered_copy

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the browser tests cannot run: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_desk_page_in_chromium(browser, workspace, photos, tmp_path):
    db = workspace / "provkit.db"
    photo = tmp_path / "photo.jpg"
    Image.fromarray(photos[0]).resize((480, 480)).save(photo, quality=92)
    sealed = sealed_with_ingredient(tmp_path, photo, db)
    tampered = tampered_copy(sealed, tmp_path / "tampered.jpg")
    notes = tmp_path / "notes.jpg"
    notes.write_text("this is not an image")
    secret = tokens.create("desk", ["read", "sets:write"], db=db).secret
    server = Server(workspace)
    try:
        httpx.post(server.url + "/v1/sets/archive/items",
                   headers={"Authorization": f"Bearer {secret}"},
                   files=[("files", ("archive-photo.jpg", (tmp_path / "edited.jpg").read_bytes(),
                                     "image/jpeg"))],
                   timeout=60).raise_for_status()
        context = browser.new_context(accept_downloads=True, viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.set_default_timeout(60_000)
        external = []
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith((server.url, "data:", "blob:")) else None)
        page.goto(server.url + "/")

        # 1. asked once for a token, kept for the session
        assert page.locator("#token-form").is_visible()
        page.get_by_label("API token").fill(secret)
        page.get_by_role("button", name="Use token").click()
        assert page.locator("#token-form").is_hidden()

        # 2. a sealed image: summary, credentials, ingredient tree with thumbnails, dupes
        page.get_by_label("Image file").set_input_files(str(sealed))
        summary = page.get_by_test_id("summary")
        summary.wait_for()
        text = summary.inner_text()
        assert "Credentials valid, signer trusted" in text and "signed by" in text
        assert "policy newsroom" in text
        tree = page.get_by_test_id("ingredients")
        assert "original.jpg" in tree.inner_text()
        thumbs = tree.get_by_role("img")
        assert thumbs.count() >= 2  # the active manifest's and its ingredient's
        for i in range(thumbs.count()):
            assert thumbs.nth(i).get_attribute("alt")
            assert thumbs.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
        dupes = page.get_by_test_id("dupes")
        assert "archive" in dupes.inner_text()
        ref = dupes.get_by_role("img").first
        assert ref.evaluate("img => img.naturalWidth > 0")

        # 3. download the report: one self-contained HTML file
        with page.expect_download() as info:
            page.get_by_role("button", name="Download report").click()
        report = Path(info.value.path()).read_text()
        assert "Credentials valid, signer trusted" in report and "<script" not in report
        assert 'src="http' not in report

        # 4. a tampered copy: the warning
        page.get_by_label("Image file").set_input_files(str(tampered))
        page.locator(".summary.warning").wait_for()
        assert "INVALID" in page.get_by_test_id("summary").inner_text()

        # 5. not an image: the error, and the page keeps working
        page.get_by_label("Image file").set_input_files(str(notes))
        error = page.get_by_role("alert").filter(has_text="not an image")
        error.wait_for()
        assert "notes.jpg" in error.inner_text()
        assert external == []  # nothing loaded from anywhere but the server
        context.close()
    finally:
        server.stop()
