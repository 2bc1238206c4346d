"""Decisions: combination order, defaults, labels, fail-closed errors, the context."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Decision, decide, evaluate, load_pack
from policies.errors import BadInput, Refused

ORDER = ["deny", "review", "label", "allow"]


def write_pack(tmp_path, body: str, name="p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return load_pack(path)


def flag_pack(tmp_path, outcomes, default="allow", fail_closed="deny"):
    """Rule i matches when actor.id contains "#i#"."""
    rules = "".join(
        f"""
  - id: r{i}
    points: [publish]
    when: 'actor.id.contains("#{i}#")'
    outcome: {o}
    {'label: L' + str(i) if o == 'label' else ''}
    reason: rule {i}
"""
        for i, o in enumerate(outcomes)
    )
    text = (f"pack: flags\ndefault: {default}\nfail_closed: {fail_closed}\nrules:{rules}")
    path = tmp_path / f"flags-{abs(hash(text))}.yaml"
    path.write_text(text)
    return load_pack(path)


@settings(max_examples=60, deadline=None)
@given(
    outcomes=st.lists(st.sampled_from(ORDER), min_size=1, max_size=6),
    data=st.data(),
    default=st.sampled_from(["allow", "deny", "review"]),
)
def test_strongest_matched_outcome_wins_else_the_default(tmp_path_factory, outcomes, data,
                                                          default):
    pack = flag_pack(tmp_path_factory.mktemp("p"), outcomes, default=default)
    matched = data.draw(st.sets(st.integers(0, len(outcomes) - 1)))
    actor = "".join(f"#{i}#" for i in sorted(matched))
    d = evaluate(pack, "publish", {"actor": {"id": actor}})
    if matched:
        expected = min((outcomes[i] for i in matched), key=ORDER.index)
    else:
        expected = default
    assert d.outcome == expected
    assert set(d.matched_rules) == {f"r{i}" for i in matched}
    assert list(d.labels) == [f"L{i}" for i in sorted(matched) if outcomes[i] == "label"]


def test_labels_accumulate_in_rule_order(tmp_path):
    pack = flag_pack(tmp_path, ["label", "label", "allow"])
    d = evaluate(pack, "publish", {"actor": {"id": "#0##1##2#"}})
    assert d.outcome == "label" and d.labels == ("L0", "L1")


def test_nothing_matched_gives_the_default_with_a_reason(tmp_path):
    pack = flag_pack(tmp_path, ["deny"], default="review")
    d = evaluate(pack, "publish", {"actor": {"id": "nobody"}})
    assert d.outcome == "review" and d.matched_rules == ()
    assert "default is review" in d.reasons[0]


def test_rules_only_apply_at_their_points(tmp_path):
    pack = flag_pack(tmp_path, ["deny"])
    assert evaluate(pack, "ingest", {"actor": {"id": "#0#"}}).outcome == "allow"
    assert evaluate(pack, "publish", {"actor": {"id": "#0#"}}).outcome == "deny"


@pytest.mark.parametrize(
    "when, context, error",
    [
        ("asset.undocumented_field == 1", {}, "no field 'undocumented_field'"),
        ("asset.score > 0.5", {"asset": {"score": "high"}}, "No such overload"),
        ("asset.score > 0.5", {}, "No such overload"),  # null score: must be guarded
        ("asset.verdict", {"asset": {"verdict": "ai-generated"}}, "not true or false"),
        ("int(asset.verdict) > 1", {"asset": {"verdict": "x"}}, ""),
    ],
)
def test_evaluation_errors_fail_closed_with_the_error_in_reasons(tmp_path, when, context, error):
    pack = write_pack(tmp_path, f"""
        pack: t
        default: allow
        rules:
          - id: risky
            points: [publish]
            when: '{when}'
            outcome: allow
            reason: risky rule
    """)
    d = evaluate(pack, "publish", context)
    assert d.outcome == "deny"
    assert d.failed_rules == ("risky",) and d.matched_rules == ("risky",)
    assert "could not evaluate" in d.reasons[0] and error in d.reasons[0]


def test_a_pack_may_fail_closed_to_review_instead(tmp_path):
    pack = write_pack(tmp_path, """
        pack: t
        default: allow
        fail_closed: review
        rules:
          - {id: a, points: [ingest], when: asset.score > 0.5, outcome: label, label: x, reason: r}
    """)
    assert evaluate(pack, "ingest", {}).outcome == "review"


def test_fail_closed_may_not_be_allow(tmp_path):
    from policies.errors import ConfigError

    with pytest.raises(ConfigError, match="fail_closed must be deny or review"):
        write_pack(tmp_path, """
            pack: t
            default: allow
            fail_closed: allow
            rules:
              - {id: a, points: [ingest], when: "true", outcome: allow, reason: r}
        """)


def test_now_is_a_timestamp_rules_can_compare(tmp_path):
    pack = write_pack(tmp_path, """
        pack: t
        default: allow
        rules:
          - id: embargo
            points: [publish]
            when: now < timestamp("2030-01-01T00:00:00Z")
            outcome: deny
            reason: embargoed until 2030
    """)
    assert evaluate(pack, "publish", {"now": "2029-12-31T23:00:00Z"}).outcome == "deny"
    assert evaluate(pack, "publish", {"now": "2030-01-02T00:00:00+00:00"}).outcome == "allow"
    with pytest.raises(BadInput, match="ISO-8601"):
        evaluate(pack, "publish", {"now": "yesterday"})


def test_unknown_point_and_non_mapping_context_are_bad_input():
    with pytest.raises(BadInput, match="unknown decision point"):
        evaluate("newsroom", "print", {})
    with pytest.raises(BadInput, match="mapping"):
        evaluate("newsroom", "publish", ["not", "a", "dict"])


def test_extra_context_fields_reach_rules(tmp_path):
    pack = write_pack(tmp_path, """
        pack: t
        default: allow
        rules:
          - {id: vip, points: [publish], when: asset.desk == "sports", outcome: review, reason: r}
    """)
    assert evaluate(pack, "publish", {"asset": {"desk": "sports"}}).outcome == "review"


def test_decide_records_the_decision_in_the_audit_log(tmp_path):
    from policies import AuditLog

    db = tmp_path / "w.db"
    d = decide("newsroom", "publish", {"actor": {"id": "ed"}, "asset": {
        "sha256": "ab" * 32, "c2pa": {"state": "invalid"}}}, db=db)
    assert isinstance(d, Decision) and d.outcome == "deny" and d.audit_seq == 1
    (row,) = AuditLog(db).log()
    assert row["actor"] == "ed" and row["subject"] == "ab" * 32
    assert row["pack"] == "newsroom" and row["pack_version"] == load_pack("newsroom").digest
    assert row["matched_rules"] == ["invalid-credentials"] and row["outcome"] == "deny"
    assert row["reasons"] == list(d.reasons)


def test_explicit_actor_and_subject_override_the_context(tmp_path):
    from policies import AuditLog

    db = tmp_path / "w.db"
    decide("studio", "generate.request", {"request": {"prompt": "a cat"}}, db=db,
           actor="svc-generator", subject="req-17")
    (row,) = AuditLog(db).log()
    assert (row["actor"], row["subject"]) == ("svc-generator", "req-17")


def test_decide_uses_the_workspace_database_by_default(workspace):
    from policies import AuditLog

    decide("platform", "ingest", {"asset": {"score": 0.95, "c2pa": {"state": "absent"}}})
    assert (workspace / "provkit.db").exists()
    assert AuditLog().count() == 1


def test_raise_if_denied_carries_the_reasons():
    d = evaluate("studio", "generate.request", {"request": {"prompt": "Elon Musk on Mars"}})
    with pytest.raises(Refused, match="names a real person"):
        d.raise_if_denied()
    assert not d.allowed


def test_decision_json_has_the_contract_fields():
    d = evaluate("platform", "ingest", {"asset": {"watermark": {"found": True}}})
    data = d.to_json()
    for key in ("outcome", "labels", "matched_rules", "reasons", "pack", "pack_version"):
        assert key in data
    assert data["labels"] == ["AI-generated"] and len(data["pack_version"]) == 64
