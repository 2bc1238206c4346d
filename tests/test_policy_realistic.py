"""The shipped packs judged on real files: the realistic set of tests/fixtures_realistic.py.

Each file is made through provkit's own verbs from real photographs, its context comes
from ``detect`` exactly as ``policy check FILE`` builds it, and each pack must decide
as a newsroom, a platform and a studio would act on it.
"""

from __future__ import annotations

import pytest
from provkit.detect.verdict import policy_context_for_file
from provkit.policies import evaluate, load_pack

from tests.fixtures_realistic import ARCHIVE_PUBLISHED, build_realistic_set

NEWS = "AI-generated image - not news photography"


@pytest.fixture(scope="module")
def realistic(tmp_path_factory, photos):
    """``(home, files, contexts)``: the files, made in one workspace, and their contexts."""
    home = tmp_path_factory.mktemp("realistic-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVKIT_HOME", str(home))
        mp.delenv("PROVKIT_DB", raising=False)
        mp.delenv("PROVKIT_PROBE", raising=False)
        mp.delenv("PROVKIT_CLIP", raising=False)
        files = build_realistic_set(tmp_path_factory.mktemp("realistic"), photos)
        contexts = {name: {"asset": policy_context_for_file(path)} for name, path in files.items()}
    return home, files, contexts


