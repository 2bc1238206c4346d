"""Reading what arrives: manifests kept beside the file (``.c2pa`` sidecars) or at a
remote address (fetched only when asked, bounded in size and time), and every Pillow
image mode through every verb."""

from __future__ import annotations

import http.server
import io
import json
import shutil
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.provenance import keys
from provkit.provenance.core.errors import BadInput
from provkit.provenance.manifest import ManifestSpec, manifest_definition, new_builder
from provkit.provenance.remote import fetch_manifest
from provkit.provenance.verify import STANDALONE_NOTE, verify_file

from provkit.cli import root
from tests import fixtures_causes as make


class _Serve:
    """A loopback HTTP server answering every GET with ``body`` (after ``delay`` s)."""

    def __init__(self, body: bytes, delay: float = 0.0):
        outer = self
        self.hits = 0
        self.body = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/c2pa")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                try:
                    self.wfile.write(outer.body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/m.c2pa"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jpeg(photos):
    return make.photo_jpeg(photos[3])


def test_a_sidecar_beside_the_media_file_is_verified_with_it(tmp_path, jpeg):
    remote, store = make.remote_manifest(tmp_path, jpeg)
    folder = tmp_path / "delivery"
    folder.mkdir()
    shutil.copy(remote, folder / "photo.jpg")
    (folder / "photo.c2pa").write_bytes(store)
    report = verify_file(folder / "photo.jpg", recover=False)
    assert report.state == "trusted" and report.cause is None
    assert (
        report.explanation[0] == "The manifest was read from the sidecar photo.c2pa "
        "beside the file."
    )
    # the sidecar against other pixels: the binding fails, and the picture is compared
    (folder / "other.jpg").write_bytes(make.photo_jpeg(np.zeros((64, 64, 3), np.uint8)))
    (folder / "other.c2pa").write_bytes(store)
    other = verify_file(folder / "other.jpg", recover=False)
    assert other.state == "invalid"


def test_a_sidecar_on_its_own_is_verified_and_says_the_binding_was_not_checked(tmp_path, jpeg):
    _, store = make.remote_manifest(tmp_path, jpeg)
    alone = tmp_path / "alone.c2pa"
    alone.write_bytes(store)
    report = verify_file(alone, recover=False)
    assert report.format == "application/c2pa"
    assert report.state == "trusted" and report.failures == []
    assert STANDALONE_NOTE in report.notes
    result = CliRunner().invoke(root, ["verify", str(alone)])
    assert result.exit_code == 0, result.output


def test_a_remote_manifest_is_fetched_only_when_asked(tmp_path, jpeg):
    with _Serve(b"") as server:
        builder_file = _remote_to(tmp_path, jpeg, server.url)
        server.body = _remote_to.store  # what the signer published at that address
        plain = verify_file(builder_file)
        assert plain.state == "absent" and plain.remote_url == server.url
        assert server.hits == 0  # nothing was fetched
        assert plain.explanation == [
            (
                f"The manifest is stored remotely at {server.url} and "
                "was not fetched (use --fetch-remote)."
            )
        ]
        result = CliRunner().invoke(root, ["verify", "--fetch-remote", "--json", str(builder_file)])
        row = json.loads(result.stdout)[0]["c2pa"]
        assert server.hits == 1
        assert row["state"] == "trusted" and row["cause"] is None
        assert row["explanation"][0] == f"The manifest was fetched from {server.url}."
        assert result.exit_code == 0


def _remote_to(tmp_path, jpeg, url):
    """A file whose manifest reference names ``url``, served with its own store."""
    builder = new_builder(manifest_definition(ManifestSpec(source_type="digitalCapture")))
    builder.set_no_embed()
    builder.set_remote_url(url)
    out = io.BytesIO()
    signer = keys.load_or_init().c2pa_signer()
    try:
        store = builder.sign(signer, "image/jpeg", io.BytesIO(jpeg), out)
    finally:
        signer.close()
        builder.close()
    path = tmp_path / "served.jpg"
    path.write_bytes(out.getvalue())
    _remote_to.store = store
    return path


def test_fetching_is_bounded_in_size_and_time(tmp_path):
    with _Serve(b"x" * 5000) as big, pytest.raises(BadInput, match="more than the 1000"):
        fetch_manifest(big.url, limit=1000)
    with _Serve(b"x" * 10, delay=2.0) as slow:
        started = time.monotonic()
        with pytest.raises(BadInput, match="cannot fetch|not fetched within"):
            fetch_manifest(slow.url, timeout=0.5)
        assert time.monotonic() - started < 1.9
    with pytest.raises(BadInput, match="only http"):
        fetch_manifest("file:///etc/passwd")


def test_a_failed_fetch_is_reported_with_the_address_and_the_cause(tmp_path, jpeg):
    with _Serve(b"") as empty:
        path = _remote_to(tmp_path, jpeg, empty.url)
        report = verify_file(path, fetch_remote=True)
    assert report.state == "absent" and report.cause == "remote_not_fetched"
    assert "fetching it failed" in report.explanation[0] and empty.url in report.explanation[0]


MODES = ["1", "L", "LA", "P", "I;16", "I", "F", "CMYK", "RGBA", "RGB"]


def _image_in(mode: str, photos, tmp_path):
    grey = Image.fromarray(photos[4]).convert("L").resize((192, 128))
    if mode == "I;16":
        img = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    else:
        img = (
            grey.convert(mode)
            if mode not in ("RGB", "RGBA", "CMYK")
            else Image.fromarray(photos[0]).resize((192, 128)).convert(mode)
        )
    fmt, ext, kwargs = (
        ("TIFF", "tif", {"compression": "group4"})
        if mode == "1"
        else ("TIFF", "tif", {})
        if mode in ("I;16", "I", "F", "CMYK")
        else ("PNG", "png", {})
    )
    path = tmp_path / f"mode_{mode.replace(';', '_')}.{ext}"
    img.save(path, fmt, **kwargs)
    return path


@pytest.mark.parametrize("mode", MODES)
def test_every_pillow_mode_reads_in_every_verb(mode, photos, tmp_path):
    path = _image_in(mode, photos, tmp_path)
    runner = CliRunner()
    signed = tmp_path / f"signed_{path.name}"
    for args in (
        ["verify", "--json"],
        ["detect", "--json"],
        ["check", "--dry-run", "--json"],
        ["watermark", "decode"],
        ["scan", "-o", str(tmp_path / f"{mode}.jsonl"), "--force"],
        ["sign", "-o", str(signed), "--source-type", "digitalCapture", "--force"],
    ):
        result = runner.invoke(root, [*args, str(path)])
        assert result.exit_code in (0, 1), (mode, args[0], result.output)
        assert "wrong mode" not in result.output and "Traceback" not in result.output
    assert verify_file(signed).state == "trusted"


def test_every_pillow_mode_is_indexed_found_and_watermarked(photos, tmp_path):
    paths = [_image_in(mode, photos, tmp_path) for mode in MODES]
    runner = CliRunner()
    added = runner.invoke(root, ["index", "add", "refs", *map(str, paths)])
    assert added.exit_code == 0 and "failed 0" in added.output, added.output
    for path in paths:
        found = runner.invoke(root, ["dupes", "--json", str(path)])
        assert found.exit_code == 0, (path.name, found.output)
        assert json.loads(found.stdout)[0]["matches"], path.name
        marked = runner.invoke(
            root, ["watermark", "embed", str(path), "-o", str(tmp_path / f"wm_{path.stem}.png")]
        )
        assert marked.exit_code == 0, (path.name, marked.output)


def test_a_redirect_to_a_non_http_address_is_not_followed(tmp_path):
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"file://{tmp_path}/secret.c2pa")
            self.end_headers()

        def log_message(self, *args):
            pass

    (tmp_path / "secret.c2pa").write_bytes(b"not to be read")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(BadInput, match="HTTP 302|cannot fetch"):
            fetch_manifest(f"http://127.0.0.1:{httpd.server_address[1]}/m.c2pa")
    finally:
        httpd.shutdown()
        httpd.server_close()
