"""Verification agrees with c2pa-python's Reader; reports explain; exit codes; bad input."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from provkit.provenance import keys
from provkit.provenance.core.errors import BadInput
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec, manifest_definition, sign_stream
from provkit.provenance.verify import verify_file

from provkit.cli import root
from tests.fixtures_provenance import flip_pixel_bytes, sdk_state


def _flip_scan_byte(src, dst):
    dst.write_bytes(flip_pixel_bytes(src.read_bytes()))  # the pixels, before the end marker
    return dst


def _flip_manifest_byte(src, dst):
    data = bytearray(src.read_bytes())
    i = data.find(b"digitalCapture")
    data[i] ^= 0x01  # "digitalCapture" -> "eigitalCapture" inside the actions assertion
    dst.write_bytes(bytes(data))
    return dst


def _resign(src, dst, identity):
    definition = manifest_definition(ManifestSpec(source_type="digitalCapture"))
    with open(src, "rb") as s, open(dst, "w+b") as d:
        sign_stream(definition, identity, "image/jpeg", s, d)
    return dst


def _claim_changed_under_signature(src, dst):
    """One character of the signed claim (its instance id) changed: the signature cannot match."""
    data = bytearray(src.read_bytes())
    i = data.find(b"xmp.iid:") + 10
    data[i] = ord("0") if data[i] != ord("0") else ord("1")
    dst.write_bytes(bytes(data))
    return dst


REMOTE_URL = "https://manifests.example.org/abc.c2pa"


def _remote(src, dst, url=REMOTE_URL):
    """``dst``: ``src`` signed with its manifest kept apart, at ``url``; returns the store."""
    import c2pa

    definition = manifest_definition(ManifestSpec(source_type="digitalCapture"))
    builder = c2pa.Builder(definition)
    builder.set_no_embed()
    builder.set_remote_url(url)
    signer = keys.load_or_init().c2pa_signer()
    out = io.BytesIO()
    with open(src, "rb") as s:
        store = builder.sign(signer, "image/jpeg", s, out)
    dst.write_bytes(out.getvalue())
    return store


@contextlib.contextmanager
def _serving(directory):
    """A local HTTP server for ``directory``; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _strip(src, dst):
    Image.open(src).save(dst, "JPEG", quality=95)
    return dst


@pytest.fixture
def tamper_matrix(tmp_path, signed_jpeg, second_identity):
    signed, _ = signed_jpeg
    other, _ = second_identity
    return {
        "signed": signed,
        "pixels changed": _flip_scan_byte(signed, tmp_path / "px.jpg"),
        "manifest changed": _flip_manifest_byte(signed, tmp_path / "mf.jpg"),
        "re-signed by another key": _resign(signed, tmp_path / "resigned.jpg", other),
        "signature does not match": _claim_changed_under_signature(signed, tmp_path / "wk.jpg"),
        "stripped": _strip(signed, tmp_path / "stripped.jpg"),
    }


def test_states_agree_exactly_with_the_reference_reader(tamper_matrix):
    local = keys.local_trust_anchors()
    expected = {
        "signed": "trusted",
        "pixels changed": "invalid",
        "manifest changed": "invalid",
        "re-signed by another key": "valid",
        "signature does not match": "invalid",
        "stripped": "absent",
    }
    for name, path in tamper_matrix.items():
        report = verify_file(path, recover=False)
        assert report.state == sdk_state(path, anchors=local), name
        assert report.state == expected[name], name


def test_explanations_say_what_happened_in_plain_sentences(tamper_matrix):
    def sentences(name):
        return " ".join(verify_file(tamper_matrix[name], recover=False).explanation)

    # one flipped scan bit: the bytes differ, but the picture still looks like its signed
    # thumbnail, so verify says exactly that and never that the contents changed
    assert "bytes are not those that were signed" in sentences("pixels changed")
    assert "contents changed" not in sentences("pixels changed")
    assert "altered after signing" in sentences("manifest changed")
    assert "signature does not match" in sentences("signature does not match")
    assert "not on your trust list" in sentences("re-signed by another key")
    assert "no C2PA manifest" in sentences("stripped")


def test_second_identity_is_valid_until_its_ca_is_a_trust_anchor(
    tmp_path, photo_path, second_identity
):
    other, other_ca = second_identity
    out = tmp_path / "other.jpg"
    issue(
        photo_path,
        out,
        spec=ManifestSpec(source_type="digitalCapture"),
        watermark=False,
        identity=other,
    )
    plain = verify_file(out)
    assert plain.state == "valid" == sdk_state(out, anchors=keys.local_trust_anchors())
    assert plain.failures == ["signingCredential.untrusted"]
    anchored = verify_file(out, trust=other_ca)
    assert anchored.state == "trusted"
    assert anchored.state == sdk_state(out, anchors=other_ca.read_bytes())
    assert anchored.signer["organization"] == "Other Org"
    assert anchored.signer["issuer"] == "Other Org CA"


