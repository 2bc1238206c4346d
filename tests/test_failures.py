"""Every failure in words: each status code has a sentence, none is dropped, the
hard-binding kinds are told apart, ingredient trees carry what was recorded, and the
picture is compared with its own thumbnail when the binding fails (a hint)."""

from __future__ import annotations

import io
import struct

import pytest
from fixtures_verify import identity_with, sdk_read, sign_bytes
from PIL import Image
from provkit.provenance import keys
from provkit.provenance.manifest import ManifestSpec
from provkit.provenance.status import CODES, LAYOUT_SENTENCE, sentence
from provkit.provenance.verify import verify_file

#: The failure codes of c2pa-rs's validation_codes (read through the code search tool).
C2PA_RS_FAILURE_CODES = [
    "claim.malformed",
    "claim.missing",
    "claim.multiple",
    "claim.hardBindings.missing",
    "assertion.multipleHardBindings",
    "claim.required.missing",
    "claim.cbor.invalid",
    "ingredient.hashedURI.mismatch",
    "claimSignature.missing",
    "claimSignature.mismatch",
    "manifest.inaccessible",
    "manifest.multipleParents",
    "manifest.update.invalid",
    "manifest.update.wrongParents",
    "signingCredential.untrusted",
    "signingCredential.invalid",
    "signingCredential.ocsp.revoked",
    "signingCredential.expired",
    "assertion.hashedURI.mismatch",
    "assertion.missing",
    "assertion.undeclared",
    "assertion.inaccessible",
    "assertion.notRedacted",
    "assertion.selfRedacted",
    "assertion.required.missing",
    "assertion.json.invalid",
    "assertion.cbor.invalid",
    "assertion.action.ingredientMismatch",
    "assertion.action.redacted",
    "assertion.dataHash.mismatch",
    "assertion.bmffHash.mismatch",
    "assertion.boxesHash.mismatch",
    "assertion.boxesHash.unknownBox",
    "assertion.cloud-data.hardBinding",
    "assertion.cloud-data.actions",
    "algorithm.unsupported",
    "general.error",
    "claimSignature.outsideValidity",
    "manifest.timestamp.invalid",
    "manifest.timestamp.wrongParents",
    "manifest.compressed.invalid",
    "manifest.unreferenced",
    "signingCredential.ocsp.unknown",
    "assertion.outsideManifest",
    "assertion.action.malformed",
    "assertion.action.redactionMismatch",
    "assertion.dataHash.malformed",
    "assertion.bmffHash.malformed",
    "assertion.cloud-data.malformed",
    "assertion.collectionHash.mismatch",
    "assertion.collectionHash.incorrectFileCount",
    "assertion.collectionHash.invalidURI",
    "assertion.collectionHash.malformed",
    "assertion.ingredient.malformed",
    "assertion.metadata.disallowed",
    "ingredient.manifest.missing",
    "ingredient.manifest.mismatch",
    "ingredient.claimSignature.missing",
    "ingredient.claimSignature.mismatch",
    "hashedURI.missing",
    "hashedURI.mismatch",
    # informational codes c2pa-rs reports
    "signingCredential.ocsp.skipped",
    "signingCredential.ocsp.inaccessible",
    "timeStamp.mismatch",
    "timeStamp.malformed",
    "timeStamp.outsideValidity",
    "timeStamp.untrusted",
    "manifest.unknownProvenance",
    "ingredient.unknownProvenance",
    "algorithm.deprecated",
]


@pytest.mark.parametrize("code", C2PA_RS_FAILURE_CODES)
def test_every_spec_status_code_has_its_own_sentence(code):
    assert code in CODES
    assert not sentence(code).startswith("Validation reported")


def test_an_unknown_code_quotes_the_sdks_own_explanation():
    s = sentence("com.example.newCheck", "the widget was not frobbed")
    assert s == "Validation reported com.example.newCheck: the widget was not frobbed."


def _photo_jpeg(photos, quality=92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photos[1]).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def signed_photo(tmp_path, photos):
    ident = keys.load_or_init()
    data = sign_bytes(_photo_jpeg(photos), "image/jpeg", ident)
    path = tmp_path / "signed.jpg"
    path.write_bytes(data)
    return path


def _scan_byte_flipped(src, dst):
    data = bytearray(src.read_bytes())
    sos = data.rfind(b"\xff\xda")
    data[sos + 400] ^= 0x04
    dst.write_bytes(bytes(data))
    return dst


