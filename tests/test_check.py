"""`provkit check`: one answer per image for the editor, from the realistic set of files."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from provkit.policies import AuditLog

from provkit.answers import CheckRecord, check
from provkit.cli import root
from tests.fixtures_realistic import build_realistic_set


@pytest.fixture(scope="module")
def desk(tmp_path_factory, photos):
    """``(home, folder, files)``: the realistic set, made once in its own workspace."""
    home = tmp_path_factory.mktemp("desk-home")
    folder = tmp_path_factory.mktemp("desk")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVKIT_HOME", str(home))
        files = build_realistic_set(folder / "inbox", photos)
    return home, folder / "inbox", files


@pytest.fixture
def at_desk(desk, monkeypatch):
    home, folder, files = desk
    monkeypatch.setenv("PROVKIT_HOME", str(home))
    for name in ("PROVKIT_PROBE", "PROVKIT_CLIP", "PROVKIT_DB"):
        monkeypatch.delenv(name, raising=False)
    return home, folder, files


def _lines(output: str) -> dict[str, str]:
    return {
        line.split(":", 1)[0]: line
        for line in output.splitlines()
        if ": " in line and not line.startswith(" ")
    }


def test_a_mixed_folder_gets_one_line_per_image_in_one_command(at_desk):
    _home, folder, _files = at_desk
    result = CliRunner().invoke(root, ["check", str(folder), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)  # the progress bar goes to stderr
    assert len([x for x in result.stdout.splitlines() if not x.startswith(" ")]) == len(lines)
    assert "checking" in result.stderr
    assert lines["camera.jpg"] == (
        "camera.jpg: camera capture claimed · signed by provkit "
        "development (trusted: local workspace CA) · not seen before"
        " · publish: ALLOW"
    )
    assert (
        "AI-generated ·" in lines["a1111.png"]
        and "publish: LABEL [AI-generated image" in lines["a1111.png"]
    )
    assert "signed by Associated Press (unrecognised signer)" in lines["forged.jpg"]
    assert lines["forged.jpg"].endswith("publish: REVIEW")
    assert "seen before: archive/flood-2019.jpg, 2019" in lines["recycled.jpg"]
    # one flipped bit: the signed bytes changed, but the picture still looks like its
    # signed thumbnail, so the line says so and a person checks it (never "altered")
    assert (
        "credentials invalid (signed by provkit development: signed bytes no longer "
        "line up; content not shown to differ)" in lines["tampered.jpg"]
    )
    assert "altered" not in lines["tampered.jpg"]
    assert lines["tampered.jpg"].endswith("publish: REVIEW")
    assert "credentials recovered" in lines["stripped.jpg"]


def test_verbose_adds_the_reasons_and_evidence_and_json_the_full_record(at_desk):
    _, _, files = at_desk
    verbose = CliRunner().invoke(root, ["check", str(files["recycled"]), "-v", "--dry-run"])
    assert verbose.exit_code == 0, verbose.output
    assert "recycled-image:" in verbose.output and "published 2019-03-14" in verbose.output
    assert "not checked: classifier" in verbose.output
    as_json = CliRunner().invoke(root, ["check", str(files["generated"]), "--json", "--dry-run"])
    (record,) = json.loads(as_json.output)
    assert record["verdict"] == "ai-generated" and record["decision"]["outcome"] == "label"
    assert record["asset"]["c2pa"]["trust_source"] == "local workspace CA"
    assert record["credentials"]["state"] == "trusted" and record["evidence"]


def test_check_records_each_decision_with_the_os_user_and_the_file_name(at_desk):
    _, _, files = at_desk
    records = check([files["camera"], files["forged"]])
    assert all(isinstance(r, CheckRecord) and r.decision.audit_seq for r in records)
    CliRunner().invoke(root, ["check", str(files["camera"]), "--actor", "desk-7"])
    rows = list(AuditLog(None).log())
    assert rows[-1]["actor"] == "desk-7"
    assert rows[0]["actor"] and rows[0]["actor"] != "None"  # the OS user, never null
    assert rows[0]["subject"].endswith("(camera.jpg)")


def test_dry_run_writes_nothing_to_the_audit_log(at_desk):
    _, _, files = at_desk
    before = AuditLog(None).count()
    records = check([files["camera"]], dry_run=True)
    assert records[0].decision.audit_seq is None and AuditLog(None).count() == before


def test_an_unreadable_file_is_an_error_line_and_the_batch_goes_on(at_desk, tmp_path):
    _, _, files = at_desk
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    result = CliRunner().invoke(root, ["check", str(junk), str(files["camera"]), "--dry-run"])
    assert result.exit_code == 2
    assert "junk.jpg: error:" in result.output and "camera.jpg: camera capture" in result.output


def test_the_workspace_configuration_sets_the_point_pack_and_trust(at_desk):
    home, _, files = at_desk
    config = home / "provkit.toml"
    pem = files["forged"].parent / "forger" / "ca.pem"
    config.write_text(
        f'[check]\npoint = "ingest"\n[policy]\ningest = "platform"\n[trust]\nsources = ["{pem}"]\n'
    )
    try:
        (record,) = check([files["forged"]], dry_run=True)
        assert record.point == "ingest" and record.pack == "platform"
        assert "(trusted: ca.pem)" in record.line()  # the named PEM file vouches for it
        (camera,) = check([files["camera"]], dry_run=True)
        assert "unrecognised signer" in camera.line()  # the local CA is no longer a source
        shown = CliRunner().invoke(root, ["config", "show"])
        assert shown.exit_code == 0
        assert any(
            line.startswith("check.point") and "ingest" in line and "provkit.toml" in line
            for line in shown.output.splitlines()
        )
        assert any(
            line.startswith("thresholds.classifier") and "default" in line
            for line in shown.output.splitlines()
        )
    finally:
        config.unlink()


def test_a_malformed_configuration_is_one_line_naming_the_file(at_desk):
    home, _, files = at_desk
    config = home / "provkit.toml"
    for text, why in (
        ("[check\n", "not valid TOML"),
        ("[nope]\nx = 1\n", "unknown section"),
        ('[check]\npoint = "lunch"\n', "unknown decision point"),
        ("[thresholds]\nclassifier = 2\n", "from 0.5 to 1"),
    ):
        config.write_text(text)
        try:
            result = CliRunner().invoke(root, ["check", str(files["camera"]), "--dry-run"])
        finally:
            config.unlink()
        assert result.exit_code == 2 and why in result.output and "provkit.toml" in result.output
        assert "Traceback" not in result.output


def test_policy_check_takes_the_trust_sources_verify_takes(at_desk):
    """The forged agency credential is a claim under the default trust; a desk that does
    trust that CA (named as a PEM source) gets it through, and loses the local CA."""
    _, _, files = at_desk
    pem = files["forged"].parent / "forger" / "ca.pem"
    runner = CliRunner()
    default = runner.invoke(
        root,
        [
            "policy",
            "check",
            "--pack",
            "newsroom",
            "--point",
            "publish",
            "--dry-run",
            str(files["forged"]),
            str(files["camera"]),
        ],
    )
    assert "forged.jpg: REVIEW" in default.output and "camera.jpg: ALLOW" in default.output
    trusting = runner.invoke(
        root,
        [
            "policy",
            "check",
            "--pack",
            "newsroom",
            "--point",
            "publish",
            "--dry-run",
            "--trust",
            str(pem),
            str(files["forged"]),
            str(files["camera"]),
        ],
    )
    assert "forged.jpg: ALLOW" in trusting.output, trusting.output
    assert "camera.jpg: REVIEW" in trusting.output  # only the named source counts now
    both = runner.invoke(
        root,
        [
            "policy",
            "check",
            "--pack",
            "newsroom",
            "--point",
            "publish",
            "--dry-run",
            "--trust",
            str(pem),
            "--trust",
            "local",
            str(files["camera"]),
        ],
    )
    assert "camera.jpg: ALLOW" in both.output


def test_dupes_takes_a_folder(at_desk):
    _, folder, _ = at_desk
    result = CliRunner().invoke(root, ["dupes", str(folder)])
    assert result.exit_code == 0, result.output
    assert "recycled.jpg: 1 near-duplicate" in result.output
