"""`provkit verify FILE` as a whole process beside a bare c2pa-python read of the same file.

    python bench/cli.py [--repeat 5] [--megapixels 1]

What a newsroom user waits for is the whole command: interpreter start, imports, the
read, the trust check and the report. This bench signs one JPEG made from a real
photograph (--megapixels, default 1) in a scratch workspace, then runs, alternately,
`--repeat` times each:

- provkit:  `python -m provkit.cli verify FILE` (the same as the `provkit` script);
- baseline: `python -c "import c2pa; c2pa.Reader(FILE).json()"`, the bare SDK read.

provkit's folders are byte-compiled first, as an install leaves them. It prints the
median wall time of each and the ratio (goal: <= 2.0), the same for CPU
time (user + system of the child process: steadier than wall time on a busy machine),
and the import
time of `provkit.commands.verify` (python -X importtime) beside `import c2pa`.
Alternating the two sides makes machine load hit both alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 2.0
BARE = "import c2pa, sys\nwith c2pa.Reader(sys.argv[1]) as r: r.json()"


def make_signed(folder: Path, megapixels: float, env: dict) -> Path:
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photo = load_sample_images().images[0]
    w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    src = folder / "photo.jpg"
    Image.fromarray(photo).resize((w, h), Image.BICUBIC).save(src, quality=90)
    out = folder / "signed.jpg"
    for args in (
        ["keys", "init"],
        ["sign", str(src), "-o", str(out), "--source-type", "digitalCapture"],
    ):
        subprocess.run(
            [sys.executable, "-m", "provkit.cli", *args], env=env, check=True, capture_output=True
        )
    return out


def compile_provkit(env: dict) -> None:
    """Byte-compile provkit's folders, as ``pip install`` does for an installed package:
    with ``PYTHONDONTWRITEBYTECODE`` set (or a source edited since its .pyc), every run
    would otherwise compile provkit's modules again and time the compiler, not provkit
    (the SDK's modules in site-packages were compiled when it was installed)."""
    code = (
        "import importlib.util, sys\n"
        "for name in ('provkit', 'provkit.provenance', 'provkit.detect', "
        "'provkit.generate', 'provkit.policies'):\n"
        "    print(importlib.util.find_spec(name).submodule_search_locations[0])"
    )
    folders = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *folders],
        env=env,
        capture_output=True,
        check=True,
    )


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-500:]}")
    return elapsed, cpu


def import_ms(statement: str, env: dict) -> float:
    """Cumulative import time of the last top-level module ``statement`` imports (ms)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and not parts[2].startswith("  "):  # top-level imports
            try:
                total += int(parts[1])
            except ValueError:
                continue
    return total / 1000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=5, help="runs of each side (median)")
    ap.add_argument("--megapixels", type=float, default=1.0, help="size of the signed JPEG")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "PROVKIT_HOME": str(folder / "home")}
        env.pop("PROVKIT_DEV_IDENTITY", None)
        compile_provkit(env)
        signed = make_signed(folder, args.megapixels, env)
        provkit = [sys.executable, "-m", "provkit.cli", "verify", str(signed)]
        bare = [sys.executable, "-c", BARE, str(signed)]
        timed(provkit, env), timed(bare, env)  # warm the file cache and .pyc files
        ours, base = [], []
        for _ in range(args.repeat):
            ours.append(timed(provkit, env))
            base.append(timed(bare, env))
        for i, what in ((0, "wall"), (1, "CPU ")):
            a = statistics.median(t[i] for t in ours)
            b = statistics.median(t[i] for t in base)
            print(
                f"{what}: provkit verify (whole process) {a * 1000:7.1f} ms   bare c2pa-python "
                f"read {b * 1000:7.1f} ms   ratio {a / b:.2f} (goal <= {GOAL})  "
                f"[{args.megapixels:g} MP JPEG, median of {args.repeat}, alternating]"
            )
        print(
            f"imports: provkit.commands.verify {import_ms('import provkit.commands.verify', env):6.1f} ms"
            f"   c2pa {import_ms('import c2pa', env):6.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
