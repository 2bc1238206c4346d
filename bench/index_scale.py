"""Benchmark of hash banks at platform scale: import, cold load, radius-31 queries.

    python bench/index_scale.py                          # 1M PDQ codes (make bench)
    python bench/index_scale.py --sizes 1000000,10000000  # the full run

For each size N the script makes N random PDQ codes (256 bits) with planted clusters
of near-duplicates, writes them as a CSV hash list (id, hash, quality), and measures:

1. ``index_import`` of the CSV into a fresh database (hashes/s; building the set's
   memory-mapped cache is timed apart);
2. a cold load in a new process (``detect.index_cache.load_set``: maps the cache) and
   its resident memory after the queries, beside the bytes of codes + multi-index
   tables;
3. radius-31 query latency (p50 / p99 over Q queries, half planted near-duplicates,
   half random) of provkit's multi-index search, beside FAISS
   ``IndexBinaryMultiHash(256, nhash=16, b=16)`` with ``nflip=1`` (what HMA uses) and
   ``IndexBinaryFlat`` on the same codes in the same run, all single-threaded;
4. recall of each against a brute-force numpy scan (every code within 31 bits).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RADIUS = 31


def make_codes(n: int, seed: int = 0, clusters: int = 1000, per_cluster: int = 5):
    """n random codes, of which clusters * per_cluster are near-duplicates (<= 24 bits)
    of ``clusters`` base codes; returns (codes n x 32 uint8, base codes)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    clusters = min(clusters, n // (per_cluster + 1))
    at = rng.choice(n, clusters * (per_cluster + 1), replace=False).reshape(clusters, -1)
    bases = codes[at[:, 0]].copy()
    for c in range(clusters):
        for j in at[c, 1:]:
            v = bases[c].copy()
            bits = rng.choice(256, int(rng.integers(1, 25)), replace=False)
            np.bitwise_xor.at(v, bits // 8, (1 << (bits % 8)).astype(np.uint8))
            codes[j] = v
    return codes, bases


def make_queries(bases: np.ndarray, q: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    planted = bases[rng.choice(len(bases), q // 2, replace=len(bases) < q // 2)].copy()
    for v in planted:
        bits = rng.choice(256, int(rng.integers(0, 16)), replace=False)
        np.bitwise_xor.at(v, bits // 8, (1 << (bits % 8)).astype(np.uint8))
    randoms = rng.integers(0, 256, (q - q // 2, 32), dtype=np.uint8)
    return np.concatenate([planted, randoms])


def write_csv(path: Path, codes: np.ndarray) -> None:
    step = 500_000
    with open(path, "w", encoding="ascii") as f:
        f.write("id,hash,quality\n")
        for lo in range(0, len(codes), step):
            hexed = codes[lo : lo + step].tobytes().hex()
            f.writelines(
                f"te-{lo + i},{hexed[64 * i : 64 * i + 64]},90\n"
                for i in range(min(step, len(codes) - lo))
            )


def brute_force(codes: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    words = np.ascontiguousarray(codes.view(np.uint64).T)  # 4 x n, one word per row
    out = []
    for q in queries.view(np.uint64):
        d = np.bitwise_count(words[0] ^ q[0]).astype(np.uint16)
        for j in range(1, 4):
            d += np.bitwise_count(words[j] ^ q[j])
        out.append(set(np.flatnonzero(d <= RADIUS).tolist()))
    return out


def pct(times, p) -> float:
    return float(np.percentile(times, p)) * 1000


_CHILD = r"""
import json, os, sys, time
import numpy as np
t0 = time.perf_counter()
from provkit.detect.index import ReferenceIndex
from provkit.detect.index_cache import load_set
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) * 1024
t_import = time.perf_counter() - t0
idx = ReferenceIndex(sys.argv[1])
base = rss()
t = time.perf_counter()
s = load_set(idx.db, 'bank')
load = time.perf_counter() - t
queries = np.load(sys.argv[2])
codes = s.pdq.codes
times, found = [], []
for q in queries.view(np.uint64):
    t = time.perf_counter()
    pos, d = codes.within(q, 31)
    times.append(time.perf_counter() - t)
    found.append(pos.tolist())
mih = codes._mih
table_bytes = codes.words.nbytes + (sum(a.nbytes for a in mih if a is not None) if mih else 0)
print(json.dumps({"load_s": load, "import_s": t_import, "times": times, "found": found,
                  "rss_delta": rss() - base, "table_bytes": table_bytes,
                  "first_query_ms": times[0] * 1000}))
"""


def run_size(n: int, q: int, work: Path, faiss_flat_max: int, faiss_max: int) -> dict:
    print(f"\n== {n:,} PDQ codes, {q} queries (radius {RADIUS})", flush=True)
    t = time.perf_counter()
    codes, bases = make_codes(n)
    queries = make_queries(bases, q)
    csv_path = work / f"bank{n}.csv"
    write_csv(csv_path, codes)
    np.save(work / f"queries{n}.npy", queries)
    print(
        f"  made codes and a {csv_path.stat().st_size / 2**20:.0f} MiB CSV "
        f"in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    out: dict = {"n": n, "queries": q}

    # 1. import
    from provkit.detect.index_bank import index_import

    db = work / f"bank{n}.db"
    cpu = time.process_time()
    r = index_import("bank", csv_path, db=db)
    cpu = time.process_time() - cpu
    out["import_cpu_s"] = cpu
    assert r.imported == n, r.to_json()
    out["import_rows_s"] = r.rows_seconds
    out["import_rate"] = n / r.rows_seconds
    out["cache_build_s"] = r.seconds - r.rows_seconds
    print(
        f"  import: {n / r.rows_seconds:,.0f} hashes/s ({r.rows_seconds:.1f}s), then "
        f"cache built in {r.seconds - r.rows_seconds:.1f}s; {n / cpu:,.0f} hashes per CPU "
        f"second over both (this process's CPU time: {cpu:.1f}s; the rest was waiting "
        "for a core or the disk)",
        flush=True,
    )
    csv_path.unlink()

    # 2-3. cold load and provkit queries, in a fresh process
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROVKIT_SEARCH_THREADS": "1"}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(db), str(work / f"queries{n}.npy")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    res = json.loads(child.stdout)
    print(
        f"  cold load {res['load_s'] * 1000:.0f} ms; provkit radius-{RADIUS} p50 "
        f"{pct(res['times'][1:], 50):.2f} ms; now the brute-force truth",
        flush=True,
    )
    truth = brute_force(codes, queries)
    # ids in the set follow file order; positions in the loaded set are file rows
    provkit_found = [set(f) for f in res["found"]]
    out["load_s"] = res["load_s"]
    out["provkit_p50_ms"], out["provkit_p99_ms"] = (
        pct(res["times"][1:], 50),
        pct(res["times"][1:], 99),
    )
    out["provkit_first_query_ms"] = res["first_query_ms"]
    out["provkit_recall"] = recall(provkit_found, truth)
    out["provkit_exact"] = provkit_found == truth
    out["rss_delta_mb"] = res["rss_delta"] / 2**20
    out["table_mb"] = res["table_bytes"] / 2**20

    if n > faiss_max:
        print(f"  FAISS skipped above {faiss_max:,} codes (--faiss-max)")
        report(out)
        return out
    # FAISS on the same codes, in this process
    import faiss

    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    mh = faiss.IndexBinaryMultiHash(256, 16, 16)
    mh.nflip = RADIUS // 16
    mh.add(codes)
    out["faiss_mh_build_s"] = time.perf_counter() - t
    out["faiss_mh_p50_ms"], out["faiss_mh_p99_ms"], mh_found = faiss_range(mh, queries)
    out["faiss_mh_recall"] = recall(mh_found, truth)
    del mh
    if n <= faiss_flat_max:
        flat = faiss.IndexBinaryFlat(256)
        flat.add(codes)
        out["faiss_flat_p50_ms"], out["faiss_flat_p99_ms"], fl_found = faiss_range(flat, queries)
        out["faiss_flat_recall"] = recall(fl_found, truth)
        del flat
    report(out)
    return out


def faiss_range(index, queries):
    times, found = [], []
    for qv in queries:
        t = time.perf_counter()
        lims, _, labels = index.range_search(qv[None, :], RADIUS + 1)  # FAISS: d < radius
        times.append(time.perf_counter() - t)
        found.append(set(labels[lims[0] : lims[1]].tolist()))
    return pct(times[1:], 50), pct(times[1:], 99), found


def recall(found: list[set], truth: list[set]) -> float:
    want = sum(len(t) for t in truth)
    got = sum(len(f & t) for f, t in zip(found, truth))
    return got / want if want else 1.0


def report(o: dict) -> None:
    print(
        f"  cold load (new process, mapped cache): {o['load_s'] * 1000:.0f} ms; resident "
        f"after {o['queries']} queries +{o['rss_delta_mb']:.0f} MiB; codes + multi-index "
        f"tables {o['table_mb']:.0f} MiB"
    )
    print(f"  radius-{RADIUS} query, one thread   p50 ms   p99 ms   recall vs brute force")
    print(
        f"    provkit multi-index      {o['provkit_p50_ms']:7.2f}  {o['provkit_p99_ms']:7.2f}"
        f"   {o['provkit_recall']:.4f} (identical sets: {o['provkit_exact']}; first query "
        f"{o['provkit_first_query_ms']:.1f} ms)"
    )
    if "faiss_mh_p50_ms" not in o:
        return
    print(
        f"    FAISS MultiHash(16x16)   {o['faiss_mh_p50_ms']:7.2f}  {o['faiss_mh_p99_ms']:7.2f}"
        f"   {o['faiss_mh_recall']:.4f} (built in {o['faiss_mh_build_s']:.1f}s)"
    )
    if "faiss_flat_p50_ms" in o:
        print(
            f"    FAISS Flat               {o['faiss_flat_p50_ms']:7.2f}  "
            f"{o['faiss_flat_p99_ms']:7.2f}   {o['faiss_flat_recall']:.4f}"
        )
    print(
        f"  ratios: provkit / MultiHash p50 = "
        f"{o['provkit_p50_ms'] / max(o['faiss_mh_p50_ms'], 1e-9):.2f}"
        + (
            f", provkit / Flat p50 = {o['provkit_p50_ms'] / max(o['faiss_flat_p50_ms'], 1e-9):.3f}"
            if "faiss_flat_p50_ms" in o
            else ""
        ),
        flush=True,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes", default="1000000", help="comma-separated numbers of PDQ codes (default 1000000)"
    )
    ap.add_argument("--queries", type=int, default=200, help="queries per size (default 200)")
    ap.add_argument(
        "--flat-max",
        type=int,
        default=10_000_000,
        help="skip FAISS IndexBinaryFlat above this size",
    )
    ap.add_argument(
        "--faiss-max",
        type=int,
        default=10_000_000,
        help="skip FAISS altogether above this size (its MultiHash build is slow)",
    )
    ap.add_argument("--work", help="folder for the databases (default: a temporary one)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        results = [
            run_size(n, args.queries, Path(tmp), args.flat_max, args.faiss_max) for n in sizes
        ]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
