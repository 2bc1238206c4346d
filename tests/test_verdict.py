"""Evidence combines into one verdict; absence of evidence is never "authentic"."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from provkit.detect.evidence import Evidence, classify_c2pa
from provkit.detect.verdict import combine, detect, policy_context_for_file
from provkit.provenance.core.errors import BadInput
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec

from tests.fixtures_provenance import flip_pixel_bytes, needs_watermark

E = Evidence


@pytest.mark.parametrize(
    "items, verdict, deciders",
    [
        ([], "unknown", []),
        (
            [E("c2pa", "absent", "none", ""), E("classifier", "no-ai-signal", "none", "")],
            "unknown",
            [],
        ),
        ([E("classifier", "ai-generated", "moderate", "")], "ai-generated", ["classifier"]),
        (
            [E("classifier", "unsure", "weak", ""), E("c2pa", "ai-generated", "weak", "")],
            "unknown",
            [],
        ),
        (
            [
                E("c2pa", "ai-edited", "decisive", ""),
                E("third-party-watermark", "ai-generated", "strong", ""),
            ],
            "ai-edited",
            ["c2pa"],
        ),
        (
            [
                E("xmp", "ai-edited", "strong", ""),
                E("generator-metadata", "ai-generated", "strong", ""),
            ],
            "ai-generated",
            ["xmp", "generator-metadata"],
        ),
        ([E("c2pa", "capture-claimed", "decisive", "")], "camera/authentic-claimed", ["c2pa"]),
        ([E("c2pa", "capture-claimed", "weak", "")], "unknown", []),
        (
            [
                E("c2pa", "capture-claimed", "decisive", ""),
                E("classifier", "ai-generated", "moderate", ""),
            ],
            "ai-generated",
            ["classifier"],
        ),
        (
            [E("c2pa", "capture-claimed", "decisive", ""), E("classifier", "unsure", "weak", "")],
            "camera/authentic-claimed",
            ["c2pa"],
        ),
    ],
)
def test_combination_rule(items, verdict, deciders):
    got, deciding = combine(items)
    assert got == verdict and [e.kind for e in deciding] == deciders


@pytest.mark.parametrize(
    "c2pa, finding, strength",
    [
        ({"state": "absent"}, "absent", "none"),
        (
            {"state": "trusted", "digital_source_type": "trainedAlgorithmicMedia"},
            "ai-generated",
            "decisive",
        ),
        (
            {"state": "valid", "digital_source_type": "trainedAlgorithmicMedia"},
            "ai-generated",
            "decisive",
        ),
        (
            {"state": "recovered", "digital_source_type": "trainedAlgorithmicMedia"},
            "ai-generated",
            "strong",
        ),
        (
            {"state": "invalid", "digital_source_type": "trainedAlgorithmicMedia"},
            "ai-generated",
            "weak",
        ),
        (
            {"state": "trusted", "digital_source_type": "compositeWithTrainedAlgorithmicMedia"},
            "ai-edited",
            "decisive",
        ),
        (
            {
                "state": "trusted",
                "digital_source_type": "digitalCapture",
                "actions": [
                    {"action": "c2pa.edited", "digital_source_type": "trainedAlgorithmicMedia"}
                ],
            },
            "ai-edited",
            "decisive",
        ),
        (
            {"state": "trusted", "digital_source_type": "digitalCapture"},
            "capture-claimed",
            "decisive",
        ),
        ({"state": "valid", "digital_source_type": "digitalCapture"}, "capture-claimed", "weak"),
        ({"state": "invalid", "digital_source_type": "digitalCapture"}, "invalid", "none"),
        ({"state": "trusted", "digital_source_type": "digitalCreation"}, "signed", "none"),
    ],
)
def test_c2pa_states_and_source_types_map_to_findings(c2pa, finding, strength):
    item = classify_c2pa(c2pa)
    assert (item.finding, item.strength) == (finding, strength)
    assert item.detail


@pytest.fixture
def sign(tmp_path, photo_path):
    def _sign(source_type, name="signed.jpg", identity=None):
        out = tmp_path / name
        issue(
            photo_path,
            out,
            spec=ManifestSpec(source_type=source_type),
            watermark=False,
            identity=identity,
        )
        return out

    return _sign


def kinds(report):
    return {e.kind: e for e in report.evidence}


def test_trusted_ai_manifest_decides_ai_generated(sign):
    report = detect(sign("trainedAlgorithmicMedia"))
    assert report.verdict == "ai-generated"
    assert [e.kind for e in report.decided_by] == ["c2pa"]
    assert kinds(report)["c2pa"].strength == "decisive"


def test_trusted_capture_manifest_is_camera_authentic_claimed(sign):
    report = detect(sign("digitalCapture"))
    assert report.verdict == "camera/authentic-claimed"
    assert report.policy_context()["c2pa"]["state"] == "trusted"


def test_capture_signed_by_an_untrusted_signer_is_unknown(sign, second_identity):
    identity, _ = second_identity
    report = detect(sign("digitalCapture", identity=identity))
    assert report.verdict == "unknown"
    assert kinds(report)["c2pa"].finding == "capture-claimed"


def test_tampered_pixels_make_a_capture_claim_worthless(sign, tmp_path):
    signed = sign("digitalCapture")
    tampered = tmp_path / "tampered.jpg"
    tampered.write_bytes(flip_pixel_bytes(signed.read_bytes()))
    report = detect(tampered)
    assert kinds(report)["c2pa"].finding == "invalid"
    assert report.verdict == "unknown"


def test_a_photo_with_no_evidence_is_unknown_never_authentic(photo_path):
    report = detect(photo_path)
    assert report.verdict == "unknown" and report.decided_by == () and report.score is None
    classifier = kinds(report)["classifier"]
    assert classifier.finding == "not checked" and "probe" in classifier.detail
    out = report.to_json()
    assert {"path", "verdict", "score", "evidence", "duplicates"} <= set(out)
    assert all({"kind", "finding", "strength", "detail"} <= set(e) for e in out["evidence"])


def test_generator_png_chunk_decides_ai_generated(tmp_path, photos):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "castle\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3")
    path = tmp_path / "gen.png"
    Image.fromarray(photos[1][:200, :200]).save(path, pnginfo=info)
    report = detect(path)
    assert report.verdict == "ai-generated"
    assert [e.kind for e in report.decided_by] == ["generator-metadata"]
    assert report.policy_context()["metadata"]["generator"] == "AUTOMATIC1111"


@needs_watermark
def test_stable_diffusion_xl_watermark_decides_ai_generated(tmp_path, photos):
    from imwatermark import WatermarkEncoder
    from provkit.provenance.watermark.thirdparty import SDXL_BITS

    enc = WatermarkEncoder()
    enc.set_watermark("bits", [int(b) for b in SDXL_BITS])
    bgr = np.ascontiguousarray(photos[0][..., ::-1])
    marked = enc.encode(bgr, "dwtDct")[..., ::-1]
    path = tmp_path / "sdxl.png"
    Image.fromarray(np.ascontiguousarray(marked)).save(path)
    report = detect(path)
    assert report.verdict == "ai-generated"
    assert "third-party-watermark" in [e.kind for e in report.decided_by]
    assert report.policy_context()["watermark"]["third_party"]


def test_policy_context_has_the_asset_schema(tmp_path, photo_path):
    ctx = policy_context_for_file(photo_path)
    assert set(ctx) == {
        "path",
        "sha256",
        "asset_id",
        "verdict",
        "score",
        "c2pa",
        "watermark",
        "metadata",
        "duplicates",
        "decided_by",
        "disclosure",
    }
    assert set(ctx["c2pa"]) == {
        "state",
        "digital_source_type",
        "signer",
        "trust_source",
        "signals",
        "training_mining",
        "cause",
        "causes",
        "remote_url",
        "ingredients_failed",
        "relation",
    }
    assert set(ctx["watermark"]) == {"found", "scheme", "payload", "third_party"}
    assert ctx["verdict"] == "unknown" and len(ctx["sha256"]) == 64


def test_near_duplicates_of_an_indexed_photo_are_reported(tmp_path, photos):
    index_mod = pytest.importorskip("provkit.detect.index")
    ref = tmp_path / "ref"
    ref.mkdir()
    for i, p in enumerate(photos[:3]):
        Image.fromarray(p).save(ref / f"{i}.jpg", quality=95)
    from provkit.provenance.core.workspace import connect

    db = connect(tmp_path / "w.db")
    index_mod.ReferenceIndex(db).add(
        "training", sorted(ref.iterdir()), protected=True, label="licensed", workers=1
    )
    copy = tmp_path / "copy.jpg"
    Image.fromarray(photos[1]).resize((300, 200)).save(copy, quality=70)
    report = detect(copy, db=db)
    assert kinds(report)["duplicates"].finding == "match"
    assert report.duplicates and report.duplicates[0]["set"] == "training"
    dup = report.policy_context()["duplicates"][0]
    assert dup["protected"] is True and dup["label"] == "licensed" and dup["age_days"] >= 0
    with pytest.raises(Exception, match="no bank named"):
        detect(copy, db=db, index_sets=["nope"])


@needs_watermark
def test_stripped_provkit_image_is_recognised_through_its_watermark_and_ledger(
    tmp_path, photo_path
):
    signed = tmp_path / "gen.jpg"
    issued = issue(photo_path, signed, spec=ManifestSpec(source_type="trainedAlgorithmicMedia"))
    stripped = tmp_path / "stripped.jpg"
    Image.open(signed).save(stripped, quality=90)  # metadata gone, pixels re-encoded
    report = detect(stripped)
    items = kinds(report)
    assert items["watermark"].finding == "provkit-mark"
    assert items["watermark"].data["asset_id"] == issued.asset_id
    assert items["c2pa"].data["state"] == "recovered"
    assert report.verdict == "ai-generated" and items["c2pa"].strength == "strong"
    assert report.policy_context()["asset_id"] == issued.asset_id
    # Another workspace sees the mark but has no ledger record: it does not guess.
    elsewhere = detect(stripped, db=tmp_path / "other.db")
    assert kinds(elsewhere)["watermark"].finding == "provkit-mark"
    assert elsewhere.verdict == "unknown"


_FINDINGS = [
    "ai-generated",
    "ai-edited",
    "capture-claimed",
    "absent",
    "invalid",
    "not checked",
    "no-ai-signal",
    "unsure",
    "match",
    "capture-not-credible",
]
_STRENGTHS = ["none", "weak", "moderate", "strong", "decisive"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_FINDINGS), st.sampled_from(_STRENGTHS)), max_size=8))
def test_verdict_invariants_hold_for_any_evidence(pairs):
    items = [E(f"k{i}", f, s, "") for i, (f, s) in enumerate(pairs)]
    verdict, deciding = combine(items)
    ai = [e for e in items if e.finding in ("ai-generated", "ai-edited") and e.rank >= 2]
    if verdict == "camera/authentic-claimed":
        assert (
            not ai
            and deciding
            and all(e.finding == "capture-claimed" and e.strength == "decisive" for e in deciding)
        )
    elif verdict in ("ai-generated", "ai-edited"):
        assert deciding and all(e in ai for e in deciding)
        assert min(e.rank for e in deciding) == max(e.rank for e in ai)
    else:
        assert verdict == "unknown" and not deciding and not ai
        assert not any(e.finding == "capture-claimed" and e.strength == "decisive" for e in items)


def test_many_files_are_read_a_chunk_at_a_time_not_all_up_front(tmp_path, photos):
    from provkit.detect.verdict import Detector

    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        Image.fromarray(photos[i % len(photos)][:64, :64]).save(p)
        paths.append(p)
    reports = Detector(search_index=False).run(paths, chunk=2)
    first = next(reports)
    assert first.path == str(paths[0])
    paths[4].unlink()  # not read yet: only the first chunk has been decoded
    rest = list(reports)
    assert [r.path for r in rest[:3]] == [str(p) for p in paths[1:4]]
    assert isinstance(rest[3], BadInput) and "4.png" in str(rest[3])


def test_detect_many_reports_progress_per_file_in_input_order(tmp_path, photos):
    from provkit.detect.verdict import detect

    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.png"
        Image.fromarray(photos[i][:64, :64]).save(p)
        paths.append(p)
    ticks = []
    reports = detect(paths, progress=ticks.append, db=tmp_path / "w.db")
    assert [r.path for r in reports] == [str(p) for p in paths] and ticks == [1, 1, 1]


def test_detect_hashes_and_decodes_each_file_once_even_with_an_index(tmp_path, photos, monkeypatch):
    import provkit.detect.verdict as verdict_mod
    import provkit.provenance.core.imageio as imageio_mod
    import provkit.provenance.fingerprint as fp_mod
    from provkit.detect.index import ReferenceIndex
    from provkit.provenance.core.workspace import connect

    db = connect(tmp_path / "w.db")
    ref = tmp_path / "ref.jpg"
    Image.fromarray(photos[1]).save(ref, quality=90)
    ReferenceIndex(db).add("archive", [ref], workers=1)
    calls = {"hash": 0, "decode": 0, "fingerprint_file": 0}

    def spy(name, fn):
        def wrapped(*a, **kw):
            calls[name] += 1
            return fn(*a, **kw)

        return wrapped

    monkeypatch.setattr(verdict_mod, "file_sha256", spy("hash", verdict_mod.file_sha256))
    monkeypatch.setattr(imageio_mod, "open_image", spy("decode", imageio_mod.open_image))
    monkeypatch.setattr(
        fp_mod, "fingerprint_file", spy("fingerprint_file", fp_mod.fingerprint_file)
    )
    report = detect(ref, db=db)
    assert calls == {"hash": 1, "decode": 1, "fingerprint_file": 0}
    (dup,) = report.duplicates
    assert dup["exact"] is True and dup["distance"] == 0  # the one hash still finds the exact copy
