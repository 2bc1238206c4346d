"""Generation alone vs generation + seal, same run: what sealing costs per image.

    python bench/generate.py [--repeat 3] [--n 2] [--sizes 512] [--format png|jpeg]
                             [--no-diffusers] [--device cpu] [--engine-sizes 512,1024]
    python bench/generate.py --sizes 512,1024 --engine-sizes 512,1024   # the 1024 figures in docs/generate.md

For the builtin backend at each size and for a tiny diffusers pipeline (built from
configs into a temp folder), times, interleaved so machine load hits them alike, and
reports the best of ``--repeat`` runs:

  gen         backend.render() only, images kept in memory
  save        the same images encoded and written as plain files (what any script does)
  seal        provkit's seal_all() on the same images: watermark, encode, C2PA sign,
              ledger row with fingerprints, protected-set check, generation log
  gen+seal    seal_all() with the backend itself: rendering image i+1 while image i is
              sealed on the sealing thread (what `provkit generate` does)

and prints gen, gen+save and gen+seal per image, the ratio (gen+seal)/gen (and the
ratio if sealing ran after generation, gen+seal serial), and the seal cost per
megapixel, also net of the plain save it replaces.
Goal: sealing adds <= 100 ms per 1 MP image on CPU.

Then the built-in generator's two engines on the same prompts and seeds: the numpy CPPN
(the default, no torch) beside the same network run by torch on the CPU (the baseline),
best of ``--repeat`` per picture, with the ratio and the largest pixel difference between
them (``--engine-sizes``; skipped without torch).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")

ROOT = Path(__file__).resolve().parent.parent
# this file is named like the `generate` package: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Replay:
    """The backend's own images again, so sealing is timed without re-rendering them."""

    def __init__(self, backend, images):
        self.backend, self.images, self.batch_size = backend, images, len(images)

    def describe(self):
        return self.backend.describe()

    def render(self, request):
        return iter(self.images)


def measure(backend, request, *, repeat: int, fmt: str, workdir: Path) -> dict:
    """Best-of-``repeat`` seconds for gen, save and seal of one request (n images)."""
    from provkit.generate.seal import SealOptions, _rendered, seal_all
    from provkit.provenance.core.imageio import encode

    mime = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}[fmt]
    counter = iter(range(10**9))
    images = list(backend.render(request))  # warm-up and the images to save and seal
    replay = Replay(backend, images)

    def gen():  # batch by batch, exactly as seal_all asks the backend
        list(_rendered(backend, request, None))

    def save():
        for image in images:
            (workdir / f"plain-{next(counter)}.{fmt}").write_bytes(encode(image, mime))

    def sealed(source):
        def run():
            result = seal_all(source, request, SealOptions(out_dir=workdir / "sealed", format=fmt))
            if result.failed:
                raise SystemExit(f"sealing failed: {result.failed[0].error}")

        return run

    seal, pipelined = sealed(replay), sealed(backend)
    seal()  # warm-up: identity, tables, lazy imports
    times = {"gen": [], "save": [], "seal": [], "gen+seal": []}
    for _ in range(repeat):  # interleaved, so machine load hits all alike
        times["gen"].append(timed(gen))
        times["save"].append(timed(save))
        times["seal"].append(timed(seal))
        times["gen+seal"].append(timed(pipelined))
    return {k: min(v) for k, v in times.items()}


def report(label: str, request, t: dict) -> None:
    n = request.count
    mp = request.width * request.height / 1e6
    per = {k: v / n * 1000 for k, v in t.items()}
    print(
        f"{label:<28} {request.width}x{request.height:<5} {mp:4.2f} MP | "
        f"gen {per['gen']:7.1f} | gen+save {per['gen'] + per['save']:7.1f} | "
        f"gen+seal {per['gen+seal']:7.1f} ms/img | "
        f"ratio {t['gen+seal'] / t['gen']:5.2f}x (serial {(t['gen'] + t['seal']) / t['gen']:5.2f}x) | "
        f"seal {per['seal'] / mp:6.1f} ms/MP ({(per['seal'] - per['save']) / mp:6.1f} beyond a plain save)"
    )


def engines(sizes, repeat: int) -> None:
    """numpy vs torch (CPU) for the built-in CPPN: time per picture and pixel agreement."""
    import numpy as np
    from provkit.generate.backends import get_backend
    from provkit.provenance.core.extras import available

    if not available("torch"):
        print("# builtin engines: torch is not installed, numpy only (nothing to compare)")
        return
    print(f"# builtin engines, best of {repeat}, one picture each, CPU")
    backends = {e: get_backend("builtin", device="cpu", engine=e) for e in ("numpy", "torch")}
    for b in backends.values():
        b.paint("warm-up", 0, 64, 64)
    for side in sizes:
        best = {e: float("inf") for e in backends}
        pictures = {}
        for i in range(repeat):  # interleaved, so machine load hits both alike
            for e, b in backends.items():
                t = time.perf_counter()
                pictures[e] = np.asarray(b.paint("a quiet harbour at dawn", i, side, side), int)
                best[e] = min(best[e], time.perf_counter() - t)
        diff = np.abs(pictures["numpy"] - pictures["torch"])
        print(
            f"builtin {side}x{side:<5} numpy {best['numpy'] * 1e3:7.1f} ms | torch "
            f"{best['torch'] * 1e3:7.1f} ms | ratio numpy/torch "
            f"{best['numpy'] / best['torch']:5.2f}x | max diff {diff.max()} level, "
            f"{(diff > 0).mean() * 100:.4f}% of values"
        )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--n", type=int, default=2, help="images per request")
    ap.add_argument("--sizes", default="512", help="builtin sizes (square side in px)")
    ap.add_argument(
        "--engine-sizes",
        default="512",
        help="sizes for the numpy vs torch engine comparison ('' to skip)",
    )
    ap.add_argument("--format", default="png", choices=["png", "jpeg", "webp"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-diffusers", action="store_true")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="provkit-bench-gen-") as tmp:
        tmp = Path(tmp)
        os.environ["PROVKIT_HOME"] = str(tmp / "home")
        from provkit.generate.backends import get_backend
        from provkit.generate.request import GenerationRequest

        print(
            f"# seal overhead, format {args.format}, {args.n} images per request, "
            f"best of {args.repeat}, device {args.device}"
        )
        builtin = get_backend("builtin", device=args.device)
        for side in (int(s) for s in args.sizes.split(",")):
            req = GenerationRequest(
                "a quiet harbour at dawn", seed=1, width=side, height=side, count=args.n
            )
            t = measure(builtin, req, repeat=args.repeat, fmt=args.format, workdir=tmp)
            report("builtin (CPPN)", req, t)
        from provkit.provenance.core.extras import available

        if not args.no_diffusers and not available("diffusers"):
            print("# diffusers is not installed (pip install 'provkit[diffusers]'): skipped")
        elif not args.no_diffusers:
            sys.path.insert(0, str(ROOT / "tests"))
            from fixtures_generate import build_tiny_sd

            model = build_tiny_sd(tmp / "tiny-sd")
            sd = get_backend("diffusers", model=str(model), device=args.device)
            req = GenerationRequest(
                "a lighthouse", seed=1, width=128, height=128, count=args.n, steps=2
            )
            t = measure(sd, req, repeat=args.repeat, fmt=args.format, workdir=tmp)
            report("diffusers (tiny SD, 2 steps)", req, t)
    if args.engine_sizes:
        engines([int(s) for s in args.engine_sizes.split(",")], args.repeat)


if __name__ == "__main__":
    main()
