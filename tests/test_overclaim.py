"""A verdict that never overclaims: untrusted capture claims are worded as such, the
classifier abstains in its band and when degraded copies disagree; crJSON output."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from fixtures_verify import identity_with, sdk_read, sign_bytes
from PIL import Image
from provkit.detect.classifier import Probe, stability_variants
from provkit.detect.evidence import classifier_evidence
from provkit.provenance.manifest import ManifestSpec
from provkit.provenance.verify import verify_file

from provkit.cli import root


@pytest.fixture
def untrusted_capture(tmp_path, photos):
    ident, _ = identity_with(tmp_path / "cam", {"CN": "some phone app", "O": "someone"})
    buf = io.BytesIO()
    Image.fromarray(photos[0]).save(buf, "JPEG", quality=90)
    path = tmp_path / "claimed.jpg"
    path.write_bytes(
        sign_bytes(
            buf.getvalue(), "image/jpeg", ident, spec=ManifestSpec(source_type="digitalCapture")
        )
    )
    return path


def test_a_valid_but_untrusted_capture_claim_is_never_called_authentic(untrusted_capture):
    from provkit.detect.verdict import detect as detect_file

    assert verify_file(untrusted_capture).state == sdk_read(untrusted_capture)["state"] == "valid"
    out = CliRunner().invoke(root, ["verify", str(untrusted_capture)]).output
    assert "camera capture claimed by an unrecognised signer" in out
    assert "authentic" not in out.lower()
    report = detect_file(untrusted_capture)
    (item,) = [e for e in report.evidence if e.kind == "c2pa"]
    assert item.detail.startswith("Camera capture claimed by an unrecognised signer")
    assert item.strength == "weak"
    assert report.verdict == "unknown"


def test_policy_rules_can_read_the_signals(untrusted_capture, tmp_path):
    from provkit.detect.verdict import detect as detect_file
    from provkit.policies.engine import evaluate

    pack = tmp_path / "pack.yaml"
    pack.write_text(
        'pack: signals\nversion: "1"\ndefault: allow\nfail_closed: deny\nrules:\n'
        "  - id: capture-claims-need-trust\n"
        "    points: [publish]\n"
        "    when: \"'capturedMedia' in asset.c2pa.signals.inception && "
        'asset.c2pa.trust_source == null"\n'
        "    outcome: review\n"
        "    reason: a capture claim nobody you trust vouches for\n"
    )
    asset = detect_file(untrusted_capture).policy_context()
    assert asset["c2pa"]["signals"]["inception"] == ["capturedMedia"]
    decision = evaluate(str(pack), "publish", {"asset": asset})
    assert decision.outcome == "review"
    assert "capture-claims-need-trust" in json.dumps(decision.to_json())


def _probe(dim: int, model_id: str, spec: str, seed=0) -> Probe:
    w = np.random.default_rng(seed).normal(size=dim)
    return Probe(
        clip_model_id=model_id,
        clip_spec=spec,
        mean=(0.0,) * dim,
        std=(1.0,) * dim,
        weights=tuple(w),
        bias=0.0,
        calib_a=1.0,
        calib_b=0.0,
    )


@pytest.mark.parametrize(
    "p,variants,finding",
    [
        (0.95, [0.93, 0.90], "ai-generated"),
        (0.95, [0.41, 0.90], "unsure"),  # recompression moves it across the threshold
        (0.50, [0.50, 0.50], "unsure"),  # in the abstain band
        (0.05, [0.10, 0.08], "no-ai-signal"),
        (0.10, [0.93, 0.10], "unsure"),
    ],
)
def test_the_classifier_abstains_in_its_band_and_when_copies_disagree(p, variants, finding):
    probe = _probe(2, "m", "m:random")
    item = classifier_evidence(p, probe, 0.8, variants=variants)
    assert item.finding == finding
    assert item.data["stable"] == (finding != "unsure" or p == 0.5)
    assert set(item.data["variants"]) == {"jpeg_q75", "resized_0.75"}


def test_stability_copies_are_a_jpeg_q75_and_a_three_quarter_resize(photos):
    img = Image.fromarray(photos[0])
    original, jpeg, small = stability_variants(img)
    assert original.size == jpeg.size == img.size
    assert small.size == (round(img.width * 0.75), round(img.height * 0.75))
    assert not np.array_equal(np.asarray(jpeg), np.asarray(original))


def test_crjson_output_parses_and_names_the_sdks_manifests_and_results(signed_jpeg, tmp_path):
    signed, _ = signed_jpeg
    result = CliRunner().invoke(root, ["verify", "--format", "crjson", str(signed)])
    assert result.exit_code == 0, result.output
    ours = json.loads(result.output)
    sdk = sdk_read(signed)["crjson"]
    assert [m["label"] for m in ours["manifests"]] == [m["label"] for m in sdk["manifests"]]
    for a, b in zip(ours["manifests"], sdk["manifests"], strict=True):
        strip = lambda r: {k: v for k, v in r.items() if k != "validationTime"}
        assert strip(a["validationResults"]) == strip(b["validationResults"])
    assert "@context" in ours
    # provkit's own JSON keeps its shape
    own = json.loads(CliRunner().invoke(root, ["verify", "--json", str(signed)]).output)
    assert own[0]["c2pa"]["state"] == "trusted" and "manifests" not in own[0]
    # a file without a manifest: an empty crJSON manifest list, exit 0 (nothing failed to read)
    plain = tmp_path / "plain.jpg"
    Image.open(signed).save(plain, "JPEG")
    out = json.loads(CliRunner().invoke(root, ["verify", "--format", "crjson", str(plain)]).output)
    assert out["manifests"] == []
