"""Sentences verify prints are true: a missing ingredient manifest is not "no manifest",
a time-stamp that does not match says so, an identity whose signature validates is not
"invalid", one the SDK checked is not "not checked", a trust verdict that changed is not
"credentials changed", and a malformed BMFF hash is not "the data changed"."""

from __future__ import annotations

import io

from provkit.provenance import keys
from provkit.provenance.causes import with_causes
from provkit.provenance.manifest import ManifestSpec, context, manifest_definition, sign_stream
from provkit.provenance.report import report_from_store
from provkit.provenance.status import sentence
from provkit.provenance.verify import verify_file

from tests import fixtures_causes as make
from tests.fixtures_verify import identity_with, sign_bytes

LABEL = "urn:c2pa:0000-test"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _store(assertions=(), ingredients=(), active=None, deltas=()) -> dict:
    """A Reader JSON shaped like c2pa-rs's output for one manifest."""
    return {
        "active_manifest": LABEL,
        "manifests": {
            LABEL: {
                "title": "x.jpg",
                "assertions": [
                    {
                        "label": "c2pa.actions.v2",
                        "data": {
                            "actions": [
                                {
                                    "action": "c2pa.created",
                                    "digitalSourceType": IPTC + "digitalCapture",
                                }
                            ]
                        },
                    },
                    *assertions,
                ],
                "ingredients": list(ingredients),
                "signature_info": {"common_name": "cam", "issuer": "CamCo"},
            }
        },
        "validation_results": {
            "activeManifest": active or {"success": [], "informational": [], "failure": []},
            "ingredientDeltas": list(deltas),
        },
    }


def test_an_ingredient_whose_manifest_is_missing_is_not_called_unsigned():
    url = f"self#jumbf=/c2pa/{LABEL}/c2pa.assertions/c2pa.ingredient.v3"
    store = _store(
        ingredients=[
            {
                "title": "part.jpg",
                "label": "c2pa.ingredient.v3",
                "relationship": "componentOf",
                "active_manifest": "urn:c2pa:gone",
            }
        ],
        active={
            "success": [],
            "informational": [],
            "failure": [{"code": "ingredient.manifest.missing", "url": url}],
        },
    )
    report = report_from_store("x.jpg", store, state="invalid")
    (node,) = report.ingredients
    assert "carries no C2PA manifest" not in node["sentence"]
    assert "missing from this file" in node["sentence"]
    assert node["state"] == "invalid"


def test_a_time_stamp_that_does_not_match_is_reported_as_such():
    store = _store(
        active={
            "success": [],
            "failure": [],
            "informational": [
                {"code": "timeStamp.mismatch", "url": f"self#jumbf=/c2pa/{LABEL}/c2pa.signature"}
            ],
        }
    )
    report = report_from_store("x.jpg", store, state="valid")
    assert report.timestamp["present"] is True
    assert report.timestamp["sentence"].startswith("The time-stamp does not match the signature")
    assert "proves nothing" in report.timestamp["sentence"]


def test_an_identity_whose_signature_validates_but_is_untrusted_is_not_invalid(tmp_path, photos):
    path = make.identity_unverified(tmp_path, make.photo_jpeg(photos[0]))
    (ident,) = verify_file(path, recover=False).cawg_identity
    assert ident["trust"] == "signature valid, identity not trusted"
    assert "An identity assertion's X.509 signature is valid." in ident["sentences"]


def test_an_identity_the_sdk_checked_is_not_reported_as_not_checked():
    """The SDK names the manifest, not the assertion, in the status URL."""
    store = _store(
        assertions=[
            {"label": "cawg.identity", "data": {"signer_payload": {"sig_type": "cawg.x509.cose"}}}
        ],
        active={
            "informational": [],
            "failure": [],
            "success": [
                {"code": "cawg.x509.signature.validated", "url": f"self#jumbf=/c2pa/{LABEL}"},
                {"code": "cawg.identity.well-formed", "url": f"self#jumbf=/c2pa/{LABEL}"},
            ],
        },
    )
    (ident,) = report_from_store("x.jpg", store, state="valid").cawg_identity
    assert ident["trust"] != "not checked"
    assert ident["trust"] == "well-formed, not trusted"


def test_an_ingredient_whose_only_change_is_todays_trust_verdict_keeps_its_credentials(
    tmp_path, photos
):
    """Added while its signer was trusted; read where that signer is on no trust list."""
    agency, agency_ca = identity_with(tmp_path / "agency", {"CN": "agency", "O": "Agency"})
    part = tmp_path / "part.jpg"
    part.write_bytes(sign_bytes(make.photo_jpeg(photos[1]), "image/jpeg", agency))
    spec = ManifestSpec(source_type="composite", ingredients=((part, "componentOf"),))
    out = io.BytesIO()
    sign_stream(
        manifest_definition(spec),
        keys.load_or_init(),
        "image/jpeg",
        io.BytesIO(make.photo_jpeg(photos[2])),
        out,
        ingredients=spec.ingredients,
        ctx=context(trust_anchors=agency_ca.read_bytes()),
    )
    path = tmp_path / "composite.jpg"
    path.write_bytes(out.getvalue())
    report = verify_file(path, recover=False)
    (node,) = report.ingredients
    assert [d["code"] for d in node["deltas"]] == ["signingCredential.untrusted"]
    assert "changed since it was added" not in node["sentence"]
    assert "only today's trust verdict differs" in node["sentence"]
    assert report.failed_ingredients == [] and report.cause is None


def test_a_malformed_bmff_hash_is_not_said_to_show_changed_data():
    s = sentence("assertion.bmffHash.mismatch", "BMFF hash assertion malformed: bad exclusion")
    assert "malformed" in s and "does not show that" in s
    assert "data changed after signing" not in s
    store = _store(
        active={
            "success": [],
            "informational": [],
            "failure": [
                {
                    "code": "assertion.bmffHash.mismatch",
                    "explanation": "malformed bmff hash",
                    "url": f"self#jumbf=/c2pa/{LABEL}/c2pa.assertions/c2pa.hash.bmff.v2",
                }
            ],
        }
    )
    report = report_from_store("x.mp4", store, state="invalid")
    assert not any("data changed after signing" in e for e in report.explanation)
    assert any("does not show that" in e for e in report.explanation)
    assert with_causes(report).cause == "manifest_malformed"
