"""Decisions: combination order, defaults, labels, fail-closed errors, the context."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from provkit.policies import Decision, decide, evaluate, load_pack
from provkit.provenance.core.errors import BadInput, Refused

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
    {"label: L" + str(i) if o == "label" else ""}
    reason: rule {i}
"""
        for i, o in enumerate(outcomes)
    )
    text = f"pack: flags\ndefault: {default}\nfail_closed: {fail_closed}\nrules:{rules}"
    path = tmp_path / f"flags-{abs(hash(text))}.yaml"
    path.write_text(text)
    return load_pack(path)


@settings(max_examples=60, deadline=None)
@given(
    outcomes=st.lists(st.sampled_from(ORDER), min_size=1, max_size=6),
    data=st.data(),
    default=st.sampled_from(["allow", "deny", "review"]),
)
def test_strongest_matched_outcome_wins_else_the_default(tmp_path_factory, outcomes, data, default):
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
    pack = write_pack(
        tmp_path,
        f"""
        pack: t
        default: allow
        rules:
          - id: risky
            points: [publish]
            when: '{when}'
            outcome: allow
            reason: risky rule
    """,
    )
    d = evaluate(pack, "publish", context)
    assert d.outcome == "deny"
    assert d.failed_rules == ("risky",) and d.matched_rules == ("risky",)
    assert "could not evaluate" in d.reasons[0] and error in d.reasons[0]


def test_a_pack_may_fail_closed_to_review_instead(tmp_path):
    pack = write_pack(
        tmp_path,
        """
        pack: t
        default: allow
        fail_closed: review
        rules:
          - {id: a, points: [ingest], when: asset.score > 0.5, outcome: label, label: x, reason: r}
    """,
    )
    assert evaluate(pack, "ingest", {}).outcome == "review"


def test_fail_closed_may_not_be_allow(tmp_path):
    from provkit.provenance.core.errors import ConfigError

    with pytest.raises(ConfigError, match="fail_closed must be deny or review"):
        write_pack(
            tmp_path,
            """
            pack: t
            default: allow
            fail_closed: allow
            rules:
              - {id: a, points: [ingest], when: "true", outcome: allow, reason: r}
        """,
        )


def test_now_is_a_timestamp_rules_can_compare(tmp_path):
    pack = write_pack(
        tmp_path,
        """
        pack: t
        default: allow
        rules:
          - id: embargo
            points: [publish]
            when: now < timestamp("2030-01-01T00:00:00Z")
            outcome: deny
            reason: embargoed until 2030
    """,
    )
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
    pack = write_pack(
        tmp_path,
        """
        pack: t
        default: allow
        rules:
          - {id: vip, points: [publish], when: asset.desk == "sports", outcome: review, reason: r}
    """,
    )
    assert evaluate(pack, "publish", {"asset": {"desk": "sports"}}).outcome == "review"


def test_decide_records_the_decision_in_the_audit_log(tmp_path):
    from provkit.policies import AuditLog

    db = tmp_path / "w.db"
    d = decide(
        "newsroom",
        "publish",
        {
            "actor": {"id": "ed"},
            "asset": {
                "sha256": "ab" * 32,
                "c2pa": {
                    "state": "invalid",
                    "cause": "content_altered",
                    "causes": {"content_altered": True},
                },
            },
        },
        db=db,
    )
    assert isinstance(d, Decision) and d.outcome == "deny" and d.audit_seq == 1
    (row,) = AuditLog(db).log()
    assert row["actor"] == "ed" and row["subject"] == "ab" * 32
    assert row["pack"] == "newsroom" and row["pack_version"] == load_pack("newsroom").digest
    assert row["matched_rules"] == ["content-altered"] and row["outcome"] == "deny"
    assert row["reasons"] == list(d.reasons)


def test_explicit_actor_and_subject_override_the_context(tmp_path):
    from provkit.policies import AuditLog

    db = tmp_path / "w.db"
    decide(
        "studio",
        "generate.request",
        {"request": {"prompt": "a cat"}},
        db=db,
        actor="svc-generator",
        subject="req-17",
    )
    (row,) = AuditLog(db).log()
    assert (row["actor"], row["subject"]) == ("svc-generator", "req-17")


def test_decide_uses_the_workspace_database_by_default(workspace):
    from provkit.policies import AuditLog

    decide("platform", "ingest", {"asset": {"score": 0.95, "c2pa": {"state": "absent"}}})
    assert (workspace / "provkit.db").exists()
    assert AuditLog().count() == 1


def test_raise_if_denied_carries_the_reasons():
    d = evaluate("studio", "generate.request", {"request": {"prompt": "Elon Musk on Mars"}})
    with pytest.raises(Refused, match="names a real person"):
        d.raise_if_denied()
    assert not d.allowed


