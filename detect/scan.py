"""Batch detection: a folder or a list of images into JSONL, CSV or SQLite.

Files are processed in parallel worker processes, each loading the models, probe
and index once. Every finished row is appended and flushed to disk (fsync) before
the next, so a scan killed at any moment can be resumed: ``resume=True`` drops a
torn last line, skips every path already written and appends the rest. A SQLite
output keys rows by path, so a row can never appear twice.

Why one module: scan's sinks (JSONL, CSV, SQLite), resuming and its worker pool are the
parts of one job.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provkit.detect.evidence import csv_columns
from provkit.detect.verdict import Detector, check_options, detect
from provkit.provenance.core.errors import BadInput, ConfigError, ProvkitError
from provkit.provenance.core.extras import require
from provkit.provenance.core.imageio import image_paths, skipped_files
from provkit.provenance.core.workspace import connect
from provkit.provenance.watermark.thirdparty import warm as warm_readers

#: The columns every collector of the registry declares, between the verdict and the error.
EVIDENCE_COLUMNS = csv_columns()
CSV_COLUMNS = (
    "path",
    "verdict",
    "score",
    "decided_by",
    *(c for c, _ in EVIDENCE_COLUMNS),
    "error",
    "outcome",
    "labels",
)
#: The CSV header of scans written before rows carried a decision: such a file holding
#: only its header counts as empty; one holding rows is not resumed into (the columns differ).
LEGACY_CSV_COLUMNS = CSV_COLUMNS[:-2]
FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".db": "db",
    ".sqlite": "db",
    ".sqlite3": "db",
}


# -- rows --------------------------------------------------------------------------------


def row_for(path, result) -> dict:
    """The output row for a report or an error: the report, the ``asset`` object a policy
    decision reads (the same as ``policy check`` builds), and the error if any."""
    if isinstance(result, ProvkitError):
        return {
            "path": str(path),
            "verdict": None,
            "score": None,
            "decided_by": [],
            "evidence": [],
            "duplicates": [],
            "disclosure": None,
            "asset": None,
            "error": result.reason,
        }
    row = result.to_json()
    row["asset"] = result.policy_context()
    row["error"] = None
    return row


def _csv_row(row: dict) -> dict:
    flat = {
        "path": row["path"],
        "verdict": row["verdict"] or "",
        "score": "" if row.get("score") is None else f"{row['score']:.4f}",
        "decided_by": ";".join(row.get("decided_by") or []),
        **{column: cell(row) for column, cell in EVIDENCE_COLUMNS},
        "error": row.get("error") or "",
        "outcome": (row.get("decision") or {}).get("outcome", ""),
        "labels": ";".join((row.get("decision") or {}).get("labels") or []),
    }
    # the path is kept exactly (CSV quotes a newline in it), so --resume finds it again
    return {
        k: str(v) if k == "path" else str(v).replace("\r", " ").replace("\n", " ")
        for k, v in flat.items()
    }


class _LineSink:
    """Append-only JSONL/CSV with one fsync per row; resume trims a torn last line."""

    def __init__(self, path: Path, kind: str, resume: bool):
        self.path, self.kind = path, kind
        done: set[str] = set()
        if resume and path.exists():
            done = self._recover()
        self.done = done
        fresh = not path.exists() or path.stat().st_size == 0
        self.f = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 (closed by close())
        if kind == "csv" and fresh:
            self._write(",".join(CSV_COLUMNS) + "\r\n")

    def _recover(self) -> set[str]:
        data = self.path.read_bytes()
        # rows end in \r\n in CSV (a quoted file name may hold a bare \n), \n in JSONL
        end = b"\r\n" if self.kind == "csv" else b"\n"
        cut = data.rfind(end) + len(end) if data.rfind(end) != -1 else 0
        if cut != len(data):  # a torn last line from a kill mid-write
            with open(self.path, "r+b") as f:
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
            data = data[:cut]
        text = data.decode("utf-8", "replace")
        if self.kind == "jsonl":
            done = set()
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        done.add(json.loads(line)["path"])
                    except (ValueError, KeyError, TypeError):
                        raise ConfigError(
                            f"line {n} is not a scan row; cannot resume", path=self.path
                        ) from None
            return done
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames and tuple(reader.fieldnames) != CSV_COLUMNS:
            raise ConfigError(
                "this CSV was written with other columns (an older provkit); "
                "cannot resume into it: pass --force or a new --out",
                path=self.path,
            )
        return {r["path"] for r in reader if r.get("path")}

    def _write(self, text: str) -> None:
        self.f.write(text)
        self.f.flush()
        os.fsync(self.f.fileno())

    def write(self, row: dict) -> None:
        if self.kind == "jsonl":
            self._write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        else:
            buf = io.StringIO()
            csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\r\n").writerow(_csv_row(row))
            self._write(buf.getvalue())
        self.done.add(row["path"])

    def counts(self) -> dict[str, int]:
        self.f.flush()
        text = self.path.read_text(encoding="utf-8")
        rows = (
            [json.loads(x) for x in text.splitlines() if x.strip()]
            if self.kind == "jsonl"
            else list(csv.DictReader(io.StringIO(text)))
        )
        return _count(r.get("verdict") or None if not r.get("error") else None for r in rows)

    def close(self) -> None:
        self.f.close()


class _DbSink:
    """A ``scan_results`` table keyed by path; each row committed as it arrives."""

    def __init__(self, path: Path, resume: bool):
        self.db = connect(path)
        self.db.conn.execute(
            "CREATE TABLE IF NOT EXISTS scan_results (path TEXT PRIMARY KEY, verdict TEXT, "
            "score REAL, decided_by TEXT, evidence TEXT, duplicates TEXT, error TEXT, "
            "scanned_at TEXT, asset TEXT, decision TEXT)"
        )
        have = {r[1] for r in self.db.conn.execute("PRAGMA table_info(scan_results)")}
        for column in ("asset", "decision"):  # a table written by an older provkit
            if column not in have:
                self.db.conn.execute(f"ALTER TABLE scan_results ADD COLUMN {column} TEXT")
        self.db.conn.commit()
        self.done = {r[0] for r in self.db.conn.execute("SELECT path FROM scan_results")}

    def write(self, row: dict) -> None:
        self.db.conn.execute(
            "INSERT OR IGNORE INTO scan_results (path, verdict, score, decided_by, evidence, "
            "duplicates, error, scanned_at, asset, decision) VALUES (?, ?, ?, ?, ?, ?, ?, "
            "strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?, ?)",
            [
                row["path"],
                row["verdict"],
                row.get("score"),
                json.dumps(row.get("decided_by")),
                json.dumps(row.get("evidence"), default=str),
                json.dumps(row.get("duplicates"), default=str),
                row.get("error"),
                json.dumps(row.get("asset"), default=str),
                json.dumps(row.get("decision"), default=str) if row.get("decision") else None,
            ],
        )
        self.db.conn.commit()
        self.done.add(row["path"])

    def counts(self) -> dict[str, int]:
        rows = self.db.conn.execute("SELECT verdict, error FROM scan_results").fetchall()
        return _count(v if not e else None for v, e in rows)

    def close(self) -> None:
        self.db.conn.close()


def _count(verdicts: Iterable) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in verdicts:
        key = v or "error"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _has_rows(out: Path, kind: str) -> bool:
    """Whether an output holds any scan row (a CSV header alone, or blank lines, do not)."""
    if not out.exists() or out.stat().st_size == 0:
        return False
    if kind == "db" or out.stat().st_size > 64 << 10:
        return True
    text = out.read_text(encoding="utf-8", errors="replace")
    if kind == "csv":
        lines = [line for line in text.splitlines() if line.strip()]
        return lines not in ([], [",".join(CSV_COLUMNS)], [",".join(LEGACY_CSV_COLUMNS)])
    return bool(text.strip())


def open_sink(out, *, resume: bool = False, force: bool = False):
    out = Path(out)
    kind = FORMATS.get(out.suffix.lower())
    if kind is None:
        raise BadInput("output must end in .jsonl, .csv or .db", path=out)
    exists = _has_rows(out, kind)
    if exists and not resume:
        if not force:
            raise ConfigError(
                "output exists; pass --resume to continue that scan or --force to start again",
                path=out,
            )
        out.unlink()
        for extra in (out.with_name(out.name + "-wal"), out.with_name(out.name + "-shm")):
            extra.unlink(missing_ok=True)
    elif not exists and kind != "db":
        out.unlink(missing_ok=True)  # a header or blank lines only: start it afresh
    out.parent.mkdir(parents=True, exist_ok=True)
    return _DbSink(out, resume) if kind == "db" else _LineSink(out, kind, resume)


# -- workers -----------------------------------------------------------------------------

_DETECTOR = None
_INIT_ERROR: BaseException | None = None


def _init_worker(options: dict, threads: int | None) -> None:
    global _DETECTOR, _INIT_ERROR
    try:
        if threads and (options.get("probe") or options.get("clip")):  # torch only if used
            require("clip", "torch", what="CLIP detection").set_num_threads(threads)
        _DETECTOR = Detector(**options)
    except Exception as e:  # noqa: BLE001  # reported by the first task, so the pool does not respawn forever
        _INIT_ERROR = e


def _detect_chunk(paths: list[str]) -> list[dict]:
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    results = detect(paths, detector=_DETECTOR)
    return [row_for(p, r) for p, r in zip(paths, results)]


@dataclass(frozen=True)
class ScanSummary:
    out: str
    total: int
    scanned: int
    resumed: int
    errors: int
    seconds: float
    by_verdict: dict = field(default_factory=dict)
    by_outcome: dict = field(default_factory=dict)  # this run's decisions (with a pack)
    skipped: list = field(default_factory=list)  # [{"path", "reason"}]: files not scanned

    @property
    def rate(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {
            "out": self.out,
            "total": self.total,
            "scanned": self.scanned,
            "resumed": self.resumed,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.rate, 2),
            "by_verdict": self.by_verdict,
            "by_outcome": self.by_outcome,
            "skipped": self.skipped,
        }


#: Default seconds one file may take in a scan before it is recorded as an error and skipped.
TIME_LIMIT = 60.0


def scan(
    source,
    out,
    *,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    chunk_size: int | None = None,
    time_limit: float | None = TIME_LIMIT,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    judge: Callable[[list[dict]], None] | None = None,
    **detector_options,
) -> ScanSummary:
    """``provkit scan``: detect every image of ``source`` into ``out`` (.jsonl/.csv/.db);
    see the module doc. An output with rows is continued with ``resume`` or replaced
    with ``force``, never silently.

    ``detector_options`` go to :class:`~detect.verdict.Detector` (db, probe, clip,
    index_sets, trust, threshold). ``progress(n)`` is called as rows land;
    ``on_start(n_todo)`` once the work is known. ``time_limit``: seconds one file may
    take (default :data:`TIME_LIMIT`; None for none); a file over it becomes an error row.
    Rows are keyed by absolute path, so a
    scan resumed from another folder skips what is done.

    ``judge(rows)``, when given, is called on each batch of rows before they are written
    (the app's ``provkit scan --pack`` passes one that puts the pack's decision into each
    row: :func:`provkit.answers.scan_judge`); a ``decision`` it leaves in a row is counted in
    ``by_outcome``.
    """
    paths = [
        os.path.abspath(p)
        for p in (image_paths(source) if not isinstance(source, (list, tuple)) else source)
    ]
    for key in ("db", "probe"):  # workers get paths, not live objects
        if detector_options.get(key) is not None and not isinstance(
            detector_options[key], (str, Path)
        ):
            raise ConfigError(f"scan takes {key} as a path")
    check_options(**detector_options)  # in this process, before any output is written
    detector_options = {**detector_options, "time_limit": time_limit}
    sink = open_sink(out, resume=resume, force=force)
    start = time.perf_counter()
    scanned = errors = 0
    outcomes: dict[str, int] = {}
    try:
        done = sink.done | {os.path.abspath(p) for p in sink.done if os.path.isabs(p)}
        todo = [p for p in dict.fromkeys(paths) if p not in done]
        resumed = len(set(paths) & done)
        if on_start:
            on_start(len(todo))
        workers = max(1, workers or min(4, os.cpu_count() or 1))
        workers = min(workers, max(1, len(todo)))
        size = chunk_size or max(1, min(8, len(todo) // (workers * 4) or 1))
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        for rows in _run(chunks, workers, detector_options):
            if judge:
                judge(rows)
            for row in rows:
                sink.write(row)
                scanned += 1
                errors += row["error"] is not None
                if row.get("decision"):
                    outcome = row["decision"]["outcome"]
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if progress:
                progress(len(rows))
        counts = sink.counts()
    finally:
        sink.close()
    return ScanSummary(
        out=str(out),
        total=len(dict.fromkeys(paths)),
        scanned=scanned,
        resumed=resumed,
        errors=errors,
        seconds=time.perf_counter() - start,
        by_verdict=counts,
        by_outcome=dict(sorted(outcomes.items())),
        skipped=[]
        if isinstance(source, (list, tuple))
        else [{"path": str(p), "reason": why} for p, why in skipped_files(source)],
    )


def _start_method(options: dict) -> str:
    """How worker processes start. With a classifier (torch, whose threads do not survive
    a fork) each is spawned and loads the models once; without one they are forked from
    this process, which has already imported the detector and loaded the compiled mark
    reader, so a worker starts in milliseconds instead of re-importing everything
    (measured: about 1.7 s of CPU a worker on 2 shared cores, a third of a 100-image
    scan's CPU time at 1 MP). ``PROVKIT_SCAN_START=spawn`` spawns them always (the
    bench's path as it was)."""
    if os.environ.get("PROVKIT_SCAN_START") == "spawn":
        return "spawn"
    if options.get("probe") or options.get("clip") or "torch" in sys.modules:
        return "spawn"
    if "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    warm_readers()
    return "fork"


def _run(chunks: Sequence[list[str]], workers: int, options: dict):
    if not chunks:
        return
    if workers == 1:
        detector = Detector(**options)
        for chunk in chunks:
            yield [row_for(p, r) for p, r in zip(chunk, detect(chunk, detector=detector))]
        return
    ctx = multiprocessing.get_context(_start_method(options))
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(options, threads))
    try:
        yield from pool.imap_unordered(_detect_chunk, chunks)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
