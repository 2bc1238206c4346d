"""Recovery of stripped credentials: watermark id or fingerprint -> ledger -> manifest."""

from __future__ import annotations

import base64
import json

from click.testing import CliRunner
from PIL import Image
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec
from provkit.provenance.resolver import SoftBindingResolver, revalidate
from provkit.provenance.verify import verify_file

from provkit.cli import root
from tests.fixtures_provenance import needs_watermark, sdk_state, strip_and_degrade


def test_stripped_recompressed_resized_copy_is_recovered_by_fingerprint(tmp_path, signed_jpeg):
    signed, issued = signed_jpeg  # signed without a watermark: only the fingerprint can match
    copy = strip_and_degrade(signed, tmp_path / "shared.jpg", quality=70, scale=0.5)
    assert sdk_state(copy) == "absent"
    report = verify_file(copy)
    assert report.state == "recovered"
    assert report.recovered_by["method"] == "fingerprint"
    assert report.recovered_by["asset_id"] == issued.asset_id
    assert report.recovered_by["distance"]["pdq"] <= 31
    assert report.manifest_label == issued.manifest_label
    assert report.signer["common_name"] == issued.signer["common_name"]
    assert report.digital_source_type == "digitalCapture"
    assert report.actions[0]["action"] == "c2pa.created"
    assert report.recovered_manifest["state"] == "trusted"
    assert report.recovered_manifest["expected_failures"] == ["assertion.dataHash.mismatch"]
    assert report.ok


def test_unrelated_photo_is_not_recovered(tmp_path, signed_jpeg, photos):
    other = tmp_path / "other.jpg"
    Image.fromarray(photos[3]).save(other, quality=80)
    report = verify_file(other)
    assert report.state == "absent" and report.recovered_by is None
    result = CliRunner().invoke(root, ["verify", str(other)])
    assert result.exit_code == 1


class _Calls:
    """Counts the calls of a real function and keeps their first arguments."""

    def __init__(self, fn):
        self.fn, self.args = fn, []

    def __call__(self, first, *args, **kwargs):
        self.args.append(first)
        return self.fn(first, *args, **kwargs)


def test_stripped_file_is_decoded_and_its_watermark_read_once(tmp_path, signed_jpeg, monkeypatch):
    from provkit.provenance import watermark
    from provkit.provenance.core import imageio

    signed, issued = signed_jpeg  # no watermark: decoded (finds none), then fingerprints
    copy = strip_and_degrade(signed, tmp_path / "shared.jpg")
    opened = _Calls(imageio.open_image)
    decoded = _Calls(watermark.decode)
    monkeypatch.setattr(imageio, "open_image", opened)
    monkeypatch.setattr(watermark, "decode", decoded)
    report = verify_file(copy)
    assert report.state == "recovered" and report.recovered_by["asset_id"] == issued.asset_id
    assert len(opened.args) == 1 and len(decoded.args) == 1


def test_verify_uses_pixels_the_caller_already_decoded(tmp_path, signed_jpeg, monkeypatch):
    from provkit.provenance import watermark
    from provkit.provenance.core import imageio

    copy = strip_and_degrade(signed_jpeg[0], tmp_path / "shared.jpg")
    expected = verify_file(copy).to_json()
    pixels = imageio.open_image(copy)
    opened = _Calls(imageio.open_image)
    decoded = _Calls(watermark.decode)
    monkeypatch.setattr(imageio, "open_image", opened)
    monkeypatch.setattr(watermark, "decode", decoded)
    assert verify_file(copy, image=pixels).to_json() == expected
    assert opened.args == [] and decoded.args == [pixels]


@needs_watermark
def test_watermark_read_by_the_caller_is_not_read_again(tmp_path, photo_path, monkeypatch):
    from provkit.provenance import watermark

    out = tmp_path / "marked.jpg"
    issued = issue(photo_path, out, spec=ManifestSpec(source_type="digitalCapture"))
    copy = strip_and_degrade(out, tmp_path / "shared.jpg", quality=70, scale=0.5)
    pixels = Image.open(copy)
    mark = watermark.decode(pixels)
    assert mark is not None and mark.payload.hex() == issued.asset_id
    decoded = _Calls(watermark.decode)
    monkeypatch.setattr(watermark, "decode", decoded)
    resolver = SoftBindingResolver()
    (by_mark,) = resolver.match_by_content(pixels, decoded=mark)
    assert by_mark.method == "watermark" and by_mark.asset_id == issued.asset_id
    # the caller found no mark: the resolver takes its word and matches by fingerprint
    by_fingerprint = resolver.match_by_content(pixels, decoded=None)
    assert [m.method for m in by_fingerprint] == ["fingerprint"]
    assert by_fingerprint[0].asset_id == issued.asset_id
    assert decoded.args == []
    report = verify_file(copy)  # the whole recovery: one decode
    assert report.recovered_by["method"] == "watermark" and len(decoded.args) == 1


