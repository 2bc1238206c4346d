"""The C2PA asset rubric v1.0: one test per signal, the integrity outcomes, conforming
products and their disallowed signals, and the signals in the policy context."""

from __future__ import annotations

import io

import pytest
from fixtures_verify import identity_with, sdk_read, sign_bytes
from PIL import Image
from provkit.provenance import keys
from provkit.provenance.manifest import ManifestSpec, manifest_definition
from provkit.provenance.signals import integrity, raw_signals, rubric
from provkit.provenance.verify import verify_file


def _jpeg(photos, i=0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photos[i]).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def make(tmp_path, photos):
    """Sign a photo with a spec (or a raw definition) and verify it: the report."""
    counter = iter(range(1000))

    def _make(spec=None, *, definition=None, ingredients=(), identity=None, trust=None):
        ident = identity or keys.load_or_init()
        path = tmp_path / f"s{next(counter)}.jpg"
        path.write_bytes(
            sign_bytes(
                _jpeg(photos),
                "image/jpeg",
                ident,
                spec=spec,
                ingredients=ingredients,
                definition=definition,
            )
        )
        report = verify_file(path, recover=False, trust=trust)
        sdk = sdk_read(path, trust=trust)
        assert report.state == sdk["state"]
        # the same rules over the SDK's own crJSON give the same signals
        node = sdk["crjson"]["manifests"][0]
        assert set(raw_signals(node)) == {r["signal"] for r in report.signals["rules"]}
        return report

    return _make


@pytest.fixture
def parent(tmp_path, photos):
    p = tmp_path / "parent.jpg"
    p.write_bytes(sign_bytes(_jpeg(photos, 2), "image/jpeg", keys.load_or_init()))
    return p


def _rule(report, name):
    (rule,) = [r for r in report.signals["rules"] if r["signal"] == name]
    return rule


INCEPTION_CASES = [
    ("blankCanvas", "http://c2pa.org/digitalsourcetype/empty"),
    ("capturedMedia", "digitalCapture"),
    ("capturedMedia", "computationalCapture"),
    ("capturedMediaStitched", "compositeCapture"),
    ("compositionMayContainGenAI", "composite"),
    ("fullyGenAIMedia", "trainedAlgorithmicMedia"),
    ("nonGenAIDigitalCreation", "digitalCreation"),
    ("partlyGenAICreation", "compositeWithTrainedAlgorithmicMedia"),
    ("screenCaptureMayContainGenAI", "screenCapture"),
]


@pytest.mark.parametrize("signal,source_type", INCEPTION_CASES)
def test_inception_signal_from_the_created_source_type(make, signal, source_type):
    report = make(ManifestSpec(source_type=source_type))
    assert report.signals["inception"] == [signal]
    assert _rule(report, signal)["rule_id"] == f"inception:signal_{signal}"
    assert _rule(report, signal)["text"] == rubric()["rules"][signal]["text"]
    # provkit's own manifests are complete and created: never ambiguous
    assert report.signals["transformation"] == []


def test_inception_media_of_unknown_provenance_from_an_ingredient_without_manifest(
    make, tmp_path, photos
):
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(_jpeg(photos, 3))
    ings = ((plain, "componentOf"),)
    report = make(ManifestSpec(source_type="composite", ingredients=ings), ingredients=ings)
    assert "mediaUnknownProvenance" in report.signals["inception"]
    assert (
        _rule(report, "mediaUnknownProvenance")["rule_id"]
        == "inception:signal_mediaUnknownProvenance"
    )
    assert report.ingredients[0]["state"] == "absent"


def _edit(action, source_type, parent):
    ings = ((parent, "parentOf"),)
    return ManifestSpec(action=action, source_type=source_type, ingredients=ings), ings


@pytest.mark.parametrize(
    "signal,action,source_type",
    [
        ("nonEditorial", "converted", None),
        ("perceptibleGenAI", "edited", "trainedAlgorithmicMedia"),
        ("perceptibleNonGenAI", "edited", "humanEdits"),
        ("perceptiblePossiblyGenAI", "edited", "digitalArt"),
    ],
)
def test_transformation_signal_from_the_actions(make, parent, signal, action, source_type):
    spec, ings = _edit(action, source_type, parent)
    report = make(spec, ingredients=ings)
    assert signal in report.signals["transformation"]
    assert _rule(report, signal)["rule_id"] == f"transformation:signal_{signal}"
    assert report.signals["inception"] == []  # opened a parent with no source type