def _metadata_moved(src, dst):
    """Re-saved by a tool that writes a comment before the manifest: the manifest moves,
    the byte ranges the signature excludes no longer line up with it."""
    data = src.read_bytes()
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 24) + b"re-saved by a photo tool"
    dst.write_bytes(data[:2] + comment + data[2:])
    return dst


def test_content_change_and_moved_metadata_are_told_apart(tmp_path, signed_photo):
    changed = verify_file(_scan_byte_flipped(signed_photo, tmp_path / "px.jpg"), recover=False)
    moved_path = _metadata_moved(signed_photo, tmp_path / "moved.jpg")
    moved = verify_file(moved_path, recover=False)
    assert changed.state == sdk_read(tmp_path / "px.jpg")["state"] == "invalid"
    assert moved.state == sdk_read(moved_path)["state"] == "invalid"
    assert {d.get("hard_binding") for d in changed.failure_details} == {"content"}
    kinds = [d.get("hard_binding") for d in moved.failure_details if d.get("hard_binding")]
    assert "layout" in kinds and "content" not in kinds
    assert LAYOUT_SENTENCE in moved.explanation
    assert not any("contents changed" in s for s in moved.explanation)
    # one flipped bit in the scan: the bytes differ, but the picture still looks like its
    # signed thumbnail, so nothing shows the content changed and nothing says it did
    assert changed.thumbnail_check["looks_alike"] is True
    assert changed.cause == "container_layout"
    assert not any("contents changed" in s for s in changed.explanation)
    # every SDK failure code is in the report, in order, none dropped
    assert moved.failures == sdk_read(moved_path)["failures"]
    layout = [d for d in moved.failure_details if d.get("hard_binding") == "layout"]
    assert "manifest location" in layout[0]["sdk_explanation"]


def test_the_picture_is_compared_with_its_thumbnail_when_the_binding_fails(
    tmp_path, signed_photo, photos
):
    moved_path = _metadata_moved(signed_photo, tmp_path / "moved.jpg")
    moved = verify_file(moved_path, recover=False)
    hint = moved.thumbnail_check
    assert hint["hint"] is True and hint["looks_alike"] is True
    assert "data" not in hint  # by reference unless asked (lean answers)
    inline = verify_file(moved_path, recover=False, thumbnails="inline").thumbnail_check
    assert inline["data"].startswith("data:image/jpeg;base64,")
    assert "not a validation" in hint["sentence"]
    # the manifest transplanted onto another picture: the thumbnail no longer matches
    data = signed_photo.read_bytes()
    other = Image.fromarray(photos[3]).resize(Image.open(signed_photo).size)
    buf = io.BytesIO()
    other.save(buf, "JPEG", quality=92)
    o = buf.getvalue()
    end = _app11_end(data)
    swapped = tmp_path / "swapped.jpg"
    swapped.write_bytes(data[:end] + o[2:])
    report = verify_file(swapped, recover=False)
    assert report.state == sdk_read(swapped)["state"] == "invalid"
    assert report.thumbnail_check["looks_alike"] is False
    # a valid file gets no comparison at all
    assert verify_file(signed_photo).thumbnail_check is None


def _app11_end(data: bytes) -> int:
    i, end = 2, 2
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if data[i + 1] == 0xEB:
            end = i + 2 + length
        i += 2 + length
    return end


def test_several_simultaneous_failures_are_all_reported(tmp_path, photos):
    """An unrecognised signer, an altered assertion, an altered claim and changed pixels,
    all at once: every code the SDK gives is in the report with a sentence."""
    ident, _ = identity_with(tmp_path / "other", {"CN": "other signer", "O": "elsewhere"})
    signed = tmp_path / "other.jpg"
    signed.write_bytes(sign_bytes(_photo_jpeg(photos), "image/jpeg", ident))
    data = bytearray(_scan_byte_flipped(signed, tmp_path / "x.jpg").read_bytes())
    data[data.find(b"digitalCapture")] ^= 0x01  # inside the actions assertion
    i = data.find(b"xmp.iid:") + 10  # inside the signed claim
    data[i] = ord("0") if data[i] != ord("0") else ord("1")
    both = tmp_path / "many.jpg"
    both.write_bytes(bytes(data))
    sdk = sdk_read(both)
    report = verify_file(both, recover=False)
    assert report.state == sdk["state"] == "invalid"
    assert len(set(sdk["failures"])) >= 3
    assert report.failures == sdk["failures"]
    assert len(report.failure_details) == len(sdk["failures"])
    for code in sdk["failures"]:
        assert any(d["code"] == code and d["sentence"] for d in report.failure_details)
    text = " ".join(report.explanation)
    assert "not on your trust list" in text and "altered after signing" in text
    assert "signature does not match" in text