def test_decision_json_has_the_contract_fields():
    d = evaluate(
        "platform", "ingest", {"asset": {"verdict": "ai-generated", "decided_by": ["xmp"]}}
    )
    data = d.to_json()
    for key in ("outcome", "labels", "matched_rules", "reasons", "pack", "pack_version"):
        assert key in data
    assert data["labels"] == ["AI-generated"] and len(data["pack_version"]) == 64


# ---------------------------------------------------------------- the fast path
# A decision reads each field path the rules use as a variable of its own and runs all of
# a point's conditions as one CEL program; when anything is off it decides again rule by
# rule on the full context. Either way the decision must be the per-rule one.
WIDE_PACK = r"""
pack: wide
default: allow
terms:
  people: people.txt
params:
  ai_types: [trainedAlgorithmicMedia, compositeWithTrainedAlgorithmicMedia]
  threshold: 0.8
rules:
  - {id: invalid, points: [ingest], when: 'asset.c2pa.state == "invalid"', outcome: deny, reason: r}
  - {id: declared, points: [ingest], when: asset.c2pa.digital_source_type in params.ai_types,
     outcome: label, label: AI, reason: r}
  - {id: guarded, points: [ingest], when: asset.score != null && asset.score >= params.threshold,
     outcome: review, reason: r}
  - {id: unguarded, points: [ingest], when: asset.score > 0.5, outcome: label, label: S, reason: r}
  - id: protected
    points: [ingest]
    when: asset.duplicates.exists(d, d.protected && d.distance <= 31)
    detail: asset.duplicates.filter(d, d.protected).map(d, d.item)
    outcome: deny
    reason: r
  - {id: many, points: [ingest], when: size(asset.duplicates) > 2, outcome: review, reason: r}
  - {id: signer, points: [ingest], outcome: deny, reason: r,
     when: 'asset.c2pa.signer != null && has(asset.c2pa.signer.org) && asset.c2pa.signer.org == "Blocked"'}
  - {id: no-train, points: [ingest], when: '"cawg.ai_generative_training" in asset.c2pa.training_mining',
     outcome: label, label: T, reason: r}
  - {id: guest, points: [ingest], when: 'actor . role == "guest"', outcome: review, reason: r}
  - {id: png, points: [ingest], when: 'asset.path != null && asset.path.endsWith(".png")',
     outcome: label, label: P, reason: r}
  - id: people
    points: [ingest]
    when: matches_terms(request.prompt, "people")
    detail: terms_found(request.prompt, "people")
    outcome: deny
    reason: r
  - {id: desk, points: [ingest], when: 'asset.desk == "sports"', outcome: review, reason: r}
  - {id: has-generator, points: [ingest], when: has(asset.metadata.generator), outcome: label,
     label: G, reason: r}
  - {id: c2pa-keys, points: [ingest], when: 'asset.c2pa.exists(k, k == "signer")', outcome: label,
     label: K, reason: r}
  - {id: embargo, points: [ingest], when: 'now < timestamp("2030-01-01T00:00:00Z")', outcome: label,
     label: E, reason: r}
  - {id: marked, points: [ingest], when: asset.watermark.found, outcome: label, label: W, reason: r}
  - {id: train, points: [ingest], when: 'request.allow_training || asset.verdict == "ai-generated"',
     outcome: label, label: V, reason: 'says "asset.verdict"'}
  - {id: literal, points: [ingest], when: '"asset.c2pa.state" != asset.verdict', outcome: allow, reason: r}
"""

_TEXT = st.sampled_from(
    [
        "invalid",
        "valid",
        "guest",
        "editor",
        "Blocked",
        "ai-generated",
        "x.png",
        "photo.jpg",
        "Ada Lovelace on a bike",
        "a cat",
        "sports",
        "signer",
        "trainedAlgorithmicMedia",
        "cawg.ai_generative_training",
        "",
    ]
)
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(0, 1), _TEXT)
_ODD = st.one_of(st.builds(object), st.just({1, 2}), st.just({None: 1}))  # CEL cannot take these


def _rarely(common, *rare):
    """Mostly ``common``, one draw in about twenty from ``rare``."""
    rare = st.one_of(*rare)
    return st.integers(0, 19).flatmap(lambda i: rare if i == 7 else common)


_ANY = _rarely(_SCALAR, st.lists(_SCALAR, max_size=2), _ODD)


def _mostly(typed):
    """Usually a value of the documented type, now and then anything at all."""
    return _rarely(typed, _ANY)


