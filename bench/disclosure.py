"""What disclosing costs at sealing, and what the public detection answer costs.

    python bench/disclosure.py [--count 8] [--size 512]

In one scratch workspace, alternately, `--count` times each, the built-in generator
makes and seals one image:

- baseline: sealed as always (watermark, C2PA, ledger);
- provkit:  sealed with `--disclose eu,us-ca,cn --visible-label` (the SB 942 assertion,
  the TC260 XMP block with its pixel binding, both visible labels).

It prints the median seconds per image of each and the ratio (goal: <= 1.25). Then, on a
stripped and resized copy, the median time of the public detection answer
(`provenance.public.public_detect`, recovery through the watermark) beside a plain
`provkit verify` of the same copy (the same recovery without the disclosure reading).
Alternating the sides makes machine load hit both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.25


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=8, help="images per side (default 8)")
    parser.add_argument("--size", type=int, default=512, help="image side in px (default 512)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="provkit-bench-") as tmp:
        os.environ["PROVKIT_HOME"] = tmp
        os.environ["PROVKIT_DEV_IDENTITY"] = "1"
        from PIL import Image
        from provkit.generate import Generator
        from provkit.provenance.public import public_detect
        from provkit.provenance.verify import verify_file

        size = (args.size, args.size)
        plain = Generator("builtin", out_dir=Path(tmp) / "plain")
        disclosed = Generator(
            "builtin",
            out_dir=Path(tmp) / "disclosed",
            disclose="eu,us-ca,cn",
            provider="Bench Studio",
            cn_producer="001BENCH",
            visible_label=True,
        )
        plain.generate("warm up", n=1, seed=0, size=size)
        times = {"baseline": [], "provkit": []}
        last = None
        for i in range(args.count):
            for name, gen in (("baseline", plain), ("provkit", disclosed)):
                t = time.perf_counter()
                (sealed,) = gen.generate("a harbour at dawn", n=1, seed=100 + i, size=size)
                times[name].append(time.perf_counter() - t)
                if name == "provkit":
                    last = Path(sealed.path)
        base, ours = (statistics.median(times[k]) for k in ("baseline", "provkit"))
        print(f"seal one {args.size}x{args.size} image, median of {args.count}:")
        print(f"  baseline (no disclosure)          {base * 1000:8.1f} ms")
        print(f"  provkit  (--disclose eu,us-ca,cn)  {ours * 1000:8.1f} ms")
        print(f"  ratio {ours / base:.2f} (goal <= {GOAL})")

        copy = Path(tmp) / "stripped.jpg"
        img = Image.open(last).convert("RGB")
        img.resize((img.width * 3 // 4, img.height * 3 // 4)).save(copy, quality=80)
        answer = public_detect(copy)
        assert answer.id and answer.provider == "Bench Studio", answer
        spans = {"verify": [], "public": []}
        for _ in range(args.count):
            t = time.perf_counter()
            verify_file(copy)
            spans["verify"].append(time.perf_counter() - t)
            t = time.perf_counter()
            public_detect(copy)
            spans["public"].append(time.perf_counter() - t)
        v, p = (statistics.median(spans[k]) for k in ("verify", "public"))
        print("answer for a stripped, resized copy (recovered through the watermark):")
        print(f"  baseline (provkit verify)         {v * 1000:8.1f} ms")
        print(f"  provkit  (public detection)       {p * 1000:8.1f} ms")
        print(f"  ratio {p / v:.2f}")
        return 0 if ours / base <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
