"""The fuzz harness: seed files, hypothesis mutations, and a watchdog over worker processes.

Seeds are made here: unsigned and C2PA-signed JPEG, PNG, WebP and TIFF of a real
photograph (signed ones watermarked and recorded in a ledger, so recovery runs too).
Mutations are generic (flip, insert, delete, overwrite, truncate, duplicate) or aimed at
the manifest: inside the JUMBF boxes (JPEG APP11 segments, the PNG ``caBX`` chunk, the
RIFF ``C2PA`` chunk), the certificate DER in the signature box, and the claim CBOR.

Each case runs in a worker subprocess (:mod:`tests.fuzz.worker`) under a watchdog: a case
over :data:`CASE_SECONDS` is a hang (the worker is killed and replaced); the worker
reports the case's peak resident memory.
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
#: A case using more CPU than this is a failure (a hang).
CASE_SECONDS = 10.0
#: A case that does not answer within this wall time is a blocked hang (the worker is
#: killed). Longer than CASE_SECONDS: on a busy machine a case waits for a core.
WATCHDOG_SECONDS = float(os.environ.get("PROVKIT_FUZZ_WATCHDOG", "60"))
#: Peak resident memory a case may reach (worker baseline included).
CASE_MEGABYTES = 1536
#: Time a worker may take to start (imports, the detector) before it counts as broken.
START_SECONDS = 120.0


# -- seeds ---------------------------------------------------------------------------------


def make_seeds(folder: Path, db: Path) -> dict[str, bytes]:
    """Seed files by name: ``{unsigned,signed}.{jpg,png,webp,tif}``; signing records them
    in ``db`` (the workspace must be set up by the caller's ``PROVKIT_HOME``)."""
    import numpy as np
    from PIL import Image
    from provkit.provenance.issue import issue
    from provkit.provenance.manifest import ManifestSpec
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(np.ascontiguousarray(data.astronaut()[::2, ::2]))  # 256 x 256
    photo = photo.resize((320, 240))
    seeds = {}
    for ext, fmt, kwargs in (
        ("jpg", "JPEG", {"quality": 85}),
        ("png", "PNG", {}),
        ("webp", "WEBP", {"quality": 80}),
        ("tif", "TIFF", {}),
    ):
        buf = io.BytesIO()
        photo.save(buf, fmt, **kwargs)
        seeds[f"unsigned.{ext}"] = buf.getvalue()
        src = folder / f"unsigned.{ext}"
        src.write_bytes(buf.getvalue())
        out = folder / f"signed.{ext}"
        issue(
            src,
            out,
            spec=ManifestSpec(source_type="digitalCapture", author="Fuzz Seed"),
            watermark=ext in ("jpg", "png"),
            db=db,
            force=True,
        )
        seeds[f"signed.{ext}"] = out.read_bytes()
    return seeds


# -- regions the targeted mutations aim at --------------------------------------------------


def manifest_regions(data: bytes) -> dict[str, tuple[int, int]]:
    """``{name: (start, end)}`` of the manifest parts found in ``data``: ``jumbf`` (from the
    first ``jumb`` box to the end of the last), ``certificate`` (the first DER certificate
    after the signature label), ``claim`` (the claim box's CBOR)."""
    out = {}
    first = data.find(b"jumb")
    if first != -1:
        last = data.rfind(b"jumb")
        length = int.from_bytes(data[last - 4 : last], "big") if last >= 4 else 0
        out["jumbf"] = (max(0, first - 4), min(len(data), max(last + 4, last - 4 + length)))
    sig = data.find(b"c2pa.signature")
    if sig != -1:
        cert = data.find(b"\x30\x82", sig)
        if cert != -1 and cert + 4 <= len(data):
            length = int.from_bytes(data[cert + 2 : cert + 4], "big") + 4
            out["certificate"] = (cert, min(len(data), cert + length))
    claim = data.find(b"c2pa.claim")
    if claim != -1:
        cbor = data.find(b"cbor", claim)
        if cbor != -1:
            size = int.from_bytes(data[cbor - 4 : cbor], "big") if cbor >= 4 else 64
            out["claim"] = (cbor + 4, min(len(data), cbor - 4 + max(size, 8)))
    return {k: v for k, v in out.items() if v[1] > v[0]}


# -- mutations -----------------------------------------------------------------------------

OPS = ("flip", "insert", "delete", "overwrite", "truncate", "duplicate", "set-byte")
MAGIC = [
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\xff\xd9",
    b"\xff\xda",
    b"IEND",
    b"jumb",
    b"\x30\x82\xff\xff",
    b"\xa0\x03\x02\x01\x05",
    b"[" * 64,
    b"<x:xmpmeta",
    b"\x9f" * 16,
    b"\xbf" * 16,
    b"\x1b\xff\xff\xff\xff\xff\xff\xff",
]


@st.composite
def mutation(draw, size: int, regions: dict[str, tuple[int, int]]):
    """One mutation op: ``(op, start, length or bit, payload)`` within a region or anywhere."""
    names = ["anywhere"] + sorted(regions)
    region = draw(st.sampled_from(names))
    lo, hi = (0, size) if region == "anywhere" else regions[region]
    hi = max(hi, lo + 1)
    op = draw(st.sampled_from(OPS))
    pos = draw(st.integers(lo, hi - 1))
    if op == "flip":
        return region, op, pos, draw(st.integers(0, 7)), b""
    if op in ("insert", "overwrite"):
        payload = draw(st.one_of(st.sampled_from(MAGIC), st.binary(min_size=1, max_size=64)))
        return region, op, pos, 0, payload
    if op == "set-byte":
        return region, op, pos, 0, bytes([draw(st.integers(0, 255))])
    length = draw(st.integers(1, max(1, min(4096, hi - pos))))
    return region, op, pos, length, b""


def apply(data: bytes, ops) -> bytes:
    out = bytearray(data)
    for _, op, pos, arg, payload in ops:
        pos = min(pos, max(0, len(out) - 1))
        if not out:
            break
        if op == "flip":
            out[pos] ^= 1 << arg
        elif op == "set-byte":
            out[pos] = payload[0]
        elif op == "insert":
            out[pos:pos] = payload
        elif op == "overwrite":
            out[pos : pos + len(payload)] = payload
        elif op == "delete":
            del out[pos : pos + arg]
        elif op == "truncate":
            del out[pos:]
        elif op == "duplicate":
            out[pos:pos] = out[pos : pos + arg]
    return bytes(out)


@st.composite
def case(draw, seeds: dict[str, bytes]):
    """``(seed name, mutated bytes, ops)``: one to four mutations of one seed."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = seeds[name]
    regions = manifest_regions(data) if name.startswith("signed") else {}
    ops = draw(st.lists(mutation(len(data), regions), min_size=1, max_size=4))
    return name, apply(data, ops), ops


# -- running cases -------------------------------------------------------------------------


@dataclass
class Stats:
    cases: int = 0
    handled: int = 0
    uncaught: list = field(default_factory=list)
    hangs: list = field(default_factory=list)
    over_memory: list = field(default_factory=list)
    worker_deaths: list = field(default_factory=list)
    peak_mb: float = 0.0
    slowest: float = 0.0
    slowest_cpu: float = 0.0
    seconds: float = 0.0
    by_seed: dict = field(default_factory=dict)
    by_region: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "cases": self.cases,
            "handled_errors": self.handled,
            "uncaught_exceptions": len(self.uncaught),
            "hangs_over_10s": len(self.hangs),
            "over_memory": len(self.over_memory),
            "worker_deaths": len(self.worker_deaths),
            "peak_memory_mb_max": round(self.peak_mb, 1),
            "slowest_case_s": round(self.slowest, 2),
            "slowest_case_cpu_s": round(self.slowest_cpu, 2),
            "wall_s": round(self.seconds, 1),
            "by_seed": self.by_seed,
            "by_region": self.by_region,
            "uncaught": self.uncaught[:50],
            "hangs": self.hangs[:50],
            "over_memory_cases": self.over_memory[:50],
            "worker_death_cases": self.worker_deaths[:50],
        }

    @property
    def clean(self) -> bool:
        return not (self.uncaught or self.hangs or self.over_memory or self.worker_deaths)


class Runner:
    """Worker processes under a watchdog; :meth:`run` one case file at a time."""

    def __init__(self, env: dict, crash_dir: Path, summary: Path | None = None):
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.crash_dir = crash_dir
        self.summary = summary  # rewritten every 100 cases, so a long run shows progress
        self.proc = None
        self.stats = Stats()
        self.started = time.perf_counter()

    def _start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.worker"],
            cwd=ROOT,
            env=self.env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        line = self._readline(START_SECONDS)
        if line is None or not json.loads(line).get("ready"):
            self.close()
            raise RuntimeError("fuzz worker did not start")

    def _readline(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return line or None

    def _keep(self, path: Path, tag: str) -> str:
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        dest = self.crash_dir / f"{tag}-{self.stats.cases:06d}{path.suffix}"
        dest.write_bytes(path.read_bytes())
        return str(dest)

    def run(self, path: Path, seed: str, ops) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        st_ = self.stats
        st_.cases += 1
        st_.by_seed[seed] = st_.by_seed.get(seed, 0) + 1
        for region in {op[0] for op in ops}:
            st_.by_region[region] = st_.by_region.get(region, 0) + 1
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        start = time.perf_counter()
        line = self._readline(WATCHDOG_SECONDS)
        elapsed = time.perf_counter() - start
        st_.seconds = time.perf_counter() - self.started
        if line is None:
            died = self.proc.poll() is not None
            self.close()
            record = {
                "seed": seed,
                "ops": repr(ops)[:500],
                "kept": self._keep(path, "hang"),
                "seconds": round(elapsed, 2),
            }
            (st_.worker_deaths if died else st_.hangs).append(record)
            return
        result = json.loads(line)
        if self.summary is not None and st_.cases % 100 == 0:
            self.summary.parent.mkdir(parents=True, exist_ok=True)
            self.summary.write_text(json.dumps(st_.to_json(), indent=2))
        st_.handled += result["handled"]
        st_.peak_mb = max(st_.peak_mb, result["peak_mb"])
        st_.slowest = max(st_.slowest, result["seconds"])
        st_.slowest_cpu = max(st_.slowest_cpu, result["cpu_seconds"])
        if result["uncaught"]:
            st_.uncaught.append(
                {"seed": seed, "errors": result["uncaught"], "kept": self._keep(path, "uncaught")}
            )
        if result["peak_mb"] > CASE_MEGABYTES:
            st_.over_memory.append(
                {"seed": seed, "peak_mb": result["peak_mb"], "kept": self._keep(path, "memory")}
            )
        if result["cpu_seconds"] > CASE_SECONDS:
            st_.hangs.append(
                {
                    "seed": seed,
                    "seconds": result["seconds"],
                    "cpu_seconds": result["cpu_seconds"],
                    "kept": self._keep(path, "slow"),
                }
            )

    def close(self):
        if self.proc is not None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None
