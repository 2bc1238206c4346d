"""Scans on a real Ray cluster (a head started on loopback for this module): the same
rows as the local engine, a worker killed mid-scan, resume, Parquet in and out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

if os.environ.get("CI") == "true":
    import ray  # under CI the Ray tests must run: a missing Ray is a failure
else:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'provkit[scale]')")

import psutil
from provkit.detect.index import ReferenceIndex
from provkit.detect.scan import scan
from provkit.detect.scan_ray import read_parquet_rows, scan_ray, start_ray

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster():
    """One Ray head on this machine with 2 CPUs for the module; stopped at the end (only
    the processes this fixture started: ``ray stop`` would stop every Ray on the machine).
    Ray on Linux binds the node's own address even when given 127.0.0.1."""
    ctx = start_ray(num_cpus=2, _node_ip_address="127.0.0.1")
    try:
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()


def make_images(folder: Path, n: int, size: int = 160, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = rng.random((size // 8, size // 8, 3)) * 255
        img = Image.fromarray(base.astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        p = folder / f"img{seed}_{i:03d}.{'png' if i % 2 else 'jpg'}"
        img.save(p)
        out.append(p)
    return out


def rows_of(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return by_path_without_ages(rows)


def by_path_without_ages(rows: list[dict]) -> dict[str, dict]:
    """Rows by path; a match's age counts to the moment of the scan, so it is dropped
    (checked non-negative) before two scans are compared."""
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows), "a path appears twice"
    for r in rows:
        for d in (r.get("asset") or {}).get("duplicates") or []:
            assert d.pop("age_days") >= 0
    return by_path


def cli(*args, env_extra=None, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "provkit.cli", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """24 images, one corrupt file, a workspace whose reference set holds 3 of them, and
    the local engine's scan of them (local.jsonl)."""
    d = tmp_path_factory.mktemp("ray_corpus")
    images = make_images(d / "imgs", 24)
    (d / "imgs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    db = d / "provkit.db"
    ReferenceIndex(db).add("seen", images[:3], label="seen before", crops=False)
    local = scan(d / "imgs", d / "local.jsonl", db=str(db))
    assert local.scanned == 25 and local.errors == 1
    return d, db


def test_a_scan_through_address_gives_the_rows_of_the_local_engine(cluster, corpus):
    d, db = corpus
    p = cli(
        "scan",
        d / "imgs",
        "--out",
        d / "ray.jsonl",
        "--engine",
        "ray",
        "--address",
        cluster,
        "--db",
        db,
        "--json",
    )
    out, err = p.communicate(timeout=600)
    assert p.returncode == 2, err  # 2: the corrupt file is an error row
    summary = json.loads(out)
    assert (summary["scanned"], summary["errors"]) == (25, 1)
    want, got = rows_of(d / "local.jsonl"), rows_of(d / "ray.jsonl")
    assert got == want
    assert got[str(d / "imgs" / "broken.jpg")]["error"]
    matched = [r for r in got.values() if r["duplicates"]]
    assert len(matched) == 3 and all(r["duplicates"][0]["set"] == "seen" for r in matched)


def test_a_worker_killed_mid_scan_loses_and_duplicates_no_row(cluster, tmp_path):
    images = make_images(
        tmp_path / "imgs", 96, size=512, seed=1
    )  # detect is fast: enough rows to kill mid-scan
    ReferenceIndex(tmp_path / "p.db")  # an empty workspace
    out = tmp_path / "ray.jsonl"
    p = cli(
        "scan",
        tmp_path / "imgs",
        "--out",
        out,
        "--engine",
        "ray",
        "--address",
        cluster,
        "--db",
        tmp_path / "p.db",
        "--json",
    )
    me = psutil.Process()
    killed = None
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and p.poll() is None and killed is None:
        time.sleep(0.2)
        written = out.read_text().count("\n") if out.exists() else 0
        if written < 1:
            continue
        for child in me.children(recursive=True):
            try:
                if "ScanWorker" in " ".join(child.cmdline()):
                    child.send_signal(signal.SIGKILL)
                    killed = (child.pid, written)
                    break
            except psutil.Error:
                continue
    _, stderr = p.communicate(timeout=600)
    assert killed is not None, "no worker was running to kill"
    assert killed[1] < len(images), "the scan had finished before the kill"
    assert p.returncode == 0, stderr
    rows = rows_of(out)  # asserts no path twice
    assert set(rows) == {str(i) for i in images}
    assert all(r["error"] is None for r in rows.values())


def test_resume_skips_files_already_in_the_output(cluster, tmp_path):
    first = make_images(tmp_path / "imgs", 6, seed=2)
    out = tmp_path / "out.jsonl"
    s1 = scan_ray(tmp_path / "imgs", out, db=str(tmp_path / "p.db"))
    assert (s1.scanned, s1.resumed) == (6, 0)
    with pytest.raises(Exception, match="--resume"):
        scan_ray(tmp_path / "imgs", out, db=str(tmp_path / "p.db"))
    more = make_images(tmp_path / "imgs", 4, seed=3)
    s2 = scan_ray(tmp_path / "imgs", out, db=str(tmp_path / "p.db"), resume=True)
    assert (s2.scanned, s2.resumed, s2.total) == (4, 6, 10)
    assert set(rows_of(out)) == {str(p) for p in first + more}


def test_parquet_manifests_in_and_parquet_parts_out(cluster, corpus, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d, db = corpus
    want = rows_of(d / "local.jsonl")
    paths = sorted(want)
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"path": paths[:10], "note": ["x"] * 10}), manifest)
    jsonl = tmp_path / "manifest.jsonl"
    jsonl.write_text("".join(json.dumps({"uri": "file://" + p}) + "\n" for p in paths[10:]))
    out = tmp_path / "rows.parquet"
    a = scan_ray(manifest, out, db=str(db))
    b = scan_ray(jsonl, out, db=str(db), resume=True)
    assert (a.scanned, b.scanned) == (10, len(paths) - 10)
    got = by_path_without_ages(list(read_parquet_rows(out)))
    assert got == want


def test_scan_pack_on_ray_decides_each_row_as_the_local_engine_does(cluster, tmp_path):
    """A partner bank imported with --action deny makes `scan --pack platform` deny its
    matches on Ray as locally, and a negative (allow) bank cancels them."""
    from provkit.detect.index_bank import index_import
    from provkit.detect.lookup import hash_file

    images = make_images(tmp_path / "imgs", 6, seed=3)
    db = tmp_path / "provkit.db"
    pdq = [hash_file(p)["pdq"] for p in images]
    partner = tmp_path / "partner.csv"
    partner.write_text("id,hash,category\n" + "".join(f"tx-{i},{pdq[i]},spam\n" for i in range(3)))
    cleared = tmp_path / "cleared.csv"
    cleared.write_text(f"id,hash\nok-0,{pdq[0]}\n")
    index_import("partner", partner, db=db, action="deny")
    index_import("cleared", cleared, db=db, action="allow")
    decisions = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        extra = ("--engine", "ray", "--address", cluster) if engine == "ray" else ()
        p = cli(
            "scan",
            tmp_path / "imgs",
            "--out",
            out,
            "--pack",
            "platform",
            "--dry-run",
            "--db",
            db,
            "--json",
            *extra,
        )
        stdout, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert json.loads(stdout)["by_outcome"]["deny"] == 2
        rows = by_path_without_ages([json.loads(line) for line in out.read_text().splitlines()])
        decisions[engine] = {
            Path(k).name: (
                r["decision"]["outcome"],
                r["decision"]["matched_rules"],
                r["decision"]["reasons"],
            )
            for k, r in rows.items()
        }
    assert decisions["ray"] == decisions["local"]
    denied = {n for n, d in decisions["ray"].items() if d[0] == "deny"}
    assert denied == {images[1].name, images[2].name}  # images[0]: the negative bank cancels
    reasons = " ".join(decisions["ray"][images[1].name][2])
    assert "bank partner" in reasons and "partner item tx-1" in reasons
