"""Throughput of detect, check and scan on a CPU, beside the path as it was and the decode
floor, measured in the same run.

    python bench/throughput.py            # 1 MP and 12 MP, every kind; ~10 minutes on 2 cores
    python bench/throughput.py --quick    # make bench: 1 MP every kind, 12 MP JPEG/PNG plain
                                          # and marked, a 48-image scan, a 24-image check

The corpus is made here from real photographs (scikit-image, scikit-learn), upscaled (and
tiled for 12 MP) to 1 MP and 12 MP, as JPEG (quality 90) and PNG, in a fresh workspace:
``plain``; ``marked`` (provkit's watermark); ``signed`` (issued as a camera capture: mark,
manifest, ledger record, trusted by the workspace CA); ``generated`` (issued as
trainedAlgorithmicMedia, as a studio's output); ``stripped`` (a signed file re-encoded
without its metadata: recovered through the mark and the ledger); ``sdxl`` (PNG with the
Stable Diffusion XL mark, written by invisible-watermark as diffusers does). A reference
set of the plain photographs makes the near-duplicate search run.

Per image it prints CPU milliseconds of this process (``time.process_time``: the machine
is shared, so wall time would measure the neighbours): the decode floor (Pillow decoding
the whole file to RGB), each collector and ``detect`` as a whole on the new path and on
the path as it was (``before``: the reference readers -- PyWavelets SDXL reader, the
row-by-row decoder with no pruning and BLAS threads as configured -- and every reader run),
and ``check`` as a whole; then ``scan`` of a folder of 1 MP JPEGs (copies of the corpus's,
as uploads arrive) before and after: images/s (local engine, 2 workers, wall time) and
the workers' CPU milliseconds per image (``resource.getrusage``, their start included;
before: spawned workers, as they were); and a ``provkit check`` of a folder of mixed 1 MP
JPEGs and PNGs (wall and CPU time, progress on stderr).

It checks, on every image, that ``detect --all-evidence`` gives exactly the evidence of the
path as it was, and that the default path gives the same verdict and decided-by, differing
only in items that say "not checked" because the order rule skipped them; the scan rows
likewise. A mismatch is a failure: exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
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

KINDS = ("plain", "marked", "signed", "generated", "stripped", "sdxl")


# -- corpus -------------------------------------------------------------------------------


def photographs() -> list[np.ndarray]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    out = [getattr(data, n)() for n in ("astronaut", "chelsea", "coffee", "rocket")]
    out += list(load_sample_images().images)
    return [np.ascontiguousarray(a[..., :3]) for a in out]


def at_megapixels(photo: np.ndarray, mp: float) -> Image.Image:
    """The photograph at about ``mp`` megapixels, 4:3: upscaled up to 2x, tiled beyond."""
    w = round((mp * 1e6 * 4 / 3) ** 0.5)
    h = round(w * 3 / 4)
    im = Image.fromarray(photo)
    scale = min(2.0, max(w / im.width, h / im.height))
    tile = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    canvas = Image.new("RGB", (w, h))
    for y in range(0, h, tile.height):
        for x in range(0, w, tile.width):
            flip = tile.transpose(Image.FLIP_LEFT_RIGHT) if (x // tile.width) % 2 else tile
            canvas.paste(flip, (x, y))
    return canvas


def sdxl_marked(im: Image.Image) -> Image.Image | None:
    try:
        from tests.fixtures_realistic import _sdxl
    except ImportError:
        return None
    return _sdxl(np.asarray(im))


def make_corpus(
    folder: Path, photos, n_photos: int, mp: float, kinds, formats
) -> list[tuple[str, Path]]:
    """(label, path) of each image made."""
    from provkit.provenance import watermark
    from provkit.provenance.issue import issue
    from provkit.provenance.manifest import ManifestSpec

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(n_photos):
        for fmt in formats:
            ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
            for kind in kinds:  # each kind from another photograph: plain is not signed
                base = at_megapixels(photos[(n + KINDS.index(kind)) % len(photos)], mp)
                name = f"{kind}-{mp:g}mp-{n}.{ext}"
                dst = folder / name
                if kind == "plain":
                    base.save(dst, fmt, quality=90)
                elif kind == "marked":
                    watermark.embed(base, os.urandom(8)).save(dst, fmt, quality=90)
                elif kind in ("signed", "generated", "stripped"):
                    src = folder / f"src-{name}"
                    base.save(src, fmt, quality=95)
                    dst_signed = dst if kind != "stripped" else folder / f"signed-{name}"
                    source = "trainedAlgorithmicMedia" if kind == "generated" else "digitalCapture"
                    issue(src, dst_signed, spec=ManifestSpec(source_type=source))
                    src.unlink()
                    if kind == "stripped":
                        Image.open(dst_signed).convert("RGB").save(dst, fmt, quality=85)
                        dst_signed.unlink()
                elif kind == "sdxl":
                    if fmt != "PNG":
                        continue  # JPEG erases the mark: only the PNG is a case
                    marked = sdxl_marked(base)
                    if marked is None:
                        continue
                    marked.save(dst, "PNG")
                out.append((f"{kind} {mp:g} MP {ext}", dst))
    return out


# -- paths --------------------------------------------------------------------------------


def set_readers(before: bool) -> None:
    """The readers as they were (``before``) or as they are now."""
    from provkit.provenance.watermark import provkit_scheme, thirdparty

    provkit_scheme.use_reference(before)
    thirdparty.use_engine("reference" if before else None)


def cpu_ms(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return 1000 * statistics.median(times), out


def same_answer(new: dict, old: dict) -> str | None:
    """None when ``new`` (default path) answers as ``old`` (everything read); else why not."""
    if new["verdict"] != old["verdict"] or new["decided_by"] != old["decided_by"]:
        return (
            f"verdict {new['verdict']}/{new['decided_by']} vs {old['verdict']}/{old['decided_by']}"
        )
    if len(new["evidence"]) != len(old["evidence"]):
        return "a different number of evidence items"
    for a, b in zip(new["evidence"], old["evidence"], strict=True):
        if a != b and not (
            a["finding"] == "not checked" and a["data"].get("skipped") and a["kind"] == b["kind"]
        ):
            return f"{a['kind']} differs: {a['finding']} vs {b['finding']}"
    return None


def per_image(corpus, db, repeat: int) -> list[str]:
    """Print the per-image table; return the mismatches."""
    from provkit.detect.verdict import Detector
    from provkit.provenance.core.imageio import load_rgb

    from provkit.answers import check

    new, full = Detector(db=db), Detector(db=db, all_evidence=True)
    problems = []
    names = [c.name for c in new.collectors]
    for before in (True, False):  # compile / load the readers before anything is timed
        set_readers(before)
        list(full.run([corpus[0][1]]))
    print(
        f"{'image':24s} {'floor':>6s} "
        + " ".join(f"{n[:9]:>9s}" for n in ["read", *names])
        + f" {'detect':>7s} {'x floor':>7s} {'before':>7s} {'x floor':>7s} {'check':>7s}"
    )
    for label, path in corpus:
        floor, _ = cpu_ms(lambda p=path: load_rgb(p), 3)
        set_readers(False)
        new.cpu.clear()
        t_new, (rep_new,) = cpu_ms(lambda p=path: list(new.run([p])), repeat)
        steps = {k: 1000 * v / repeat for k, v in new.cpu.items()}
        (rep_full,) = list(full.run([path]))
        t_check, _ = cpu_ms(lambda p=path: check([p], db=db, dry_run=True), 1)
        set_readers(True)
        t_old, (rep_old,) = cpu_ms(lambda p=path: list(full.run([p])), 1)
        set_readers(False)
        a, b, c = rep_new.to_json(), rep_full.to_json(), rep_old.to_json()
        if b != c:
            problems.append(f"{label}: --all-evidence differs from the path as it was")
        why = same_answer(a, c)
        if why:
            problems.append(f"{label}: {why}")
        cells = " ".join(f"{steps.get(n, 0.0):9.1f}" for n in ["read", *names])
        print(
            f"{label:24s} {floor:6.1f} {cells} {t_new:7.1f} {t_new / floor:7.1f} "
            f"{t_old:7.1f} {t_old / floor:7.1f} {t_check:7.1f}   {a['verdict']}",
            flush=True,
        )
    return problems


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def scan_rows(path: Path) -> dict:
    out = {r["path"]: r for r in map(json.loads, path.read_text().splitlines()) if r}
    for r in out.values():
        for d in (r.get("asset") or {}).get("duplicates") or []:
            d.pop("age_days", None)
        for d in r.get("duplicates") or []:
            d.pop("age_days", None)
    return out


def scan_compare(folder: Path, out: Path, workers: int) -> list[str]:
    from provkit.detect.scan import scan

    n = len(list(folder.iterdir()))
    results = {}
    for name, env, all_evidence in (
        ("before", "reference", True),
        ("now", None, False),
        ("now, --all-evidence", None, True),
    ):
        for var in ("PROVKIT_READERS", "PROVKIT_SCAN_START"):  # spawned workers, as they were
            if env:
                os.environ[var] = {"PROVKIT_READERS": env, "PROVKIT_SCAN_START": "spawn"}[var]
            else:
                os.environ.pop(var, None)
        cpu0 = children_cpu()
        summary = scan(
            folder,
            out / f"{name}.jsonl".replace(" ", "_").replace(",", ""),
            workers=workers,
            all_evidence=all_evidence,
        )
        cpu = children_cpu() - cpu0
        results[name] = (summary, scan_rows(Path(summary.out)))
        print(
            f"  scan {name:20s} {summary.rate:6.1f} images/s (wall, {workers} workers)  "
            f"{1000 * cpu / n:7.1f} ms CPU an image (workers)",
            flush=True,
        )
    os.environ.pop("PROVKIT_READERS", None)
    os.environ.pop("PROVKIT_SCAN_START", None)
    before, now, full = (results[k][1] for k in ("before", "now", "now, --all-evidence"))
    rate = results["now"][0].rate / results["before"][0].rate
    print(f"  scan speed-up: {rate:.1f}x images/s (goal >= 4x at 1 MP)")
    problems = []
    if full != before:
        problems.append("scan --all-evidence rows differ from the rows as they were")
    for p, row in now.items():
        why = same_answer(row, before[p])
        if why:
            problems.append(f"scan row {Path(p).name}: {why}")
    return problems


def check_folder(folder: Path, env: dict) -> None:
    cpu0 = children_cpu()
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "provkit.cli", "check", "--dry-run", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t
    n = len(list(folder.iterdir()))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    print(
        f"  provkit check of {n} mixed 1 MP images: {wall:.1f} s wall, "
        f"{children_cpu() - cpu0:.1f} s CPU, {len(lines)} answers, exit {proc.returncode} "
        f"(goal <= 25 s for 100 on 2 cores)",
        flush=True,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1 MP every kind, 12 MP plain and marked only, small scan/check",
    )
    ap.add_argument(
        "--photos", type=int, default=None, help="photographs per size (default 2, quick 1)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of the new path per image")
    ap.add_argument(
        "--check-images",
        type=int,
        default=None,
        help="images in the provkit check folder (default 100, quick 24)",
    )
    ap.add_argument(
        "--scan-images",
        type=int,
        default=None,
        help="images in the scanned folder, copies of the 1 MP corpus (default 100, quick 48)",
    )
    ap.add_argument("--workers", type=int, default=2, help="scan worker processes (default 2)")
    args = ap.parse_args(argv)
    n_photos = args.photos or (1 if args.quick else 2)
    n_check = args.check_images or (24 if args.quick else 100)
    n_scan = args.scan_images or (48 if args.quick else 100)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        os.environ["PROVKIT_HOME"] = str(d / "home")
        env = dict(os.environ)
        from provkit.detect.index import ReferenceIndex

        photos = photographs()
        t = time.perf_counter()
        one = make_corpus(d / "1mp", photos, n_photos, 1, KINDS, ("JPEG", "PNG"))
        big_kinds = ("plain", "marked") if args.quick else KINDS
        twelve = make_corpus(d / "12mp", photos, 1, 12, big_kinds, ("JPEG", "PNG"))
        refs = d / "refs"
        refs.mkdir()
        for i, p in enumerate(photos):
            Image.fromarray(p).save(refs / f"ref{i}.jpg", quality=90)
        ReferenceIndex(None).add("archive", sorted(refs.iterdir()))
        print(
            f"{len(one) + len(twelve)} images made in {time.perf_counter() - t:.0f} s; "
            f"CPU ms of one core per image (process_time); the machine may be shared\n"
        )
        problems = per_image(one + twelve, None, args.repeat)
        print()
        scan_dir = d / "scan"
        scan_dir.mkdir()
        jpegs = [p for _, p in one if p.suffix == ".jpg"]  # uploads: JPEGs, as bench/scan.py
        for i in range(n_scan):
            src = jpegs[i % len(jpegs)]
            shutil.copy(src, scan_dir / f"{i:03d}-{src.name}")
        problems += scan_compare(scan_dir, d, args.workers)
        check_dir = d / "check"
        check_dir.mkdir()
        for i in range(n_check):
            src = one[i % len(one)][1]
            shutil.copy(src, check_dir / f"{i:03d}-{src.name}")
        check_folder(check_dir, env)
    if problems:
        print("\nMISMATCH (the new path must answer as the old one):")
        for p in problems:
            print(f"  {p}")
        return 1
    print("\nevidence and verdicts identical to the path as it was on every image and row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
