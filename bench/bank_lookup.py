"""What the partner's ids and metadata cost a lookup: ``ReferenceBank.lookup`` answering
partner id and metadata with each match, beside the same lookup answering item ids
only (the baseline, measured in the same run on the same bank and queries).

    python bench/bank_lookup.py [--hashes 200000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hashes", type=int, default=200_000, help="PDQ hashes in the bank")
    ap.add_argument("--queries", type=int, default=2000, help="lookups per round (all hits)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    args = ap.parse_args()

    from provkit.detect.index_bank import index_import
    from provkit.detect.lookup import ReferenceBank

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        listed = Path(tmp) / "partner.csv"
        codes = [f"{rng.getrandbits(256):064x}" for _ in range(args.hashes)]
        with open(listed, "w") as f:
            f.write("id,hash,category,tags\n")
            f.writelines(f"tx-{i:08d},{c},cat{i % 7},t{i % 3}\n" for i, c in enumerate(codes))
        db = Path(tmp) / "provkit.db"
        index_import("partner", listed, db=db, action="deny")
        bank = ReferenceBank(str(db))
        bank.refresh()
        queries = [rng.choice(codes) for _ in range(args.queries)]

        def run(details: bool) -> float:
            t0 = time.perf_counter()
            for q in queries:
                bank.lookup("pdq", q, details=details)
            return (time.perf_counter() - t0) / len(queries)

        run(True)  # warm the block caches
        with_ids, bare = [], []
        for _ in range(args.rounds):
            bare.append(run(False))
            with_ids.append(run(True))
        a, b = statistics.median(with_ids), statistics.median(bare)
        print(
            f"bank of {args.hashes} PDQ hashes, {args.queries} lookups per round, "
            f"median of {args.rounds}"
        )
        print(f"lookup with partner id + metadata: {a * 1e6:8.1f} us")
        print(f"lookup with item ids only (base):  {b * 1e6:8.1f} us")
        print(f"ratio: {a / b:.2f}")


if __name__ == "__main__":
    main()
