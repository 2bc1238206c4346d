"""Batch scan: one row per image, errors as rows, resumable without losing or repeating rows."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image, PngImagePlugin
from provkit.detect.scan import image_paths, scan
from provkit.provenance.core.errors import ConfigError


def make_folder(root, photos, n=12, broken=1):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = Image.fromarray(photos[i % len(photos)][:160, :160])
        if i % 3 == 0:
            info = PngImagePlugin.PngInfo()
            info.add_text("parameters", f"img {i}\nSteps: 20, Sampler: Euler, Seed: {i}")
            img.save(root / f"{i:03d}.png", pnginfo=info)
        else:
            img.save(root / f"{i:03d}.jpg", quality=85)
    for j in range(broken):
        (root / f"zz_broken{j}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not an image, not scanned")
    return root


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("workers", [1, 2])
def test_scan_writes_one_row_per_image_with_errors_as_rows(tmp_path, photos, workers):
    folder = make_folder(tmp_path / "in", photos)
    out = tmp_path / "out.jsonl"
    summary = scan(folder, out, workers=workers, db=str(tmp_path / "w.db"))
    rows = read_jsonl(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in image_paths(folder))
    assert len(rows) == 13 and summary.scanned == 13 and summary.errors == 1
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and "zz_broken0" in bad[0]["path"] and bad[0]["verdict"] is None
    assert summary.by_verdict == {"ai-generated": 4, "unknown": 8, "error": 1}


def test_resume_after_a_torn_last_line_neither_loses_nor_repeats_rows(tmp_path, photos):
    folder = make_folder(tmp_path / "in", photos, n=10)
    out = tmp_path / "out.jsonl"
    scan(folder, out, workers=1)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])  # killed mid-write
    summary = scan(folder, out, workers=1, resume=True)
    rows = read_jsonl(out)
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == 11
    assert summary.resumed == 4 and summary.scanned == 7


def test_resume_of_a_csv_scan(tmp_path, photos):
    folder = make_folder(tmp_path / "in", photos, n=8)
    out = tmp_path / "out.csv"
    scan(folder, out, workers=1)
    text = out.read_text()
    head = text[: text.index("\n", len(text) // 2) + 1]
    out.write_text(head + "/torn/row.jpg,unkn")
    scan(folder, out, workers=1, resume=True)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in image_paths(folder))
    assert {r["verdict"] for r in rows} == {"ai-generated", "unknown", ""}


def test_sqlite_output_is_keyed_by_path_and_resumable(tmp_path, photos):
    import sqlite3

    folder = make_folder(tmp_path / "in", photos, n=6)
    out = tmp_path / "scan.db"
    scan(folder, out, workers=1)
    con = sqlite3.connect(out)
    con.execute("DELETE FROM scan_results WHERE rowid IN (SELECT rowid FROM scan_results LIMIT 3)")
    con.commit()
    con.close()
    summary = scan(folder, out, workers=1, resume=True)
    assert summary.scanned == 3
    con = sqlite3.connect(out)
    n, distinct = con.execute("SELECT count(*), count(DISTINCT path) FROM scan_results").fetchone()
    assert n == distinct == 7
    json.loads(con.execute("SELECT evidence FROM scan_results LIMIT 1").fetchone()[0])


def test_existing_output_needs_resume_or_force(tmp_path, photos):
    folder = make_folder(tmp_path / "in", photos, n=2, broken=0)
    out = tmp_path / "out.jsonl"
    scan(folder, out, workers=1)
    with pytest.raises(ConfigError, match="--resume"):
        scan(folder, out, workers=1)
    assert scan(folder, out, workers=1, force=True).scanned == 2


def test_a_list_file_names_images_relative_to_itself(tmp_path, photos):
    folder = make_folder(tmp_path / "in", photos, n=3, broken=0)
    listing = tmp_path / "in" / "list.txt"
    listing.write_text("# uploads\n000.png\n\n001.jpg\nmissing.jpg\n")
    out = tmp_path / "o.jsonl"
    summary = scan(listing, out, workers=1)
    rows = {r["path"]: r for r in read_jsonl(out)}
    assert summary.scanned == 3 and "no such file" in rows[str(folder / "missing.jpg")]["error"]


def test_killed_scan_resumes_to_exactly_one_row_per_image(tmp_path, photos):
    folder = make_folder(tmp_path / "in", photos, n=40, broken=0)
    out = tmp_path / "out.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "provkit.cli",
        "scan",
        str(folder),
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    partial = out.read_text().count("\n")
    assert partial < 40, "the scan finished before it could be killed"
    done = subprocess.run(cmd + ["--resume", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    rows = read_jsonl(out)
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == 40
    assert json.loads(done.stdout)["resumed"] == partial


@pytest.mark.parametrize(
    "options, words",
    [
        ({"index_sets": ["no-such-set"]}, "no bank named no-such-set"),
        ({"clip": "ViT-Nope-1:random"}, "unknown CLIP architecture"),
        ({"clip": "ViT-B-32:/no/such/weights.bin"}, "no CLIP checkpoint"),
    ],
)
def test_bad_options_fail_before_the_output_is_written_so_a_rerun_works(
    tmp_path, photos, options, words
):
    folder = make_folder(tmp_path / "in", photos, n=2, broken=0)
    out = tmp_path / "o.csv"
    with pytest.raises(ConfigError, match=words):
        scan(folder, out, workers=2, **options)
    assert not out.exists()
    assert scan(folder, out, workers=1).scanned == 2


def test_header_only_csv_output_counts_as_empty(tmp_path, photos):
    folder = make_folder(tmp_path / "in", photos, n=2, broken=0)
    out = tmp_path / "o.csv"
    out.write_text(
        "path,verdict,score,decided_by,c2pa,xmp,generator_metadata,watermark,"
        "third_party_watermark,classifier,duplicates,error\r\n"
    )
    assert scan(folder, out, workers=1).scanned == 2
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["verdict"] for r in rows)
