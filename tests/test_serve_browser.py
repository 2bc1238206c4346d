"""The desk page in real Chromium (Playwright driving /usr/bin/chromium, headless) against
``provkit serve`` on loopback, used as an editor uses it: eight mixed files dropped at
once (tests/fixtures_desk.py), rows filled in with the one-line answer and a coloured
decision chip, cards opened from the keyboard, pictures fetched with the token, nothing
loaded from elsewhere, hostile manifest text shown as text, and a phone-sized screen.

Without Chromium (or the playwright package) these skip with the reason; under
``CI=true`` a missing browser fails instead."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from provkit.server import tokens
from tests.fixtures_desk import (
    ARCHIVE_PUBLISHED,
    CHROMIUM,
    CHROMIUM_ARGS,
    EXPECTED,
    PARTNER_ID,
    desk_files,
    drop_files,
    hostile_file,
)
from tests.fixtures_serve import Server

#: The chips' colours (desk.css): ALLOW green, LABEL amber, REVIEW blue, DENY red.
CHIP_COLOURS = {
    "ALLOW": "rgb(11, 107, 47)",
    "LABEL": "rgb(242, 193, 78)",
    "REVIEW": "rgb(26, 95, 180)",
    "DENY": "rgb(179, 38, 30)",
}


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
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, server: Server, secret: str, *, width: int = 1200, height: int = 900):
    context = browser.new_context(
        accept_downloads=True, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.external = []
    page.dialogs = []
    page.on(
        "request",
        lambda r: (
            page.external.append(r.url)
            if not r.url.startswith((server.url, "data:", "blob:"))
            else None
        ),
    )
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on(
        "console",
        lambda m: page.dialogs.append(m.text) if "Content Security Policy" in m.text else None,
    )
    answer = page.goto(server.url + "/")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert page.locator("#token-form").is_visible()  # asked once for a token
    page.get_by_label("API token").fill(secret)
    page.get_by_role("button", name="Use token").click()
    assert page.locator("#token-form").is_hidden()
    # the most rows "checking" at once, seen by the page itself
    page.evaluate("""() => {
        window.mostChecking = 0;
        window.sawBusy = false;
        new MutationObserver(() => {
            const n = document.querySelectorAll('#rows tr[data-state="checking"]').length;
            window.mostChecking = Math.max(window.mostChecking, n);
            window.sawBusy = window.sawBusy ||
                document.getElementById('rows').innerText.includes('Server busy');
        }).observe(document.getElementById('rows'),
                   {subtree: true, attributes: true, childList: true});
    }""")
    return context, page


def row(page, name: str):
    return page.locator("#rows tr").filter(has=page.locator("td.name", has_text=name))


def open_card(page, name: str):
    """Focus the row and press Enter, as from the keyboard; the card's heading gets focus."""
    r = row(page, name)
    r.focus()
    page.keyboard.press("Enter")
    card = page.locator("#card-body article")
    card.locator("h2", has_text=name).wait_for()
    assert page.evaluate("document.activeElement.tagName") == "H2"
    return card


def pictures_loaded(locator) -> bool:
    return all(
        locator.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
        for i in range(locator.count())
    )


def visible_text(card) -> str:
    """The card's text without its technical details."""
    return card.evaluate("""a => { const c = a.cloneNode(true);
        c.querySelectorAll('details').forEach(d => d.remove()); return c.innerText; }""")


@pytest.fixture(name="desk", scope="module")
def desk_fixture(tmp_path_factory, photos):
    """One workspace and one server for the module: the eight files, the hostile one."""
    home = tmp_path_factory.mktemp("desk-home")
    folder = tmp_path_factory.mktemp("desk-files")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVKIT_HOME", str(home))
        mp.setenv("PROVKIT_DEV_IDENTITY", "1")
        mp.delenv("PROVKIT_DB", raising=False)
        db = home / "provkit.db"
        files = desk_files(folder, photos, db)
        files["hostile.jpg"] = hostile_file(folder / "hostile", photos)
        secret = tokens.create("editor", ["read"], db=db).secret
    server = Server(home)
    try:
        yield server, secret, files
    finally:
        server.stop()