def _obj(fields: dict):
    """A mapping with any subset of ``fields`` and now and then an undocumented key; or
    (rarely) null or not a mapping at all."""
    extras = {k: _mostly(_SCALAR) for k in ("desk", "k", "d", "unread")}
    plain = st.fixed_dictionaries({}, optional=fields)
    mapping = st.fixed_dictionaries({}, optional={**fields, **extras})
    return _rarely(plain, mapping, st.none(), _ANY)


_TEXT_OR_NULL = _mostly(st.one_of(st.none(), _TEXT))
_FLAG = _mostly(st.booleans())
_NUMBER = _mostly(st.one_of(st.none(), st.integers(0, 40), st.floats(0, 1)))
_CONTEXTS = st.fixed_dictionaries(
    {},
    optional={
        "actor": _obj({"id": _TEXT, "role": _TEXT_OR_NULL, "org": _TEXT_OR_NULL}),
        "request": _obj({"prompt": _TEXT_OR_NULL, "allow_training": _FLAG}),
        "asset": _obj(
            {
                "path": _TEXT_OR_NULL,
                "verdict": _TEXT_OR_NULL,
                "score": _NUMBER,
                "desk": _TEXT_OR_NULL,
                "sha256": _ODD,
                "c2pa": _obj(
                    {
                        "state": _TEXT_OR_NULL,
                        "digital_source_type": _TEXT_OR_NULL,
                        "signer": _mostly(st.one_of(st.none(), _obj({"org": _TEXT_OR_NULL}))),
                        "training_mining": _mostly(st.dictionaries(_TEXT, _SCALAR, max_size=2)),
                    }
                ),
                "watermark": _obj({"found": _FLAG, "scheme": _TEXT_OR_NULL}),
                "metadata": _obj(
                    {"generator": _TEXT_OR_NULL, "digital_source_type": _TEXT_OR_NULL}
                ),
                "duplicates": _mostly(
                    st.lists(
                        _obj(
                            {
                                "protected": _FLAG,
                                "distance": _NUMBER,
                                "item": _TEXT_OR_NULL,
                                "set": _TEXT_OR_NULL,
                            }
                        ),
                        max_size=3,
                    )
                ),
            }
        ),
        "now": st.sampled_from(["2029-12-31T23:00:00Z", "2030-06-01T00:00:00+00:00"]),
        "unread": _ODD,
        "d": _mostly(_SCALAR),
    },
)
#: less common ways of reading the context: whole objects, indexing, ternaries, params
ODD_PACK = r"""
pack: odd
default: review
params:
  limits: {score: 0.5}
  orgs: [Blocked, Spam]
rules:
  - {id: whole, points: [ingest], when: 'size(asset.c2pa) > 3 && point == "ingest"', outcome: label,
     label: A, reason: r}
  - {id: index, points: [ingest], when: 'asset["c2pa"]["state"] == "valid"', outcome: allow, reason: r}
  - id: ternary
    points: [ingest]
    when: 'asset.score == null ? actor.role == "guest" : asset.score > params.limits.score'
    outcome: review
    reason: r
    detail: '[asset.verdict, actor.role]'
  - {id: bare-params, points: [ingest], when: 'params.orgs.exists(o, o == actor.org)', outcome: deny,
     reason: r}
  - {id: has-extra, points: [ingest], when: has(asset.desk), outcome: label, label: D, reason: r}
  - {id: nested, points: [ingest], when: 'asset.duplicates.all(x, x.item != asset.path)',
     outcome: label, label: N, reason: r}
  - {id: later, points: [ingest], when: 'now - timestamp("2029-01-01T00:00:00Z") > duration("8760h")',
     outcome: label, label: L, reason: r}
  - {id: signer-org, points: [ingest], when: 'asset.c2pa.signer.org == "Blocked"', outcome: deny,
     reason: r}
"""
#: the wide pack without the two rules that fail whenever a context leaves a field out
GUARDED_PACK = "\n".join(
    line
    for line in WIDE_PACK.splitlines()
    if not line.startswith(("  - {id: unguarded", "  - {id: desk"))
)


def _load_text_pack(folder, text):
    (folder / "people.txt").write_text("Ada Lovelace\nBarack Obama\n")
    (folder / "pack.yaml").write_text(text)
    return load_pack(folder / "pack.yaml")


@pytest.fixture(scope="module")
def wide_pack(tmp_path_factory):
    return _load_text_pack(tmp_path_factory.mktemp("wide"), WIDE_PACK)


@pytest.fixture(scope="module", params=["wide", "guarded", "odd"])
def either_pack(request, tmp_path_factory):
    text = {"wide": WIDE_PACK, "guarded": GUARDED_PACK, "odd": ODD_PACK}[request.param]
    return _load_text_pack(tmp_path_factory.mktemp(request.param), text)


