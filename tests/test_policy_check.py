"""`provkit policy check`: real files through detection evidence, or prepared contexts."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.policies import AuditLog, check, read_contexts, resolve_evidence
from provkit.provenance.core.errors import ConfigError

from provkit.cli import root
from tests.fixtures_provenance import paint_over


@pytest.fixture
def newsroom_files(tmp_path, photos):
    """A signed camera photo, a signed AI image, a tampered copy, an unsigned photo, junk."""
    from provkit.provenance.issue import issue
    from provkit.provenance.manifest import ManifestSpec

    photo = tmp_path / "photo.jpg"
    Image.fromarray(photos[1]).save(photo, quality=92)
    camera = tmp_path / "camera.jpg"
    issue(photo, camera, spec=ManifestSpec(source_type="digitalCapture"), watermark=False)
    ai = tmp_path / "ai.jpg"
    issue(photo, ai, spec=ManifestSpec(source_type="trainedAlgorithmicMedia"), watermark=False)
    tampered = tmp_path / "tampered.jpg"
    tampered.write_bytes(paint_over(camera.read_bytes()))  # the picture changed after signing
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    return {"camera": camera, "ai": ai, "tampered": tampered, "unsigned": photo, "junk": junk}


#: The C2PA asset-rubric signals of a file that declares none.
NO_SIGNALS = {"inception": [], "transformation": []}


def test_policy_check_runs_real_files_through_detection_evidence(newsroom_files, tmp_path):
    db = tmp_path / "w.db"
    names = ["camera", "ai", "tampered", "unsigned", "junk"]
    args = [
        "policy",
        "check",
        "--pack",
        "newsroom",
        "--point",
        "publish",
        "--actor",
        "desk-7",
        "--db",
        str(db),
        "--json",
        *[str(newsroom_files[n]) for n in names],
    ]
    result = CliRunner().invoke(root, args)
    assert result.exit_code == 2, result.output  # one unusable file; the batch still finished
    rows = {r["source"]: r for r in json.loads(result.stdout)}
    outcome = {n: rows[str(newsroom_files[n])].get("outcome") for n in names}
    assert outcome == {
        "camera": "allow",
        "ai": "label",
        "tampered": "deny",
        "unsigned": "review",
        "junk": None,
    }
    assert rows[str(newsroom_files["tampered"])]["matched_rules"] == ["content-altered"]
    assert "not an image" in rows[str(newsroom_files["junk"])]["error"]
    logged = list(AuditLog(db).log())
    assert [r["outcome"] for r in logged] == ["allow", "label", "deny", "review"]
    assert {r["actor"] for r in logged} == {"desk-7"}
    assert AuditLog(db).verify().ok


def test_a_deny_exits_1_and_fail_on_review_is_stricter(tmp_path):
    ctx = tmp_path / "ctx.json"
    ctx.write_text(
        json.dumps(
            {
                "point": "ingest",
                "asset": {
                    "verdict": "ai-generated",
                    "decided_by": ["classifier"],
                    "score": 0.97,
                    "duplicates": [],  # the platform pack reads bank matches (their action)
                    "c2pa": {"state": "absent", "trust_source": None, "signals": NO_SIGNALS},
                },
            }
        )
    )
    runner = CliRunner()
    db = ["--db", str(tmp_path / "w.db")]
    assert (
        runner.invoke(
            root, ["policy", "check", "--pack", "platform", "--context", str(ctx), *db]
        ).exit_code
        == 0
    )
    strict = runner.invoke(
        root,
        [
            "policy",
            "check",
            "--pack",
            "platform",
            "--context",
            str(ctx),
            "--fail-on",
            "review",
            *db,
        ],
    )
    assert strict.exit_code == 1 and "REVIEW [may be AI-generated]" in strict.output
    deny = tmp_path / "deny.json"
    deny.write_text(
        json.dumps(
            {
                "point": "publish",
                "asset": {
                    "verdict": "unknown",
                    "decided_by": [],
                    "duplicates": [],
                    "c2pa": {
                        "state": "invalid",
                        "trust_source": None,
                        "signals": NO_SIGNALS,
                        "cause": "content_altered",
                        "causes": {"content_altered": True},
                    },
                },
            }
        )
    )
    assert (
        runner.invoke(
            root, ["policy", "check", "--pack", "newsroom", "--context", str(deny), *db]
        ).exit_code
        == 1
    )


def test_prepared_contexts_may_be_a_json_array_or_json_lines(tmp_path):
    many = tmp_path / "many.jsonl"
    many.write_text(
        "\n".join(
            json.dumps({"request": {"prompt": p, "allow_training": False}})
            for p in ["a quiet harbour", "Pikachu at a parade", "donald trump golfing"]
        )
    )
    contexts = read_contexts(many)
    assert [s for s, _ in contexts] == [f"{many}#1", f"{many}#2", f"{many}#3"]
    results = check(
        "studio",
        contexts=contexts,
        point="generate.request",
        actor="ana",
        role="artist",
        db=tmp_path / "w.db",
    )
    assert [r.decision.outcome for r in results] == ["allow", "deny", "deny"]
    assert AuditLog(tmp_path / "w.db").count() == 3


def test_the_evidence_provider_is_injected_as_a_callable(tmp_path, photo_path):
    seen = []

    def evidence(path, db=None):
        seen.append(path)
        return {
            "path": path,
            "c2pa": {"state": "trusted", "trust_source": "C2PA Trust List", "signals": NO_SIGNALS},
            "verdict": "camera/authentic-claimed",
        }

    [result] = check(
        "newsroom", [photo_path], point="publish", evidence_fn=evidence, db=tmp_path / "w.db"
    )
    assert seen == [str(photo_path)] and result.decision.outcome == "allow"


def test_an_unavailable_evidence_provider_is_a_clear_error(tmp_path, photo_path):
    with pytest.raises(ConfigError, match="not available.*--context"):
        resolve_evidence("no_such_package.verdict:policy_context_for_file")
    result = CliRunner().invoke(
        root,
        [
            "policy",
            "check",
            "--pack",
            "newsroom",
            "--evidence",
            "json:no_such_function",
            str(photo_path),
        ],
    )
    assert result.exit_code == 2
    assert "evidence provider json:no_such_function is not available" in result.output


def test_the_default_provider_is_detect_resolved_at_run_time():
    fn = resolve_evidence()
    assert fn.__module__ == "provkit.detect.verdict" and fn.__name__ == "policy_context_for_file"


def test_a_bad_context_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(
        root, ["policy", "check", "--pack", "newsroom", "--context", str(bad)]
    )
    assert result.exit_code == 2 and f"{bad}: line 1 is not JSON" in result.output


def test_check_without_inputs_is_a_usage_error():
    result = CliRunner().invoke(root, ["policy", "check", "--pack", "newsroom"])
    assert result.exit_code == 2 and "--context" in result.output


def test_a_context_whose_actor_is_not_an_object_is_an_error_row_not_the_end_of_the_batch(tmp_path):
    many = tmp_path / "many.jsonl"

    def asset(state, source=None):
        return {
            "verdict": "camera/authentic-claimed",
            "decided_by": ["c2pa"],
            "duplicates": [],
            "c2pa": {"state": state, "trust_source": source, "signals": NO_SIGNALS},
        }

    many.write_text(
        "\n".join(
            json.dumps(c)
            for c in [
                {"actor": "alice", "asset": asset("trusted", "local workspace CA")},
                {"actor": {"id": "bo"}, "asset": asset("trusted", "local workspace CA")},
                {"actor": ["x"], "asset": asset("invalid")},
            ]
        )
    )
    result = CliRunner().invoke(
        root,
        [
            "policy",
            "check",
            "--pack",
            "newsroom",
            "--context",
            str(many),
            "--db",
            str(tmp_path / "w.db"),
            "--json",
        ],
    )
    assert result.exit_code == 2, result.output
    rows = json.loads(result.output[result.output.index("[") :])
    assert [r["source"] for r in rows] == [f"{many}#1", f"{many}#2", f"{many}#3"]
    assert "'actor' must be an object" in rows[0]["error"] and str(many) in rows[0]["error"]
    assert rows[1]["outcome"] == "allow" and "error" not in rows[1]
    assert "'actor' must be an object" in rows[2]["error"]
    assert AuditLog(tmp_path / "w.db").count() == 1
