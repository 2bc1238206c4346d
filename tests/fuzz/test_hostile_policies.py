"""Regressions of the hardening issue, policy side: bounded YAML, the audit log as a
tamper-evident record that a database writer without the workspace key cannot forge."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from policies.pack import load_pack
from policies.yamllines import parse
from provenance.cli import root
from provenance.core.errors import ConfigError
from tests.fuzz import hostile

# -- 7. bounded YAML ------------------------------------------------------------------------


def test_a_pack_of_nested_aliases_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(hostile.laughing_yaml())
    assert len(path.read_bytes()) < 1000
    with pytest.raises(ConfigError, match="aliases"):
        load_pack(str(path))
    result = CliRunner().invoke(root, ["policy", "lint", str(path)])
    assert result.exit_code in (1, 2) and "aliases" in result.output


def test_yaml_nesting_is_bounded():
    data, problems = parse("a: " + "[" * 200 + "]" * 200 + "\n")
    assert data is None and "nested more than" in problems[0][1]
