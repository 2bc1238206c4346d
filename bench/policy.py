"""Policy engine and audit log throughput, each beside a baseline run in the same process.

1. Decisions per second for a 20-rule pack (``policies.evaluate``) against evaluating the
   same 20 CEL expressions directly with the ``cel`` library (one context conversion, then
   each compiled program): the engine's overhead ratio. Goal: <= 50 us per decision. Also
   the engine's rule-by-rule evaluation on the full context (what a decision falls back to
   when a rule fails), on the same contexts.
2. Chained audit appends per second in batches (``AuditLog.append_many``) against plain
   sqlite-utils ``insert_all`` of the same rows without the chain. Goal: >= 5,000/s.

Usage: python bench/policy.py [--decisions 3000] [--rows 20000] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import cel
import sqlite_utils
from provkit.policies.audit import AuditLog
from provkit.policies.engine import Decision, _combine, _fast_plan, _per_rule, evaluate
from provkit.policies.pack import load_pack

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")

RULES = [
    ("invalid", 'asset.c2pa.state == "invalid"', "deny"),
    ("declared-ai", "asset.c2pa.digital_source_type in params.ai_types", "label"),
    ("meta-ai", "asset.metadata.digital_source_type in params.ai_types", "label"),
    ("watermark", "asset.watermark.found", "label"),
    ("third-party-mark", "asset.watermark.third_party != null", "label"),
    ("score-high", "asset.score != null && asset.score >= params.threshold", "review"),
    (
        "score-mid",
        ("asset.score != null && asset.score >= 0.5 && asset.score < params.threshold"),
        "label",
    ),
    ("no-provenance", '!(asset.c2pa.state in ["valid", "trusted", "recovered"])', "review"),
    ("verdict-ai", 'asset.verdict == "ai-generated"', "label"),
    ("verdict-edit", 'asset.verdict == "ai-edited"', "label"),
    (
        "protected",
        'asset.duplicates.exists(d, d.protected && d.kind == "pdq" && d.distance <= 31)',
        "deny",
    ),
    (
        "recycled",
        (
            'asset.duplicates.exists(d, d.set == "archive" && d.age_days != null '
            "&& d.age_days > params.days)"
        ),
        "review",
    ),
    ("many-dupes", "size(asset.duplicates) > 5", "review"),
    (
        "signer-org",
        (
            "asset.c2pa.signer != null && has(asset.c2pa.signer.org) "
            '&& asset.c2pa.signer.org == "Blocked Org"'
        ),
        "deny",
    ),
    ("no-train", '"cawg.ai_generative_training" in asset.c2pa.training_mining', "label"),
    ("actor-guest", 'actor.role == "guest"', "review"),
    ("actor-org", "actor.org in params.blocked_orgs", "deny"),
    (
        "generator",
        'asset.metadata.generator != null && asset.metadata.generator.startsWith("SD")',
        "label",
    ),
    ("png-path", 'asset.path.endsWith(".png") && asset.c2pa.state == "absent"', "review"),
    ("people-in-title", 'matches_terms(asset.path, "people")', "deny"),
]
PARAMS = {
    "ai_types": ["trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"],
    "threshold": 0.8,
    "days": 30,
    "blocked_orgs": ["Spam Inc", "Fake News Ltd"],
}


def write_pack(folder: Path) -> Path:
    (folder / "people.txt").write_text("Taylor Swift\nBarack Obama\nAda Lovelace\n")
    lines = [
        "pack: bench",
        "version: '1'",
        "default: allow",
        "terms:",
        "  people: people.txt",
        "params:",
    ]
    lines += [
        f"  {k}: {v!r}" if not isinstance(v, list) else f"  {k}: {v}" for k, v in PARAMS.items()
    ]
    lines.append("rules:")
    for rid, when, outcome in RULES:
        lines += [
            f"  - id: {rid}",
            "    points: [ingest]",
            f"    when: '{when}'",
            f"    outcome: {outcome}",
            f"    reason: {rid} matched",
        ]
        if outcome == "label":
            lines.append(f"    label: {rid}")
    path = folder / "pack.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_contexts(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    states = ["absent", "valid", "trusted", "invalid", "recovered"]
    types = [None, "digitalCapture", "trainedAlgorithmicMedia"]
    out = []
    for i in range(n):
        dupes = [
            {
                "set": rng.choice(["archive", "stock"]),
                "protected": rng.random() < 0.3,
                "kind": "pdq",
                "distance": rng.randint(0, 128),
                "age_days": rng.randint(0, 900),
                "label": None,
                "item": f"item-{rng.randint(0, 9999)}",
            }
            for _ in range(rng.randint(0, 3))
        ]
        out.append(
            {
                "actor": {
                    "id": f"user-{i % 50}",
                    "role": rng.choice(["editor", "guest"]),
                    "org": "Newsroom",
                },
                "asset": {
                    "path": f"/uploads/{i}.{rng.choice(['jpg', 'png'])}",
                    "sha256": f"{i:064x}",
                    "asset_id": None,
                    "verdict": rng.choice(["unknown", "ai-generated", "ai-edited"]),
                    "score": rng.choice([None, rng.random()]),
                    "c2pa": {
                        "state": rng.choice(states),
                        "digital_source_type": rng.choice(types),
                        "signer": None,
                        "training_mining": {},
                    },
                    "watermark": {
                        "found": rng.random() < 0.2,
                        "scheme": None,
                        "payload": None,
                        "third_party": None,
                    },
                    "metadata": {"digital_source_type": rng.choice(types), "generator": None},
                    "duplicates": dupes,
                },
                "now": "2026-06-01T12:00:00+00:00",
            }
        )
    return out


def bench_decisions(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pack = load_pack(write_pack(Path(tmp)))
    contexts = make_contexts(n)
    assert len(pack.by_point["ingest"]) == 20
    programs = [cel.compile(when) for _, when, _ in RULES]  # the same expressions, direct
    functions = pack.functions

    def direct(ctx):
        variables = dict(ctx)
        variables["params"] = PARAMS
        c = cel.Context(variables=variables, functions=functions)
        hits = []
        for program in programs:
            try:
                hits.append(program.execute(c))
            except Exception as e:  # noqa: BLE001
                hits.append(e)
        return hits

    def per_rule(ctx):
        return _combine(pack, "ingest", _per_rule(pack, "ingest", ctx))

    for ctx in contexts[:200]:  # warm up and check all three agree on what matched
        engine = evaluate(pack, "ingest", ctx)
        raw = direct(ctx)
        matched = {RULES[i][0] for i, v in enumerate(raw) if v is not False}
        assert matched == set(engine.matched_rules), (matched, engine.matched_rules)
        assert engine == per_rule(ctx)
    plan = _fast_plan(pack, "ingest")
    fast_share = sum(plan.run(pack, "ingest", ctx) is not None for ctx in contexts) / n
    # the same contexts with a score of the wrong type: two rules fail closed
    failing = [{**ctx, "asset": {**ctx["asset"], "score": "high"}} for ctx in contexts]
    assert all(
        set(evaluate(pack, "ingest", c).failed_rules) == {"score-high", "score-mid"}
        for c in failing[:50]
    )

    def once(fn, inputs=contexts):
        t0 = time.process_time()  # CPU time: other processes on a shared machine don't count
        for ctx in inputs:
            fn(ctx)
        return (time.process_time() - t0) / len(inputs)

    def convert_only(ctx):
        variables = dict(ctx)
        variables["params"] = PARAMS
        cel.Context(variables=variables, functions=functions)

    newsroom = load_pack("newsroom")
    base = ours = slow = failed = floor = shipped = float("inf")
    for _ in range(5):  # alternate, keep the best of each
        base = min(base, once(direct))
        ours = min(ours, once(lambda ctx: evaluate(pack, "ingest", ctx)))
        slow = min(slow, once(per_rule))
        failed = min(failed, once(lambda ctx: evaluate(pack, "ingest", ctx), failing))
        floor = min(floor, once(convert_only))
        shipped = min(shipped, once(lambda ctx: evaluate(newsroom, "publish", ctx)))
    print(f"decisions, 20-rule pack, {n} contexts (CPU time, best of 5, alternating):")
    print(f"  direct cel (same expressions) {base * 1e6:8.1f} us/decision  {1 / base:10,.0f}/s")
    print(
        f"  provkit evaluate()            {ours * 1e6:8.1f} us/decision  {1 / ours:10,.0f}/s"
        f"   ({fast_share:.0%} decided on the fast path)"
    )
    print(
        f"  overhead ratio provkit/direct {ours / base:8.2f}x   goal <= 50 us: "
        f"{'met' if ours <= 50e-6 else 'MISSED'}"
    )
    print(
        f"  provkit rule by rule on the full context only  {slow * 1e6:8.1f} us "
        f"({slow / base:.2f}x direct)"
    )
    print(
        f"  provkit evaluate(), two rules failing in every decision "
        f"{failed * 1e6:8.1f} us ({failed / base:.2f}x direct)"
    )
    print(
        f"  the library only converting the full context to CEL values (no rule run): "
        f"{floor * 1e6:.1f} us"
    )
    print(f"  shipped newsroom pack (5 rules) at publish: {shipped * 1e6:.1f} us/decision")


def bench_audit(rows: int, batch: int) -> None:
    decision = Decision(
        "review",
        ("may be AI-generated",),
        ("score-high", "no-provenance"),
        ("score-high matched", "no-provenance matched"),
        "bench",
        "ab" * 32,
        "ingest",
    )
    entries = [(decision, f"user-{i % 50}", f"{i:064x}") for i in range(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "chain.db")
        t0 = time.perf_counter()
        for i in range(0, rows, batch):
            log.append_many(entries[i : i + batch])
        chained = time.perf_counter() - t0
        assert log.verify().ok and log.count() == rows
        t0 = time.perf_counter()
        log.verify()
        verify = time.perf_counter() - t0

        singles = min(rows, 2000)
        single_log = AuditLog(Path(tmp) / "single.db")
        t0 = time.perf_counter()
        for e in entries[:singles]:
            single_log.append(e[0], actor=e[1], subject=e[2])
        single = time.perf_counter() - t0

        plain_db = sqlite_utils.Database(Path(tmp) / "plain.db")
        plain_db.conn.execute("PRAGMA journal_mode = WAL")
        plain_db.conn.execute("PRAGMA synchronous = NORMAL")

        def plain_rows():
            for i, (d, actor, subject) in enumerate(entries):
                yield {
                    "seq": i + 1,
                    "time": "2026-06-01T12:00:00.000000+00:00",
                    "point": d.point,
                    "actor": actor,
                    "subject": subject,
                    "pack": d.pack,
                    "pack_version": d.pack_version,
                    "matched_rules": json.dumps(list(d.matched_rules)),
                    "outcome": d.outcome,
                    "labels": json.dumps(list(d.labels)),
                    "reasons": json.dumps(list(d.reasons)),
                }

        t0 = time.perf_counter()
        plain_db["audit"].insert_all(plain_rows(), pk="seq", batch_size=batch)
        plain = time.perf_counter() - t0
    print(f"audit appends, {rows} rows in batches of {batch} (wall time):")
    print(f"  plain sqlite-utils insert_all (no chain) {rows / plain:10,.0f} rows/s")
    print(
        f"  provkit chained append_many              {rows / chained:10,.0f} rows/s   "
        f"ratio {plain / chained:5.2f}x of baseline   goal >= 5,000/s: "
        f"{'met' if rows / chained >= 5000 else 'MISSED'}"
    )
    print(f"  provkit chained append, 1 per transaction {singles / single:9,.0f} rows/s")
    print(f"  verify the chain                          {rows / verify:10,.0f} rows/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    bench_decisions(args.decisions)
    bench_audit(args.rows, args.batch)


if __name__ == "__main__":
    main()
