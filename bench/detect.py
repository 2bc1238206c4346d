"""Benchmark of provkit's detection: fingerprints, Hamming search, near-duplicate quality.

    python bench/detect.py                 # default run, about two minutes on 2 cores
    python bench/detect.py --codes 200000  # smaller index; --images 400 for more JPEGs

Every figure is printed beside its baseline, measured in the same run on inputs this
script makes itself (real photographs from scikit-image and scikit-learn):

1. fingerprint throughput (pHash + dHash + PDQ + SHA-256, JPEG draft decoding,
   one process per core) vs an ``imagehash.phash`` loop over the same 3 MP JPEGs;
2. Hamming search over N codes, 64-bit and 256-bit, vs a loop over imagehash objects
   (timed on a subsample and scaled, as printed) and FAISS IndexBinaryFlat, with an
   exactness check against brute force;
3. near-duplicate recall and precision under JPEG, resize and crops, and on a set of
   distinct images, at the default thresholds;
4. CLIP embedding throughput, from bench/clip.py when it is present.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import shutil
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


def p50(times) -> float:
    return float(np.median(times)) * 1000


def timed(fn, queries):
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - t)
    return p50(times), results


# -- photographs ----------------------------------------------------------------------


def photographs() -> list[tuple[str, np.ndarray]]:
    """Real photographs (RGB uint8) that ship with scikit-image and scikit-learn."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    names = [
        "astronaut",
        "brick",
        "camera",
        "cell",
        "chelsea",
        "clock",
        "coffee",
        "coins",
        "grass",
        "gravel",
        "hubble_deep_field",
        "immunohistochemistry",
        "moon",
        "retina",
        "rocket",
    ]
    out = []
    for name in names:
        a = getattr(data, name)()
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        out.append((name, np.ascontiguousarray(a[..., :3])))
    sk = load_sample_images()
    for fname, img in zip(sk.filenames, sk.images):
        out.append((Path(fname).stem, img))
    return out


# -- 1. fingerprint throughput ----------------------------------------------------------


