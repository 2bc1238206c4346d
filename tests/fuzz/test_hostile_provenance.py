"""Regressions of the hardening issue, provenance side: recovery is not validation, no
network unless asked, crash-safe issuing, key files and folders."""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import stat
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.provenance import keys
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec, manifest_definition
from provkit.provenance.verify import verify_file

from provkit.cli import root
from tests.fixtures_provenance import needs_watermark

# -- 3. recovery is not validation -----------------------------------------------------------


@pytest.fixture
def issued_photo(tmp_path, photos):
    src = tmp_path / "photo.png"
    Image.fromarray(photos[0]).save(src)
    signed = tmp_path / "signed.jpg"
    issued = issue(src, signed, spec=ManifestSpec(source_type="digitalCapture"))
    return signed, issued


def _stripped(src, dst, edit=None):
    img = Image.open(src).convert("RGB")
    if edit is not None:
        img = edit(img)
    img.save(dst, "JPEG", quality=92)
    return dst


def _black_quarter(img):
    arr = np.asarray(img).copy()
    h, w = arr.shape[:2]
    arr[: h // 2, : w // 2] = 0
    return Image.fromarray(arr)


@needs_watermark
def test_an_edited_stripped_copy_is_a_mismatch_not_recovered(tmp_path, issued_photo):
    signed, issued = issued_photo
    plain = verify_file(_stripped(signed, tmp_path / "plain.jpg"))
    assert plain.state == "recovered" and plain.ok
    edited_path = _stripped(signed, tmp_path / "edited.jpg", _black_quarter)
    edited = verify_file(edited_path)
    assert edited.state == "mismatch" and not edited.ok
    assert edited.recovered_manifest is None and edited.signer is None
    sentence = " ".join(edited.explanation)
    assert f"Identified as a copy of asset {issued.asset_id}" in sentence
    assert "this copy was edited after it was issued" in sentence
    assert edited.to_json()["c2pa"]["relation"]["class"] == "locally-edited"
    result = CliRunner().invoke(root, ["verify", str(edited_path)])
    assert result.exit_code == 1 and "MISMATCH" in result.output


@needs_watermark
def test_detect_and_the_newsroom_pack_do_not_take_a_mismatch_as_authentic(tmp_path, issued_photo):
    from provkit.detect import detect

    signed, _ = issued_photo
    edited = _stripped(signed, tmp_path / "edited.jpg", _black_quarter)
    report = detect(edited)
    c2pa = next(e for e in report.evidence if e.kind == "c2pa")
    assert c2pa.finding == "mismatch" and report.verdict == "unknown"
    result = CliRunner().invoke(
        root, ["policy", "check", "--pack", "newsroom", "--point", "publish", "--json", str(edited)]
    )
    assert '"deny"' in result.output, result.output


# -- 6. no network unless asked ---------------------------------------------------------------


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list  # one list per server, set by _listening

    def do_GET(self):
        self.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_HEAD = do_POST = do_GET

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _listening():
    handler = type("Handler", (_Counting,), {"hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _remote_manifest_file(src, dst, url):
    import c2pa

    builder = c2pa.Builder(manifest_definition(ManifestSpec(source_type="digitalCapture")))
    builder.set_no_embed()
    builder.set_remote_url(url)
    signer = keys.load_or_init().c2pa_signer()
    out = io.BytesIO()
    with open(src, "rb") as s:
        builder.sign(signer, "image/jpeg", s, out)
    dst.write_bytes(out.getvalue())
    return dst


def test_sign_verify_detect_and_scan_send_nothing_unless_asked(tmp_path, photo_path):
    with _listening() as (base, hits):
        remote = _remote_manifest_file(photo_path, tmp_path / "remote.jpg", f"{base}/manifest.c2pa")
        runner = CliRunner()
        out = runner.invoke(
            root,
            [
                "sign",
                str(photo_path),
                "-o",
                str(tmp_path / "o.jpg"),
                "--source-type",
                "digitalCapture",
                "--no-watermark",
                "--action",
                "edited",
                "--ingredient",
                str(remote),
            ],
        )
        assert out.exit_code == 0, out.output
        assert runner.invoke(root, ["verify", str(remote)]).exit_code == 1
        assert runner.invoke(root, ["detect", str(remote)]).exit_code == 0
        listing = tmp_path / "list.txt"
        listing.write_text(f"{remote}\n")
        assert (
            runner.invoke(
                root, ["scan", str(listing), "--out", str(tmp_path / "s.jsonl"), "--workers", "1"]
            ).exit_code
            == 0
        )
        assert hits == []
        # the same server is reached when asked, so the count above could have failed
        runner.invoke(root, ["verify", "--fetch-remote", str(remote)])
        assert hits, "--fetch-remote did not reach the server"


def test_every_sdk_object_is_made_with_provkits_settings(monkeypatch, tmp_path, photo_path):
    import c2pa

    made = []
    real_builder = c2pa.Builder.__init__

    def spy(self, manifest_json, context=None):
        made.append(context)
        return real_builder(self, manifest_json, context)

    monkeypatch.setattr(c2pa.Builder, "__init__", spy)
    issue(
        photo_path,
        tmp_path / "o.jpg",
        spec=ManifestSpec(source_type="digitalCapture"),
        watermark=False,
    )
    assert made and all(isinstance(c, c2pa.Context) for c in made)


# -- 8. crash windows ---------------------------------------------------------------------------


def test_the_file_is_in_place_before_its_ledger_row_is_committed(tmp_path, photo_path, monkeypatch):
    from provkit.provenance.ledger import Ledger

    out = tmp_path / "signed.jpg"
    seen = {}
    real = Ledger.record

    def record(self, **kwargs):
        seen["exists"] = out.exists()
        seen["leftover"] = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        return real(self, **kwargs)

    monkeypatch.setattr(Ledger, "record", record)
    issue(photo_path, out, spec=ManifestSpec(source_type="digitalCapture"), watermark=False)
    assert seen == {"exists": True, "leftover": []}


def test_a_failed_ledger_write_leaves_no_file_claiming_to_be_issued(
    tmp_path, photo_path, monkeypatch
):
    from provkit.provenance.ledger import Ledger

    def broken(self, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Ledger, "record", broken)
    out = tmp_path / "signed.jpg"
    from provkit.provenance.core.errors import BadInput

    with pytest.raises(BadInput, match="cannot record the asset"):
        issue(photo_path, out, spec=ManifestSpec(source_type="digitalCapture"), watermark=False)
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_stale_temp_files_of_a_killed_sign_are_cleaned(tmp_path, photo_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".signed.jpg.{dead.pid}.0123456789ab.tmp"
    stale.write_bytes(b"half a file")
    foreign = tmp_path / ".notes.tmp"  # not provkit's: left alone
    foreign.write_bytes(b"x")
    issue(
        photo_path,
        tmp_path / "signed.jpg",
        spec=ManifestSpec(source_type="digitalCapture"),
        watermark=False,
    )
    assert not stale.exists() and foreign.exists()


def test_an_interrupted_keys_init_force_leaves_a_usable_identity(monkeypatch):
    keys.init()
    before = keys.load().chain_pem
    real_replace = os.replace
    into_place = []

    def crash_midway(src, dst, *a, **kw):
        if os.path.dirname(os.fspath(dst)) == os.fspath(keys.keys_dir()):
            into_place.append(dst)
            if len(into_place) == 2:  # one file of the new identity in place, the rest not
                raise KeyboardInterrupt("killed")
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        keys.init(force=True)
    monkeypatch.setattr(os, "replace", real_replace)
    identity = keys.load()  # the committed swap is finished by the next process
    keys.check_chain(identity.chain_pem, identity.key_path.read_bytes())
    assert identity.chain_pem != before
    assert not (keys.keys_dir() / ".pending").exists()


# -- 9. key folder modes, retired anchors -----------------------------------------------------


def test_key_folder_and_files_are_private_under_any_umask():
    old = os.umask(0)
    try:
        keys.init()
    finally:
        os.umask(old)
    d = keys.keys_dir()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in d.iterdir():
        if f.is_file():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name


def test_a_pem_dropped_into_retired_is_no_trust_anchor(tmp_path):
    keys.init()
    keys.init(force=True)  # retires the first CA: provkit's own write
    own = keys.local_trust_anchors()
    ca_cert, *_ = keys.make_chain("Intruder")
    (keys.keys_dir() / "retired" / "intruder.pem").write_bytes(keys._pem(ca_cert))
    assert keys.local_trust_anchors() == own
    assert keys._pem(ca_cert) not in keys.local_trust_anchors()
    assert own.count(b"BEGIN CERTIFICATE") == 2
