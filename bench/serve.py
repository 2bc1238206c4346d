"""provkit serve under load: PDQ lookups and verifies over HTTP beside the same work
in-process (and beside `provkit verify` spawned per file), in one run.

    python bench/serve.py [--codes 100000] [--lookups 4000] [--clients 16] [--workers 2]
                          [--verify-files 16] [--verify-requests 64] [--cli-files 3]

1. Lookup: a reference set of --codes random PDQ codes (the full run: --codes 1000000)
   in a workspace made here; --lookups GET /v1/lookup?signal_type=pdq requests (half
   near an indexed code, half random) from --clients keep-alive connections on loopback,
   against `provkit serve --workers N`. Printed: requests/s, p50 and p99 latency, beside
   the same ReferenceBank.lookup called in one thread in-process (the ceiling without
   HTTP). Goal: >= 4,000 lookups/s with p99 <= 25 ms on a 2-core machine.
2. Verify: --verify-files signed 1 MP JPEGs; --verify-requests POST /v1/verify from
   --clients connections, beside verify_file() in-process over the same files, and beside
   `provkit verify FILE --json` spawned per file (--cli-files of them). Goals: HTTP
   >= 0.8x in-process, >= 20x the per-file CLI.

The load generator is a bare asyncio HTTP/1.1 client (a protocol, on uvloop when
installed) in its own process, so it takes as little CPU from the server as possible;
on a 2-core machine it still competes with the server for the cores, so the figures are
a floor. The CPU time per lookup of the server's processes and of the load generator is
printed too (from /proc): the number of cores over it is the rate the cores allow.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------- workspace


def build_set(db: Path, n: int, seed: int = 0):
    """A reference set 'bench' of n random PDQ codes; returns the codes (n x 32 bytes)."""
    import numpy as np
    from provkit.detect.index import ReferenceIndex

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    small = rng.integers(-(2**63), 2**63 - 1, (n, 2), dtype=np.int64)
    idx = ReferenceIndex(db)
    idx.create_set("bench", label="bench codes")
    rows = (
        (f"hash:{i}", f"pdq:{i}", int(small[i, 0]), int(small[i, 1]), codes[i].tobytes())
        for i in range(n)
    )
    with idx.db.conn:
        idx.db.conn.executemany(
            "INSERT INTO ref_items (set_name, path, sha256, phash, dhash, pdq, pdq_quality, "
            "metadata, added) VALUES ('bench', ?, ?, ?, ?, ?, 100, '{}', '2026-01-01')",
            rows,
        )
    idx._touch("bench")
    idx.db.conn.commit()
    return codes


def queries(codes, count: int, seed: int = 1) -> list[str]:
    """Half near an indexed code (up to 12 bits flipped), half random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        if i % 2 == 0:
            q = codes[rng.integers(len(codes))].copy()
            for bit in rng.choice(256, int(rng.integers(0, 13)), replace=False):
                q[bit // 8] ^= 1 << (bit % 8)
        else:
            q = rng.integers(0, 256, 32, dtype=np.uint8)
        out.append(q.tobytes().hex())
    return out


# ----------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, workers: int, threads: int, ready_timeout: float = 600):
    port = free_port()
    env = {
        **os.environ,
        "PROVKIT_HOME": str(home),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provkit.cli",
            "serve",
            "--port",
            str(port),
            "--public-read",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--queue",
            "1000",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    import httpx

    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/status", timeout=5).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(
        f"serve did not become ready within {ready_timeout:g} s "
        "(each worker loads every reference set before /status says ready)"
    )


# ----------------------------------------------------------------- load generator


class _Client(asyncio.Protocol):
    """One keep-alive connection sending its requests one after another: a bare
    protocol (no streams) so the load generator spends little CPU per request."""

    def __init__(self, requests: list[bytes], latencies: list, statuses: list, done):
        self.requests, self.latencies, self.statuses, self.done = (
            requests,
            latencies,
            statuses,
            done,
        )
        self.next = 0
        self.buf = b""
        self.need = None  # bytes of the current answer, once its head is in

    def connection_made(self, transport):
        self.transport = transport
        self._send()

    def _send(self):
        if self.next == len(self.requests):
            self.transport.close()
            return
        self.t0 = time.perf_counter()
        self.transport.write(self.requests[self.next])
        self.next += 1

    def data_received(self, data: bytes):
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                status, *fields = self.buf[:end].split(b"\r\n")
                length = 0
                for field in fields:
                    name, _, value = field.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.status = int(status.split(b" ", 2)[1])
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            self.buf = self.buf[self.need :]
            self.need = None
            self.latencies.append(time.perf_counter() - self.t0)
            self.statuses.append(self.status)
            self._send()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(self.next)


def _load(port: int, requests: list[bytes], clients: int, out) -> None:
    latencies: list[float] = []
    statuses: list[int] = []
    parts = [requests[i::clients] for i in range(clients)]

    async def main():
        loop = asyncio.get_running_loop()
        waits = []
        for part in parts:
            done = loop.create_future()
            await loop.create_connection(
                lambda part=part, done=done: _Client(part, latencies, statuses, done),
                "127.0.0.1",
                port,
            )
            waits.append(done)
        await asyncio.gather(*waits)

    try:
        import uvloop  # the server's loop too (uvicorn picks it when installed)

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    t0, cpu0 = time.perf_counter(), time.process_time()
    run(main())
    out.put(
        {
            "seconds": time.perf_counter() - t0,
            "latencies": latencies,
            "statuses": statuses,
            "cpu_seconds": time.process_time() - cpu0,
        }
    )


def load(port: int, requests: list[bytes], clients: int) -> dict:
    """Send ``requests`` over ``clients`` keep-alive connections from another process."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=_load, args=(port, requests, clients, out))
    p.start()
    result = out.get()
    p.join()
    return result


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def post_file(path: str, name: str, data: bytes) -> bytes:
    boundary = secrets.token_hex(8)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: multipart/form-data; "
        f"boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants, from /proc."""
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:  # gone meanwhile, or no /proc (then the figure reads 0)
            continue
        todo += [int(c) for c in children]
    return total


def summary(latencies: list[float], seconds: float, n: int) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "per_s": n / seconds,
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
    }