def bench_fingerprints(folder: Path, n: int, workers: int) -> None:
    import imagehash
    from provkit.detect.index import fingerprint_many

    photos = photographs()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"photo{i:03d}.jpg"
        paths.append(path)
        if i >= 24:  # the rest are copies (same bytes, own files): making JPEGs is slow
            shutil.copyfile(paths[i % 24], path)
            continue
        _, arr = photos[i % len(photos)]
        img = Image.fromarray(arr)
        if i >= len(photos):  # vary the copies: random crop and mirror
            w, h = img.size
            x, y = rng.integers(0, w // 8), rng.integers(0, h // 8)
            img = img.crop((x, y, x + w * 7 // 8, y + h * 7 // 8))
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img = img.resize((2048, 1536), Image.Resampling.BICUBIC)
        img.save(path, quality=90)
    t = time.perf_counter()
    for p in paths:
        imagehash.phash(Image.open(p))
    base = n / (time.perf_counter() - t)
    t = time.perf_counter()
    one = list(fingerprint_many(paths, crops=False, workers=1))
    single = n / (time.perf_counter() - t)
    t = time.perf_counter()
    results = list(fingerprint_many(paths, crops=False, workers=workers))
    ours = n / (time.perf_counter() - t)
    assert all(r[0] == "ok" for r in results + one)
    print(f"\n1. Fingerprints of {n} 3 MP JPEGs (load average before: {os.getloadavg()[0]:.1f})")
    print(f"   imagehash.phash loop (pHash only, full decode): {base:8.1f} img/s")
    print(
        f"   provkit pHash+dHash+PDQ+SHA-256, 1 process:     {single:8.1f} img/s ({single / base:.1f}x)"
    )
    print(f"   provkit, {workers} worker processes:               {ours:8.1f} img/s")
    print(f"   ratio: {ours / base:.1f}x (goal >= 8x)")


# -- 2. Hamming search ----------------------------------------------------------------


def flip_bits(codes: np.ndarray, nbits: int, rng) -> np.ndarray:
    """Copies of codes (rows of uint64 words) with ``nbits`` random bits flipped each."""
    out = codes.copy()
    words = out.shape[1]
    for row in out:
        for b in rng.choice(64 * words, nbits, replace=False):
            row[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def bench_hamming(n: int, queries: int, loop_sample: int) -> None:
    import faiss
    import imagehash
    from provkit.detect.hamming import HammingCodes

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(1)
    print(f"\n2. Hamming search over {n:,} codes, p50 of {queries} queries (ms)")
    for bits, radius, label in ((64, 10, "pHash/dHash"), (256, 31, "PDQ")):
        words = bits // 64
        codes = rng.integers(0, 2**64, (n, words), dtype=np.uint64, endpoint=False)
        picks = rng.choice(n, queries, replace=False)
        qs = flip_bits(codes[picks], radius // 2, rng)
        t = time.perf_counter()
        index = HammingCodes(codes.T)
        index._multi_index()
        build = time.perf_counter() - t
        fx = faiss.IndexBinaryFlat(bits)
        fx.add(codes.view(np.uint8).reshape(n, 8 * words))
        fq = qs.view(np.uint8).reshape(queries, 8 * words)

        ix, r, fx_, fq_ = index, radius, fx, fq
        ours_r, got_r = timed(lambda q, ix=ix, r=r: ix.within(q, r), qs)
        ours_k, got_k = timed(lambda q, ix=ix: ix.nearest(q, 10), qs)
        scan_r, _ = timed(lambda q, ix=ix, r=r: ix._scan_all(q, r), qs)
        fa_r, ref_r = timed(
            lambda i, f=fx_, q=fq_, r=r: f.range_search(q[i : i + 1], r + 1), range(queries)
        )
        fa_k, ref_k = timed(lambda i, f=fx_, q=fq_: f.search(q[i : i + 1], 10), range(queries))

        # Exactness: same items as FAISS's exhaustive range search, and as a numpy brute force.
        same = True
        for i, (ids, d) in enumerate(got_r):
            _, _, fi = ref_r[i]
            same &= set(ids.tolist()) == set(fi.tolist())
            full = index.distances(qs[i])
            want = np.flatnonzero(full <= radius)
            want = want[np.lexsort((want, full[want]))]
            same &= np.array_equal(ids, want)
        for i, (ids, d) in enumerate(got_k):
            same &= np.array_equal(np.sort(d), np.sort(ref_k[i][0][0].astype(np.uint16)))

        # The usual loop: one imagehash object per code, '-' for distance (on a subsample).
        sample = codes[:loop_sample]
        hashes = [
            imagehash.ImageHash(np.unpackbits(c.view(np.uint8)).astype(bool).reshape(-1, 8))
            for c in sample
        ]
        qh = imagehash.ImageHash(np.unpackbits(qs[0].view(np.uint8)).astype(bool).reshape(-1, 8))
        t = time.perf_counter()
        _ = [h for h in hashes if h - qh <= radius]
        loop = (time.perf_counter() - t) * 1000 * n / loop_sample

        print(f"   {bits}-bit ({label}), radius {radius}; multi-index build {build:.2f}s")
        print(
            f"     imagehash object loop ({loop_sample:,} timed, scaled x{n // loop_sample}): {loop:10.1f}"
        )
        print(f"     FAISS IndexBinaryFlat range search:  {fa_r:7.3f}   k-NN (k=10): {fa_k:7.3f}")
        print(
            f"     provkit range search:                {ours_r:7.3f}   k-NN (k=10): {ours_k:7.3f}"
            f"   (plain scan {scan_r:.3f})"
        )
        print(
            f"     provkit vs imagehash loop: {loop / ours_r:,.0f}x faster (goal >= 1000x); "
            f"vs FAISS: range {ours_r / fa_r:.2f}x, k-NN {ours_k / fa_k:.2f}x the time (goal <= 1.2x)"
        )
        print(f"     results identical to brute force: {'yes' if same else 'NO'}")

    # Skewed data: hashes of real collections cluster; the multi-index hash must cope.
    centres = rng.integers(0, 2**64, (n // 100, 1), dtype=np.uint64, endpoint=False)
    codes = np.repeat(centres, 100, axis=0)
    noise = np.zeros(n, np.uint64)
    for b in range(64):
        noise |= (rng.random(n) < 0.12).astype(np.uint64) << np.uint64(b)
    codes[:, 0] ^= noise
    index = HammingCodes(codes.T)
    index._multi_index()
    qs = flip_bits(codes[rng.choice(n, queries, replace=False)], 4, rng)
    ours, got = timed(lambda q: index.within(q, 10), qs)
    scan, _ = timed(lambda q: index._scan_all(q, 10), qs)
    hits = np.mean([len(g[0]) for g in got])
    print(
        f"   64-bit clustered ({n // 100:,} clusters of 100, {hits:.0f} hits per query): "
        f"provkit {ours:.3f} ms (plain scan {scan:.3f})"
    )


# -- 3. near-duplicate quality -----------------------------------------------------------


def _jpeg(img: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _crop(img, left, top, right, bottom):
    w, h = img.size
    return img.crop(
        (round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom)))
    )


TRANSFORMS = {
    "jpeg q50": lambda im: _jpeg(im, 50),
    "jpeg q30": lambda im: _jpeg(im, 30),
    "resize 0.5": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "resize 0.25 + jpeg q70": lambda im: _jpeg(im.resize((im.width // 4, im.height // 4)), 70),
    "crop 5% each side": lambda im: _crop(im, 0.05, 0.05, 0.05, 0.05),
    "crop 10% each side": lambda im: _crop(im, 0.1, 0.1, 0.1, 0.1),
    "crop 10% corner": lambda im: _crop(im, 0.1, 0.1, 0, 0),
    "crop 8% one side": lambda im: _crop(im, 0.08, 0, 0, 0),
    "crop 20% each side": lambda im: _crop(im, 0.2, 0.2, 0.2, 0.2),
}


def distinct_images() -> list[tuple[int, Image.Image]]:
    """(family, image): photographs, their quadrants, and 200 small faces/patches (LFW)."""
    from skimage import data

    out = []
    for fam, (_, arr) in enumerate(photographs()):
        img = Image.fromarray(arr)
        out.append((fam, img))
        w, h = img.size
        if min(w, h) >= 400:
            for x in (0, w // 2):
                for y in (0, h // 2):
                    out.append((fam, img.crop((x, y, x + w // 2, y + h // 2))))
    base = len(out)
    for i, face in enumerate(data.lfw_subset()):
        arr = (np.clip(face, 0, 1) * 255).astype(np.uint8)
        img = Image.fromarray(arr).resize((128, 128), Image.Resampling.BICUBIC).convert("RGB")
        out.append((base + i, img))
    return out


def bench_quality(folder: Path) -> None:
    from provkit.detect.index import ReferenceIndex

    images = distinct_images()
    families = sorted({f for f, _ in images})
    ref_fams = set(families[::2])
    refs = [(f, im) for f, im in images if f in ref_fams]
    others = [(f, im) for f, im in images if f not in ref_fams]
    ref_paths = []
    for i, (_, im) in enumerate(refs):
        p = folder / f"ref{i:04d}.png"
        im.save(p)
        ref_paths.append(p)
    index = ReferenceIndex(folder / "bench.db")
    report = index.add("bench", ref_paths)
    assert report.added == len(refs), report
    by_path = {str(p.resolve()): i for i, p in enumerate(ref_paths)}

    def query(img: Image.Image, name: str):
        p = folder / name
        img.save(p, quality=95) if name.endswith(".jpg") else img.save(p)
        return index.search(p, k=20)

    print(
        f"\n3. Near-duplicates at the default thresholds: {len(refs)} indexed images "
        f"(photographs, their quadrants, LFW patches); {len(others)} distinct images never indexed"
    )
    print(f"   {'transform':<26}{'recall':>8}{'wrong matches':>15}")
    tp = fp = 0
    for tname, fn in TRANSFORMS.items():
        found = wrong = 0
        for i, (fam, im) in enumerate(refs):
            matches = query(fn(im), f"q{i}.png")
            hit = False
            for m in matches:
                j = by_path[m.path]
                if j == i:
                    hit = True
                elif refs[j][0] != fam:  # same family = a crop of the same photograph
                    wrong += 1
            found += hit
        tp += found
        fp += wrong
        print(f"   {tname:<26}{found / len(refs):8.1%}{wrong:15d}")
    neg_hits = neg_queries = 0
    for i, (_, im) in enumerate(others):
        for variant in (im, _jpeg(im, 50)):
            neg_queries += 1
            n = len(query(variant, f"n{i}.png"))
            neg_hits += n
    fp += neg_hits
    print(
        f"   distinct images (as is and JPEG q50): {neg_hits} false matches in {neg_queries} queries "
        f"({neg_queries * len(refs):,} pairs)"
    )
    print(f"   overall precision: {tp / max(tp + fp, 1):.2%} ({tp} true, {fp} false matches)")


# -- 4. CLIP -----------------------------------------------------------------------------


def bench_clip() -> None:
    path = Path(__file__).with_name("clip.py")
    if not path.exists():
        print("\n4. CLIP embedding throughput: bench/clip.py not present, skipped")
        return
    spec = importlib.util.spec_from_file_location("provkit_bench_clip", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("\n4. CLIP embedding throughput (bench/clip.py)")
    module.run()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=144, help="3 MP JPEGs to fingerprint")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--codes", type=int, default=1_000_000, help="codes in the search index")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--loop-sample",
        type=int,
        default=20_000,
        help="codes the imagehash loop is timed on (scaled to --codes)",
    )
    ap.add_argument(
        "--skip", default="", help="comma list of parts to skip: fingerprints,hamming,quality,clip"
    )
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    os.environ.setdefault("PROVKIT_HOME", tempfile.mkdtemp(prefix="provkit-bench-"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "fingerprints" not in skip:
            (tmp / "fp").mkdir()
            bench_fingerprints(tmp / "fp", args.images, args.workers)
        if "hamming" not in skip:
            bench_hamming(args.codes, args.queries, min(args.loop_sample, args.codes))
        if "quality" not in skip:
            (tmp / "q").mkdir()
            bench_quality(tmp / "q")
        if "clip" not in skip:
            bench_clip()


if __name__ == "__main__":
    main()
