"""Packs are validated at load, with line numbers: `provkit policy lint`."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner
from provkit.policies import lint_pack, load_pack
from provkit.provenance.core.errors import ConfigError

from provkit.cli import root

GOOD_HEAD = """\
pack: t
default: allow
terms:
  people: people.txt
params:
  limit: 31
rules:
"""


def write(tmp_path, rules: str, head: str = GOOD_HEAD):
    (tmp_path / "people.txt").write_text("Ada Lovelace\n")
    path = tmp_path / "pack.yaml"
    path.write_text(head + textwrap.dedent(rules))
    return path


def errors(path):
    return [(f.line, f.message) for f in lint_pack(path) if f.severity == "error"]


def test_unknown_field_is_named_with_its_line(tmp_path):
    path = write(
        tmp_path,
        """\
      - id: a
        points: [publish]
        whne: asset.score > 0.5
        outcome: deny
        reason: r
    """,
    )
    [(line, message)] = errors(path)
    assert line == 10 and "unknown field 'whne'" in message


def test_expression_that_does_not_compile_is_an_error_at_its_line(tmp_path):
    path = write(
        tmp_path,
        """\
      - id: a
        points: [publish]
        outcome: deny
        reason: r
        when: asset.score >
    """,
    )
    [(line, message)] = errors(path)
    assert line == 12 and "does not compile" in message


def test_duplicate_rule_ids_are_errors(tmp_path):
    path = write(
        tmp_path,
        """\
      - {id: a, points: [publish], when: asset.verdict == "x", outcome: deny, reason: r}
      - {id: a, points: [ingest], when: asset.verdict == "y", outcome: deny, reason: r}
    """,
    )
    [(line, message)] = errors(path)
    assert line == 9 and "duplicate rule id 'a' (first at line 8)" in message


def test_a_rule_before_an_unconditional_deny_is_unreachable_too(tmp_path):
    path = write(
        tmp_path,
        """\
      - {id: early, points: [publish], when: asset.verdict == "x", outcome: review, reason: r}
      - {id: stop, points: [publish], when: "true", outcome: deny, reason: closed}
    """,
    )
    [(line, message)] = errors(path)
    assert line == 8 and "'early' is unreachable" in message and "'stop' (line 9)" in message


def test_rule_after_an_unconditional_deny_is_unreachable(tmp_path):
    path = write(
        tmp_path,
        """\
      - {id: stop, points: [publish, ingest], outcome: deny, reason: everything is denied}
      - {id: later, points: [publish], when: asset.verdict == "x", outcome: label, label: x, reason: r}
      - {id: elsewhere, points: [verify], when: asset.verdict == "x", outcome: review, reason: r}
    """,
    )
    [(line, message)] = errors(path)
    assert line == 9 and "'later' is unreachable" in message and "'stop' (line 8)" in message


def test_always_false_condition_is_unreachable(tmp_path):
    path = write(
        tmp_path,
        """\
      - {id: never, points: [publish], when: 1 > 2, outcome: deny, reason: r}
    """,
    )
    assert "always false" in errors(path)[0][1]


@pytest.mark.parametrize(
    "rule, expected",
    [
        (
            "{id: a, points: [print], when: 'true', outcome: deny, reason: r}",
            "unknown decision point 'print'",
        ),
        (
            "{id: a, points: [publish], when: 'true', outcome: block, reason: r}",
            "outcome must be one of",
        ),
        ("{id: a, points: [publish], when: 'true', outcome: label, reason: r}", "no label text"),
        (
            (
                "{id: a, points: [publish], when: 'matches_terms(request.prompt, \"brands\")', "
                "outcome: deny, reason: r}"
            ),
            "unknown term list 'brands'",
        ),
        (
            "{id: a, points: [publish], when: asset.score > params.limt, outcome: deny, reason: r}",
            "params.limt, which the pack does not define",
        ),
        (
            "{id: a, points: [publish], when: 'lookup(asset.sha256)', outcome: deny, reason: r}",
            "unknown function 'lookup'",
        ),
        (
            "{id: a, points: [publish], when: 'assett.score > 0.5', outcome: deny, reason: r}",
            "unknown variable 'assett'",
        ),
        (
            "{id: a, points: [publish], when: '\"yes\"', outcome: deny, reason: r}",
            "not true or false",
        ),
        ("{id: A B, points: [publish], outcome: deny, reason: r}", "needs an id"),
        ("{id: a, points: [publish], outcome: deny}", "has no 'reason'"),
    ],
)
def test_rule_problems_are_reported(tmp_path, rule, expected):
    path = write(tmp_path, f"  - {rule}\n")
    messages = [m for _, m in errors(path)]
    assert any(expected in m for m in messages), messages


def test_pack_level_problems_are_reported(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "pack: t\nrules:\n  - {id: a, points: [publish], outcome: deny, reason: r}\n"
        "colour: blue\nterms:\n  x: missing.txt\n"
    )
    messages = [m for _, m in errors(path)]
    assert any("default outcome" in m for m in messages)
    assert any("unknown field 'colour'" in m for m in messages)
    assert any("cannot read term list 'x'" in m for m in messages)


def test_invalid_yaml_and_duplicate_keys_have_line_numbers(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pack: t\ndefault: allow\nrules: [\n")
    assert errors(bad)[0][1].startswith("invalid YAML")
    dup = write(
        tmp_path,
        """\
      - id: a
        points: [publish]
        outcome: deny
        outcome: allow
        reason: r
    """,
    )
    assert (11, "duplicate key 'outcome'") in errors(dup)


def test_load_pack_refuses_an_invalid_pack_naming_the_lines(tmp_path):
    path = write(
        tmp_path,
        """\
      - {id: a, points: [publish], when: asset.score >, outcome: deny, reason: r}
    """,
    )
    with pytest.raises(ConfigError, match=r"line 8: error: rule 'a': when does not compile"):
        load_pack(path)


def test_unknown_pack_name_lists_the_shipped_packs():
    with pytest.raises(ConfigError, match="newsroom, platform, studio"):
        load_pack("no-such-pack")


def test_lint_command_prints_file_and_line_and_exits_1(tmp_path):
    path = write(
        tmp_path,
        """\
      - {id: a, points: [publish], wen: 'true', outcome: deny, reason: r}
    """,
    )
    result = CliRunner().invoke(root, ["policy", "lint", str(path)])
    assert result.exit_code == 1
    assert f"{path}:8: error: unknown field 'wen'" in result.output


def test_lint_command_on_a_shipped_pack_exits_0():
    result = CliRunner().invoke(root, ["policy", "lint", "studio", "--json"])
    assert result.exit_code == 0 and '"ok": true' in result.output