def test_eight_dropped_files_get_rows_chips_and_cards(browser, desk):
    server, secret, files = desk
    context, page = open_page(browser, server, secret)
    drop_files(page, "#drop", [files[name] for name in EXPECTED])

    # 1. a row per file at once, filled in as answers arrive, with progress
    assert page.locator("#rows tr").count() == 8
    page.get_by_text("Checked 8 of 8 files.").wait_for()
    assert 1 <= page.evaluate("window.mostChecking") <= 3  # bounded concurrency
    for name, (words, chip) in EXPECTED.items():
        r = row(page, name)
        assert words in r.locator("td.line").inner_text(), name
        if chip is None:
            assert r.locator(".chip").count() == 0
            continue
        shown = r.locator(".chip")
        assert shown.inner_text() == chip, name
        colour = shown.evaluate("c => getComputedStyle(c).backgroundColor")
        assert colour == CHIP_COLOURS[chip], (name, colour)
        if name.endswith((".jpg", ".png")):  # the row's own picture, made in the browser
            assert pictures_loaded(r.locator("td.pic img"))
    assert row(page, "statement.pdf").locator(".nopic").inner_text() == "PDF"

    # 2. the trusted capture: who, when, app, signed capture details, actions, ingredients
    card = open_card(page, "capture.jpg")
    text = visible_text(card)
    assert "Trusted through: local workspace CA" in text
    assert "Produced with" in text and "provkit" in card.get_by_test_id("produced").inner_text()
    capture = card.get_by_test_id("capture").inner_text()
    assert "Canon EOS R5" in capture and "2026-11-30T09:12:44Z" in capture
    assert "51,30.42N" in capture
    happened = card.get_by_test_id("happened").inner_text()
    assert "Opened an existing file" in happened and "Cropped with provkit" in happened
    ingredients = card.get_by_test_id("ingredients")
    assert "original.jpg" in ingredients.inner_text()  # the parent, not the file itself
    assert "capture.jpg" not in ingredients.inner_text()
    assert "No ingredients recorded" not in text
    thumbs = card.locator("img")
    thumbs.first.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#card-body img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert thumbs.count() >= 2 and all(
        thumbs.nth(i).get_attribute("alt") for i in range(thumbs.count())
    )
    assert "ALLOW" in card.get_by_test_id("decision").inner_text()
    # no codes, dicts or Python reprs on the page; the codes sit behind the toggle
    assert not re.search(r"c2pa\.|\{'|digitalCapture|urn:c2pa|None\b", text), text
    details = card.locator("details.codes")
    assert not details.locator("dd").first.is_visible()
    details.locator("summary").click()
    assert "c2pa.cropped" in details.inner_text()

    # 3. the invalid third-party credential
    card = open_card(page, "wire.jpg")
    text = visible_text(card)
    assert "Northwind News Agency" in text and "Lens Camera SDK 4.1.2" in text
    assert "do not check out" in text and "DENY" in text

    # 4. the AI image, the archive match, the stripped copy, the bank match
    ai = open_card(page, "generated.png").get_by_test_id("ai").inner_text()
    assert "made by an algorithm" in ai and "Judged: AI-generated" in ai
    assert "Do not use for training generative AI" in ai
    card = open_card(page, "flood.jpg")
    seen = card.get_by_test_id("seen")
    assert f"published {ARCHIVE_PUBLISHED}" in seen.inner_text()
    seen.locator("img").first.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#card-body img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert "watermark" in visible_text(open_card(page, "shared.jpg"))
    seen = open_card(page, "viral.jpg").get_by_test_id("seen").inner_text()
    assert PARTNER_ID in seen and "known hoax" in seen
    assert "No Content Credentials" in visible_text(open_card(page, "statement.pdf"))
    card = open_card(page, "notes.txt")
    assert "not an image" in card.get_by_test_id("card-error").inner_text()

    # 5. Back returns to the row; a card downloads as one self-contained file
    open_card(page, "capture.jpg")
    page.get_by_role("button", name="Back to the list").click()
    assert "capture.jpg" in page.evaluate("document.activeElement.innerText")
    open_card(page, "capture.jpg")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download this card as a report").click()
    report = Path(info.value.path()).read_text()
    assert "Trusted through" in report and "<script" not in report
    assert 'src="http' not in report and 'data-src="' not in report

    assert page.external == [] and page.dialogs == []
    context.close()


def test_a_chosen_folder_reads_in_one_column_on_a_phone(browser, desk, tmp_path):
    server, secret, files = desk
    folder = tmp_path / "from-the-field"
    folder.mkdir()
    for name in ("capture.jpg", "notes.txt"):
        shutil.copy(files[name], folder / name)
    context, page = open_page(browser, server, secret, width=390, height=844)
    page.get_by_label("A folder").set_input_files(str(folder))
    page.get_by_text("Checked 2 of 2 files.").wait_for()
    assert "from-the-field/capture.jpg" in row(page, "capture.jpg").inner_text()
    open_card(page, "capture.jpg")
    columns = page.locator("#card-body .sections").evaluate(
        "s => getComputedStyle(s).gridTemplateColumns.split(' ').length"
    )
    assert columns == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.external == []
    context.close()


def test_hostile_manifest_text_is_shown_as_text(browser, desk):
    """Every manifest-derived string reaches the page escaped: no script runs, no element
    is injected, and the text reads as it was written."""
    server, secret, files = desk
    context, page = open_page(browser, server, secret)
    page.get_by_label("Files", exact=True).set_input_files([str(files["hostile.jpg"])])
    page.get_by_text("Checked 1 of 1 files.").wait_for()
    card = open_card(page, "hostile.jpg")
    text = card.inner_text()
    assert "<svg onload=alert(3)>" in text and "<script>alert(4)</script>" in text
    assert card.locator("img[src=x], svg, script").count() == 0
    assert page.locator("script").count() == 1  # the page's own desk.js
    assert page.dialogs == [] and page.external == []
    context.close()


def test_a_busy_server_makes_rows_wait_and_try_again(browser, desk):
    """A server that takes one request at a time answers the others 503 with Retry-After;
    the page waits as asked and checks every file in the end."""
    server, secret, files = desk
    narrow = Server(server.workspace, "--threads", "1", "--queue", "0")
    try:
        context, page = open_page(browser, narrow, secret)
        names = ["capture.jpg", "flood.jpg", "viral.jpg", "statement.pdf"]
        drop_files(page, "#drop", [files[n] for n in names])
        page.get_by_text("Checked 4 of 4 files.").wait_for()
        assert page.evaluate("window.sawBusy")  # some were turned away, and came back
        for name in names:
            assert row(page, name).locator(".chip").inner_text() == EXPECTED[name][1]
        assert page.external == []
        context.close()
    finally:
        narrow.stop()
