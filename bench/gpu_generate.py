"""Seal overhead on a GPU with an SD-class diffusers pipeline that is already on disk.

    python bench/gpu_generate.py --model PATH_OR_CACHED_ID [--n 4] [--steps 30]
                                 [--size 512x512] [--repeat 2] [--format png|jpeg]
                                 [--device cuda] [--batch-size 1]

Loads the pipeline offline (fp16 on CUDA), warms it up, then times, best of
``--repeat``: generating ``--n`` images; sealing those same images alone (watermark,
C2PA sign, ledger, protected-set check); and generating with sealing as
``provkit generate`` does it (image i sealed on the sealing thread while image i+1
renders). Prints the seal overhead as a percentage of generation time, end to end and
as if run after generation (goal: <= 5%), and the seal cost per image and megapixel. Without a local model
it refuses with one line and exit status 2; it never downloads.
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
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


class Replay:
    """Hands the already generated images to sealing, so only sealing is timed."""

    def __init__(self, backend, images):
        self.backend, self.images, self.batch_size = backend, images, len(images)

    def describe(self):
        return self.backend.describe()

    def render(self, request):
        return iter(self.images)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="local diffusers pipeline folder or an id in the HF cache")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--size", default=None, help="WIDTHxHEIGHT (default: the model's own)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--format", default="png", choices=["png", "jpeg", "webp"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-size", type=int, default=2, help="images per pipeline call")
    args = ap.parse_args(argv)
    if not args.model:
        print(
            "error: give --model PATH (a diffusers pipeline on this machine); "
            "this benchmark never downloads one",
            file=sys.stderr,
        )
        return 2

    from provkit.provenance.core.errors import ProvkitError

    with tempfile.TemporaryDirectory(prefix="provkit-gpu-bench-") as tmp:
        os.environ["PROVKIT_HOME"] = str(Path(tmp) / "home")
        try:
            return run(args, Path(tmp))
        except ProvkitError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2


def run(args, tmp: Path) -> int:
    import torch
    from provkit.generate.backends import get_backend
    from provkit.generate.generator import Generator
    from provkit.generate.seal import SealOptions, _rendered, seal_all

    t = time.perf_counter()
    backend = get_backend(
        "diffusers", model=args.model, device=args.device, batch_size=args.batch_size
    )
    load_s = time.perf_counter() - t
    info = backend.describe()
    request, _ = Generator(backend).request(
        "a lighthouse on a cliff at dusk, oil painting",
        args.n,
        seed=1,
        size=args.size,
        steps=args.steps,
    )
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA"
    print(
        f"# {info.software_agent} | {info.parameters['pipeline']} "
        f"{info.parameters['dtype']} on {info.parameters['device']} ({gpu}) | "
        f"{request.width}x{request.height}, {args.steps} steps, {args.n} images, "
        f"batch {args.batch_size}, best of {args.repeat} | load {load_s:.1f} s"
    )

    images = []

    def gen():  # batch by batch, exactly as seal_all asks the backend (PIL output syncs)
        images[:] = [image for _, _, image in _rendered(backend, request, None)]
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    gen()  # warm-up (kernels, allocator)
    counter = iter(range(10**6))

    def seal():
        out = tmp / f"sealed-{next(counter)}"
        result = seal_all(
            Replay(backend, list(images)), request, SealOptions(out_dir=out, format=args.format)
        )
        if result.failed:
            raise SystemExit(f"sealing failed: {result.failed[0].error}")

    def both(overlap):
        def run():
            out = tmp / f"sealed-{next(counter)}"
            result = seal_all(
                backend, request, SealOptions(out_dir=out, format=args.format), overlap=overlap
            )
            if result.failed:
                raise SystemExit(f"sealing failed: {result.failed[0].error}")

        return run

    seal()  # warm-up (identity, tables)
    t = {"gen": [], "seal": [], "overlapped": [], "serial": []}
    for _ in range(args.repeat):  # interleaved, so drift hits all alike
        t["gen"].append(best(gen, 1))
        t["seal"].append(best(seal, 1))
        t["overlapped"].append(best(both(True), 1))
        t["serial"].append(best(both(False), 1))
    t = {k: min(v) for k, v in t.items()}
    mp = request.width * request.height / 1e6
    per = {k: v / args.n * 1000 for k, v in t.items()}
    print(
        f"generate {per['gen']:7.1f} ms/img | seal alone {per['seal']:6.1f} ms/img "
        f"({per['seal'] / mp:.1f} ms/MP, {args.format}) | generate+seal: sealing thread "
        f"{per['overlapped']:7.1f}, inline {per['serial']:7.1f} ms/img"
    )
    print(
        f"seal overhead (goal <= 5%): {(t['overlapped'] / t['gen'] - 1) * 100:.1f}% with the "
        f"sealing thread, {(t['serial'] / t['gen'] - 1) * 100:.1f}% inline, "
        f"{t['seal'] / t['gen'] * 100:.1f}% by the seal-alone time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
