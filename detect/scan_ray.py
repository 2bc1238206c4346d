"""Batch detection on a Ray cluster: the local scan's per-file pipeline as a Ray Data job.

``provkit scan SOURCE --engine ray [--address ADDR]`` (library: :func:`scan_ray`):

- the source is listed in a Ray task (on the cluster, where the files are): a folder,
  a list file (one path a line) or a Parquet/JSONL manifest with a ``path`` (or
  ``uri``) column of local paths or URIs that pyarrow's filesystems read;
- the paths become a Ray Dataset; ``map_batches`` runs :class:`ScanWorker`, a callable
  class, so each actor of the pool builds one :class:`~detect.verdict.Detector`
  (models, probe, CLIP, reference sets loaded once per actor) and calls the same
  ``Detector.run`` + ``row_for`` the local scan's workers call, so a change to the
  pipeline reaches both engines. With a probe or CLIP model and GPUs in the cluster,
  each actor asks for ``num_gpus``; the CLIP classifier then runs on that GPU;
- the workspace database (its reference sets, ledger and keys) is snapshotted once
  and broadcast with ``ray.put``, together with every reference set already loaded
  in memory: an actor maps both from the object store (zero-copy on one node) and
  reads nothing from the driver's disk;
- the driver writes rows as batches finish, through the local scan's sinks (.jsonl,
  .csv, .db: one row per file, the same columns, errors as rows) or as Parquet part
  files in a ``.parquet`` folder (nested columns JSON-encoded). A path already written
  is never written twice, so a retried batch cannot duplicate a row; ``resume=True``
  skips every path already in the output.

Fault tolerance is Ray's: an actor that dies is restarted and its batch retried
(Ray Data's actor pools retry without limit), so a killed worker loses no row.
Without ``address`` a local Ray instance is started for the scan and stopped after.
Ray is imported only here and only when a scan runs.

Why one module of over 400 lines: listing, the actor, the Parquet sink and the driver
loop share the one rule that a path is written once; splitting them would spread it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from provkit.detect.index_cache import load_set, preload
from provkit.detect.scan import FORMATS, ScanSummary, open_sink, row_for
from provkit.detect.verdict import Detector, check_options
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.imageio import image_paths
from provkit.provenance.core.workspace import connect, default_db_path

#: Files per batch handed to an actor.
BATCH_SIZE = 8
#: Manifest columns that name a file, in order of preference.
PATH_COLUMNS = ("path", "uri", "url", "file")
#: Output row columns stored as they are in Parquet (others are JSON text).
PARQUET_SCALARS = ("path", "verdict", "score", "error")


# -- inputs ------------------------------------------------------------------------------


def _is_uri(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def list_source(source) -> list[str]:
    """The files of a scan source: a folder, an image, a list file, or a Parquet or
    JSONL manifest with a ``path``/``uri`` column (paths or URIs pyarrow can read)."""
    src = Path(source)
    suffix = src.suffix.lower()
    if src.is_file() and suffix in (".parquet", ".jsonl", ".ndjson"):
        return _manifest(src)
    if src.is_dir() and suffix == ".parquet":
        return _manifest(src)
    return [str(p) for p in image_paths(src)]


def _manifest(src: Path) -> list[str]:
    import pyarrow as pa

    try:
        if src.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(src)
        else:
            import pyarrow.json as pj

            table = pj.read_json(src)
    except (pa.ArrowInvalid, OSError) as e:
        raise BadInput(f"cannot read manifest ({e})", path=src) from None
    column = next((c for c in PATH_COLUMNS if c in table.column_names), None)
    if column is None:
        raise BadInput(
            f"manifest has no {' or '.join(PATH_COLUMNS)} column "
            f"(columns: {', '.join(table.column_names)})",
            path=src,
        )
    out = []
    for value in table.column(column).to_pylist():
        if value is None or not str(value).strip():
            continue
        text = str(value).strip()
        if not _is_uri(text):
            text = text.removeprefix("file://")
            p = Path(text).expanduser()
            text = str(p if p.is_absolute() else src.parent / p)
        out.append(text)
    return out


def _fetch(uri: str, folder: str) -> str:
    """A local copy of a file named by a URI (s3://, gs://, hdfs://...) via pyarrow."""
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    local = os.path.join(folder, secrets.token_hex(8) + Path(path).suffix)
    with filesystem.open_input_stream(path) as src, open(local, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return local


# -- the workers -------------------------------------------------------------------------


class ScanWorker:
    """One actor of the pool: a Detector built once, then batches of paths to rows."""

    def __init__(self, options: dict, snapshot: list, sets: list):
        import ray

        self.tmp = tempfile.mkdtemp(prefix="provkit-scan-")
        options = dict(options)
        if snapshot:  # the broadcast database, written once for this actor
            data = ray.get(snapshot[0])
            db_path = os.path.join(self.tmp, "provkit.db")
            with open(db_path, "wb") as f:
                f.write(data)
            options["db"] = db_path
            loaded = ray.get(sets[0]) if sets else {}
            if loaded:
                handle = connect(db_path)
                for name, s in loaded.items():
                    preload(handle, name, s)
                handle.conn.close()
        threads = options.pop("_threads", None)
        if threads and (options.get("probe") or options.get("clip")):
            import torch

            torch.set_num_threads(threads)
        self.options = options
        self.detector = None
        self.thread = None
        self._detector()  # models and sets load now, before the first batch

    def _detector(self):
        """The Detector for the calling thread (its SQLite handle is bound to one thread;
        Ray may construct the actor and call it from different threads)."""
        if self.detector is None or self.thread != threading.get_ident():
            self.detector = Detector(**self.options)
            self.thread = threading.get_ident()
        return self.detector

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        local = []
        fetch_errors = {}
        for p in paths:
            if _is_uri(p):
                try:
                    local.append(_fetch(p, self.tmp))
                except Exception as e:  # noqa: BLE001 (one unreadable URI is one error row)
                    fetch_errors[p] = BadInput(f"cannot fetch ({e})", path=p)
                    local.append(None)
            else:
                local.append(p)
        todo = [lp for lp in local if lp is not None]
        results = iter(self._detector().run(todo))
        rows = []
        for p, lp in zip(paths, local):
            if lp is None:
                rows.append(row_for(p, fetch_errors[p]))
                continue
            row = row_for(lp, next(results))
            if lp != p:  # a fetched copy: the row names the URI
                row["path"] = p
                os.unlink(lp)
            rows.append(row)
        return {
            "path": paths,
            "row": [json.dumps(r, default=str, ensure_ascii=False) for r in rows],
        }


# -- outputs -----------------------------------------------------------------------------


class ParquetSink:
    """Rows as Parquet part files in a folder (``scan.parquet/part-*.parquet``), each
    written whole under a temporary name; nested columns as JSON text."""

    def __init__(self, folder: Path, resume: bool, force: bool, rows_per_file: int = 512):
        import pyarrow.parquet as pq

        self.folder, self.rows_per_file = folder, rows_per_file
        parts = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
        if parts and not resume:
            if not force:
                raise ConfigError(
                    "output exists; pass --resume to continue that scan or --force to start again",
                    path=folder,
                )
            shutil.rmtree(folder)
            parts = []
        if folder.exists() and not folder.is_dir():
            raise ConfigError("a .parquet output is a folder of part files", path=folder)
        folder.mkdir(parents=True, exist_ok=True)
        for tmp in folder.glob(".tmp-*"):  # torn by a kill mid-write
            tmp.unlink()
        self.done: set[str] = set()
        for part in parts:
            self.done.update(pq.read_table(part, columns=["path"]).column("path").to_pylist())
        self.pending: list[dict] = []
        self.counts: dict[str, int] = {}
        for part in parts:
            t = pq.read_table(part, columns=["verdict", "error"]).to_pylist()
            for r in t:
                key = r["verdict"] if not r["error"] else "error"
                self.counts[key or "error"] = self.counts.get(key or "error", 0) + 1

    def write(self, row: dict) -> None:
        self.pending.append(row)
        self.done.add(row["path"])
        key = (row.get("verdict") if not row.get("error") else None) or "error"
        self.counts[key] = self.counts.get(key, 0) + 1
        if len(self.pending) >= self.rows_per_file:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, list] = {}
        for row in self.pending:
            for k in row:
                columns.setdefault(k, [])
        for k in columns:
            if k in PARQUET_SCALARS:
                columns[k] = [r.get(k) for r in self.pending]
            else:
                columns[k] = [
                    json.dumps(r.get(k), default=str, ensure_ascii=False) for r in self.pending
                ]
        table = pa.table(columns)
        name = f"part-{time.time_ns():020d}-{secrets.token_hex(3)}.parquet"
        tmp = self.folder / f".tmp-{name}"
        pq.write_table(table, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, self.folder / name)
        self.pending = []

    def close(self) -> None:
        self.flush()


def read_parquet_rows(folder) -> list[dict]:
    """The rows of a Parquet scan output, nested columns decoded (as in JSONL)."""
    import pyarrow.parquet as pq

    rows = []
    for part in sorted(Path(folder).glob("part-*.parquet")):
        for r in pq.read_table(part).to_pylist():
            rows.append({k: (v if k in PARQUET_SCALARS else json.loads(v)) for k, v in r.items()})
    return rows


def _open_output(out: Path, resume: bool, force: bool):
    if out.suffix.lower() == ".parquet":
        return ParquetSink(out, resume, force)
    if FORMATS.get(out.suffix.lower()) is None:
        raise BadInput("output must end in .jsonl, .csv, .db or .parquet", path=out)
    return open_sink(out, resume=resume, force=force)


# -- the job -----------------------------------------------------------------------------


def start_ray(address: str | None = None, *, num_cpus: int | None = None, tries: int = 3, **kwargs):
    """``ray.init`` for a scan: connect to ``address``, or start a local instance.

    Ray waits a fixed 30 s for a new node's raylet to register; on a loaded machine it
    can miss that, so a local start is retried (after stopping what it started)."""
    import ray

    kwargs = {
        "include_dashboard": False,
        "logging_level": "WARNING",
        "log_to_driver": False,
        **kwargs,
    }
    if address:
        return ray.init(address=address, **kwargs)
    for attempt in range(tries):
        try:
            return ray.init(num_cpus=num_cpus, **kwargs)
        except Exception as e:
            ray.shutdown()
            if "timed out during startup" not in str(e) or attempt == tries - 1:
                raise
    return None


def _snapshot(db) -> bytes:
    """A consistent copy of the workspace database (SQLite's backup API)."""
    path = Path(db) if db is not None else default_db_path()
    if not path.exists():
        return b""
    with tempfile.TemporaryDirectory(prefix="provkit-snap-") as tmp:
        dst_path = os.path.join(tmp, "snap.db")
        src = sqlite3.connect(str(path))
        dst = sqlite3.connect(dst_path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return Path(dst_path).read_bytes()


def _loaded_sets(db, wanted) -> dict:
    """Every reference set searched, in memory (for the broadcast)."""
    path = Path(db) if db is not None else default_db_path()
    if not path.exists():
        return {}
    handle = connect(path)
    try:
        names = [r[0] for r in handle.conn.execute("SELECT name FROM ref_sets ORDER BY name")]
    except sqlite3.OperationalError:  # no banks table yet
        handle.conn.close()
        return {}
    try:
        return {n: load_set(handle, n) for n in names if not wanted or n in wanted}
    finally:
        handle.conn.close()


def scan_ray(
    source,
    out,
    *,
    address: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    judge: Callable[[list[dict]], None] | None = None,
    **detector_options,
) -> ScanSummary:
    """Detect every file of ``source`` into ``out`` on a Ray cluster (see module doc).

    ``address``: an existing cluster (``ray://`` or ``host:port``); None starts a local
    Ray instance for this scan and stops it after. ``workers``: actors in the pool
    (default: the cluster's CPUs). ``out``: .jsonl, .csv, .db or a .parquet folder.
    ``detector_options`` as for :func:`detect.scan.scan`. ``judge(rows)``, as there, is
    called here on the driver on each batch of rows before they are written (the
    decision is the pack's, so it is made once, in one audit log, not on the workers).
    """
    import ray

    for key in ("db", "probe"):
        value = detector_options.get(key)
        if value is not None and not isinstance(value, (str, Path)):
            raise ConfigError(f"scan takes {key} as a path")
    check_options(**detector_options)  # before anything is started or written
    out = Path(out)
    sink = _open_output(out, resume, force)
    started_here = False
    start = time.perf_counter()
    scanned = errors = 0
    outcomes: dict[str, int] = {}
    try:
        if not ray.is_initialized():
            start_ray(address, num_cpus=workers or None)
            started_here = True
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        where = Path(source)
        where = str(where.resolve()) if where.exists() else str(source)  # workers' cwd differs
        paths = ray.get(ray.remote(list_source).remote(where))
        unique = list(dict.fromkeys(paths))
        todo = [p for p in unique if p not in sink.done]
        resumed = len(unique) - len(todo)
        if on_start:
            on_start(len(todo))
        if todo:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            pool = max(1, min(workers or cpus, len(todo)))
            gpus = ray.cluster_resources().get("GPU", 0)
            wants_gpu = bool(detector_options.get("probe") or detector_options.get("clip"))
            db = detector_options.get("db")
            snapshot = _snapshot(db)
            sets = _loaded_sets(db, detector_options.get("index_sets")) if snapshot else {}
            options = {**detector_options, "_threads": max(1, cpus // pool)}
            refs = ([ray.put(snapshot)] if snapshot else [], [ray.put(sets)] if sets else [])
            ds = ray.data.from_items(
                [{"path": p} for p in todo], override_num_blocks=max(1, min(len(todo), pool * 4))
            )
            ds = ds.map_batches(
                ScanWorker,
                fn_constructor_args=(options, *refs),
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=pool),
                num_cpus=1,
                num_gpus=(min(1.0, gpus / pool) if wants_gpu and gpus else 0),
            )
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
                rows = []
                for text in batch["row"]:
                    row = json.loads(text)
                    if row["path"] in sink.done:  # a retried batch: never a second row
                        continue
                    rows.append(row)
                if judge and rows:
                    judge(rows)
                for row in rows:
                    sink.write(row)
                    scanned += 1
                    errors += row["error"] is not None
                    if row.get("decision"):
                        outcome = row["decision"]["outcome"]
                        outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if progress and rows:
                    progress(len(rows))
        counts = sink.counts if isinstance(sink, ParquetSink) else sink.counts()
    finally:
        sink.close()
        if started_here:
            ray.shutdown()
    return ScanSummary(
        out=str(out),
        total=len(unique),
        scanned=scanned,
        resumed=resumed,
        errors=errors,
        seconds=time.perf_counter() - start,
        by_verdict=dict(sorted(counts.items())),
        by_outcome=dict(sorted(outcomes.items())),
    )


__all__ = ["ParquetSink", "ScanWorker", "list_source", "read_parquet_rows", "scan_ray", "start_ray"]