def _outcome_of(fn):
    try:
        return fn().to_json()
    except Exception as e:  # noqa: BLE001 - both ways must raise the same error
        return (type(e).__name__, str(e))


@settings(max_examples=250, deadline=None)
@given(context=_CONTEXTS)
@example(context={"d": {None: 1}})  # CEL cannot take it, under a key no path reads
@example(context={"asset": {"c2pa": {"k": {1, 2}}}})
@example(context={"actor": {"org": {1, 2}}})  # a documented field the rules name, no path reads
@example(context={"asset": {"watermark": {"found": "yes"}}})  # a condition that is not a bool
@example(context={"asset": {"score": 2, "duplicates": [{"protected": True, "distance": 1.5}]}})
@example(context={"asset": {"c2pa": {"signer": {"org": "Blocked"}}, "duplicates": None}})
def test_fast_decisions_equal_rule_by_rule_decisions(either_pack, context):
    from provkit.policies.engine import _combine, _per_rule

    pack = either_pack
    fast = _outcome_of(lambda: evaluate(pack, "ingest", context))
    slow = _outcome_of(lambda: _combine(pack, "ingest", _per_rule(pack, "ingest", context)))
    assert fast == slow


def test_the_fast_path_decides_unless_a_field_path_does_not_resolve(wide_pack):
    from provkit.policies.engine import _fast_plan

    plan = _fast_plan(wide_pack, "ingest")
    assert plan is not None
    good = {
        "now": "2029-12-31T23:00:00Z",
        "asset": {
            "score": 0.9,
            "path": "x.png",
            "desk": "news",
            "duplicates": [{"protected": True, "distance": 3, "item": "i-1"}],
        },
    }
    assert plan.run(wide_pack, "ingest", good) is not None
    d = evaluate(wide_pack, "ingest", good)
    assert set(d.matched_rules) >= {"guarded", "unguarded", "protected", "png", "embargo"}
    assert "r (i-1)" in d.reasons and d.failed_rules == ()
    # a null score: the unguarded rule errors, found out on the same folded values
    bad = {**good, "asset": {**good["asset"], "score": None}}
    assert plan.run(wide_pack, "ingest", bad) is not None
    d = evaluate(wide_pack, "ingest", bad)
    assert d.failed_rules == ("unguarded",) and d.outcome == "deny"
    assert any("could not evaluate" in r and "No such overload" in r for r in d.reasons)
    # an undocumented field left out: its path does not resolve, so the decision is made
    # on the full context, where the rule reading it fails closed
    gone = {"now": good["now"], "asset": {"score": 0.1, "path": "a"}}
    assert plan.run(wide_pack, "ingest", gone) is None
    d = evaluate(wide_pack, "ingest", gone)
    assert d.failed_rules == ("desk",) and "no field 'desk'" in " ".join(d.reasons)


def test_shipped_packs_and_test_packs_take_the_fast_path(either_pack):
    from provkit.policies.engine import _fast_plan
    from provkit.policies.pack import shipped_packs

    for pack in [either_pack] + [load_pack(name) for name in shipped_packs()]:
        for point, rules in pack.by_point.items():
            if rules:
                assert _fast_plan(pack, point) is not None, (pack.name, point)


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("asset.c2pa.state == 'a.b'", "_v0 == 'a.b'"),
        ('"asset.c2pa.state" == asset.path', '"asset.c2pa.state" == _v0'),
        ("asset . c2pa .state", "_v0"),
        ("asset.path.endsWith('.png')", "_v0.endsWith('.png')"),
        ("has(asset.c2pa.signer.org)", "has(_v0.org)"),
        ("has(asset.c2pa.signer)", "has(_v0.signer)"),
        ("asset.duplicates.exists(d, d.kind == 'pdq')", "_v0.exists(d, d.kind == 'pdq')"),
        ("size(asset.duplicates[0].item) > 1", "size(_v0[0].item) > 1"),
        ("asset.desk.name == 1", "_v0.name == 1"),
        ("now < timestamp('2030-01-01T00:00:00Z')", "_v0 < timestamp('2030-01-01T00:00:00Z')"),
        ("[1].exists(asset, asset > 0)", None),  # a comprehension variable named like the context
        ("x.all(i, f(actor, i))", None),
        ("asset.path == 'a' // a comment", None),
    ],
)
def test_field_paths_fold_into_variables_outside_strings(expr, expected):
    from provkit.policies.engine import _fold_depth
    from provkit.policies.expressions import flatten_paths

    assert flatten_paths(expr, _fold_depth, {}, "_v") == expected
