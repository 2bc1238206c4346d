"""The audit log: a hash chain that names the first edited, deleted or reordered row."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from provkit.policies import AuditLog, decide, decide_many, evaluate, load_pack, verify_export
from provkit.provenance.core.workspace import connect

from provkit.cli import root

#: an invalid credential is denied only with its cause shown (content altered); the rest
#: of these go to review
_C2PA = {
    "invalid": {"state": "invalid", "cause": "content_altered", "causes": {"content_altered": True}}
}
CONTEXTS = [
    {"actor": {"id": "ed"}, "asset": {"sha256": f"{i:064x}", "c2pa": _C2PA.get(s, {"state": s})}}
    for i, s in enumerate(["invalid", "valid", "absent", "trusted", "absent", "invalid"] * 2)
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "audit.db"
    pack = load_pack("newsroom")
    for context in CONTEXTS:
        decide(pack, "publish", context, db=path)
    return path


def test_a_fresh_chain_verifies(db):
    check = AuditLog(db).verify()
    assert check.ok and check.rows == len(CONTEXTS) and check.head.seq == len(CONTEXTS)


def test_a_hand_edited_row_is_named(db):
    connect(db)["audit"].update(5, {"outcome": "allow"})
    check = AuditLog(db).verify()
    assert not check.ok and check.first_bad == 5 and "row 5 was edited" in check.problem


def test_an_edited_and_rehashed_row_is_caught_at_the_next_row(db):
    from provkit.policies.audit import CHAINED, row_hash

    conn = connect(db).conn
    row = list(
        conn.execute(f"SELECT {', '.join(CHAINED)}, prev_hash FROM audit WHERE seq = 4").fetchone()
    )
    row[CHAINED.index("outcome")] = "deny"
    conn.execute(
        "UPDATE audit SET outcome = 'deny', hash = ? WHERE seq = 4", [row_hash(row[:-1], row[-1])]
    )
    conn.commit()
    check = AuditLog(db).verify()
    assert not check.ok and check.first_bad == 4 and "row 4 was rewritten" in check.problem


def test_a_deleted_row_is_named(db):
    connect(db)["audit"].delete(7)
    check = AuditLog(db).verify()
    assert not check.ok and check.first_bad == 7 and "row 7 is missing" in check.problem


def test_reordered_rows_are_caught(db):
    conn = connect(db).conn
    conn.execute("UPDATE audit SET seq = -3 WHERE seq = 3")
    conn.execute("UPDATE audit SET seq = 3 WHERE seq = 8")
    conn.execute("UPDATE audit SET seq = 8 WHERE seq = -3")
    conn.commit()
    check = AuditLog(db).verify()
    assert not check.ok and check.first_bad == 3


def test_cutting_rows_from_the_end_is_caught_by_the_signed_head(db):
    log = AuditLog(db)
    head = log.head()
    conn = connect(db).conn
    conn.execute("DELETE FROM audit WHERE seq > 9")
    conn.execute("DELETE FROM audit_checkpoints WHERE seq > 9")
    conn.commit()
    check = log.verify()  # the chain alone cannot see it; the head signed outside can
    assert not check.ok and "cut from the end" in check.problem
    check = log.verify(expect_head=str(head))
    assert not check.ok and "not in the log" in check.problem


def test_an_anchored_head_still_verifies_after_more_appends(db):
    log = AuditLog(db)
    head = log.head()
    decide("newsroom", "publish", CONTEXTS[0], db=db)
    assert log.verify(expect_head=head.hash).ok


def test_export_carries_the_hashes_and_verifies_on_its_own(db, tmp_path):
    out = tmp_path / "audit.jsonl"
    with open(out, "w") as fp:
        assert AuditLog(db).export(fp) == len(CONTEXTS)
    assert verify_export(out).ok
    lines = out.read_text().splitlines()
    assert "provkit_audit_export" in lines[0]  # the signed header
    row = json.loads(lines[3])
    assert row["seq"] == 3
    row["reasons"] = ["nothing to see here"]
    lines[3] = json.dumps(row)
    out.write_text("\n".join(lines) + "\n")
    check = verify_export(out)
    assert not check.ok and check.first_bad == 3


def test_batch_appends_chain_like_single_ones(tmp_path):
    db = tmp_path / "batch.db"
    decide("platform", "ingest", CONTEXTS[0], db=db)
    decisions = decide_many("platform", "ingest", CONTEXTS, db=db)
    assert [d.audit_seq for d in decisions] == list(range(2, len(CONTEXTS) + 2))
    assert AuditLog(db).verify().ok and AuditLog(db).count() == len(CONTEXTS) + 1


def test_log_filters_by_outcome_and_since(db):
    log = AuditLog(db)
    denies = list(log.log(outcome="deny"))
    assert len(denies) == 4 and all(r["outcome"] == "deny" for r in denies)
    assert len(list(log.log(since="1h"))) == len(CONTEXTS)
    assert list(log.log(since="2999-01-01")) == []


def test_cli_verify_names_the_edited_row_and_exits_1(db):
    runner = CliRunner()
    ok = runner.invoke(root, ["audit", "verify", "--db", str(db)])
    assert ok.exit_code == 0 and "chain intact" in ok.output
    connect(db)["audit"].update(2, {"reasons": json.dumps(["edited by hand"])})
    bad = runner.invoke(root, ["audit", "verify", "--db", str(db)])
    assert bad.exit_code == 1 and "first bad row 2" in bad.output


def test_cli_log_export_and_head(db, tmp_path):
    runner = CliRunner()
    log = runner.invoke(root, ["audit", "log", "--db", str(db), "--outcome", "deny", "--json"])
    assert log.exit_code == 0 and len(json.loads(log.output)) == 4
    out = tmp_path / "x.jsonl"
    exp = runner.invoke(
        root, ["audit", "export", "--db", str(db), "--format", "jsonl", "-o", str(out)]
    )
    assert exp.exit_code == 0 and len(out.read_text().splitlines()) == len(CONTEXTS) + 1  # header
    head = runner.invoke(root, ["audit", "head", "--db", str(db)]).output.strip()
    verified = runner.invoke(root, ["audit", "verify", "--export", str(out), "--expect-head", head])
    assert verified.exit_code == 0, verified.output
    bad = runner.invoke(root, ["audit", "log", "--db", str(db), "--since", "last tuesday"])
    assert bad.exit_code == 2 and "--since" in bad.output


def _decide_many_times(db_path: str, worker: int, n: int, start) -> None:
    pack = load_pack("newsroom")
    start.wait(60)  # all four begin together
    for i in range(n):
        context = {
            "actor": {"id": f"worker-{worker}"},
            "asset": {
                "sha256": f"{worker:02d}{i:062d}",
                "c2pa": {"state": ["valid", "absent", "invalid"][i % 3]},
            },
        }
        decide(pack, "publish", context, db=db_path)


def test_four_processes_times_1000_decisions_leave_4000_rows_and_a_valid_chain(tmp_path):
    db = str(tmp_path / "concurrent.db")
    AuditLog(db)  # create the table before the race
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_decide_many_times, args=(db, w, 1000, start)) for w in range(4)]
    for p in workers:
        p.start()
    start.set()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    log = AuditLog(db)
    check = log.verify()
    assert check.ok, check.problem
    assert check.rows == log.count() == 4000
    per_actor = connect(db).execute("SELECT actor, count(*) FROM audit GROUP BY actor").fetchall()
    assert sorted(per_actor) == [(f"worker-{w}", 1000) for w in range(4)]


def test_audit_and_policy_commands_do_not_import_torch(tmp_path, db):
    ctx = tmp_path / "ctx.json"
    ctx.write_text(json.dumps({"asset": {"c2pa": {"state": "valid"}}}))
    code = (
        "import sys\nfrom provkit.cli import main\n"
        "for argv in ([ 'audit', 'verify', '--db', sys.argv[1]],"
        " ['policy', 'check', '--pack', 'newsroom', '--context', sys.argv[2], '--db', sys.argv[1]]):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(db), str(ctx)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_evaluate_alone_writes_nothing(tmp_path):
    evaluate("newsroom", "publish", CONTEXTS[0])
    assert AuditLog(tmp_path / "empty.db").count() == 0


def test_an_append_inside_the_callers_transaction_commits_with_it(tmp_path):
    db = connect(tmp_path / "shared.db")
    log = AuditLog(db)
    decision = evaluate("newsroom", "publish", CONTEXTS[0])
    db.conn.execute("BEGIN")
    db.conn.execute("CREATE TABLE work (x)")
    log.append(decision, actor="a")
    db.conn.execute("ROLLBACK")  # the caller's transaction fails: the decision goes with it
    assert AuditLog(db).count() == 0
    log.append(decision, actor="b")  # outside a transaction: its own, committed
    assert [r["actor"] for r in log.log()] == ["b"] and log.verify().ok


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 12), data=st.data())
def test_any_single_edited_field_is_named_at_its_row(tmp_path_factory, n, data):
    from provkit.policies.audit import CHAINED

    db = tmp_path_factory.mktemp("chain") / "a.db"
    decisions = [evaluate("newsroom", "publish", c) for c in CONTEXTS[:n]]
    AuditLog(db).append_many([(d, "ed", f"s{i}") for i, d in enumerate(decisions)])
    row = data.draw(st.integers(1, n))
    column = data.draw(st.sampled_from([c for c in CHAINED if c != "seq"] + ["prev_hash", "hash"]))
    conn = connect(db).conn
    old = conn.execute(f"SELECT {column} FROM audit WHERE seq = ?", [row]).fetchone()[0]
    conn.execute(f"UPDATE audit SET {column} = ? WHERE seq = ?", [f"{old}x", row])
    conn.commit()
    check = AuditLog(db).verify()
    assert not check.ok and check.first_bad == row


@pytest.mark.parametrize("command", [["verify"], ["log"], ["head"], ["export"]])
def test_audit_readers_on_a_mistyped_db_fail_instead_of_passing(tmp_path, command):
    typo = tmp_path / "typo.db"
    result = CliRunner().invoke(root, ["audit", *command, "--db", str(typo)])
    assert result.exit_code == 2, result.output
    assert f"{typo}: no such database" in result.output and "chain intact" not in result.output
    assert not typo.exists()


def test_a_partial_export_since_a_time_verifies_from_its_first_row(db, tmp_path):
    fifth = list(AuditLog(db).log())[4]
    out = tmp_path / "tail.jsonl"
    exported = CliRunner().invoke(
        root, ["audit", "export", "--db", str(db), "--since", fifth["time"], "-o", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    check = verify_export(out)
    assert check.ok and check.from_seq == 5 and check.rows == len(CONTEXTS) - 4
    head = CliRunner().invoke(root, ["audit", "head", "--db", str(db)]).output.strip()
    human = CliRunner().invoke(
        root, ["audit", "verify", "--export", str(out), "--expect-head", head]
    )
    assert human.exit_code == 0 and "from row 5" in human.output, human.output
    lines = out.read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:2] + lines[3:]) + "\n")  # row 6 deleted
    assert verify_export(cut).first_bad == 6
    headless = tmp_path / "headless.jsonl"
    headless.write_text("\n".join(lines[1:]) + "\n")  # not marked partial: rows 1-4 missing
    assert not verify_export(headless).ok