def test_local_trust_can_be_switched_off(signed_jpeg):
    signed, _ = signed_jpeg
    assert verify_file(signed).state == "trusted"
    assert verify_file(signed, trust_local=False).state == "valid" == sdk_state(signed)


def test_sdk_refuses_an_unfetched_remote_manifest_and_names_its_url(tmp_path, photo_path):
    """What the remote-manifest report rests on: c2pa-python raises (no state), with the URL."""
    import c2pa
    from provkit.provenance.manifest import context

    remote = tmp_path / "remote.jpg"
    _remote(photo_path, remote)
    with pytest.raises(c2pa.C2paError) as caught:
        c2pa.Reader("image/jpeg", io.BytesIO(remote.read_bytes()), context=context())
    assert not isinstance(caught.value, c2pa.C2paError.ManifestNotFound)
    assert str(caught.value).startswith("Remote") and REMOTE_URL in str(caught.value)


def test_remote_manifest_is_reported_not_fetched(tmp_path, photo_path):
    remote = tmp_path / "remote.jpg"
    _remote(photo_path, remote)
    report = verify_file(remote)
    assert report.state == "absent" and report.remote_url == REMOTE_URL
    assert report.failures == [] and report.recovered_by is None
    sentence = (
        f"The manifest is stored remotely at {REMOTE_URL} and was not fetched (use --fetch-remote)."
    )
    assert report.explanation == [sentence]
    human = CliRunner().invoke(root, ["verify", str(remote)])
    assert human.exit_code == 1 and f"  - {sentence}" in human.output
    data = json.loads(CliRunner().invoke(root, ["verify", "--json", str(remote)]).output)
    assert data[0]["c2pa"]["remote_url"] == REMOTE_URL


def test_fetch_remote_validates_the_manifest_at_its_url_as_the_sdk_does(tmp_path, photo_path):
    import c2pa
    from provkit.provenance.manifest import context

    served = tmp_path / "served"
    served.mkdir()
    remote = tmp_path / "remote.jpg"
    with _serving(served) as base:
        url = f"{base}/abc.c2pa"
        (served / "abc.c2pa").write_bytes(_remote(photo_path, remote, url))
        report = verify_file(remote, fetch_remote=True)
        reader = c2pa.Reader(
            str(remote),
            context=context(trust_anchors=keys.local_trust_anchors(), fetch_remote=True),
        )
        sdk = reader.get_validation_state().lower()
        reader.close()
    assert report.state == sdk == "trusted"
    assert report.remote_url == url and report.digital_source_type == "digitalCapture"
    assert report.explanation[0] == f"The manifest was fetched from {url}."


def test_fetch_remote_that_fails_is_absent_and_says_why(tmp_path, photo_path):
    with _serving(tmp_path) as base:
        url = f"{base}/gone.c2pa"  # the server stops before the fetch: the port is closed
    remote = tmp_path / "remote.jpg"
    _remote(photo_path, remote, url)
    report = verify_file(remote, fetch_remote=True)
    assert report.state == "absent" and report.remote_url == url
    assert report.failures == ["manifest.inaccessible"]
    assert report.explanation[0].startswith(
        f"The manifest is stored remotely at {url}; fetching it failed ("
    )


def test_report_lists_signer_source_type_actions_and_nested_ingredients(tmp_path, signed_jpeg):
    parent, issued = signed_jpeg
    child = tmp_path / "child.jpg"
    issue(
        parent,
        child,
        spec=ManifestSpec(
            source_type="compositeWithTrainedAlgorithmicMedia", action="edited", no_train=True
        ),
        watermark=False,
    )
    data = verify_file(child).to_json()
    c = data["c2pa"]
    assert data["path"] == str(child) and c["state"] == "trusted"
    assert c["digital_source_type"] == "compositeWithTrainedAlgorithmicMedia"
    assert [a["action"] for a in c["actions"]] == ["c2pa.opened", "c2pa.edited"]
    assert c["signer"]["common_name"] and c["training_mining"]["cawg.ai_training"] == "notAllowed"
    (ing,) = c["ingredients"]
    assert ing["relationship"] == "parentOf" and ing["manifest_label"] == issued.manifest_label
    assert ing["digital_source_type"] == "digitalCapture"
    assert ing["state"] in ("valid", "trusted") and ing["actions"][0]["action"] == "c2pa.created"


