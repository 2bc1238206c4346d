"""``make fuzz``: the long fuzz run, split over ``$PROVKIT_FUZZ_JOBS`` processes.

Each shard is the fuzz test with its own hypothesis seed and a share of
``$PROVKIT_FUZZ_CASES`` (default 10,000); the shards' summaries are merged and printed
(cases, uncaught exceptions, hangs over 10 s, peak memory per case, wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=int(os.environ.get("PROVKIT_FUZZ_CASES", "10000")))
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("PROVKIT_FUZZ_JOBS", "2")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("PROVKIT_FUZZ_SEED", "1400")))
    ap.add_argument(
        "--out", type=Path, default=Path(os.environ.get("PROVKIT_FUZZ_OUT", ROOT / "fuzz-out"))
    )
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    procs = []
    for job in range(args.jobs):
        share = args.cases // args.jobs + (job < args.cases % args.jobs)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PROVKIT_FUZZ_CASES": str(share),
            "PROVKIT_FUZZ_SEED": str(args.seed + job),
            "PROVKIT_FUZZ_OUT": str(args.out / f"shard-{job}"),
        }
        env.pop("PROVKIT_HOME", None)
        log = open(args.out / f"shard-{job}.log", "w")  # noqa: SIM115
        procs.append(
            (
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "pytest",
                        "-q",
                        "-s",
                        "-p",
                        "no:cacheprovider",
                        "tests/fuzz/test_fuzz.py",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=log,
                ),
                log,
            )
        )
    for proc, log in procs:
        proc.wait()
        log.close()
    merged = {
        "cases": 0,
        "uncaught_exceptions": 0,
        "hangs_over_10s": 0,
        "over_memory": 0,
        "worker_deaths": 0,
        "peak_memory_mb_max": 0.0,
        "slowest_case_s": 0.0,
        "slowest_case_cpu_s": 0.0,
        "uncaught": [],
        "hangs": [],
    }
    for job in range(args.jobs):
        path = args.out / f"shard-{job}" / "summary.json"
        if not path.exists():
            print(f"shard {job} wrote no summary; see {args.out / f'shard-{job}.log'}")
            return 1
        s = json.loads(path.read_text())
        for key in (
            "cases",
            "uncaught_exceptions",
            "hangs_over_10s",
            "over_memory",
            "worker_deaths",
        ):
            merged[key] += s[key]
        merged["peak_memory_mb_max"] = max(merged["peak_memory_mb_max"], s["peak_memory_mb_max"])
        merged["slowest_case_s"] = max(merged["slowest_case_s"], s["slowest_case_s"])
        merged["slowest_case_cpu_s"] = max(merged["slowest_case_cpu_s"], s["slowest_case_cpu_s"])
        merged["uncaught"] += s["uncaught"]
        merged["hangs"] += s["hangs"]
    merged["wall_s"] = round(time.perf_counter() - start, 1)
    merged["command"] = (
        f"PROVKIT_FUZZ_CASES={args.cases} PROVKIT_FUZZ_JOBS={args.jobs} "
        f"PROVKIT_FUZZ_SEED={args.seed} make fuzz"
    )
    (args.out / "summary.json").write_text(json.dumps(merged, indent=2))
    print(json.dumps({k: v for k, v in merged.items() if not isinstance(v, list)}, indent=2))
    clean = not (
        merged["uncaught_exceptions"]
        or merged["hangs_over_10s"]
        or merged["over_memory"]
        or merged["worker_deaths"]
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
