"""Banks as a platform uses them: partner ids and metadata on every match, what a match
means (--action), negative banks, a bank switched off, a per-bank match distance, one
item removed by partner id, and the old spellings (`provkit index`, `--index`)."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.detect.index import ReferenceIndex
from provkit.detect.index_bank import SqliteBankStore, bank_store
from provkit.detect.lookup import ReferenceBank, hash_file
from provkit.detect.scan import scan

from provkit.answers import scan_judge
from provkit.cli import root


def run(*args):
    return CliRunner().invoke(root, [str(a) for a in args])


def _flip(hexed: str, bits: int, low: bool = False) -> str:
    """A PDQ hex with its first (or last) ``bits`` bits flipped: a near copy at that
    distance."""
    mask = (1 << bits) - 1
    v = int(hexed, 16) ^ (mask if low else mask << (256 - bits))
    return f"{v:064x}"


@pytest.fixture
def uploads(tmp_path, photos):
    """Five real photographs as uploads (JPEG)."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    paths = []
    for i, arr in enumerate(photos[:5]):
        p = folder / f"u{i}.jpg"
        Image.fromarray(arr).save(p, quality=90)
        paths.append(p)
    return paths


def _hash_list(path, rows):
    """A partner's CSV: id, PDQ hash, and its own columns (category, tags)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "hash", "category", "tags"])
        w.writerows(rows)
    return path


@pytest.fixture
def partner(tmp_path, uploads):
    """A partner hash list naming uploads 0 and 1 (u1 at PDQ distance 6), imported with
    --action deny."""
    pdq = [hash_file(p)["pdq"] for p in uploads]
    listed = _hash_list(
        tmp_path / "partner.csv",
        [("tx-0001", pdq[0], "spam", "a;b"), ("tx-0002", _flip(pdq[1], 6), "scam", "c")],
    )
    r = run(
        "bank", "import", "partner", listed, "--action", "deny", "--label", "partner bank", "--json"
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["imported"] == 2
    return pdq


def test_every_match_reports_bank_partner_id_metadata_action_and_distance(partner, uploads):
    (report,) = json.loads(run("dupes", uploads[1], "--json").stdout)
    (m,) = report["matches"]
    assert (m["bank"], m["partner_id"], m["action"], m["kind"], m["distance"]) == (
        "partner",
        "tx-0002",
        "deny",
        "pdq",
        6,
    )
    assert m["metadata"] == {"category": "scam", "tags": "c"}
    human = run("dupes", uploads[1]).stdout
    assert "partner#" in human and "id tx-0002" in human and "[deny]" in human
    # detect's evidence names the partner id too
    row = json.loads(run("detect", uploads[1], "--json").stdout)  # one file: one object
    dup = next(e for e in row["evidence"] if e["kind"] == "duplicates")
    assert "partner/tx-0002" in dup["detail"]


def test_the_action_is_stored_listed_and_settable_later(partner):
    (listed,) = json.loads(run("bank", "list", "--json").stdout)
    assert (listed["name"], listed["action"], listed["enabled"]) == ("partner", "deny", True)
    assert "\tdeny\ton" in run("bank", "list").stdout
    r = run("bank", "set", "partner", "--action", "review", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["action"] == "review"
    assert json.loads(run("bank", "list", "--json").stdout)[0]["action"] == "review"
    assert run("bank", "set", "partner", "--action", "none", "--json").exit_code == 0
    assert json.loads(run("bank", "list", "--json").stdout)[0]["action"] is None
    bad = run("bank", "set", "nope", "--action", "deny")
    assert bad.exit_code == 2 and "no bank named 'nope'" in bad.output


def test_a_bank_switched_off_is_not_matched_and_keeps_its_items(partner, uploads):
    assert run("bank", "set", "partner", "--disable").exit_code == 0
    (report,) = json.loads(run("dupes", uploads[0], "--json").stdout)
    assert report["matches"] == []
    assert json.loads(run("bank", "stats", "partner", "--json").stdout)["items"] == 2
    assert run("bank", "set", "partner", "--enable").exit_code == 0
    (report,) = json.loads(run("dupes", uploads[0], "--json").stdout)
    assert [m["partner_id"] for m in report["matches"]] == ["tx-0001"]


def test_a_banks_own_distance_applies_unless_the_search_gives_one(partner, uploads):
    assert run("bank", "set", "partner", "--max-distance", "pdq=4").exit_code == 0
    (report,) = json.loads(run("dupes", uploads[1], "--json").stdout)
    assert report["matches"] == []  # at distance 6, beyond this bank's 4
    (report,) = json.loads(run("dupes", uploads[1], "--max-distance", "pdq=8", "--json").stdout)
    assert [m["partner_id"] for m in report["matches"]] == ["tx-0002"]
    assert "pdq<=4" in run("bank", "list").stdout
    assert run("bank", "set", "partner", "--max-distance", "default").exit_code == 0
    (report,) = json.loads(run("dupes", uploads[1], "--json").stdout)
    assert [m["partner_id"] for m in report["matches"]] == ["tx-0002"]
    bad = run("bank", "set", "partner", "--max-distance", "pdq=999")
    assert bad.exit_code == 2 and "outside 0..256" in bad.output


def test_one_item_is_removed_by_partner_id(partner, uploads):
    r = run("bank", "remove-item", "partner", "tx-0001", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {
        "bank": "partner",
        "removed_items": 1,
        "not_found": [],
    }
    (report,) = json.loads(run("dupes", uploads[0], "--json").stdout)
    assert report["matches"] == []
    missing = run("bank", "remove-item", "partner", "tx-0001", "tx-9999")
    assert missing.exit_code == 1 and "not found: tx-0001, tx-9999" in missing.output
    assert json.loads(run("bank", "stats", "partner", "--json").stdout)["items"] == 1


def test_an_image_item_keeps_the_id_its_list_gave(tmp_path, uploads):
    listed = tmp_path / "archive.jsonl"
    listed.write_text(
        json.dumps({"path": str(uploads[2]), "id": "arch-77", "category": "archive"}) + "\n"
    )
    assert run("bank", "add", "archive", listed, "--action", "label").exit_code == 0
    (report,) = json.loads(run("dupes", uploads[2], "--json").stdout)
    (m,) = report["matches"]
    assert (m["partner_id"], m["action"], m["metadata"]["category"]) == (
        "arch-77",
        "label",
        "archive",
    )
    assert ReferenceIndex().item("archive", "arch-77")["item_id"] == m["item_id"]
    assert run("bank", "remove-item", "archive", "arch-77").exit_code == 0
    assert ReferenceIndex().item("archive", "arch-77") is None


def test_lookups_answer_partner_ids_and_metadata_and_skip_a_disabled_bank(partner, workspace):
    db = workspace / "provkit.db"
    bank = ReferenceBank(str(db))
    bank.refresh()
    near = _flip(_flip(partner[1], 6), 8, low=True)  # 8 bits from the listed hash
    found = bank.lookup("pdq", near)
    (m,) = found["partner"]
    assert (m["partner_id"], m["metadata"], m["distance"]) == (
        "tx-0002",
        {"category": "scam", "tags": "c"},
        8,
    )
    store = bank_store(db)
    assert isinstance(store, SqliteBankStore)
    store.configure("partner", max_distance={"pdq": 5})
    assert bank.refresh() is True  # new settings, same codes: no reload of the bank
    assert bank.lookup("pdq", near)["partner"] == []
    assert bank.lookup("pdq", partner[0])["partner"][0]["partner_id"] == "tx-0001"
    store.configure("partner", enabled=False)
    bank.refresh()
    assert bank.lookup("pdq", partner[0]) == {}
    assert bank.lookup("pdq", partner[0], sets=["partner"]) == {"partner": []}


def test_a_deny_bank_makes_the_platform_pack_deny_its_matches_and_a_negative_bank_cancels(
    partner, uploads, tmp_path
):
    out = tmp_path / "scan.jsonl"
    summary = scan(
        uploads[0].parent, out, workers=1, judge=scan_judge("platform", "ingest", dry_run=True)
    )
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in map(json.loads, out.read_text().splitlines())}
    denied = {n for n, r in rows.items() if r["decision"]["outcome"] == "deny"}
    assert denied == {"u0.jpg", "u1.jpg"}
    assert summary.by_outcome.get("deny") == 2
    reasons = " ".join(rows["u1.jpg"]["decision"]["reasons"])
    assert "bank partner" in reasons and "partner item tx-0002" in reasons
    dup = rows["u1.jpg"]["asset"]["duplicates"][0]
    assert (dup["bank"], dup["action"], dup["partner_id"]) == ("partner", "deny", "tx-0002")
    # a negative bank holding u0 (a cleared copy) cancels the partner's match for u0 only
    cleared = _hash_list(tmp_path / "cleared.csv", [("ok-1", partner[0], "cleared", "")])
    assert run("bank", "import", "cleared", cleared, "--action", "allow").exit_code == 0
    out2 = tmp_path / "scan2.jsonl"
    scan(uploads[0].parent, out2, workers=1, judge=scan_judge("platform", "ingest", dry_run=True))
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in map(json.loads, out2.read_text().splitlines())}
    assert rows["u0.jpg"]["decision"]["outcome"] != "deny"
    assert "bank-match-deny" not in rows["u0.jpg"]["decision"]["matched_rules"]
    assert rows["u1.jpg"]["decision"]["outcome"] == "deny"


def test_scan_pack_platform_on_the_command_line_denies_partner_matches(partner, uploads, tmp_path):
    out = tmp_path / "cli.jsonl"
    r = run(
        "scan",
        uploads[0].parent,
        "-o",
        out,
        "--pack",
        "platform",
        "--dry-run",
        "--workers",
        "1",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["by_outcome"]["deny"] == 2


def test_the_old_spellings_still_work_but_are_not_listed(partner, uploads):
    assert "index" not in run("--help").output.split("Commands:")[1].split()
    assert "bank" in run("--help").output
    old = run("index", "list", "--json")
    assert old.exit_code == 0 and json.loads(old.stdout)[0]["name"] == "partner"
    (report,) = json.loads(run("dupes", uploads[0], "--index", "partner", "--json").stdout)
    assert report["matches"][0]["partner_id"] == "tx-0001"
    helptext = run("dupes", "--help").output
    assert "--bank" in helptext and "--index" not in helptext


def test_the_old_scope_name_gives_the_banks_write_scope(workspace):
    from provkit.server import tokens

    old = tokens.create("old", ["sets:write"], db=workspace / "provkit.db").token
    assert old.scopes == ("banks:write",) and old.allows("banks:write")
    assert tokens.Token("legacy", ("sets:write",), "2026-01-01T00:00:00+00:00", None).allows(
        "banks:write"
    )
    assert not old.allows("read")