def test_exit_codes_and_a_bad_file_mid_list_does_not_stop_the_others(tmp_path, tamper_matrix):
    runner = CliRunner()
    ok = runner.invoke(root, ["verify", str(tamper_matrix["signed"])])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(
        root,
        [
            "verify",
            "--no-recover",
            str(tamper_matrix["signed"]),
            str(tamper_matrix["pixels changed"]),
        ],
    )
    assert bad.exit_code == 1
    missing = tmp_path / "gone.jpg"
    mixed = runner.invoke(
        root,
        [
            "verify",
            "--json",
            str(tamper_matrix["signed"]),
            str(missing),
            str(tamper_matrix["stripped"]),
        ],
    )
    assert mixed.exit_code == 2
    assert f"error: {missing}: no such file" in mixed.output
    reports = json.loads(mixed.stdout)
    assert [r["path"] for r in reports] == [
        str(tamper_matrix["signed"]),
        str(missing),
        str(tamper_matrix["stripped"]),
    ]


def test_verify_json_gives_an_unreadable_file_an_error_row_in_its_place(tmp_path, signed_jpeg):
    signed, _ = signed_jpeg
    missing = tmp_path / "gone.jpg"
    text = tmp_path / "note.jpg"
    text.write_text("hello")
    result = CliRunner().invoke(root, ["verify", "--json", str(missing), str(signed), str(text)])
    assert result.exit_code == 2
    assert f"error: {missing}: no such file" in result.stderr
    rows = json.loads(result.stdout)
    assert rows[0] == {"path": str(missing), "error": "no such file"}
    assert rows[1]["path"] == str(signed) and rows[1]["c2pa"]["state"] == "trusted"
    assert rows[2]["path"] == str(text) and "not an image" in rows[2]["error"]


