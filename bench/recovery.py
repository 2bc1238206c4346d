"""Recovery relations: edited copies caught and honest copies identified, by the relation
check (reference rendition, registration, block comparison: provenance.relation) beside
the fingerprint thresholds recovery used before (PDQ <= 31 bits where both hashes are
usable, else pHash <= 10), on the same copies in the same run.

    python bench/recovery.py                  # 7 photographs + 4 generated pictures
    python bench/recovery.py --generated 8 --seeds 3

Sources: the scikit-image / scikit-learn photographs and pictures of the built-in
generator, each marked as at issue (the watermark is in the pixels the reference is made
from). Honest copies: tests/fixtures_recovery.HONEST (JPEG q60/q85, WebP q75, PNG,
resizes 0.4x-2x, crops up to 10% per edge, screenshot-like rescales with a border).
Edited copies: tests/fixtures_recovery.EDITS (captions, a caption band, clones, painted
blocks of 2.5-4%, objects pasted from another photograph), --seeds per source, saved as
JPEG q90 or PNG. Unrelated: every other source's picture, as a forged mark would carry it.

Rates: honest identified = same-pixels or transformed (the old rule: within the
fingerprint thresholds); edited caught = locally-edited or not-this-asset, never vouched
(the old rule: outside the thresholds); unrelated refused = not-this-asset (the old rule:
outside the thresholds, which verify then reported as "altered since issued").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image
from provkit.provenance.fingerprint import fingerprint_image
from provkit.provenance.relation import make_reference, relate

from tests.conftest import natural_photos
from tests.fixtures_recovery import EDITS, HONEST, edited_copy, encode

PROMPTS = [
    "portrait of a red fox in the snow",
    "a bowl of fruit",
    "a city street in the rain",
    "a lighthouse on a cliff at dawn",
    "mountains over a lake",
    "a red car",
    "a garden of tulips",
    "an old library",
]


class _Asset:
    """The fingerprint columns of a ledger row (what the old rule compared)."""

    def __init__(self, fp):
        self.phash = f"{fp.phash:016x}"
        self.pdq = fp.pdq.hex()
        self.pdq_quality = fp.pdq_quality


def old_match(image, asset) -> bool:
    from provkit.provenance.recovery import pixel_match

    return pixel_match(image, asset)["match"]


def sources(n_generated: int) -> list[tuple[str, Image.Image]]:
    from provkit.generate.backends.builtin import BuiltinBackend
    from provkit.provenance import watermark

    out = [(f"photo{i}", Image.fromarray(p)) for i, p in enumerate(natural_photos())]
    painter = BuiltinBackend()
    for i in range(n_generated):
        out.append((f"generated{i}", painter.paint(PROMPTS[i % len(PROMPTS)], 3 + i, 512, 384)))
    return [
        (name, watermark.embed(img, (i + 1).to_bytes(8, "big")))
        for i, (name, img) in enumerate(out)
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generated", type=int, default=4, help="pictures of the built-in generator")
    ap.add_argument("--seeds", type=int, default=2, help="edited copies per edit and source")
    ap.add_argument("--verbose", action="store_true", help="print every miss")
    args = ap.parse_args(argv)

    src = sources(args.generated)
    refs = [(name, img, make_reference(img), _Asset(fingerprint_image(img))) for name, img in src]
    tally = {k: Counter() for k in ("honest", "edited", "unrelated")}
    classes = {k: Counter() for k in tally}
    times, misses = [], []
    for i, (name, img, ref, asset) in enumerate(refs):
        other = refs[(i + 1) % len(refs)][1]
        cases = [("honest", t, fn(img)) for t, fn in HONEST.items()]
        cases += [
            ("edited", e, edited_copy(e, img, seed=100 * i + 10 * s + j, other=other))
            for j, e in enumerate(EDITS)
            for s in range(args.seeds)
        ]
        cases += [
            ("unrelated", f"as {refs[k][0]}", encode(refs[k][1], "JPEG", quality=85))
            for k in range(len(refs))
            if k != i
        ][:3]
        for kind, what, copy in cases:
            t = time.process_time()
            rel = relate(copy, ref)
            times.append(time.process_time() - t)
            old = old_match(copy, asset)
            classes[kind][rel.cls] += 1
            tally[kind]["n"] += 1
            if kind == "honest":
                tally[kind]["new"] += rel.identifies
                tally[kind]["old"] += old
                miss = not rel.identifies
            elif kind == "edited":
                tally[kind]["new"] += not rel.identifies
                tally[kind]["located"] += rel.cls == "locally-edited"
                tally[kind]["old"] += not old
                miss = rel.identifies
            else:
                tally[kind]["new"] += rel.cls == "not-this-asset"
                tally[kind]["old"] += not old
                miss = rel.cls != "not-this-asset"
            if miss:
                misses.append(
                    f"{kind:9s} {name:12s} {what:18s} -> {rel.cls} "
                    f"(changed {rel.changed}, correlation {rel.correlation})"
                )

    def rate(kind, key):
        t = tally[kind]
        return f"{t[key]:4d}/{t['n']:<4d} {100 * t[key] / max(t['n'], 1):5.1f}%"

    print(
        f"sources: {len(refs)} ({len(refs) - args.generated} photographs, "
        f"{args.generated} generated); reference rendition "
        f"{np.mean([len(r[2]) for r in refs]) / 1024:.1f} KB on average"
    )
    print(f"{'':34s} {'relation (provkit)':>20s}   {'fingerprint thresholds':>22s}")
    print(
        f"{'honest copies identified':34s} {rate('honest', 'new'):>20s}   "
        f"{rate('honest', 'old'):>22s}"
    )
    print(
        f"{'edited copies caught':34s} {rate('edited', 'new'):>20s}   {rate('edited', 'old'):>22s}"
    )
    print(
        f"{'  of which located (with region)':34s} {rate('edited', 'located'):>20s}   "
        f"{'(no region)':>22s}"
    )
    print(
        f"{'unrelated pictures refused':34s} {rate('unrelated', 'new'):>20s}   "
        f"{rate('unrelated', 'old'):>22s}"
    )
    for kind, counts in classes.items():
        print(f"  {kind:9s} classes: {dict(counts)}")
    print(
        f"relate: median {1000 * float(np.median(times)):.0f} ms, "
        f"p95 {1000 * float(np.percentile(times, 95)):.0f} ms CPU per copy"
    )
    if args.verbose:
        print("\n".join(misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