#: name -> (newsroom at publish, platform at ingest, studio at train): outcome, rules, labels
EXPECTED = {
    "camera": (("allow", [], []), ("allow", [], []), ("allow", [], [])),
    # one flipped bit: the bytes changed, the picture still looks like its signed
    # thumbnail, so the cause is container layout (never "altered") and a person checks it
    "tampered": (
        ("review", ["container-layout"], []),
        ("label", ["credentials-unverifiable"], ["credentials could not be verified"]),
        ("review", ["train-credentials-not-vouched"], []),
    ),
    # resized and recompressed: identified as the signed photo, not vouched for
    "stripped": (
        ("review", ["recovered-transformed-copy"], []),
        ("label", ["recovered-transformed-copy"], ["copy of an issued image"]),
        ("review", ["train-on-copy-not-vouched"], []),
    ),
    "forged": (
        ("review", ["unrecognised-signer"], []),
        ("label", ["unrecognised-signer"], ["credentials from an unrecognised signer"]),
        ("review", ["train-credentials-not-vouched"], []),
    ),
    "a1111": (
        ("label", ["ai-generated"], [NEWS]),
        ("label", ["ai-generated"], ["AI-generated"]),
        ("deny", ["train-on-ai-output"], []),
    ),
    "sdxl": (
        ("label", ["ai-generated"], [NEWS]),
        ("label", ["ai-generated"], ["AI-generated"]),
        ("deny", ["train-on-ai-output"], []),
    ),
    "generated": (
        ("label", ["ai-generated"], [NEWS]),
        ("label", ["ai-generated"], ["AI-generated"]),
        ("deny", ["train-on-ai-output", "train-on-do-not-train"], []),
    ),
    "stripped_edited": (
        ("deny", ["altered-since-issued"], []),
        ("label", ["credentials-do-not-match"], ["credentials do not match this image"]),
        ("review", ["train-credentials-not-vouched"], []),
    ),
    # a trusted composite: the C2PA rubric's compositionMayContainGenAI signal, not a capture
    "composite": (
        ("review", ["may-contain-ai"], []),
        ("label", ["may-contain-ai"], ["may contain AI-generated content"]),
        ("allow", [], []),
    ),
    "recycled": (
        ("review", ["no-provenance", "recycled-image"], []),
        ("allow", [], []),
        ("review", ["train-origin-not-vouched"], []),
    ),
}
POINTS = (("newsroom", "publish"), ("platform", "ingest"), ("studio", "train"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("which", range(3), ids=[p for p, _ in POINTS])
def test_shipped_packs_decide_right_on_real_files(realistic, name, which):
    _, _, contexts = realistic
    if name not in contexts:
        pytest.skip("the SDXL-marked image needs invisible-watermark (pip install provkit[bench])")
    pack, point = POINTS[which]
    outcome, rules, labels = EXPECTED[name][which]
    decision = evaluate(load_pack(pack), point, contexts[name])
    assert (decision.outcome, sorted(decision.matched_rules), list(decision.labels)) == (
        outcome,
        sorted(rules),
        labels,
    ), (name, decision.reasons)
    assert not decision.failed_rules


def test_provkits_own_watermark_on_a_signed_photo_is_not_called_ai(realistic):
    _, _, contexts = realistic
    for name in ("camera", "stripped"):
        asset = contexts[name]["asset"]
        assert asset["watermark"]["found"] and asset["watermark"]["scheme"] == "provkit"
        for pack, point in POINTS[:2]:
            labels = evaluate(load_pack(pack), point, contexts[name]).labels
            assert not [label for label in labels if "AI" in label], labels


def test_a_self_signed_credential_naming_a_news_agency_is_never_provenance(realistic):
    _, _, contexts = realistic
    asset = contexts["forged"]["asset"]
    assert asset["c2pa"]["state"] == "valid" and asset["c2pa"]["trust_source"] is None
    decision = evaluate(load_pack("newsroom"), "publish", contexts["forged"])
    assert decision.outcome == "review"
    assert any("unrecognised signer" in r and "Associated Press" in r for r in decision.reasons)


def test_the_signed_photo_names_the_local_trust_source(realistic):
    _, _, contexts = realistic
    assert contexts["camera"]["asset"]["c2pa"]["trust_source"] == "local workspace CA"
    assert contexts["stripped"]["asset"]["c2pa"]["state"] == "recovered"
    assert contexts["stripped"]["asset"]["c2pa"]["trust_source"] == "local workspace CA"


def test_a_recovered_photo_gets_the_verdict_its_credentials_give(realistic):
    _, _, contexts = realistic
    assert contexts["camera"]["asset"]["verdict"] == "camera/authentic-claimed"
    # the stripped copy is half size and recompressed: identified as the signed photo (its
    # capture claim recovered), but only the issued pixels themselves are vouched for
    stripped = contexts["stripped"]["asset"]
    assert stripped["c2pa"]["relation"] == "transformed"
    assert stripped["c2pa"]["digital_source_type"] == "digitalCapture"
    assert stripped["verdict"] == "unknown"


def test_the_recycled_photo_is_dated_by_its_publication_not_its_indexing(realistic):
    _, _, contexts = realistic
    (match,) = contexts["recycled"]["asset"]["duplicates"]
    assert match["published"] == ARCHIVE_PUBLISHED and match["age_days"] > 365 * 5
    decision = evaluate(load_pack("newsroom"), "publish", contexts["recycled"])
    reason = decision.reasons[list(decision.matched_rules).index("recycled-image")]
    assert "archive: " in reason and "flood-2019.jpg" in reason
    assert f"published {ARCHIVE_PUBLISHED}" in reason and "distance" in reason


def test_the_stripped_then_edited_copy_is_never_passed_as_untouched(realistic):
    """Its watermark names the camera photo, but the pixels differ from what the ledger
    holds: the state is ``mismatch``, and no pack allows it without a flag."""
    _, _, contexts = realistic
    assert contexts["stripped_edited"]["asset"]["c2pa"]["state"] == "mismatch"
    news = evaluate(load_pack("newsroom"), "publish", contexts["stripped_edited"])
    assert (news.outcome, news.matched_rules) == ("deny", ("altered-since-issued",))
    platform = evaluate(load_pack("platform"), "ingest", contexts["stripped_edited"])
    assert platform.labels == ("credentials do not match this image",)


def test_an_archive_photo_is_dated_by_its_exif_capture_date_when_no_date_is_given(tmp_path, photos):
    from PIL import Image
    from provkit.detect.index import ReferenceIndex

    original = tmp_path / "old.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2017:06:01 09:30:00"  # DateTimeOriginal
    Image.fromarray(photos[3]).save(original, quality=90, exif=exif)
    ReferenceIndex(None).add("archive", [original], workers=1)
    copy = tmp_path / "copy.jpg"
    Image.open(original).resize((300, 300)).save(copy, quality=80)
    (match,) = policy_context_for_file(copy)["duplicates"]
    assert match["published"] == "2017-06-01" and match["age_days"] > 365 * 8
    decision = evaluate(load_pack("newsroom"), "publish", {"asset": policy_context_for_file(copy)})
    assert "recycled-image" in decision.matched_rules