def _png_header_bomb(path):
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(
    "kind",
    [
        "zero bytes",
        "truncated signed jpeg",
        "text named jpg",
        "png header bomb",
        "truncated plain jpeg",
    ],
)
def test_unreadable_input_is_one_line_error_exit_2(tmp_path, signed_jpeg, photos, kind):
    signed, _ = signed_jpeg
    path = tmp_path / ("bad.png" if "png" in kind else "bad.jpg")
    if kind == "zero bytes":
        path.write_bytes(b"")
    elif kind == "truncated signed jpeg":
        path.write_bytes(signed.read_bytes()[: len(signed.read_bytes()) // 2])
    elif kind == "truncated plain jpeg":
        Image.fromarray(photos[0]).save(tmp_path / "p.jpg")
        path.write_bytes((tmp_path / "p.jpg").read_bytes()[:5000])
    elif kind == "text named jpg":
        path.write_text("definitely not a picture\n")
    else:
        _png_header_bomb(path)
    result = CliRunner().invoke(root, ["verify", str(path)])
    assert result.exit_code == 2, (kind, result.output)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.output
    assert "Traceback" not in result.output


def test_verify_never_imports_torch(signed_jpeg):
    signed, _ = signed_jpeg
    code = (
        "import sys\n"
        "from provkit.cli import main\n"
        "try:\n"
        f"    main(['verify', {str(signed)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def _sdk_state_or_error(path, anchors):
    import c2pa

    try:
        return sdk_state(path, anchors=anchors)
    except c2pa.C2paError:
        return "error"


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.floats(min_value=0.0, max_value=0.999), mask=st.integers(1, 255))
def test_any_single_byte_change_gets_the_state_the_sdk_gives(tmp_path, signed_jpeg, position, mask):
    from provkit.provenance.core.errors import BadInput

    signed, _ = signed_jpeg
    data = bytearray(signed.read_bytes())
    index = int(position * len(data))
    data[index] ^= mask
    path = tmp_path / "flipped.jpg"
    path.write_bytes(bytes(data))
    expected = _sdk_state_or_error(path, keys.local_trust_anchors())
    try:
        got = verify_file(path, recover=False).state
    except BadInput:
        got = "unreadable"
    if got == "unreadable":  # only a broken file signature or end marker makes it unreadable
        assert index < 3 or index >= len(data) - 2
    elif expected == "error":  # the SDK refuses to parse what is left of the manifest
        assert got == "invalid"
    else:
        assert got == expected


def test_a_trust_anchor_file_without_certificates_is_one_error(tmp_path, signed_jpeg):
    signed, _ = signed_jpeg
    anchors = tmp_path / "anchors.pem"
    anchors.write_text("not a certificate")
    result = CliRunner().invoke(root, ["verify", "--trust", str(anchors), str(signed), str(signed)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {anchors}: no PEM certificates in trust anchor file"


# ----------------------------------------------------------- ingredient trees


def _chain_store(depth: int, fan: int = 3) -> dict:
    """A store where manifest i has ``fan`` ingredients that are all manifest i-1."""
    manifests = {"m0": {"ingredients": []}}
    for i in range(1, depth + 1):
        manifests[f"m{i}"] = {
            "ingredients": [
                {
                    "title": f"f{i - 1}.jpg",
                    "relationship": "componentOf",
                    "format": "image/jpeg",
                    "active_manifest": f"m{i - 1}",
                }
                for _ in range(fan)
            ]
        }
    return {"active_manifest": f"m{depth}", "manifests": manifests}


def _walk(items):
    for item in items:
        yield item
        yield from _walk(item.get("ingredients") or [])


def test_shared_ingredients_are_expanded_once_not_once_per_reference():
    from provkit.provenance.report import report_from_store

    report = report_from_store("x.jpg", _chain_store(10), state="valid", failures=[])
    nodes = list(_walk(report.ingredients))
    expanded = [n["manifest_label"] for n in nodes if not n.get("repeated")]
    assert sorted(expanded) == sorted(f"m{i}" for i in range(10))  # each manifest once
    assert len(nodes) == 3 * 10  # every reference listed, later ones by label only
    assert all(n["ingredients"] == [] and n["state"] == "valid" for n in nodes if n.get("repeated"))
    assert len(json.dumps(report.to_json())) < 100_000


def test_an_ingredient_cycle_ends_at_the_manifest_already_listed():
    from provkit.provenance.report import report_from_store

    store = {
        "active_manifest": "a",
        "manifests": {
            "a": {"ingredients": [{"title": "b", "active_manifest": "b"}]},
            "b": {"ingredients": [{"title": "a", "active_manifest": "a"}]},
        },
    }
    report = report_from_store("x.jpg", store, state="valid", failures=[])
    (b,) = report.ingredients
    assert b["manifest_label"] == "b" and not b.get("repeated")
    (a,) = b["ingredients"]
    assert a["manifest_label"] == "a" and a["repeated"] and a["ingredients"] == []


def test_ingredient_listing_is_capped_and_says_how_many_were_left_out():
    from provkit.provenance.report import MAX_INGREDIENT_NODES, report_from_store

    many = MAX_INGREDIENT_NODES + 40
    store = {
        "active_manifest": "a",
        "manifests": {
            "a": {
                "ingredients": [{"title": f"{i}.jpg", "active_manifest": None} for i in range(many)]
            }
        },
    }
    report = report_from_store("x.jpg", store, state="valid", failures=[])
    assert len(report.ingredients) == MAX_INGREDIENT_NODES + 1
    assert report.ingredients[-1]["omitted"] == 40
    from provkit.commands.verify import _report_lines  # the human report says so too

    lines = _report_lines(report.to_json())
    assert "40 more ingredients not listed" in lines and "None (None)" not in lines


# ----------------------------------------------------------- file completeness


def test_jpeg_with_data_after_its_end_marker_is_read_not_called_truncated(tmp_path, photo_path):
    motion = tmp_path / "motion.jpg"
    motion.write_bytes(photo_path.read_bytes() + b"\x00\x00\x00\x18ftypmp42" + bytes(20000))
    assert verify_file(motion, recover=False).state == "absent"
    signed = tmp_path / "signed.jpg"
    issue(photo_path, signed, spec=ManifestSpec(source_type="digitalCapture"), watermark=False)
    trailer = tmp_path / "signed-trailer.jpg"
    trailer.write_bytes(signed.read_bytes() + bytes(10000))
    assert verify_file(trailer, recover=False).state != "absent"
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(motion.read_bytes()[: len(photo_path.read_bytes()) // 2])
    with pytest.raises(BadInput, match="truncated"):
        verify_file(cut, recover=False)


def test_png_with_data_after_iend_is_read_but_a_cut_png_is_truncated(tmp_path, photos):
    png = tmp_path / "a.png"
    Image.fromarray(photos[0]).save(png)
    extra = tmp_path / "extra.png"
    extra.write_bytes(png.read_bytes() + bytes(5000))
    assert verify_file(extra, recover=False).state == "absent"
    cut = tmp_path / "cut.png"
    cut.write_bytes(png.read_bytes()[:-200])
    with pytest.raises(BadInput, match="truncated"):
        verify_file(cut, recover=False)
