"""Sign and verify: provkit beside raw c2pa-python calls on the same images, same run.

    python bench/sign_verify.py [--sizes 1,12] [--repeat 3] [--verify-calls 20] [--watermark]

Prints, per image size, the median time of provkit's sign (issue: sign + ledger record
with fingerprints; watermark off unless --watermark) and verify beside the bare SDK
calls they wrap, with the ratio; then the cold start of `provkit --help` beside
`python -c pass`. Goals: overhead <= 1.3x, verify of a 12 MP JPEG <= 150 ms,
`provkit --help` <= 300 ms.

A verify takes a few milliseconds, less than the scheduling noise of a shared machine,
so each verify sample is the mean of --verify-calls back-to-back calls (after one
warm-up call of each), and the two sides alternate sample by sample.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")


def make_jpeg(path: Path, megapixels: float) -> Path:
    import numpy as np
    from PIL import Image
    from skimage import data

    w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    img = Image.fromarray(data.astronaut()).resize((w, h), Image.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 4, (h, w, 3))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=90)
    return path


def mean_time(fn, calls: int) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls


def paired(fn_a, fn_b, repeat: int, calls: int = 1) -> tuple[float, float]:
    """Median times of two functions run alternately (so machine load hits both alike);
    each sample is the mean of ``calls`` calls."""
    a, b = [], []
    for _ in range(repeat):
        a.append(mean_time(fn_a, calls))
        b.append(mean_time(fn_b, calls))
    return statistics.median(a), statistics.median(b)


def bench_size(mp, tmp, identity, spec, anchors, args) -> None:
    """Sign and verify one image size with provkit and with the bare SDK calls."""
    import c2pa
    from provkit.provenance.issue import issue
    from provkit.provenance.manifest import context, manifest_definition
    from provkit.provenance.verify import verify_file

    src = make_jpeg(tmp / f"src{mp:g}.jpg", mp)
    payload = src.read_bytes()
    n = [0]

    def raw_sign():
        n[0] += 1
        definition = manifest_definition(spec, asset_id=f"{n[0]:016x}")
        builder = c2pa.Builder(json.dumps(definition))
        signer = identity.c2pa_signer()
        with open(tmp / "raw.jpg", "w+b") as f:
            builder.sign(signer, "image/jpeg", io.BytesIO(payload), f)
        signer.close()
        builder.close()

    def provkit_sign():
        n[0] += 1
        issue(
            src,
            tmp / f"pk{mp:g}-{n[0]}.jpg",
            spec=spec,
            watermark=args.watermark,
            identity=identity,
        )  # a fresh name per call and size: outputs are never replaced

    t_raw, t_pk = paired(raw_sign, provkit_sign, args.repeat)
    print(f"{mp:>6g}MP {'sign':>7} {t_pk * 1e3:>11.1f} {t_raw * 1e3:>15.1f} {t_pk / t_raw:>5.2f}x")
    signed = tmp / f"pk{mp:g}-{n[0]}.jpg"
    ctx = context(trust_anchors=anchors)

    def raw_verify():
        reader = c2pa.Reader(str(signed), context=ctx)
        json.loads(reader.json())
        reader.get_validation_state()
        reader.close()

    def provkit_verify():
        verify_file(signed, recover=False)

    raw_verify(), provkit_verify()  # warm-up: first-call imports and caches on both sides
    t_raw, t_pk = paired(raw_verify, provkit_verify, max(3, args.repeat), args.verify_calls)
    print(
        f"{mp:>6g}MP {'verify':>7} {t_pk * 1e3:>11.1f} {t_raw * 1e3:>15.1f} {t_pk / t_raw:>5.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,12", help="megapixels, comma separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--verify-calls",
        type=int,
        default=20,
        help="verify calls per timed sample (their mean is the sample)",
    )
    ap.add_argument("--watermark", action="store_true", help="include the watermark in sign")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="provkit-bench-") as name:
        run_all(Path(name), args)


def run_all(tmp: Path, args) -> None:
    os.environ["PROVKIT_HOME"] = str(tmp / "home")
    from provkit.provenance import keys
    from provkit.provenance.manifest import ManifestSpec
    from provkit.provenance.trust import trust_pem

    keys.init("Bench Org")
    identity = keys.load()
    spec = ManifestSpec(source_type="digitalCapture")
    anchors = trust_pem()

    print(f"{'image':>8} {'step':>7} {'provkit ms':>11} {'c2pa-python ms':>15} {'ratio':>6}")
    for mp in [float(x) for x in args.sizes.split(",")]:
        bench_size(mp, tmp, identity, spec, anchors, args)

    exe = Path(sys.executable).with_name("provkit")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "provkit.cli", "--help"]

    def run(c):
        return lambda: subprocess.run(c, capture_output=True, check=True)

    t_base, t_help = paired(run([sys.executable, "-c", "pass"]), run(cmd), max(3, args.repeat))
    print(
        f"{'cold':>8} {'--help':>7} {t_help * 1e3:>11.1f} {t_base * 1e3:>15.1f} "
        f"{t_help / t_base:>5.2f}x   (baseline: python -c pass)"
    )


if __name__ == "__main__":
    main()
