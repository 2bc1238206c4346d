"""Benchmark of batch scans: the local engine vs the Ray engine on this machine.

    python bench/scan.py                 # 48 images (make bench)
    python bench/scan.py --images 500    # the full run

Makes N JPEGs (crops of real photographs from scikit-image and scikit-learn, 512 px),
a workspace with a reference set of 20 of them, then scans the folder in the same run:

1. the local engine (``detect.scan.scan``: worker processes, one per core up to 4);
2. the Ray engine (``detect.scan_ray.scan_ray``) on a local Ray instance already
   running (started before timing, as a cluster would be), with one actor per core;
3. the Ray engine again with the instance started and stopped inside the timing.

It prints images/s for each and the Ray overhead ratio (Ray time / local time; the
goal is <= 1.3 on one node), and checks that both engines wrote the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def photographs() -> list[np.ndarray]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    out = [getattr(data, n)() for n in ("astronaut", "chelsea", "coffee", "rocket")]
    out += list(load_sample_images().images)
    return [np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3] for a in out]


def make_images(folder: Path, n: int, size: int = 512) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photos = photographs()
    paths = []
    for i in range(n):
        a = photos[i % len(photos)]
        h, w = a.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 0.9))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        img = Image.fromarray(a[y : y + side, x : x + side]).resize((size, size))
        p = folder / f"img{i:04d}.jpg"
        img.save(p, quality=int(rng.integers(70, 95)))
        paths.append(p)
    return paths


def rows(path: Path) -> dict:
    """Rows by path, without each match's age (it counts to the moment of the scan)."""
    out = {r["path"]: r for r in map(json.loads, path.read_text().splitlines()) if r}
    for r in out.values():
        for d in (r.get("asset") or {}).get("duplicates") or []:
            d.pop("age_days", None)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=48, help="images to scan (default 48)")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes and Ray actors (default: cores, at most 4)",
    )
    args = ap.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("Ray is not installed (pip install 'provkit[scale]'); nothing to compare")
        return 0
    from provkit.detect.index import ReferenceIndex
    from provkit.detect.scan import scan
    from provkit.detect.scan_ray import scan_ray, start_ray

    workers = args.workers or min(4, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        images = make_images(d / "imgs", args.images)
        db = d / "provkit.db"
        ReferenceIndex(db).add("seen", images[:20], crops=True)
        print(
            f"{args.images} JPEGs (512x512) and a 20-image reference set made in "
            f"{time.perf_counter() - t:.1f}s; {workers} workers",
            flush=True,
        )

        local = scan(d / "imgs", d / "local.jsonl", db=str(db), workers=workers)
        print(
            f"  local engine          {local.seconds:7.1f}s  {local.rate:6.1f} images/s", flush=True
        )

        t = time.perf_counter()
        start_ray(num_cpus=workers)
        start_s = time.perf_counter() - t
        try:
            warm = scan_ray(d / "imgs", d / "ray.jsonl", db=str(db), workers=workers)
        finally:
            ray.shutdown()
        print(
            f"  Ray, running instance {warm.seconds:7.1f}s  {warm.rate:6.1f} images/s  "
            f"(instance started in {start_s:.1f}s, not counted)",
            flush=True,
        )

        t = time.perf_counter()
        scan_ray(d / "imgs", d / "ray_cold.jsonl", db=str(db), workers=workers)
        cold_s = time.perf_counter() - t
        print(
            f"  Ray, start + stop     {cold_s:7.1f}s  {args.images / cold_s:6.1f} images/s",
            flush=True,
        )

        same = rows(d / "local.jsonl") == rows(d / "ray.jsonl") == rows(d / "ray_cold.jsonl")
        print(
            f"  Ray overhead ratio (Ray time / local time): running instance "
            f"{warm.seconds / local.seconds:.2f}, with start/stop {cold_s / local.seconds:.2f}"
            f" (goal <= 1.3); same rows from both engines: {same}"
        )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
