"""The shipped packs: valid, and each passes its own test cases."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from provkit.policies import lint_pack, load_pack, shipped_packs, test_pack

from provkit.cli import root

PACKS = ["newsroom", "platform", "studio"]


def test_the_three_packs_ship():
    assert set(PACKS) <= set(shipped_packs())


@pytest.mark.parametrize("name", PACKS)
def test_shipped_pack_lints_clean(name):
    assert lint_pack(name) == []


@pytest.mark.parametrize("name", PACKS)
def test_shipped_pack_passes_its_own_cases(name):
    results = test_pack(name)
    assert len(results) >= 10
    failures = [(r.name, r.problems) for r in results if not r.passed]
    assert failures == []


@pytest.mark.parametrize("name", PACKS)
def test_policy_test_command_reports_every_case(name):
    result = CliRunner().invoke(root, ["policy", "test", name, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["passed"] == data["total"] == len(test_pack(name))


def test_policy_test_fails_when_a_case_expects_the_wrong_outcome(tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n"
        "  - name: invalid credentials are allowed (wrong on purpose)\n"
        "    point: publish\n"
        "    context: {asset: {c2pa: {state: invalid}}}\n"
        "    expect: {outcome: allow}\n"
    )
    result = CliRunner().invoke(root, ["policy", "test", "newsroom", "--cases", str(cases)])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "outcome review, expected allow" in result.output


def test_pack_version_is_the_content_hash_including_term_files(tmp_path):
    import shutil

    copy = tmp_path / "studio"
    shutil.copytree(load_pack("studio").path.parent, copy)
    before = load_pack(copy)
    assert before.digest == load_pack("studio").digest
    terms = copy / "terms" / "real_people.txt"
    terms.write_text(terms.read_text() + "Jane Example\n")
    after = load_pack(copy)
    assert after.digest != before.digest
    assert after.terms["real_people"].matches("a photo of jane example")


def test_newsroom_recycled_image_threshold_is_a_pack_param():
    pack = load_pack("newsroom")
    assert pack.params["recycled_after_days"] == 30
    assert "30" not in pack.rules[-1].when  # the rule reads params, not a literal
