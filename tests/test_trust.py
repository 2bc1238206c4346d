"""Trust sources: the C2PA Trust List shipped, the workspace CA, added files; reports name
the source; `provkit trust` manages them; no network unless asked."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import socket
import threading
import typing
from importlib import resources

from click.testing import CliRunner
from fixtures_verify import identity_with, sdk_read, sign_bytes
from PIL import Image
from provkit.provenance import keys, trust
from provkit.provenance.verify import verify_file

from provkit.cli import root


def _jpeg(photos, i=0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photos[i]).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_the_c2pa_lists_ship_as_package_data_with_their_attribution():
    files = resources.files("provkit.provenance.data.c2pa")
    for name in (
        "C2PA-TRUST-LIST.pem",
        "C2PA-TRUST-LIST.json",
        "C2PA-TSA-TRUST-LIST.pem",
        "C2PA-TSA-TRUST-LIST.json",
        "conforming-products-list.json",
        "asset-rubric-signals-local.yml",
        "asset-rubric-integrity.yml",
        "globals-signals.yml",
    ):
        assert files.joinpath(name).is_file(), name
    notice = files.joinpath("LICENSE.md").read_text()
    assert "CC BY 4.0" in notice and "Coalition for Content Provenance and Authenticity" in notice
    assert trust.c2pa_source().label == "C2PA Trust List (2026-08-05)"
    assert len(trust.c2pa_source().certificates) == 30
    assert len(trust.tsa_source().certificates) == 22
    pyproject = resources.files("provenance").joinpath("..", "pyproject.toml")
    if pyproject.is_file():
        assert '"provkit.provenance.data.c2pa" = ["*.pem"' in pyproject.read_text()


def test_default_trust_is_the_c2pa_list_the_local_ca_and_added_files(tmp_path):
    keys.load_or_init()
    assert trust.resolve().names == ["c2pa", "local"]
    _, ca = identity_with(tmp_path / "desk", {"CN": "desk", "O": "desk"})
    trust.trust_add(ca, name="partner")
    assert trust.resolve().names == ["c2pa", "local", "partner"]
    assert trust.resolve(["c2pa"]).names == ["c2pa"]


def test_reports_name_the_source_that_made_the_signer_trusted(tmp_path, photos):
    local_signed = tmp_path / "local.jpg"
    local_signed.write_bytes(sign_bytes(_jpeg(photos), "image/jpeg", keys.load_or_init()))
    ident, ca = identity_with(tmp_path / "partner", {"CN": "partner signer", "O": "partner"})
    partner_signed = tmp_path / "partner.jpg"
    partner_signed.write_bytes(sign_bytes(_jpeg(photos, 1), "image/jpeg", ident))

    r = verify_file(local_signed)
    assert r.state == sdk_read(local_signed)["state"] == "trusted"
    assert r.signer["trust_source"] == "local workspace CA"
    r = verify_file(partner_signed)
    assert r.state == sdk_read(partner_signed)["state"] == "valid"
    assert r.signer["trust_source"] is None

    result = CliRunner().invoke(root, ["trust", "add", str(ca), "--name", "partner"])
    assert result.exit_code == 0, result.output
    r = verify_file(partner_signed)
    assert r.state == sdk_read(partner_signed)["state"] == "trusted"
    assert r.signer["trust_source"] == "partner (added trust file)"
    out = CliRunner().invoke(root, ["verify", str(partner_signed)]).output
    assert "; trusted: partner (added trust file)" in out

    # only the C2PA list: neither is trusted, and the SDK agrees on the same anchors
    for path in (local_signed, partner_signed):
        r = verify_file(path, trust=["c2pa"])
        assert r.state == sdk_read(path, trust=["c2pa"])["state"] == "valid"
    # a PEM file named directly
    r = verify_file(partner_signed, trust=[str(ca)])
    assert r.signer["trust_source"] == "ca.pem"

    assert CliRunner().invoke(root, ["trust", "remove", "partner"]).exit_code == 0
    assert verify_file(partner_signed).state == "valid"


def test_trust_commands_list_show_add_remove(tmp_path):
    runner = CliRunner()
    rows = json.loads(runner.invoke(root, ["trust", "list", "--json"]).output)
    assert [r["name"] for r in rows][:3] == ["c2pa", "c2pa-tsa", "local"]
    shown = json.loads(runner.invoke(root, ["trust", "show", "c2pa", "--json"]).output)
    assert shown["label"] == "C2PA Trust List (2026-08-05)"
    assert len(shown["certificate_subjects"]) == 30
    _, ca = identity_with(tmp_path / "x", {"CN": "x", "O": "x"})
    assert runner.invoke(root, ["trust", "add", str(ca), "--name", "x1"]).exit_code == 0
    again = runner.invoke(root, ["trust", "add", str(ca), "--name", "x1"])
    assert again.exit_code == 2 and "already exists" in again.output
    assert "x1" in runner.invoke(root, ["trust", "list"]).output
    gone = runner.invoke(root, ["trust", "remove", "c2pa"])
    assert gone.exit_code == 2 and "built in" in gone.output
    assert runner.invoke(root, ["trust", "remove", "x1"]).exit_code == 0
    missing = runner.invoke(root, ["trust", "remove", "x1"])
    assert missing.exit_code == 2 and "no added trust file" in missing.output
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    bad = runner.invoke(root, ["trust", "add", str(not_pem)])
    assert bad.exit_code == 2 and "no PEM certificates" in bad.output


def test_an_unknown_trust_source_is_one_line(signed_jpeg):
    signed, _ = signed_jpeg
    result = CliRunner().invoke(root, ["verify", str(signed), "--trust", "nonesuch"])
    assert result.exit_code == 2
    assert "unknown trust source 'nonesuch'" in result.output


def test_time_stamp_trust_is_reported_apart_from_the_signer(signed_jpeg):
    signed, _ = signed_jpeg
    r = verify_file(signed)
    assert r.timestamp["present"] is False and r.timestamp["tsa_trust_source"] is None
    assert "no trusted time-stamp" in r.timestamp["sentence"]
    assert r.signer["trust_source"] == "local workspace CA"


# --------------------------------------------------------------------------- network


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: typing.ClassVar[list] = []

    def do_POST(self):
        self.hits.append(self.path)
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _recording_server():
    handler = type("H", (_Recorder,), {"hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ocsp", handler.hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_revocation_is_checked_online_only_with_ocsp(tmp_path, photos):
    with _recording_server() as (url, hits):
        ident, ca = identity_with(tmp_path / "ocsp", {"CN": "ocsp signer", "O": "o"}, ocsp_url=url)
        signed = tmp_path / "ocsp.jpg"
        signed.write_bytes(sign_bytes(_jpeg(photos), "image/jpeg", ident))
        hits.clear()
        verify_file(signed, trust=[str(ca)])
        from provkit.detect.verdict import detect as detect_file

        detect_file(signed, trust=[str(ca)])
        CliRunner().invoke(root, ["verify", str(signed), "--trust", str(ca)])
        assert hits == []  # the SDK's native code opened no connection either
        CliRunner().invoke(root, ["verify", str(signed), "--trust", str(ca), "--ocsp"])
        assert len(hits) >= 1  # and it does when asked


def test_verify_and_detect_open_no_socket(monkeypatch, signed_jpeg, tmp_path, photos):
    opened = []
    real_connect = socket.socket.connect

    def refuse(self, address):
        opened.append(address)
        raise OSError("network refused by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(
        socket,
        "create_connection",
        lambda *a, **k: opened.append(a) or (_ for _ in ()).throw(OSError()),
    )
    signed, _ = signed_jpeg
    stripped = tmp_path / "stripped.jpg"
    Image.open(signed).save(stripped, "JPEG", quality=90)
    from provkit.detect.verdict import detect as detect_file

    for path in (signed, stripped):
        verify_file(path)
        detect_file(path)
    assert opened == []
    monkeypatch.setattr(socket.socket, "connect", real_connect)
