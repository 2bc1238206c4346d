"""Why credentials fail, said once and acted on: each cause class from a real file made
here, with the ``provkit check`` line, the decision of each shipped pack and the desk
banner; "altered" only where the picture is shown to differ from what was signed."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from provkit.policies import evaluate
from provkit.provenance.status import CODES
from provkit.provenance.verify import verify_file

from provkit.answers import check
from provkit.cli import root
from provkit.server.desk import desk_record, render_fragment
from tests import fixtures_causes as make
from tests.fixtures_serve import make_app, token, wait_ready

PACKS = (("newsroom", "publish"), ("platform", "ingest"), ("studio", "train"))


@pytest.fixture
def jpeg(photos):
    return make.photo_jpeg(photos[1])


def decisions(path) -> tuple[str, dict]:
    """The check line (newsroom) and each shipped pack's outcome and matched rules."""
    (record,) = check([path], pack="newsroom", point="publish", dry_run=True)
    assert record.error is None, record.error
    out = {}
    for pack, point in PACKS:  # the same evidence, decided by each pack
        decision = evaluate(pack, point, {"asset": record.asset})
        out[pack] = (decision.outcome, list(decision.matched_rules), " ".join(decision.reasons))
    assert out["newsroom"][0] == record.outcome
    return record.line(), out


def banner(path) -> str:
    """The desk page's answer for ``path`` (the line at the top of its card) and the
    card's words about the credentials, as the page renders them."""
    record = desk_record(path, dry_run=True)
    html = render_fragment(record)
    assert 'data-testid="answer"' in html and escape(record["line"]) in html
    return str(escape(record["line"])) + "\n" + html


def test_an_expired_signing_certificate_is_a_credential_problem_not_an_alteration(tmp_path, jpeg):
    path = make.expired_signer(tmp_path, jpeg)
    report = verify_file(path, recover=False)
    assert report.state == "invalid"
    assert "signingCredential.expired" in report.failures
    assert report.cause == "credential_problem"
    line, out = decisions(path)
    assert (
        "credentials invalid (signed by CamCo, unrecognised signer: credential problem: "
        "certificate expired)" in line
    )
    assert "altered" not in line
    assert out["newsroom"][:2] == ("review", ["credential-problem"])
    assert "CamCo" in out["newsroom"][2]
    assert out["platform"][:2] == ("label", ["credentials-unverifiable"])
    assert out["studio"][:2] == ("review", ["train-credentials-not-vouched"])
    text = banner(path)
    assert "credential problem: certificate expired" in text
    assert "altered" not in text.split("\n")[0]


def test_a_manifest_moved_by_a_metadata_writer_is_container_layout(tmp_path, jpeg):
    path = make.manifest_moved(tmp_path, jpeg)
    report = verify_file(path, recover=False)
    assert report.thumbnail_check["looks_alike"] is True
    assert report.cause == "container_layout"
    line, out = decisions(path)
    assert "signed bytes no longer line up; content not shown to differ" in line
    assert "altered" not in line
    assert out["newsroom"][:2] == ("review", ["container-layout"])
    assert out["platform"][:2] == ("label", ["credentials-unverifiable"])
    assert out["studio"][:2] == ("review", ["train-credentials-not-vouched"])
    text = banner(path)
    assert "content not shown to differ" in text and "changed after signing" not in text


def test_an_unverifiable_identity_assertion_is_its_own_cause(tmp_path, jpeg):
    path = make.identity_unverified(tmp_path, jpeg)
    report = verify_file(path, recover=False)
    # the SDK's state is "valid" (an identity assertion failed), but the C2PA signer is
    # the workspace's own and still named as trusted
    assert report.state == "valid"
    assert report.signer["trust_source"] == "local workspace CA"
    assert "cawg.x509.credential.untrusted" in report.failures
    assert report.cause == "identity_problem"
    (ident,) = report.cawg_identity
    assert ident["trust"] == "signature valid, identity not trusted"
    line, out = decisions(path)
    assert line.endswith(
        "signed by provkit development (trusted: local workspace CA); "
        "identity assertion not verified · publish: REVIEW"
    )
    assert out["newsroom"][:2] == ("review", ["identity-problem"])
    assert out["platform"][:2] == ("label", ["credentials-unverifiable"])
    assert out["studio"][:2] == ("review", ["train-credentials-not-vouched"])
    assert "identity assertion not verified" in banner(path)


def test_a_malformed_assertion_is_a_malformed_manifest(tmp_path, jpeg):
    path = make.malformed_assertion(tmp_path, jpeg)
    report = verify_file(path, recover=False)
    assert report.failures == ["assertion.action.malformed"]
    assert report.cause == "manifest_malformed"
    line, out = decisions(path)
    assert (
        "credentials invalid (signed by provkit development: manifest malformed or "
        "unreadable)" in line
    )
    assert out["newsroom"][:2] == ("review", ["manifest-malformed"])
    assert out["platform"][:2] == ("label", ["credentials-unverifiable"])
    assert out["studio"][:2] == ("review", ["train-credentials-not-vouched"])
    assert "manifest malformed or unreadable" in banner(path)


