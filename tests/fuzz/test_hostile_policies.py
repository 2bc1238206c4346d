"""Regressions of the hardening issue, policy side: bounded YAML, the audit log as a
tamper-evident record that a database writer without the workspace key cannot forge."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from provkit.policies.pack import load_pack
from provkit.policies.yamllines import parse
from provkit.provenance.core.errors import ConfigError

from provkit.cli import root
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


# -- 10. the audit log -----------------------------------------------------------------------


@pytest.fixture
def audit_db(tmp_path):
    from provkit.policies.engine import decide

    path = tmp_path / "audit.db"
    for state in ["valid", "invalid", "absent", "trusted", "absent", "invalid"]:
        decide(load_pack("newsroom"), "publish", {"asset": {"c2pa": {"state": state}}}, db=path)
    return path


def _verify(db, *extra):
    result = CliRunner().invoke(root, ["audit", "verify", "--db", str(db), *extra])
    return result.exit_code, result.output


def test_a_dropped_audit_table_is_a_tamper_finding(audit_db):
    conn = sqlite3.connect(audit_db)
    conn.execute("DROP TABLE audit")
    conn.commit()
    code, out = _verify(audit_db)
    assert code == 1 and "audit table is missing" in out, out
    assert "unexpected" not in out


def test_a_dropped_table_and_migrations_row_are_not_silently_recreated(audit_db):
    conn = sqlite3.connect(audit_db)
    conn.execute("DROP TABLE audit")
    conn.execute("DROP TABLE audit_checkpoints")
    conn.execute("DELETE FROM _migrations WHERE component = 'policies.audit'")
    conn.commit()
    code, out = _verify(audit_db)
    assert code == 1 and "TAMPERED" in out, out
    for reader in (["log"], ["head"], ["export"]):
        CliRunner().invoke(root, ["audit", *reader, "--db", str(audit_db)])
    tables = {
        r[0]
        for r in sqlite3.connect(audit_db).execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    assert "audit" not in tables  # no reader recreated it


def _forge_appends(db, n):
    from provkit.policies.audit import CHAINED, row_hash

    conn = sqlite3.connect(db)
    seq, prev = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    template = conn.execute(f"SELECT {', '.join(CHAINED)} FROM audit WHERE seq = 1").fetchone()
    for _ in range(n):
        seq += 1
        values = (seq, *template[1:])
        digest = row_hash(values, prev)
        conn.execute(
            f"INSERT INTO audit ({', '.join(CHAINED)}, prev_hash, hash) VALUES "
            f"({', '.join('?' * (len(CHAINED) + 2))})",
            [*values, prev, digest],
        )
        prev = digest
    conn.commit()


def test_chained_forged_rows_after_the_head_are_caught(audit_db):
    head = CliRunner().invoke(root, ["audit", "head", "--db", str(audit_db)]).output.strip()
    _forge_appends(audit_db, 2)
    code, out = _verify(audit_db)
    assert code == 1 and "rows 7-8 were appended without the workspace audit key" in out, out
    code, out = _verify(audit_db, "--expect-head", head)
    assert code == 1


def test_a_rewritten_and_rehashed_chain_with_a_forged_checkpoint_is_caught(audit_db):
    conn = sqlite3.connect(audit_db)
    conn.execute("UPDATE audit_checkpoints SET signature = ? WHERE seq = 6", ["00" * 64])
    conn.commit()
    code, out = _verify(audit_db)
    assert code == 1 and "not signed by the workspace audit key" in out, out


def test_a_forged_partial_export_header_cannot_hide_a_cut_from_the_start(audit_db, tmp_path):
    out = tmp_path / "full.jsonl"
    assert (
        CliRunner()
        .invoke(root, ["audit", "export", "--db", str(audit_db), "-o", str(out)])
        .exit_code
        == 0
    )
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["provkit_audit_export"]["signature"]
    assert _verify(audit_db, "--export", str(out))[0] == 0
    # cut rows 1-2 and claim a partial export from row 3, unsigned
    forged = tmp_path / "forged.jsonl"
    forged.write_text(
        "\n".join([json.dumps({"provkit_audit_export": {"from_seq": 3}})] + lines[3:]) + "\n"
    )
    code, text = _verify(audit_db, "--export", str(forged))
    assert code == 1 and "not signed" in text, text
    # keep the signed header but cut rows from the start
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:1] + lines[3:]) + "\n")
    assert _verify(audit_db, "--export", str(cut))[0] == 1
    # edit the signed header to say it starts later
    header = json.loads(lines[0])
    header["provkit_audit_export"]["from_seq"] = 3
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join([json.dumps(header)] + lines[3:]) + "\n")
    code, text = _verify(audit_db, "--export", str(edited))
    assert code == 1 and "not signed by the workspace audit key" in text, text


def test_ledger_and_audit_databases_run_with_synchronous_full(tmp_path):
    from provkit.provenance.core.workspace import connect

    db = connect(tmp_path / "x.db")
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
