"""What a decision is made on: complete contexts, scan rows that carry their asset,
rules checked against the context schema, dry runs, folders, and an audit log an auditor
can read."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image
from provkit.detect.scan import scan
from provkit.policies import AuditLog, evaluate, lint_pack
from provkit.policies.fields import fields_read, missing_fields

from provkit.cli import root

#: The C2PA asset-rubric signals of a file that declares none.
NO_SIGNALS = {"inception": [], "transformation": []}


def _folder(tmp_path, photos, n=3):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(photos[i]).save(folder / f"{i}.jpg", quality=90)
    return folder


def test_a_half_empty_context_is_refused_naming_its_line_and_the_field(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"path": "a.jpg", "verdict": "unknown"})
        + "\n\n"
        + json.dumps({"asset": {"c2pa": {"state": "trusted"}}})
        + "\n"
    )
    db = tmp_path / "w.db"
    result = CliRunner().invoke(
        root,
        [
            "policy",
            "check",
            "--pack",
            "newsroom",
            "--point",
            "publish",
            "--context",
            str(rows),
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 2
    assert f"{rows}#1: the context lacks asset:" in result.output
    assert f"{rows}#3: the context lacks" in result.output and "asset.verdict" in result.output
    assert "ALLOW" not in result.output
    assert not db.exists() or AuditLog(db).count() == 0  # nothing was decided


def test_scan_rows_carry_the_asset_and_feed_policy_check_unchanged(tmp_path, photos):
    folder = _folder(tmp_path, photos)
    out = tmp_path / "scan.jsonl"
    scan(folder, out, workers=1, db=str(tmp_path / "w.db"))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(set(r["asset"]) >= {"verdict", "c2pa", "duplicates", "decided_by"} for r in rows)
    result = CliRunner().invoke(
        root,
        [
            "policy",
            "check",
            "--pack",
            "newsroom",
            "--point",
            "publish",
            "--context",
            str(out),
            "--dry-run",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    decided = json.loads(result.stdout)
    assert [d["outcome"] for d in decided] == ["review"] * 3  # unsigned photos: no provenance


def test_scan_with_a_pack_writes_each_decision_into_its_row_and_the_audit_log(tmp_path, photos):
    folder = _folder(tmp_path, photos)
    out = tmp_path / "scan.jsonl"
    result = CliRunner().invoke(
        root,
        [
            "scan",
            str(folder),
            "--out",
            str(out),
            "--workers",
            "1",
            "--pack",
            "newsroom",
            "--point",
            "publish",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["decision"]["outcome"] for r in rows} == {"review"}
    assert "decisions this run: review 3" in result.output
    assert all(r["decision"]["audit_seq"] for r in rows)
    logged = list(AuditLog(None).log())
    assert len(logged) == 3 and all(r["actor"] for r in logged)


def test_scan_resumed_from_another_folder_does_not_repeat_rows(tmp_path, photos, monkeypatch):
    folder = _folder(tmp_path, photos)
    out = tmp_path / "scan.jsonl"
    monkeypatch.chdir(tmp_path)
    scan("in", out, workers=1)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    summary = scan("../in", out, workers=1, resume=True)
    assert summary.scanned == 0 and summary.resumed == 3
    assert len(out.read_text().splitlines()) == 3
    assert folder.exists()


def test_dry_run_decides_without_writing_the_audit_log(tmp_path, photos):
    folder = _folder(tmp_path, photos, n=1)
    db = tmp_path / "w.db"
    result = CliRunner().invoke(
        root, ["policy", "check", "--pack", "platform", "--dry-run", "--db", str(db), str(folder)]
    )
    assert result.exit_code == 0 and "ALLOW" in result.output, result.output
    assert not db.exists() or AuditLog(db).count() == 0


def test_folders_are_accepted_wherever_files_are(tmp_path, photos):
    folder = _folder(tmp_path, photos, n=2)
    for args in (
        ["verify", str(folder)],
        ["detect", str(folder)],
        ["policy", "check", "--pack", "newsroom", "--dry-run", str(folder)],
    ):
        result = CliRunner().invoke(root, args)
        assert "is a directory" not in result.output, args
        assert "0.jpg" in result.output and "1.jpg" in result.output, (args, result.output)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(root, ["detect", str(empty)])
    assert result.exit_code == 2 and "holds no images" in result.output


def test_lint_refuses_an_unguarded_nullable_field_and_flags_an_undocumented_one(tmp_path):
    pack = tmp_path / "p.yaml"
    pack.write_text("""pack: p
default: allow
fail_closed: review
rules:
  - id: score
    points: [ingest]
    when: asset.score >= 0.8
    outcome: review
    reason: high score
  - id: desk
    points: [ingest]
    when: asset.desk == "sports"
    outcome: label
    label: sports
    reason: sports desk
  - id: guarded
    points: [ingest]
    when: asset.score != null && asset.score >= 0.8
    outcome: review
    reason: high score, guarded
""")
    findings = {(f.rule, f.severity) for f in lint_pack(pack)}
    assert ("score", "error") in findings and ("desk", "warning") in findings
    assert not any(rule == "guarded" for rule, _ in findings)
    # what lint warns about is what fails closed at run time
    decision = evaluate(str(pack), "ingest", {"asset": {"verdict": "unknown"}})
    assert set(decision.failed_rules) == {"score", "desk"}
    result = CliRunner().invoke(root, ["policy", "lint", str(pack)])
    assert result.exit_code == 1 and "asset.score may be null" in result.output


def test_the_shipped_packs_read_only_documented_fields():
    for name in ("newsroom", "platform", "studio"):
        assert all(
            f.severity != "error" and "not a documented" not in f.message for f in lint_pack(name)
        ), name


def test_missing_fields_names_list_items_too():
    from provkit.policies import load_pack

    pack = load_pack("newsroom")
    assert "asset.duplicates[].age_days" in fields_read(pack, "publish")
    ctx = {
        "asset": {
            "verdict": "unknown",
            "decided_by": [],
            "c2pa": {"state": "absent", "trust_source": None, "signals": NO_SIGNALS},
            "duplicates": [{"set": "archive", "kind": "pdq", "distance": 3}],
        }
    }
    assert "asset.duplicates[0].age_days" in missing_fields(pack, "publish", ctx)


def test_audit_log_prints_a_header_and_the_reasons(tmp_path):
    ctx = tmp_path / "c.json"
    ctx.write_text(
        json.dumps(
            {
                "asset": {
                    "verdict": "unknown",
                    "decided_by": [],
                    "path": "/x/a.jpg",
                    "sha256": "ab" * 32,
                    "c2pa": {"state": "invalid", "trust_source": None, "signals": NO_SIGNALS},
                    "duplicates": [],
                }
            }
        )
    )
    db = tmp_path / "w.db"
    CliRunner().invoke(
        root, ["policy", "check", "--pack", "newsroom", "--context", str(ctx), "--db", str(db)]
    )
    result = CliRunner().invoke(root, ["audit", "log", "--db", str(db)])
    assert result.output.splitlines()[0].startswith("SEQ")
    assert "invalid-credentials: The image's Content Credentials do not validate" in result.output
    assert f"{'ab' * 32} (a.jpg)" in result.output
    filtered = CliRunner().invoke(root, ["audit", "log", "--db", str(db), "--outcome", "allow"])
    assert "no decisions match these filters" in filtered.output
