"""``make screenshots``: drive the desk page as tests/test_serve_browser.py does and write
the pictures docs/serve.md shows: the batch table after eight mixed files were dropped,
and the cards of a trusted capture and of an invalid third-party credential.

A fresh workspace in a temporary folder, ``provkit serve`` on loopback, real Chromium
(/usr/bin/chromium, headless). Each PNG is reduced to a 256-colour palette so it stays
small (under 200 KB). ``python tests/screenshots.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIMIT = 200_000


def _small_png(path: Path) -> int:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    return path.stat().st_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "img",
        help="where the PNGs go (default: docs/img)",
    )
    parser.add_argument("--width", type=int, default=1100, help="viewport width in pixels")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="provkit-shots-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["PROVKIT_HOME"] = str(home)
        os.environ.pop("PROVKIT_DB", None)
        os.environ["PROVKIT_DEV_IDENTITY"] = "1"  # the fixtures sign as a development CA
        from playwright.sync_api import sync_playwright

        from provkit.server import tokens
        from tests.conftest import natural_photos
        from tests.fixtures_desk import CHROMIUM, CHROMIUM_ARGS, desk_files, drop_files
        from tests.fixtures_serve import Server

        db = home / "provkit.db"
        files = desk_files(Path(tmp) / "desk", natural_photos(), db)
        secret = tokens.create("screenshots", ["read"], db=db).secret
        server = Server(home)
        args.out.mkdir(parents=True, exist_ok=True)
        written = []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": args.width, "height": 900})
                page.set_default_timeout(120_000)
                page.goto(server.url + "/")
                page.get_by_label("API token").fill(secret)
                page.get_by_role("button", name="Use token").click()
                drop_files(page, "#drop", list(files.values()))
                page.get_by_text("Checked 8 of 8 files.").wait_for()
                page.evaluate("document.activeElement.blur()")
                shot = args.out / "desk-batch.png"
                page.locator("main").screenshot(path=str(shot))
                written.append(shot)
                for name, png in (
                    ("capture.jpg", "desk-card-capture.png"),
                    ("wire.jpg", "desk-card-invalid.png"),
                ):
                    row = page.locator("#rows tr").filter(
                        has=page.locator("td.name", has_text=name)
                    )
                    row.click()
                    page.wait_for_function(
                        "() => [...document.querySelectorAll('#card-body img')]"
                        ".every(i => i.complete && i.naturalWidth > 0)"
                    )
                    page.evaluate("document.activeElement.blur()")
                    shot = args.out / png
                    page.locator("#card-body article").screenshot(path=str(shot))
                    written.append(shot)
                browser.close()
        finally:
            server.stop()
    for shot in written:
        size = _small_png(shot)
        print(
            f"wrote {shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot} "
            f"({size // 1000} KB)"
        )
        if size > LIMIT:
            print(f"warning: {shot.name} is over {LIMIT // 1000} KB", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