def test_no_recover_reports_absent(tmp_path, signed_jpeg):
    signed, _ = signed_jpeg
    copy = strip_and_degrade(signed, tmp_path / "c.jpg")
    assert verify_file(copy, recover=False).state == "absent"


@needs_watermark
def test_watermarked_copy_stripped_jpeg70_and_halved_is_recovered_by_watermark(
    tmp_path, photo_path
):
    out = tmp_path / "marked.jpg"
    issued = issue(photo_path, out, spec=ManifestSpec(source_type="digitalCapture"))
    copy = strip_and_degrade(out, tmp_path / "shared.jpg", quality=70, scale=0.5)
    result = CliRunner().invoke(root, ["verify", "--json", str(copy)])
    assert result.exit_code == 0, result.output
    c = json.loads(result.output)[0]["c2pa"]
    assert c["state"] == "recovered"
    assert c["recovered_by"] == {
        "method": "watermark",
        "asset_id": issued.asset_id,
        "confidence": c["recovered_by"]["confidence"],
    }
    assert c["manifest_label"] == issued.manifest_label


@needs_watermark
def test_resolver_matches_by_binding_value(signed_jpeg, tmp_path, photo_path):
    from provkit.provenance import watermark

    issued = issue(photo_path, tmp_path / "m.jpg", spec=ManifestSpec(source_type="digitalCapture"))
    resolver = SoftBindingResolver()
    value = base64.b64encode(bytes.fromhex(issued.asset_id)).decode()
    (match,) = resolver.match_by_binding(watermark.SOFT_BINDING_ALG, value)
    assert match.manifest_id == issued.manifest_label
    assert resolver.match_by_binding("com.example.other", value) == []


def test_resolver_get_manifest_returns_the_store_as_signed(signed_jpeg):
    _, issued = signed_jpeg
    resolver = SoftBindingResolver()
    algs = resolver.supported_algorithms()
    assert {"alg": "io.provkit.fingerprint.pdq-phash"} in algs["fingerprints"]
    store = resolver.get_manifest(issued.manifest_label)
    parsed, summary = revalidate(store)
    assert parsed["active_manifest"] == issued.manifest_label
    assert summary["state"] == "valid"  # no anchors given here: signature and hashes hold
    assert resolver.get_manifest("urn:c2pa:unknown") is None


