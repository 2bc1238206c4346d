"""A pack expression cannot run unbounded: nested loops over the step budget are refused
when the pack loads (one line naming the rule), and a decision context may not carry
lists longer than the loops' budget counts."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from provkit.policies.engine import evaluate
from provkit.policies.expressions import CONTEXT_LIST, STEP_BUDGET, estimate_steps
from provkit.policies.pack import load_pack
from provkit.provenance.core.errors import BadInput, ConfigError

BIG = "[" + ", ".join(str(i) for i in range(1000)) + "]"
NESTED = f"{BIG}.all(a, {BIG}.all(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].all(c, a + b + c > -1)))"


def _pack(tmp_path, when: str):
    path = tmp_path / "loops.yaml"
    path.write_text(f"""pack: loops
version: "1"
default: allow
rules:
  - id: count-forever
    points: [verify]
    when: '{when}'
    outcome: deny
    reason: loops
""")
    return path


def test_nested_loops_over_the_budget_are_refused_naming_the_rule(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_pack(_pack(tmp_path, NESTED))
    assert "count-forever" in str(e.value) and "steps" in str(e.value)


def test_the_cli_says_one_line_and_exits_2(tmp_path, workspace):
    image = tmp_path / "x.txt"
    image.write_text("x")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "provkit.cli",
            "policy",
            "check",
            str(image),
            "--pack",
            str(_pack(tmp_path, NESTED)),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "count-forever" in done.stderr and "Traceback" not in done.stderr


def test_loops_within_the_budget_load_and_decide(tmp_path):
    pack = load_pack(_pack(tmp_path, "[1, 2, 3].exists(a, [4, 5].exists(b, a + b == 7))"))
    assert evaluate(pack, "verify", {}).outcome == "deny"


def test_a_context_list_longer_than_the_budget_counts_is_refused(tmp_path):
    pack = load_pack(_pack(tmp_path, "asset.items.exists(x, x == 1)"))
    with pytest.raises(BadInput, match="at most"):
        evaluate(pack, "verify", {"asset": {"items": list(range(CONTEXT_LIST + 1))}})
    assert evaluate(pack, "verify", {"asset": {"items": [1]}}).outcome == "deny"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=4))
def test_the_estimate_is_the_product_of_nested_literal_lists(sizes):
    expr = "true"
    for depth, n in reversed(list(enumerate(sizes))):
        items = "[" + ", ".join(["0"] * n) + "]"
        expr = f"{items}.all(v{depth}, {expr})"
    expected, inner = 0, 0
    for n in reversed(sizes):
        inner = n * (1 + inner)
    expected = inner
    assert estimate_steps(expr) == expected
    assert STEP_BUDGET >= 40**3
