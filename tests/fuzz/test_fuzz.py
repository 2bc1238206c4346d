"""Mutation fuzzing of provkit's readers: verify, detect, watermark decode, fingerprint and
metadata on mutated signed and unsigned JPEG, PNG, WebP and TIFF files.

``make test`` runs :data:`DEFAULT_CASES` cases; ``make fuzz`` runs
``$PROVKIT_FUZZ_CASES`` (10,000 by default there) and writes the figures to
``$PROVKIT_FUZZ_OUT/summary.json``. Every case must end in a result or a ProvkitError
(never another exception), within 10 s, under 1.5 GB of resident memory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.fuzz import harness

DEFAULT_CASES = 30


def test_mutated_files_never_escape_as_exceptions_hangs_or_memory(tmp_path, workspace):
    cases = int(os.environ.get("PROVKIT_FUZZ_CASES", DEFAULT_CASES))
    out = Path(os.environ.get("PROVKIT_FUZZ_OUT", tmp_path / "fuzz-out"))
    db = workspace / "provkit.db"
    seeds = harness.make_seeds(tmp_path / "seeds", db)
    env = {"PROVKIT_HOME": str(workspace), "PROVKIT_FUZZ_DB": str(db)}
    if cases <= DEFAULT_CASES:
        env["PROVKIT_FUZZ_ALL"] = "1"
    runner = harness.Runner(env, out / "crashes", out / "summary.json")
    case_dir = tmp_path / "cases"
    case_dir.mkdir()
    counter = iter(range(10**9))

    @seed(int(os.environ.get("PROVKIT_FUZZ_SEED", "14")))
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(harness.case(seeds))
    def one(drawn):
        name, data, ops = drawn
        path = case_dir / f"case-{next(counter) % 64}{Path(name).suffix}"
        path.write_bytes(data)
        runner.run(path, name, ops)

    try:
        one()
    finally:
        runner.close()
    summary = runner.stats.to_json()
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, list)}))
    assert runner.stats.cases >= cases * 0.9
    assert runner.stats.clean, json.dumps(summary, indent=2)[:4000]