# ----------------------------------------------------------------- parts


def measure_http(home: Path, args, reqs: list[bytes], *, warm: list[bytes]) -> tuple[dict, int]:
    """Start the server, send ``warm`` (every worker loads and warms), then ``reqs``:
    the summary of the answered requests (with the CPU time per request of the server's
    processes and of the load generator) and how many were not answered 200."""
    proc, port = start_server(home, args.workers, args.threads, args.ready_timeout)
    try:
        load(port, warm, args.clients)
        cpu0 = process_cpu(proc.pid)
        r = load(port, reqs, args.clients)
        server_cpu = process_cpu(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(30)
    out = summary(r["latencies"], r["seconds"], len(r["latencies"]))
    out["server_cpu_us"] = server_cpu / len(reqs) * 1e6
    out["client_cpu_us"] = r["cpu_seconds"] / len(reqs) * 1e6
    # a connection the server closed early leaves requests unanswered: they count as bad
    unanswered = len(reqs) - len(r["statuses"])
    return out, unanswered + sum(1 for s in r["statuses"] if s != 200)


def bench_lookup(home: Path, args) -> None:
    from provkit.detect import hamming
    from provkit.detect.lookup import ReferenceBank

    hamming.use_compiled()  # the search the server runs (compiled when numba is installed)

    db = home / "provkit.db"
    t0 = time.perf_counter()
    codes = build_set(db, args.codes)
    print(f"reference set: {args.codes:,} PDQ codes written in {time.perf_counter() - t0:.1f} s")
    qs = queries(codes, args.lookups)
    bank = ReferenceBank(db)
    t0 = time.perf_counter()
    bank.refresh()
    print(f"loaded in memory in {time.perf_counter() - t0:.1f} s")
    bank.lookup("pdq", qs[0])  # warm (builds the multi-index)
    lat = []
    t0 = time.perf_counter()
    for q in qs:
        t = time.perf_counter()
        bank.lookup("pdq", q)
        lat.append(time.perf_counter() - t)
    inproc = summary(lat, time.perf_counter() - t0, len(qs))
    hits = sum(1 for q in qs[:200] if bank.lookup("pdq", q)["bench"])
    del bank
    reqs = [get(f"/v1/lookup?signal_type=pdq&signal={q}") for q in qs]
    http, bad = measure_http(home, args, reqs, warm=reqs[:200])
    print(
        f"\nlookup, {args.codes:,} PDQ codes, radius 31 ({hits}/200 queries matched; "
        f"search: {hamming.engine()}):"
    )
    print(
        f"  in-process (1 thread)  {inproc['per_s']:8.0f} lookups/s  "
        f"p50 {inproc['p50_ms']:6.2f} ms  p99 {inproc['p99_ms']:6.2f} ms"
    )
    print(
        f"  HTTP ({args.workers} workers, {args.clients} clients) {http['per_s']:8.0f} "
        f"lookups/s  p50 {http['p50_ms']:6.2f} ms  p99 {http['p99_ms']:6.2f} ms  "
        f"({bad} non-200)"
    )
    print(
        f"  HTTP / in-process: {http['per_s'] / inproc['per_s']:.2f}x   "
        f"goal >= 4,000/s with p99 <= 25 ms: "
        f"{'met' if http['per_s'] >= 4000 and http['p99_ms'] <= 25 else 'NOT met'}"
    )
    search_us = 1e6 / inproc["per_s"]
    print(
        f"  CPU per lookup: server {http['server_cpu_us']:.0f} us (the search in-process: "
        f"{search_us:.0f} us), load generator {http['client_cpu_us']:.0f} us; "
        f"{os.cpu_count()} cores / (server + load generator) = "
        f"{(os.cpu_count() or 1) * 1e6 / (http['server_cpu_us'] + http['client_cpu_us']):.0f}"
        f"/s, the server alone = "
        f"{(os.cpu_count() or 1) * 1e6 / http['server_cpu_us']:.0f}/s"
    )


def make_signed(home: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image
    from provkit.provenance.issue import issue
    from provkit.provenance.manifest import ManifestSpec
    from skimage import data

    base = Image.fromarray(data.astronaut()).resize((1155, 866))
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        arr = np.clip(np.asarray(base, np.float32) + rng.normal(0, 4, (866, 1155, 3)), 0, 255)
        src = home / f"src{i}.jpg"
        Image.fromarray(arr.astype(np.uint8)).save(src, quality=90)
        dst = home / f"signed{i}.jpg"
        issue(
            src,
            dst,
            spec=ManifestSpec(source_type="digitalCapture"),
            watermark=False,
            db=home / "provkit.db",
        )
        out.append(dst)
    return out


def bench_verify(home: Path, args) -> None:
    from provkit.provenance.verify import verify_file

    files = make_signed(home, args.verify_files)
    db = home / "provkit.db"
    verify_file(files[0], db=db)
    t0 = time.perf_counter()
    n_in = 0
    while n_in < args.verify_requests:
        for f in files:
            assert verify_file(f, db=db).state == "trusted"
            n_in += 1
    inproc = n_in / (time.perf_counter() - t0)
    env = {
        **os.environ,
        "PROVKIT_HOME": str(home),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    t0 = time.perf_counter()
    for f in files[: args.cli_files]:
        subprocess.run(
            [sys.executable, "-m", "provkit.cli", "verify", str(f), "--json"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    cli = args.cli_files / (time.perf_counter() - t0)
    bodies = [f.read_bytes() for f in files]
    reqs = [
        post_file("/v1/verify", f"f{i}.jpg", bodies[i % len(bodies)])
        for i in range(args.verify_requests)
    ]
    http, bad = measure_http(home, args, reqs, warm=reqs[: len(files)])
    print(f"\nverify, signed 1 MP JPEGs ({len(files)} files):")
    print(f"  in-process verify_file  {inproc:7.1f} files/s")
    print(f"  provkit verify per file {cli:7.2f} files/s  (a process per file)")
    print(
        f"  HTTP /v1/verify         {http['per_s']:7.1f} files/s  p50 {http['p50_ms']:.0f} ms "
        f" p99 {http['p99_ms']:.0f} ms  ({bad} non-200)"
    )
    print(
        f"  HTTP / in-process: {http['per_s'] / inproc:.2f}x (goal >= 0.8x)   "
        f"HTTP / per-file CLI: {http['per_s'] / cli:.1f}x (goal >= 20x)"
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    ap.add_argument("--codes", type=int, default=100_000, help="PDQ codes in the set")
    ap.add_argument("--lookups", type=int, default=4000, help="lookup requests sent")
    ap.add_argument("--clients", type=int, default=16, help="concurrent connections")
    ap.add_argument("--workers", type=int, default=2, help="server processes")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads per server process")
    ap.add_argument("--verify-files", type=int, default=8, help="signed 1 MP JPEGs made")
    ap.add_argument("--verify-requests", type=int, default=64, help="verify requests sent")
    ap.add_argument("--cli-files", type=int, default=3, help="files for the per-file CLI")
    ap.add_argument(
        "--ready-timeout",
        type=float,
        default=600,
        help="seconds to wait for the server to load the sets",
    )
    ap.add_argument("--skip-lookup", action="store_true")
    ap.add_argument("--skip-verify", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="provkit-bench-serve-") as tmp:
        home = Path(tmp)
        os.environ["PROVKIT_HOME"] = str(home)
        print(
            f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} "
            "(a shared machine makes these figures noisy)"
        )
        if not args.skip_lookup:
            bench_lookup(home, args)
        if not args.skip_verify:
            bench_verify(home, args)


if __name__ == "__main__":
    main()
