"""One fuzz worker process: reads case paths on stdin, runs provkit's library entry points
on each, writes one JSON line per case on stdout.

Run by :mod:`tests.fuzz.harness`; not a test module. Per case it reports every exception
that is not a :class:`ProvkitError` (an "uncaught" exception: a reader failure that would
reach a user as "unexpected ..."), the wall time, and the peak resident memory of this
process during the case (``VmHWM`` after ``clear_refs``; the peak is reset before each
case, so it is the case's own, plus the worker's baseline) and its CPU time (all
threads): on a shared machine the wall time of a case mostly measures waiting for a
core, so a hang is judged on CPU time, and the harness's watchdog catches a case that
blocks (uses no CPU and never returns).

``detect`` runs ``verify`` (with ledger recovery), the metadata reader, the watermark
decoder and the third-party mark reader on the same file; ``verify`` alone is run too
when ``PROVKIT_FUZZ_ALL`` is set (the short run in ``make test`` sets it).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    limit = int(os.environ.get("PROVKIT_FUZZ_RLIMIT_AS", str(8 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a runaway case cannot take the host
    import warnings

    warnings.simplefilter("ignore")
    from provkit.detect.metadata import read_metadata
    from provkit.detect.verdict import Detector, detect
    from provkit.provenance.core.errors import ProvkitError
    from provkit.provenance.fingerprint import fingerprint_file
    from provkit.provenance.verify import verify_file
    from provkit.provenance.watermark import files as watermark_files

    db = os.environ.get("PROVKIT_FUZZ_DB")
    detector = Detector(db=db)
    entry_points = {
        "detect": lambda p: detect(p, detector=detector),
        "watermark.decode": watermark_files.decode,
        "fingerprint": fingerprint_file,
        "metadata": read_metadata,
    }
    if os.environ.get("PROVKIT_FUZZ_ALL"):
        entry_points["verify"] = lambda p: verify_file(p, db=db)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        _reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        uncaught, handled = [], 0
        for name, fn in entry_points.items():
            try:
                fn(path)
            except ProvkitError:
                handled += 1
            except BaseException as e:  # what the fuzzer is looking for
                if isinstance(e, KeyboardInterrupt):
                    raise
                tb = traceback.extract_tb(e.__traceback__)
                where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
                uncaught.append(
                    {
                        "entry": name,
                        "type": type(e).__name__,
                        "message": str(e)[:300],
                        "where": where,
                    }
                )
        print(
            json.dumps(
                {
                    "path": path,
                    "seconds": time.perf_counter() - start,
                    "cpu_seconds": time.process_time() - cpu,
                    "peak_mb": _peak_mb(),
                    "handled": handled,
                    "uncaught": uncaught,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