def test_a_remote_manifest_is_reported_with_its_address_and_not_fetched(tmp_path, jpeg):
    path, _store = make.remote_manifest(tmp_path, jpeg)
    report = verify_file(path)
    assert report.state == "absent" and report.remote_url == make.REMOTE_URL
    assert report.cause == "remote_not_fetched"
    line, out = decisions(path)
    assert f"credentials stored at {make.REMOTE_URL}, not fetched" in line
    assert "no credentials" not in line
    assert out["newsroom"][:2] == ("review", ["remote-not-fetched", "no-provenance"])
    assert make.REMOTE_URL in out["newsroom"][2]
    assert out["platform"][:2] == ("label", ["credentials-unverifiable"])
    assert out["studio"][0] == "review"
    assert f"credentials stored at {make.REMOTE_URL}, not fetched" in banner(path)


def test_a_picture_painted_over_after_signing_is_content_altered(tmp_path, jpeg):
    path = make.content_altered(tmp_path, jpeg)
    report = verify_file(path, recover=False)
    assert report.thumbnail_check["looks_alike"] is False
    assert report.cause == "content_altered"
    line, out = decisions(path)
    assert "content altered since signing" in line
    assert out["newsroom"][:2] == ("deny", ["content-altered"])
    assert out["platform"][:2] == ("label", ["content-altered"])
    assert out["studio"][0] == "deny" and "train-credentials-broken" in out["studio"][1]
    assert "content altered since signing" in banner(path)


def test_an_altered_claim_is_a_broken_signature(tmp_path, jpeg):
    path = make.signature_broken(tmp_path, jpeg)
    report = verify_file(path, recover=False)
    assert report.cause == "signature_broken"
    line, out = decisions(path)
    assert "signature or claim broken" in line and "altered" not in line
    assert out["newsroom"][:2] == ("deny", ["signature-broken"])
    assert out["platform"][:2] == ("label", ["signature-broken"])
    assert out["studio"][0] == "deny"
    assert "signature or claim broken" in banner(path)


def test_a_tampered_file_signed_again_as_an_edit_carries_its_failed_ingredient(tmp_path, jpeg):
    tampered = make.content_altered(tmp_path, jpeg)
    new = tmp_path / "new.jpg"
    result = CliRunner().invoke(root, ["sign", str(tampered), "-o", str(new), "--action", "edited"])
    assert result.exit_code == 0, result.output
    report = verify_file(new)
    assert report.state == "trusted"  # the new manifest itself is sound
    assert report.cause == "ingredient_failed"
    (bad,) = report.failed_ingredients
    assert bad["title"] == "altered.jpg" and bad["when"] == "added"
    assert bad["cause"] == "content_altered"  # the ingredient's picture vs its own thumbnail
    line, out = decisions(new)
    assert (
        "built on a failed ingredient: altered.jpg (content altered since signing when "
        "added)" in line
    )
    assert out["newsroom"][:2] == ("review", ["ingredient-failed"])
    assert "altered.jpg" in out["newsroom"][2]
    assert out["platform"][:2] == ("review", ["ingredient-failed"])
    assert out["studio"][:2] == ("deny", ["train-on-failed-ingredient"])
    assert "altered.jpg" in out["studio"][2]
    assert "built on a failed ingredient: altered.jpg" in banner(new)


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(comment=st.binary(min_size=1, max_size=400), segment=st.sampled_from([0xFE, 0xE1, 0xED]))
def test_check_never_says_altered_for_a_file_whose_pixels_match_what_was_signed(
    tmp_path_factory, jpeg, comment, segment
):
    """Whatever a metadata writer inserts before the manifest (a comment, an APP1 or an
    APP13 block), the pixels are those signed: "altered" never appears."""
    d = tmp_path_factory.mktemp("moved")
    data = make.signed_by_workspace(d, jpeg).read_bytes()
    body = comment.replace(b"\xff", b"\x00")
    path = d / "rewritten.jpg"
    path.write_bytes(
        data[:2] + bytes([0xFF, segment]) + struct.pack(">H", 2 + len(body)) + body + data[2:]
    )
    (record,) = check([path], dry_run=True)
    assert record.error is None
    assert "altered" not in record.line()
    assert record.outcome != "deny"


def test_the_http_answers_carry_the_same_classification(tmp_path, jpeg, workspace):
    moved = make.manifest_moved(tmp_path, jpeg)
    altered = make.content_altered(tmp_path, jpeg)
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in (moved, altered)]
    with TestClient(make_app(workspace)) as api:
        wait_ready(api)
        h = token(workspace, "desk", "read")
        rows = api.post("/v1/verify", headers=h, files=files).json()
        assert [r["c2pa"]["cause"] for r in rows] == ["container_layout", "content_altered"]
        assert (
            rows[0]["c2pa"]["causes"][0]["phrase"]
            == "signed bytes no longer line up; content not shown to differ"
        )
        decided = api.post(
            "/v1/policy/check",
            params={"pack": "newsroom", "point": "publish"},
            headers=h,
            files=files,
        ).json()
        assert [d["outcome"] for d in decided] == ["review", "deny"]
        assert [d["matched_rules"] for d in decided] == [["container-layout"], ["content-altered"]]


def test_every_status_code_provkit_knows_has_its_cause_and_words_in_the_docs():
    doc = (Path(__file__).parents[1] / "docs" / "provenance.md").read_text()
    for code, (_, _, words) in CODES.items():
        assert f"| `{code}` |" in doc and words in doc, code
