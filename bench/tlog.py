"""The cost of the Merkle logs, each figure beside a baseline run in the same invocation.

1. Audit appends per second, one decision per transaction as ``decide`` writes them
   (with and without fsync) and in batches as ``decide_many`` writes them: the hash
   chain alone (the audit log before the Merkle log: ``merkle = False`` on the
   store) against chain + ``decisions`` leaf + stored tile hashes + a C2SP checkpoint
   signed with the log key, in the same transaction. Goal: ratio >= 0.8. Rounds of the
   two alternate so drift on a shared machine falls on both.
2. Proof time for a log of ``--leaves`` leaves (default ten million): the tile hashes are
   built synthetically (random 32-byte leaf hashes, the level-8 and level-16 nodes
   computed from them, streamed into the store's table), then inclusion and consistency
   proofs are read from the store for random positions and verified against the root.
   Baseline: recomputing the root from every leaf hash (what proving an entry costs
   without stored nodes). Goal: <= 5 ms per proof.

Usage: python bench/tlog.py [--appends 200] [--leaves 10000000] [--proofs 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")


def bench_appends(tmp: Path, n: int) -> None:
    os.environ["PROVKIT_HOME"] = str(tmp / "home")
    from provkit.policies.audit import SqliteAuditStore
    from provkit.provenance.core import note

    note.log_signer(create=True)
    decision = SimpleNamespace(
        point="publish",
        pack="newsroom",
        pack_version="1",
        matched_rules=["invalid"],
        outcome="deny",
        labels=["credentials broken"],
        reasons=["the credentials do not check out"],
    )
    print(
        "audit appends per second: the hash chain alone (baseline) | chain + Merkle leaf "
        "+ tiles + signed checkpoint | ratio (goal >= 0.8)"
    )
    for label, sync, batch, count in (
        ("one per transaction, synchronous=FULL", "FULL", 1, n),
        ("one per transaction, synchronous=OFF (no fsync: the CPU cost)", "OFF", 1, n * 4),
        ("batches of 100, synchronous=FULL", "FULL", 100, n * 20),
    ):
        stores = {}
        for name in ("chain", "merkle"):
            store = SqliteAuditStore(tmp / f"{name}-{sync}-{batch}.db")
            store.merkle = name == "merkle"
            store.db.conn.execute(f"PRAGMA synchronous = {sync}")
            store.append(decision, actor="bench", subject="warm")
            stores[name] = store
        spent = {"chain": 0.0, "merkle": 0.0}
        rounds = 10
        per = max(batch, count // rounds // batch * batch)
        for _ in range(rounds):  # alternate, so drift falls on both
            for name, store in stores.items():
                t = time.perf_counter()
                for i in range(0, per, batch):
                    store.append_many([(decision, "bench", f"s{i + j}") for j in range(batch)])
                spent[name] += time.perf_counter() - t
        total = rounds * per
        chain, merkle_rate = total / spent["chain"], total / spent["merkle"]
        print(f"  {label:<64} {chain:9.0f} | {merkle_rate:9.0f} | {merkle_rate / chain:5.2f}")
        assert stores["merkle"].verify().ok


def build_store(path: Path, leaves: int):
    """A ``decisions`` log of ``leaves`` random leaf hashes, written straight into the
    store's tables; returns (store, leaf hashes as one bytes object, build seconds,
    full-recompute seconds)."""
    from provkit.provenance.core import merkle, tlog

    store = tlog.SqliteTlogStore(path)
    conn = store.conn
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA journal_mode = OFF")
    blob = np.random.default_rng(1).bytes(32 * leaves)
    t0 = time.perf_counter()

    def level0():
        for i in range(leaves):
            yield (2, 0, i, blob[32 * i : 32 * i + 32])

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO tlog_hashes (log, level, idx, hash) VALUES (?, ?, ?, ?)", level0()
    )
    # the baseline: the root from every leaf hash, which also yields the level-8 nodes
    t1 = time.perf_counter()
    frontier, upper = [], []

    def done(level, index, digest):
        if level and level % tlog.TILE_HEIGHT == 0:
            upper.append((2, level // tlog.TILE_HEIGHT, index, digest))

    for i in range(leaves):
        merkle.frontier_push(frontier, blob[32 * i : 32 * i + 32], done, size=i)
    root = merkle.frontier_root(frontier)
    recompute = time.perf_counter() - t1
    conn.executemany("INSERT INTO tlog_hashes (log, level, idx, hash) VALUES (?, ?, ?, ?)", upper)
    conn.execute(
        "INSERT INTO tlog_state (log, size, frontier, checkpoint) VALUES (?, ?, ?, NULL)",
        [2, leaves, tlog._pack(frontier)],
    )
    conn.execute("COMMIT")
    assert store.root("decisions") == root
    return store, blob, time.perf_counter() - t0, recompute


def bench_proofs(tmp: Path, leaves: int, proofs: int) -> None:
    from provkit.provenance.core import merkle

    store, blob, built, recompute = build_store(tmp / "big.db", leaves)
    root = store.root("decisions")
    rnd = random.Random(2)
    inclusion, consistency, cpu = [], [], []
    for _ in range(proofs):
        index = rnd.randrange(leaves)
        t, c = time.perf_counter(), time.process_time()
        path = merkle.inclusion_proof(index, leaves, store.subtree("decisions"))
        inclusion.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        assert merkle.verify_inclusion(
            blob[32 * index : 32 * index + 32], index, leaves, path, root
        )
        old = rnd.randrange(1, leaves)
        t = time.perf_counter()
        proof = merkle.consistency_proof(old, leaves, store.subtree("decisions"))
        consistency.append(time.perf_counter() - t)
        if len(consistency) <= 3:  # the old root from the stored hashes, to check it
            old_root = store.subtree("decisions")(0, old)
            assert merkle.verify_consistency(old, leaves, old_root, root, proof)
    size_mb = (tmp / "big.db").stat().st_size / 1e6
    med_i, med_c = statistics.median(inclusion), statistics.median(consistency)
    p95_i = statistics.quantiles(inclusion, n=20)[-1]
    p95_c = statistics.quantiles(consistency, n=20)[-1]
    print(
        f"proofs in a log of {leaves:,} leaves (store built in {built:.0f} s, "
        f"{size_mb:,.0f} MB on disk):"
    )
    print(f"  recompute the root from every leaf (baseline) {recompute * 1e3:12.1f} ms")
    print(
        f"  inclusion proof from stored tiles, median    {med_i * 1e3:12.2f} ms  "
        f"(p95 {p95_i * 1e3:.2f}, max {max(inclusion) * 1e3:.2f} ms; goal <= 5 ms)"
    )
    print(
        f"  consistency proof from stored tiles, median  {med_c * 1e3:12.2f} ms  "
        f"(p95 {p95_c * 1e3:.2f}, max {max(consistency) * 1e3:.2f} ms)"
    )
    print(
        f"  inclusion proof, CPU time of this process    {statistics.median(cpu) * 1e3:12.2f} ms  "
        f"(p95 {statistics.quantiles(cpu, n=20)[-1] * 1e3:.2f} ms: wall time above this is "
        "waiting for a core)"
    )
    print(f"  ratio baseline / inclusion proof             {recompute / med_i:12.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--appends",
        type=int,
        default=200,
        help="audit appends with fsync per variant (default 200; x4 without fsync, x20 in batches)",
    )
    parser.add_argument(
        "--leaves",
        type=int,
        default=10_000_000,
        help="leaves in the synthetic log for the proof timing (default 10M)",
    )
    parser.add_argument("--proofs", type=int, default=200, help="proofs to time (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_appends(Path(tmp), args.appends)
        bench_proofs(Path(tmp), args.leaves, args.proofs)


if __name__ == "__main__":
    main()
