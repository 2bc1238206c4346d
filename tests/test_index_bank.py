"""Hash banks: sets filled from partners' hash lists, exported back, and the file cache
through which every process loads a set."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from provkit.detect import index_cache
from provkit.detect.index import ReferenceIndex
from provkit.detect.index_bank import index_import, read_hashes
from provkit.detect.index_search import match_set, resolve_limits
from provkit.provenance.fingerprint import Fingerprint, fingerprint_file

from provkit.cli import root

rng = np.random.default_rng(7)


def pdq_hex(n: int, seed: int = 0) -> list[str]:
    r = np.random.default_rng(seed)
    raw = r.integers(0, 256, (n, 32), dtype=np.uint8)
    return [row.tobytes().hex() for row in raw]


def flip(hexed: str, bits: int) -> bytes:
    """The hash with its first ``bits`` bits flipped (distance ``bits``)."""
    v = int(hexed, 16) ^ ((1 << 256) - 1 ^ ((1 << (256 - bits)) - 1))
    return v.to_bytes(32, "big")


def query(pdq: bytes, quality: int = 100) -> Fingerprint:
    return Fingerprint(sha256=None, phash=0, dhash=0, pdq=pdq, pdq_quality=quality)


def run(*args):
    return CliRunner().invoke(root, [str(a) for a in args])


def test_csv_import_reports_bad_lines_by_number_and_matches_by_source_id(tmp_path):
    hashes = pdq_hex(6)
    lines = [
        "id,hash,quality,label,case",
        f"te-1,{hashes[0]},90,csam,A1",
        f"te-2,{hashes[1]},30,csam,A2",  # low quality: kept, flagged
        "te-3," + "zz" * 32 + ",90,csam,A3",  # line 4: not hex
        f"te-4,{hashes[3][:60]},90,csam,A4",  # line 5: 60 digits
        f"te-5,{hashes[4]},101,csam,A5",  # line 6: quality out of range
        "",
        f"te-6,{hashes[5]},,terror,A6",
    ]
    f = tmp_path / "bank.csv"
    f.write_text("\n".join(lines) + "\n")
    db = tmp_path / "p.db"
    r = run(
        "bank",
        "import",
        "partner",
        f,
        "--kind",
        "pdq",
        "--label",
        "partner bank",
        "--db",
        db,
        "--json",
    )
    assert r.exit_code == 0, r.output  # a partial import is done, and says it is partial
    report = json.loads(r.stdout)
    assert report["imported"] == 3 and report["invalid"] == 3 and report["low_quality"] == 1
    assert report["complete"] is False
    assert [e["line"] for e in report["errors"]] == [4, 5, 6]
    assert "line 4:" in r.stderr and "hexadecimal" in r.stderr
    assert "partial import" in r.stderr and "3 line(s) skipped" in r.stderr
    # --strict keeps the old exit status; the usable lines are in the bank either way
    strict = run("bank", "import", "partner", f, "--kind", "pdq", "--db", db, "--strict")
    assert strict.exit_code == 2 and "error:" in strict.stderr

    idx = ReferenceIndex(db)
    (m,) = idx.search(query(flip(hashes[0], 9)))
    assert (m.kind, m.distance, m.source_id, m.label) == ("pdq", 9, "te-1", "partner bank")
    assert m.metadata == {"label": "csam", "case": "A1"} and m.path == ""
    assert m.distances == {"pdq": 9, "phash": None, "dhash": None}
    assert m.policy_json()["item"] == "te-1"
    # quality 30 < 50: stored, counted as flagged, but never decides a match
    assert idx.search(query(flip(hashes[1], 0))) == []
    assert idx.stats("partner")["low_quality_imported_pdq"] == 1
    # no quality given: usable
    assert [m.source_id for m in idx.search(query(flip(hashes[5], 3)))] == ["te-6"]
    # beyond the PDQ limit (31 bits): no match
    assert idx.search(query(flip(hashes[0], 40))) == []


def test_threatexchange_and_hma_exports_are_read(tmp_path):
    hashes = pdq_hex(4, seed=1)
    te = tmp_path / "te.csv"
    te.write_text(
        "signal_type,signal_value,bank_content_id\n"
        f"pdq,{hashes[0]},1001\n"
        f"md5,{'a' * 32},1002\n"  # another signal type: skipped, said why
        f"HASH_PDQ,{hashes[1].upper()},1003\n"
    )
    hma = tmp_path / "hma.jsonl"
    hma.write_text(
        json.dumps({"id": 7, "signals": {"pdq": hashes[2]}, "note": "x"})
        + "\n"
        + "{not json\n"
        + json.dumps({"pdq": hashes[3], "content_id": "c-9"})
        + "\n"
    )
    db = tmp_path / "p.db"
    r1 = index_import("te", te, db=db)
    assert (r1.imported, r1.invalid) == (2, 1) and "md5" in r1.errors[0][1]
    r2 = index_import("te", hma, db=db)
    assert (r2.imported, r2.invalid, r2.errors[0][0]) == (2, 1, 2)
    idx = ReferenceIndex(db)
    got = {m.source_id: m.metadata for m in idx.search(query(bytes.fromhex(hashes[2])))}
    assert got == {"7": {"note": "x"}}
    assert {m.source_id for m in idx.search(query(bytes.fromhex(hashes[1])))} == {"1003"}


def test_headerless_tsv_and_phash_dhash_banks_match_on_their_own_kind(tmp_path, photos):
    img_path = tmp_path / "a.png"
    Image.fromarray(photos[0]).save(img_path)
    fp = fingerprint_file(img_path)
    db = tmp_path / "p.db"
    (tmp_path / "ph.tsv").write_text(f"{fp.phash ^ 0b111:016x}\tph-1\n")
    (tmp_path / "dh.txt").write_text(f"{fp.dhash ^ 0b11:016x},dh-1\n")
    assert index_import("ph", tmp_path / "ph.tsv", kind="phash", db=db).imported == 1
    assert index_import("dh", tmp_path / "dh.txt", kind="dhash", db=db).imported == 1
    by_set = {m.set: m for m in ReferenceIndex(db).search(img_path)}
    assert (by_set["ph"].kind, by_set["ph"].distance, by_set["ph"].source_id) == (
        "phash",
        3,
        "ph-1",
    )
    assert (by_set["dh"].kind, by_set["dh"].distance) == ("dhash", 2)
    assert by_set["ph"].distances["pdq"] is None


def test_a_set_mixes_images_and_hashes_and_exports_round_trip(tmp_path, photos):
    db = tmp_path / "p.db"
    img_path = tmp_path / "a.jpg"
    Image.fromarray(photos[2]).save(img_path, quality=90)
    idx = ReferenceIndex(db)
    idx.add("mixed", [img_path], crops=False)
    hashes = pdq_hex(3, seed=3)
    (tmp_path / "h.jsonl").write_text(
        "".join(
            json.dumps({"hash": h, "id": f"h{i}", "quality": 70 + i, "src": "partner"}) + "\n"
            for i, h in enumerate(hashes)
        )
    )
    index_import("mixed", tmp_path / "h.jsonl", db=db)
    assert idx.get_set("mixed").items == 4
    assert [m.path for m in idx.search(img_path)] == [str(img_path.resolve())]
    assert [m.source_id for m in idx.search(query(bytes.fromhex(hashes[1])))] == ["h1"]

    for suffix in (".csv", ".tsv", ".jsonl"):
        out = tmp_path / f"export{suffix}"
        r = run("bank", "export", "mixed", "-o", out, "--db", db, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["exported"] == 3 + 3  # 3 hashes of the image, 3 imported
        db2 = tmp_path / f"again{suffix}.db"
        back = index_import("copy", out, db=db2)
        assert back.imported == 4 and back.invalid == 2  # the image's pHash/dHash rows
        assert all("is not pdq" in why for _, why in back.errors)
        (m,) = ReferenceIndex(db2).search(query(bytes.fromhex(hashes[2])))
        assert m.source_id == "h2" and m.metadata == {"src": "partner"}


def test_rerun_adds_only_what_is_missing_and_remove_by_source_id(tmp_path):
    hashes = pdq_hex(50, seed=4)
    f = tmp_path / "b.csv"
    f.write_text("id,pdq\n" + "".join(f"x{i},{h}\n" for i, h in enumerate(hashes[:30])))
    db = tmp_path / "p.db"
    assert index_import("b", f, db=db, batch=7).imported == 30
    f.write_text("id,pdq\n" + "".join(f"x{i},{h}\n" for i, h in enumerate(hashes)))
    again = index_import("b", f, db=db, batch=7)
    assert (again.imported, again.already_present) == (20, 30)
    idx = ReferenceIndex(db)
    assert idx.get_set("b").items == 50
    assert idx.remove("b", ["x3"]) == 1
    assert idx.search(query(bytes.fromhex(hashes[3]))) == []
    (m,) = idx.search(query(bytes.fromhex(hashes[4])))
    assert idx.remove("b", [m.item_id]) == 1 and idx.get_set("b").items == 48


def test_an_import_killed_mid_way_keeps_its_blocks_and_a_rerun_completes_it(tmp_path):
    n = 120_000
    hashes = pdq_hex(n, seed=5)
    f = tmp_path / "big.csv"
    f.write_text("id,hash\n" + "".join(f"k{i},{h}\n" for i, h in enumerate(hashes)))
    db = tmp_path / "p.db"
    code = (
        "import sys; from provkit.detect.index_bank import index_import; "
        f"index_import('big', {str(f)!r}, db={str(db)!r}, batch=2000)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    blocks = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            with sqlite3.connect(db, timeout=1) as c:
                blocks = c.execute("SELECT COUNT(*) FROM ref_hash_blocks").fetchone()[0]
        except sqlite3.OperationalError:
            continue
        if blocks >= 3:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    assert blocks >= 3 and proc.returncode == -signal.SIGKILL, "the import was not interrupted"
    with sqlite3.connect(db) as c:
        kept = c.execute("SELECT COALESCE(SUM(n), 0) FROM ref_hash_blocks").fetchone()[0]
    assert 0 < kept < n
    rerun = index_import("big", f, db=db)
    assert rerun.already_present == kept and rerun.imported == n - kept
    assert ReferenceIndex(db).get_set("big").items == n
    for i in (0, n // 2, n - 1):
        (m,) = ReferenceIndex(db).search(query(bytes.fromhex(hashes[i])))
        assert m.source_id == f"k{i}"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=80), max_size=8)
)
def test_hostile_lines_are_reported_never_raised(tmp_path_factory, lines):
    d = tmp_path_factory.mktemp("hostile")
    good = pdq_hex(1, seed=9)[0]
    f = d / "h.csv"
    f.write_text("hash,id\n" + "\n".join(lines) + f"\n{good},ok\n", encoding="utf-8")
    got = list(read_hashes(f, "pdq"))
    assert all(isinstance(rec, str) or len(rec) == 4 or rec[0] == "bulk" for _, rec in got)
    assert any(not isinstance(rec, str) and rec[1] == "ok" for _, rec in got)


# -- the file cache and the one loader --------------------------------------------------


@pytest.fixture(scope="module")
def big_bank(tmp_path_factory):
    """A bank of 60k PDQ hashes (over the cache and multi-index sizes) with planted
    near-duplicates of a few queries."""
    d = tmp_path_factory.mktemp("cache")
    hashes = pdq_hex(60_000, seed=11)
    f = d / "bank.csv"
    f.write_text(
        "id,hash,quality\n"
        + "".join(f"id{i},{h},{40 if i % 97 == 0 else 80}\n" for i, h in enumerate(hashes))
    )
    db = d / "p.db"
    report = index_import("bank", f, db=db)
    assert report.imported == 60_000
    return db, hashes


def test_a_fresh_process_maps_the_cached_set_instead_of_reading_rows(big_bank):
    db, _ = big_bank
    folders = list(index_cache.cache_root(ReferenceIndex(db).db).glob("*-*"))
    assert len(folders) == 1
    code = (
        "import json, mmap, numpy as np; from provkit.detect.index import ReferenceIndex; "
        "from provkit.detect import index_cache; "
        "mapped = lambda a: a is not None and (isinstance(a, (np.memmap, mmap.mmap)) "
        "or mapped(getattr(a, 'base', None))); "
        "index_cache.read_set = lambda *a: (_ for _ in ()).throw(AssertionError('read rows')); "
        f"idx = ReferenceIndex({str(db)!r}); s = idx.load('bank'); "
        "print(json.dumps([mapped(s.pdq.codes.words), mapped(s.pdq.codes._mih[0]), "
        "len(s.ids)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, True, 60_000]


def test_cached_search_equals_a_brute_force_scan(big_bank):
    db, hashes = big_bank
    idx = ReferenceIndex(db)
    loaded = idx.load("bank")
    codes = np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), np.uint8).reshape(-1, 32)
    quality_ok = np.array([i % 97 != 0 for i in range(len(hashes))])
    limits = resolve_limits(None)
    r = np.random.default_rng(3)
    for t in range(25):
        base = r.integers(len(hashes))
        q = bytearray(bytes.fromhex(hashes[base]))
        for b in r.choice(256, int(r.integers(0, 45)), replace=False):
            q[b // 8] ^= 1 << (b % 8)
        d = np.unpackbits(codes ^ np.frombuffer(bytes(q), np.uint8), axis=1).sum(axis=1)
        want = sorted(int(i) for i in np.flatnonzero((d <= 31) & quality_ok))
        got = match_set(loaded, query(bytes(q)), None, limits, [])
        pos = [int(np.searchsorted(loaded.ids, g["item_id"])) for g in got]  # item row
        assert sorted(pos) == want
        assert [g["distance"] for g in got] == [d[p] for p in pos]


def test_a_changed_set_rebuilds_its_cache_and_a_damaged_cache_is_ignored(big_bank, tmp_path):
    db, hashes = big_bank
    idx = ReferenceIndex(db)
    root = index_cache.cache_root(idx.db)
    (old,) = root.glob("*-*")
    idx.remove("bank", ["id5"])
    loaded = idx.load("bank")
    (new,) = root.glob("*-*")
    assert new != old and len(loaded.ids) == 59_999
    assert idx.search(query(bytes.fromhex(hashes[5]))) == []
    # a truncated array: the cache is not trusted, the set is read from SQLite again
    npy = new / "pdq.words.npy"
    npy.write_bytes(npy.read_bytes()[:1000])
    index_cache.forget(idx.db, "bank")
    assert index_cache.open_cache(root, "bank", loaded.version) is None
    (m,) = idx.search(query(bytes.fromhex(hashes[6])))
    assert m.source_id == "id6"


def test_an_import_with_no_usable_line_fails(tmp_path):
    f = tmp_path / "junk.csv"
    f.write_text("id,hash\nx-1," + "zz" * 32 + "\nx-2,12\n")
    r = run("bank", "import", "junk", f, "--db", tmp_path / "p.db", "--json")
    assert r.exit_code == 2, r.output
    assert json.loads(r.stdout)["complete"] is False
    assert "partial import" not in r.stderr
