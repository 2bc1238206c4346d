"""The workspace's Merkle logs end to end: leaves written with their rows, checkpoints
and proofs from the CLI and over HTTP, verified in a process with no database, and a
kept checkpoint catching what a copied database can hide from the chain alone."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from provkit.policies import decide, load_pack
from provkit.policies.audit import CHAINED, row_hash
from provkit.provenance.core import merkle, note, transparency
from provkit.provenance.core.tlog import tlog_store
from provkit.provenance.ledger import ledger_store

from provkit.cli import root

ROOT = Path(__file__).resolve().parent.parent
CONTEXTS = [
    {"actor": {"id": "ed"}, "asset": {"sha256": f"{i:064x}", "c2pa": {"state": s}}}
    for i, s in enumerate(["invalid", "valid", "absent", "trusted"] * 3)
]


def run(*args, ok=True):
    result = CliRunner().invoke(root, [str(a) for a in args])
    if ok is not None:
        assert (result.exit_code == 0) == ok, result.output
    return result


@pytest.fixture
def db(tmp_path):
    """A workspace with a log key, twelve decisions and three issued assets."""
    run("log", "key", "--init")
    path = tmp_path / "provkit.db"
    pack = load_pack("newsroom")
    for context in CONTEXTS:
        decide(pack, "publish", context, db=path)
    book = ledger_store(path)
    for i in range(3):
        book.record(
            asset_id=f"{i:016x}",
            sha256=f"{i + 7:064x}",
            manifest_label=f"urn:m:{i}",
            manifest_store=b"store%d" % i,
        )
    book.mark(f"{1:016x}", "withheld", reason="policy")
    book.db.conn.close()
    return path


def rows(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()


# ------------------------------------------------------------------ leaves and checkpoints


def test_every_row_is_a_leaf_and_every_append_signs_a_checkpoint(db):
    store = tlog_store(db, create=False)
    assert store.size("decisions") == len(CONTEXTS)
    assert store.size("assets") == 4  # three issued, one withheld
    cp = store.latest_checkpoint("decisions")
    assert cp is not None and cp.size == len(CONTEXTS)
    assert note.read_checkpoint(cp.note, note.log_verifier()).root == store.root("decisions")
    key, data = store.entry("assets", 3)
    assert key == f"{1:016x}" and json.loads(data)["event"] == "withheld"
    # the decisions leaves are exactly the bytes the chain hashes
    leaf_root = merkle.root_of(
        [merkle.leaf_hash(store.entry("decisions", i)[1]) for i in range(len(CONTEXTS))]
    )
    assert leaf_root == store.root("decisions")
    first = rows(db)[0]
    assert row_hash(first[: len(CHAINED)], first[-2]) == first[-1]


def test_a_failed_row_leaves_no_leaf(db):
    book = ledger_store(db)
    with pytest.raises(Exception, match="already in the ledger"):
        book.record(asset_id=f"{0:016x}", sha256="0" * 64)
    assert tlog_store(db).size("assets") == 4


def test_without_a_log_key_leaves_are_kept_and_no_checkpoint_is_signed(tmp_path, workspace):
    shutil.rmtree(workspace / "keys", ignore_errors=True)
    path = tmp_path / "nokey.db"
    decide(load_pack("newsroom"), "publish", CONTEXTS[0], db=path)
    store = tlog_store(path)
    assert store.size("decisions") == 1 and store.latest_checkpoint("decisions") is None
    result = run("log", "checkpoint", "--db", path, ok=False)
    assert result.exit_code == 2 and "log key --init" in result.output


# ------------------------------------------------------------------ offline verification


def test_a_checkpoint_and_its_proofs_verify_in_a_process_without_the_database(db, tmp_path):
    run("log", "checkpoint", "--log", "decisions", "--db", db, "-o", tmp_path / "cp.txt")
    run("log", "prove", "5", "--db", db, "-o", tmp_path / "row5.json")
    run("log", "checkpoint", "--db", db, "-o", tmp_path / "assets.txt")
    run("log", "prove", f"{2:016x}", "--db", db, "-o", tmp_path / "asset.json")
    decide(load_pack("newsroom"), "publish", CONTEXTS[0], db=db)
    run("log", "consistency", tmp_path / "cp.txt", "--db", db, "-o", tmp_path / "cons.json")
    (tmp_path / "key.txt").write_text(run("log", "key").output)
    db.rename(tmp_path / "elsewhere.db")  # no database where the verifier runs

    empty = tmp_path / "empty-home"
    empty.mkdir()
    env = {
        **os.environ,
        "PROVKIT_HOME": str(empty),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }

    def verify(cp, proof):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "provkit.cli",
                "log",
                "verify",
                "--checkpoint",
                cp,
                "--proof",
                proof,
                "--key",
                tmp_path / "key.txt",
                "--json",
            ],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    for cp, proof in (
        ("cp.txt", "row5.json"),
        ("assets.txt", "asset.json"),
        ("cp.txt", "cons.json"),
    ):
        done = verify(tmp_path / cp, tmp_path / proof)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["ok"]
    assert not list(empty.rglob("*.db"))  # it opened no database

    # a changed entry, a moved position, another key's checkpoint: each fails
    proof = json.loads((tmp_path / "asset.json").read_text())
    entry = json.loads(__import__("base64").b64decode(proof["entry"]))
    assert entry["asset_id"] == f"{2:016x}" and entry["event"] == "issued"
    entry["time"] = "2001-01-01T00:00:00+00:00"  # a re-dated asset
    proof["entry"] = (
        __import__("base64")
        .b64encode(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode())
        .decode()
    )
    (tmp_path / "redated.json").write_text(json.dumps(proof))
    moved = json.loads((tmp_path / "row5.json").read_text())
    moved["index"] = 5
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    for cp, bad in (("assets.txt", "redated.json"), ("cp.txt", "moved.json")):
        done = verify(tmp_path / cp, tmp_path / bad)
        assert done.returncode == 1 and "NOT at position" in done.stdout
    forged = note.Signer.generate(note.log_signer().name).sign(
        (tmp_path / "cp.txt").read_text().split("\n\n")[0] + "\n"
    )
    (tmp_path / "forged.txt").write_text(forged)
    done = verify(tmp_path / "forged.txt", tmp_path / "row5.json")
    assert done.returncode == 1 and "no signature by" in done.stdout


def test_a_consistency_proof_fails_for_a_rewritten_log(db, tmp_path):
    run("log", "checkpoint", "--log", "decisions", "--db", db, "-o", tmp_path / "old.txt")
    # rewrite the log's own tables (leaf 3 replaced, tiles recomputed): a new tree whose
    # checkpoint the workspace still signs, but it does not extend the old one
    store = tlog_store(db)
    datas = [store.entry("decisions", i)[1] for i in range(store.size("decisions"))]
    datas[3] = datas[3].replace(b'"publish"', b'"verify"')
    with store.conn:
        store.conn.execute("DELETE FROM tlog_entries WHERE log = 2")
        store.conn.execute("DELETE FROM tlog_hashes WHERE log = 2")
        store.conn.execute("DELETE FROM tlog_state WHERE log = 2")
    store.append("decisions", [(str(i + 1), d) for i, d in enumerate(datas)])
    store.append("decisions", [("99", b"more")])
    run("log", "consistency", tmp_path / "old.txt", "--db", db, "-o", tmp_path / "c.json")
    key = run("log", "key").output.strip()
    result = run(
        "log",
        "verify",
        "--checkpoint",
        tmp_path / "old.txt",
        "--proof",
        tmp_path / "c.json",
        "--key",
        key,
        ok=False,
    )
    assert result.exit_code == 1 and "does NOT extend" in result.output


# ------------------------------------------------------------------ a copied database


def _copy(db, tmp_path):
    run("log", "checkpoint", "--log", "decisions", "--db", db, "-o", tmp_path / "kept.txt")
    copy = tmp_path / "copy" / "provkit.db"
    copy.parent.mkdir()
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    return copy


def _verify(copy, tmp_path, *extra):
    return run("audit", "verify", "--db", copy, *extra, "--json", ok=None)


def test_a_kept_checkpoint_passes_an_untouched_copy(db, tmp_path):
    copy = _copy(db, tmp_path)
    result = _verify(copy, tmp_path, "--checkpoint", tmp_path / "kept.txt")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["signed_through"] == len(CONTEXTS)


def test_a_rewritten_chain_with_its_checkpoints_dropped_is_caught(db, tmp_path):
    copy = _copy(db, tmp_path)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE audit SET outcome = 'allow', reasons = '[]' WHERE seq = 3")
        prev = "0" * 64
        for row in conn.execute("SELECT * FROM audit ORDER BY seq").fetchall():
            digest = row_hash(row[: len(CHAINED)], prev)
            conn.execute(
                "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, digest, row[0]]
            )
            prev = digest
        conn.execute("DROP TABLE audit_checkpoints")
    assert _verify(copy, tmp_path).exit_code == 0  # the chain alone cannot tell
    result = _verify(copy, tmp_path, "--checkpoint", tmp_path / "kept.txt")
    assert result.exit_code == 1
    assert "rewritten" in json.loads(result.output)["problem"]


def test_a_cut_tail_with_its_checkpoints_deleted_is_caught(db, tmp_path):
    copy = _copy(db, tmp_path)
    with sqlite3.connect(copy) as conn:
        conn.execute("DELETE FROM audit WHERE seq > 9")
        conn.execute("DELETE FROM audit_checkpoints WHERE seq > 9")
    assert _verify(copy, tmp_path).exit_code == 0
    result = _verify(copy, tmp_path, "--checkpoint", tmp_path / "kept.txt")
    assert result.exit_code == 1
    problem = json.loads(result.output)["problem"]
    assert "only rows 1-9" in problem and "cut or deleted" in problem


def test_all_rows_deleted_with_their_checkpoints_is_caught(db, tmp_path):
    copy = _copy(db, tmp_path)
    with sqlite3.connect(copy) as conn:
        conn.execute("DELETE FROM audit")
        conn.execute("DELETE FROM audit_checkpoints")
    result = _verify(copy, tmp_path, "--checkpoint", tmp_path / "kept.txt")
    assert result.exit_code == 1
    assert "rows were deleted" in json.loads(result.output)["problem"]


def test_a_forged_kept_checkpoint_is_refused(db, tmp_path):
    copy = _copy(db, tmp_path)
    text = (tmp_path / "kept.txt").read_text()
    (tmp_path / "kept.txt").write_text(text.replace(f"\n{len(CONTEXTS)}\n", "\n3\n"))
    result = _verify(copy, tmp_path, "--checkpoint", tmp_path / "kept.txt")
    assert result.exit_code == 2 and "kept.txt" in result.output
    assert "altered or forged" in result.output


# ------------------------------------------------------------------ HTTP


def test_the_service_serves_checkpoints_proofs_and_tiles(db, workspace, tmp_path):
    from fastapi.testclient import TestClient

    from tests.fixtures_serve import make_app, token

    with sqlite3.connect(db) as src, sqlite3.connect(workspace / "provkit.db") as dst:
        src.backup(dst)
    with TestClient(make_app(workspace)) as client:
        assert client.get("/v1/log/checkpoint").status_code == 401
        reader = token(workspace, "reader", "read")
        assert client.get("/v1/log/proof/4", headers=reader).status_code == 403
        assert (
            client.get("/v1/log/decisions/tile/entries/000.p/2", headers=reader).status_code == 403
        )
        assert client.get("/v1/log/decisions/tile/0/000.p/2", headers=reader).status_code == 200
        headers = token(workspace, "auditor", "read", "audit:read")
        cp = client.get("/v1/log/checkpoint", params={"log": "decisions"}, headers=headers).json()
        assert cp["size"] == len(CONTEXTS)
        proof = client.get("/v1/log/proof/4", headers=headers).json()
        assert proof["index"] == 3 and proof["checkpoint"] == cp["note"]
        text = client.get("/v1/log/decisions/checkpoint", headers=headers)
        assert text.text == cp["note"] and text.headers["content-type"].startswith("text/plain")
        tile = client.get(f"/v1/log/decisions/tile/0/000.p/{len(CONTEXTS)}", headers=headers)
        store = tlog_store(db, create=False)
        leaves = [merkle.leaf_hash(store.entry("decisions", i)[1]) for i in range(len(CONTEXTS))]
        assert tile.content == b"".join(leaves)
        assert merkle.root_of(leaves) == __import__("base64").b64decode(cp["root"])
        assert client.get("/v1/log/decisions/tile/0/000", headers=headers).status_code == 404
        assert client.get("/v1/log/decisions/tile/0/../x", headers=headers).status_code in (
            404,
            422,
        )
        entries = client.get("/v1/log/assets/tile/entries/000.p/4", headers=headers)
        assert entries.status_code == 200 and b'"event":"withheld"' in entries.content
        cons = client.post(
            "/v1/log/consistency",
            content=cp["note"],
            headers={**headers, "content-type": "text/plain"},
        )
        assert cons.status_code == 200, cons.text
        assert cons.json()["old_size"] == len(CONTEXTS)
        assert client.get("/v1/log/proof/ffffffffffffffff", headers=headers).status_code == 422


def test_a_proof_file_that_is_not_json_is_one_line(tmp_path, db):
    run("log", "checkpoint", "--db", db, "-o", tmp_path / "cp.txt")
    (tmp_path / "bad.json").write_bytes(b"\x00\xff")
    result = run(
        "log",
        "verify",
        "--checkpoint",
        tmp_path / "cp.txt",
        "--proof",
        tmp_path / "bad.json",
        "--key",
        transparency.key().verifier_key,
        ok=False,
    )
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "bad.json: not a JSON proof" in result.output


# ------------------------------------------------------------------ concurrency, upgrade


def _decide_and_record(db_path: str, worker: int, n: int, start) -> None:
    pack = load_pack("newsroom")
    book = ledger_store(db_path)
    start.wait(60)
    for i in range(n):
        decide(
            pack,
            "publish",
            {"actor": {"id": f"w{worker}"}, "asset": {"sha256": f"{worker:02d}{i:062d}"}},
            db=db_path,
        )
        book.record(asset_id=f"{worker:08x}{i:08x}", sha256=f"{i:064x}")


def test_concurrent_writers_leave_a_log_that_matches_every_row(tmp_path, workspace):
    import multiprocessing

    run("log", "key", "--init")
    db = str(tmp_path / "race.db")
    ledger_store(db)
    decide(load_pack("newsroom"), "publish", CONTEXTS[0], db=db)  # tables before the race
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_decide_and_record, args=(db, w, 40, start)) for w in range(3)]
    for p in workers:
        p.start()
    start.set()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    store = tlog_store(db)
    assert store.size("decisions") == 121 and store.size("assets") == 120
    run("log", "checkpoint", "--log", "decisions", "--db", db, "-o", tmp_path / "cp.txt")
    result = run("audit", "verify", "--db", db, "--checkpoint", tmp_path / "cp.txt", "--json")
    assert json.loads(result.output)["signed_through"] == 121
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT asset_id FROM assets ORDER BY rowid")]
    assert sorted(ids) == sorted(store.entry("assets", i)[0] for i in range(120))


def test_a_database_from_before_the_logs_gets_one_leaf_per_existing_row(db, tmp_path):
    with sqlite3.connect(db) as conn:  # as it was before the Merkle logs
        for table in ("tlog_state", "tlog_entries", "tlog_hashes"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM _migrations WHERE component = 'provenance.core.tlog'")
        conn.execute(
            "UPDATE _migrations SET version = 2 WHERE component IN "
            "('policies.audit', 'provenance.ledger')"
        )
    code = (
        "import sys\n"  # a new process of the new version opens it and writes
        "from provkit.policies import decide, load_pack\n"
        "from provkit.provenance.ledger import ledger_store\n"
        f"decide(load_pack('newsroom'), 'publish', {CONTEXTS[1]!r}, db=sys.argv[1])\n"
        "ledger_store(sys.argv[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        check=False,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    store = tlog_store(db)
    assert store.size("decisions") == len(CONTEXTS) + 1
    assert store.size("assets") == 3  # one per asset as it stands (its status now)
    assert json.loads(store.entry("assets", 1)[1])["event"] == "withheld"
    run("log", "checkpoint", "--log", "decisions", "--db", db, "-o", tmp_path / "cp.txt")
    result = run("audit", "verify", "--db", db, "--checkpoint", tmp_path / "cp.txt")
    assert "signed through row 13" in result.output


def test_reading_commands_on_a_database_from_before_the_logs_say_what_is_missing(tmp_path):
    run("log", "key", "--init")
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE x (a)")
    result = run("log", "prove", "0123456789abcdef", "--db", old, ok=False)
    assert (
        result.exit_code == 2
        and result.output == "error: no asset 0123456789abcdef in the assets log\n"
    )
    (tmp_path / "notes.txt").write_text("a plain text file\n")
    result = run("log", "consistency", tmp_path / "notes.txt", "--db", old, ok=False)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {tmp_path / 'notes.txt'}: not a signed note")


def test_a_proof_against_a_checkpoint_the_verifier_already_holds(db, tmp_path):
    run("log", "checkpoint", "--log", "decisions", "--db", db, "-o", tmp_path / "held.txt")
    decide(load_pack("newsroom"), "publish", CONTEXTS[0], db=db)  # the log moves on
    run(
        "log",
        "prove",
        "7",
        "--checkpoint",
        tmp_path / "held.txt",
        "--db",
        db,
        "-o",
        tmp_path / "p.json",
    )
    key = run("log", "key").output.strip()
    ok = run(
        "log",
        "verify",
        "--checkpoint",
        tmp_path / "held.txt",
        "--proof",
        tmp_path / "p.json",
        "--key",
        key,
    )
    assert f"in the tree of {len(CONTEXTS)} leaves" in ok.output
    late = run(
        "log",
        "prove",
        str(len(CONTEXTS) + 1),
        "--checkpoint",
        tmp_path / "held.txt",
        "--db",
        db,
        ok=False,
    )
    assert late.exit_code == 2 and "recorded after that checkpoint" in late.output
    with sqlite3.connect(db) as conn:  # the stored log rewritten under the held checkpoint
        conn.execute(
            "UPDATE tlog_hashes SET hash = zeroblob(32) WHERE log = 2 AND level = 0 AND idx = 2"
        )
    bad = run("log", "prove", "7", "--checkpoint", tmp_path / "held.txt", "--db", db, ok=False)
    assert bad.exit_code == 2 and "does not hold the tree the checkpoint signs" in bad.output


def test_a_consistency_proof_checks_from_either_checkpoint_and_not_from_another(db, tmp_path):
    run("log", "checkpoint", "--log", "decisions", "--db", db, "-o", tmp_path / "old.txt")
    decide(load_pack("newsroom"), "publish", CONTEXTS[0], db=db)
    run("log", "consistency", tmp_path / "old.txt", "--db", db, "-o", tmp_path / "c.json")
    run("log", "checkpoint", "--log", "decisions", "--db", db, "-o", tmp_path / "new.txt")
    key = run("log", "key").output.strip()
    for held in ("old.txt", "new.txt"):
        result = run(
            "log",
            "verify",
            "--checkpoint",
            tmp_path / held,
            "--proof",
            tmp_path / "c.json",
            "--key",
            key,
        )
        assert f"at size {len(CONTEXTS) + 1} extends" in result.output
    run("log", "checkpoint", "--log", "assets", "--db", db, "-o", tmp_path / "other.txt")
    other = run(
        "log",
        "verify",
        "--checkpoint",
        tmp_path / "other.txt",
        "--proof",
        tmp_path / "c.json",
        "--key",
        key,
        ok=False,
    )
    assert other.exit_code == 1 and "not about your checkpoint" in other.output