def test_recover_reattaches_credentials_with_the_recovered_manifest_as_parent(
    tmp_path, signed_jpeg
):
    signed, issued = signed_jpeg
    copy = strip_and_degrade(signed, tmp_path / "shared.jpg")
    out = tmp_path / "restored.jpg"
    result = CliRunner().invoke(root, ["recover", str(copy), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["asset_id"] == issued.asset_id
    report = verify_file(out)
    assert report.state == "trusted"
    # a half-size q70 copy: what was done to it is recorded as measured, never "repackaged"
    assert [a["action"] for a in report.actions] == [
        "c2pa.opened",
        "c2pa.resized",
        "c2pa.transcoded",
    ]
    assert abs(report.actions[1]["parameters"]["scale"] - 0.5) < 0.02
    (ing,) = report.ingredients
    assert ing["relationship"] == "parentOf" and ing["manifest_label"] == issued.manifest_label
    assert ing["signer"]["common_name"] == issued.signer["common_name"]
    assert ing["failures"] == ["assertion.dataHash.mismatch"] and "hard binding" in ing["note"]
    assert report.asset_id == issued.asset_id


def test_recover_refuses_when_nothing_matches(tmp_path, photos):
    lone = tmp_path / "lone.jpg"
    Image.fromarray(photos[4]).save(lone)
    result = CliRunner().invoke(root, ["recover", str(lone), "-o", str(tmp_path / "o.jpg")])
    assert result.exit_code == 1 and "no issued asset matches" in result.output
    assert not (tmp_path / "o.jpg").exists()


def test_recover_refuses_a_file_that_still_has_its_manifest(tmp_path, signed_jpeg):
    signed, _ = signed_jpeg
    result = CliRunner().invoke(root, ["recover", str(signed), "-o", str(tmp_path / "o.jpg")])
    assert result.exit_code == 2 and "already carries a C2PA manifest" in result.output


def test_recovery_path_of_verify_never_imports_torch(tmp_path, signed_jpeg):
    import subprocess
    import sys

    signed, _ = signed_jpeg
    copy = strip_and_degrade(signed, tmp_path / "shared.jpg")
    code = (
        "import sys\n"
        "from provkit.provenance.verify import verify_file\n"
        f"assert verify_file({str(copy)!r}).state == 'recovered'\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr


def test_recover_refuses_an_existing_output_unless_forced(tmp_path, signed_jpeg):
    signed, issued = signed_jpeg
    copy = strip_and_degrade(signed, tmp_path / "shared.jpg")
    out = tmp_path / "restored.jpg"
    out.write_bytes(b"keep me")
    refused = CliRunner().invoke(root, ["recover", str(copy), "-o", str(out)])
    assert refused.exit_code == 2 and f"{out}: output already exists" in refused.output
    assert out.read_bytes() == b"keep me"
    forced = CliRunner().invoke(root, ["recover", str(copy), "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert verify_file(out).asset_id == issued.asset_id


def test_recover_to_a_name_that_is_no_image_format_is_refused(tmp_path, signed_jpeg):
    signed, _ = signed_jpeg
    copy = strip_and_degrade(signed, tmp_path / "shared.jpg")
    out = tmp_path / "rec.txt"
    result = CliRunner().invoke(root, ["recover", str(copy), "-o", str(out)])
    assert result.exit_code == 2 and f"{out}: C2PA cannot be embedded in '.txt'" in result.output
    assert not out.exists()


def test_a_bmp_copy_verifies_as_absent_and_is_recovered_but_cannot_be_signed(tmp_path, signed_jpeg):
    import pytest
    from provkit.provenance.core.errors import BadInput

    signed, issued = signed_jpeg
    bmp = tmp_path / "copy.bmp"
    Image.open(signed).convert("RGB").save(bmp)
    assert verify_file(bmp, recover=False).state == "absent"
    report = verify_file(bmp)
    assert report.state == "recovered" and report.asset_id == issued.asset_id
    with pytest.raises(BadInput, match="C2PA cannot be embedded in image/bmp"):
        issue(
            bmp,
            tmp_path / "out.bmp",
            spec=ManifestSpec(source_type="digitalCapture"),
            watermark=False,
        )


def test_recovery_and_verification_share_one_reading_of_validation_codes():
    from provkit.provenance import resolver, status

    assert resolver.HARD_BINDING_CODES is status.HARD_BINDING_CODES
    untrusted_twice = ["signingCredential.untrusted", "signingCredential.untrusted"]
    assert status.state_from_codes(untrusted_twice) == "valid"  # e.g. signer and ingredient
    assert status.state_from_codes([], ["signingCredential.trusted"]) == "trusted"
    assert status.state_from_codes(["assertion.dataHash.mismatch"]) == "invalid"


def test_a_signing_failure_during_recover_is_one_error_naming_the_output(tmp_path, signed_jpeg):
    import pytest
    from provkit.provenance import keys
    from provkit.provenance.core.errors import BadInput
    from provkit.provenance.recover import recover

    signed, _ = signed_jpeg
    copy = strip_and_degrade(signed, tmp_path / "shared.jpg")
    ca, _, leaf, _ = keys.make_chain("Offline HSM")

    def hsm_offline(data: bytes) -> bytes:
        raise RuntimeError("hsm offline")

    ident = keys.Identity.from_callback(keys._pem(leaf) + keys._pem(ca), hsm_offline)
    out = tmp_path / "restored.jpg"
    with pytest.raises(BadInput, match="signing failed") as info:
        recover(copy, out, identity=ident)
    assert str(info.value).startswith(f"{out}: ")
    assert not out.exists() and not list(tmp_path.glob(".restored.jpg*"))


def test_recovered_credentials_repeat_what_the_original_said_and_detect_agrees(
    tmp_path, photo_path
):
    """The restored file says how the picture was made, who made it and that it may not be
    trained on; verify, detect and the stripped copy's own recovery give one verdict."""
    from provkit.detect import detect as detect_file

    signed = tmp_path / "signed.jpg"
    issue(
        photo_path,
        signed,
        spec=ManifestSpec(source_type="digitalCapture", author="Jane Doe", no_train=True),
    )
    copy = strip_and_degrade(signed, tmp_path / "shared.jpg")
    assert verify_file(copy).state == "recovered"
    stripped = detect_file(copy)
    out = tmp_path / "restored.jpg"
    result = CliRunner().invoke(root, ["recover", str(copy), "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = verify_file(out)
    assert report.state == "trusted" and report.digital_source_type == "digitalCapture"
    assert report.author == ["Jane Doe"]
    assert report.training_mining.get("cawg.ai_generative_training") == "notAllowed"
    restored = detect_file(out)
    # the stripped half-size copy is identified, not vouched for: its capture claim stays a
    # claim (no decisive verdict); the restored file's new manifest records what was done
    assert stripped.verdict == "unknown"
    assert stripped.found["c2pa"]["relation"]["class"] == "transformed"
    assert restored.verdict == "camera/authentic-claimed"
    human = CliRunner().invoke(root, ["verify", str(out)]).output
    assert "captured with a camera" in human and "signature checks out" in human