def test_transformation_possibly_genai_is_also_perceptible_non_genai(make, parent):
    spec, ings = _edit("edited", "digitalArt", parent)
    report = make(spec, ingredients=ings)
    assert set(report.signals["transformation"]) == {
        "perceptibleNonGenAI",
        "perceptiblePossiblyGenAI",
    }


def test_transformation_ambiguous_actions_custom_incomplete_or_gathered(make, parent):
    spec, ings = _edit("com.example.retouch", "humanEdits", parent)
    assert "ambiguousActions" in make(spec, ingredients=ings).signals["transformation"]
    definition = manifest_definition(ManifestSpec(source_type="digitalCapture"))
    del definition["assertions"][0]["data"]["allActionsIncluded"]
    assert "ambiguousActions" in make(definition=definition).signals["transformation"]
    definition = manifest_definition(ManifestSpec(source_type="digitalCapture"))
    del definition["assertions"][0]["created"]  # the SDK then files actions as gathered
    assert "ambiguousActions" in make(definition=definition).signals["transformation"]


def test_integrity_outcomes_follow_the_rubric_codes(make, tmp_path):
    trusted = make(ManifestSpec(source_type="digitalCapture"))
    assert all(v["passed"] for v in trusted.integrity.values())
    assert trusted.integrity["trusted"]["rule_id"] == "validation:trusted_success"
    untrusted = make(ManifestSpec(source_type="digitalCapture"), trust=["c2pa"])
    assert untrusted.integrity["valid"]["passed"] is True
    assert untrusted.integrity["trusted"]["matches"] == ["signingCredential.untrusted"]
    out = integrity(["assertion.dataHash.mismatch", "claim.cbor.invalid"])
    assert out["valid"]["matches"] == ["assertion.dataHash.mismatch"]
    assert out["well_formed"]["matches"] == ["claim.cbor.invalid"]
    assert not any(v["passed"] for v in integrity([], present=False).values())


def test_a_generator_product_claiming_capture_is_not_credible(make, tmp_path):
    ident, ca = identity_with(tmp_path / "gen", {"CN": "Diker", "O": "Okeanos B.V", "C": "NL"})
    report = make(ManifestSpec(source_type="digitalCapture"), identity=ident, trust=[str(ca)])
    product = report.signer["conforming_product"]
    assert product["product"] == "Diker" and product["vendor"] == "Okeanos B.V"
    assert product["assurance_level"] == 1 and product["product_type"] == "generatorProduct"
    assert report.signals["not_credible"] == ["capturedMedia"]
    assert report.signals["inception"] == []
    from provkit.detect.evidence import classify_c2pa
    from provkit.detect.verdict import combine

    item = classify_c2pa(report.to_json()["c2pa"])
    assert item.finding == "capture-not-credible" and item.strength == "none"
    assert combine([item])[0] == "unknown"


def test_a_camera_product_keeps_its_capture_signal_and_assurance_level(make, tmp_path):
    ident, ca = identity_with(
        tmp_path / "cam", {"CN": "Pixel Camera", "O": "Google LLC", "C": "US"}
    )
    report = make(ManifestSpec(source_type="computationalCapture"), identity=ident, trust=[str(ca)])
    assert report.signer["conforming_product"]["assurance_level"] == 2
    assert report.signals["inception"] == ["capturedMedia"]
    assert report.signer["conforming_product"]["list"].startswith("C2PA Conforming Products List (")


def test_signals_reach_the_policy_context_and_ingredient_nodes(tmp_path, photos, parent):
    from provkit.detect.verdict import detect as detect_file

    spec, ings = _edit("edited", "trainedAlgorithmicMedia", parent)
    path = tmp_path / "edited.jpg"
    path.write_bytes(
        sign_bytes(_jpeg(photos), "image/jpeg", keys.load_or_init(), spec=spec, ingredients=ings)
    )
    report = detect_file(path)
    ctx = report.policy_context()
    assert ctx["c2pa"]["signals"] == {"inception": [], "transformation": ["perceptibleGenAI"]}
    assert ctx["c2pa"]["trust_source"] == "local workspace CA"
    (c2pa_item,) = [e for e in report.evidence if e.kind == "c2pa"]
    assert {
        "signal": "perceptibleGenAI",
        "rule_id": "transformation:signal_perceptibleGenAI",
    } in c2pa_item.data["signal_rules"]
    (ing,) = verify_file(path).ingredients
    assert ing["signals"]["inception"] == ["capturedMedia"]  # the parent's own node