def test_a_component_tampered_before_it_was_added_is_flagged_at_the_top(tmp_path, photos):
    ident = keys.load_or_init()
    part = tmp_path / "part.jpg"
    part.write_bytes(sign_bytes(_photo_jpeg(photos), "image/jpeg", ident))
    tampered = _scan_byte_flipped(part, tmp_path / "tampered_part.jpg")
    clean = tmp_path / "clean_part.jpg"
    buf = io.BytesIO()
    Image.fromarray(photos[2]).save(buf, "JPEG")
    clean.write_bytes(sign_bytes(buf.getvalue(), "image/jpeg", ident))
    ingredients = ((tampered, "componentOf"), (clean, "componentOf"))
    spec = ManifestSpec(source_type="composite", ingredients=ingredients)
    buf = io.BytesIO()
    Image.fromarray(photos[4]).save(buf, "JPEG")
    out = tmp_path / "composite.jpg"
    out.write_bytes(
        sign_bytes(buf.getvalue(), "image/jpeg", ident, spec=spec, ingredients=ingredients)
    )
    report = verify_file(out, recover=False)
    sdk = sdk_read(out)
    assert report.state == sdk["state"] == "trusted"  # the file itself is fine
    assert report.ingredient_failed_when_added is True
    assert report.explanation[0] == "A component's credentials were invalid when it was added."
    bad, good = report.ingredients
    assert bad["failed_when_added"] and bad["state_recorded"] == "invalid"
    assert "assertion.dataHash.mismatch" in [e["code"] for e in bad["recorded_status"]]
    assert bad["sentence"].startswith("Its credentials were invalid when it was added")
    assert not good["failed_when_added"] and good["state"] in ("valid", "trusted")
    # the recorded statuses are the SDK's, ingredient by ingredient
    manifest = sdk["json"]["manifests"][sdk["json"]["active_manifest"]]
    for node, ing in zip(report.ingredients, manifest["ingredients"], strict=True):
        recorded = [s["code"] for s in ing["validation_results"]["activeManifest"]["failure"]]
        assert [e["code"] for e in node["recorded_status"]] == recorded
    from click.testing import CliRunner

    from provkit.cli import root

    text = CliRunner().invoke(root, ["verify", str(out)]).output
    assert text.splitlines()[1].strip().startswith("WARNING:")


def test_cawg_identity_assertions_are_reported_apart_from_the_signer():
    """A Reader JSON shaped like c2pa-rs's CAWG test output (identity assertion plus its
    cawg.* statuses): the identity gets its own trust, the signer keeps its own."""
    from provkit.provenance.report import report_from_store

    label = "urn:c2pa:1234"
    url = f"self#jumbf=/c2pa/{label}/c2pa.assertions/cawg.identity"
    store = {
        "active_manifest": label,
        "manifests": {
            label: {
                "title": "with identity",
                "assertions": [
                    {
                        "label": "c2pa.actions.v2",
                        "data": {
                            "actions": [
                                {
                                    "action": "c2pa.created",
                                    "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/"
                                    "digitalCapture",
                                }
                            ],
                            "allActionsIncluded": True,
                        },
                    },
                    {
                        "label": "cawg.identity",
                        "data": {
                            "signer_payload": {
                                "sig_type": "cawg.x509.cose",
                                "role": ["cawg.creator"],
                            }
                        },
                    },
                ],
                "signature_info": {"common_name": "cam", "issuer": "org"},
            }
        },
        "validation_results": {
            "activeManifest": {
                "success": [
                    {"code": "cawg.x509.signature.validated", "url": url},
                    {
                        "code": "cawg.identity.well-formed",
                        "url": url,
                        "explanation": "no identity trust anchor",
                    },
                ],
                "informational": [],
                "failure": [
                    {"code": "signingCredential.untrusted", "url": f"self#jumbf=/c2pa/{label}"}
                ],
            }
        },
    }
    report = report_from_store("x.jpg", store, state="valid")
    (ident,) = report.cawg_identity
    assert ident["trust"] == "well-formed, not trusted"
    assert ident["sig_type"] == "cawg.x509.cose" and ident["roles"] == ["cawg.creator"]
    assert "An identity assertion's X.509 signature is valid." in ident["sentences"]
    assert report.signer["trust_source"] is None
    assert report.failures == ["signingCredential.untrusted"]
