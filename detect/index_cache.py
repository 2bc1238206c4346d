"""Loading a reference set into memory, once per set version, through a file cache.

:func:`load_set` is the one loader (``dupes``, ``detect``, ``scan`` and the server use
it). A set's in-memory form (:class:`detect.index_search.LoadedSet`: contiguous arrays
of ids and codes, and the multi-index tables of the Hamming search) is read from
SQLite once, then saved next to the database as numpy ``.npy`` files::

    provkit.db.refsets/<set key>-<version>/{meta.json, ids.npy, pdq.words.npy, ...}

Later processes map those files (``np.load(mmap_mode="r")``) instead of reading the
rows again, so a 10M-code set opens in milliseconds and only the pages a query touches
are read. The folder name and ``meta.json`` carry the set's version; every change to a
set stamps a new version, so a stale cache is never used: it is rebuilt on the next
load and the old folder removed. A folder is written under a temporary name and
renamed into place, so a reader never sees half a cache. Small sets (under
:data:`DISK_MIN` codes) and in-memory databases are simply read from SQLite.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
from pathlib import Path

import numpy as np
from provkit.detect import hamming
from provkit.detect.hamming import HammingCodes
from provkit.detect.index_schema import hash_item_id
from provkit.detect.index_search import KIND_BITS, KindCodes, LoadedSet, arrays_from_rows
from provkit.provenance.core.errors import BadInput

#: Layout of the cache folders; a folder of another format is rebuilt.
FORMAT = 2  # 2: the multi-index's bucket-ordered words (sets up to 2M codes)
#: Sets with at least this many code rows are cached on disk.
DISK_MIN = 20_000
#: Rows read from SQLite per step when a set is (re)built.
READ_CHUNK = 200_000

_MEMORY: dict[tuple[str, str], LoadedSet] = {}
_LOCK = threading.Lock()
_KINDS = ("pdq", "phash", "dhash")


def db_key(db) -> str:
    """The file behind a sqlite-utils Database (or a per-connection key if in memory)."""
    row = db.execute("PRAGMA database_list").fetchone()
    return row[2] or f"memory:{id(db)}"


def cache_root(db) -> Path | None:
    """The folder holding the set caches of this database; None for an in-memory one."""
    path = db.execute("PRAGMA database_list").fetchone()[2]
    return Path(path + ".refsets") if path else None


def _set_key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def forget(db, name: str) -> None:
    """Drop this process's copy of a set (it is reloaded, by version, on next use)."""
    with _LOCK:
        _MEMORY.pop((db_key(db), name), None)


def preload(db, name: str, loaded: LoadedSet) -> None:
    """Hand this process a set already in memory (e.g. broadcast to a scan worker); it is
    used while the database holds the same version of the set."""
    with _LOCK:
        _MEMORY[(db_key(db), name)] = loaded


def set_version(db, name: str) -> str:
    row = db.execute("SELECT version FROM ref_sets WHERE name = ?", [name]).fetchone()
    if row is None:
        names = [r[0] for r in db.execute("SELECT name FROM ref_sets ORDER BY name")]
        known = f" (banks: {', '.join(names)})" if names else " (there are no banks yet)"
        raise BadInput(f"no bank named {name!r}" + known)
    return row[0]


def load_set(db, name: str) -> LoadedSet:
    """The set ``name`` of database ``db`` (a sqlite-utils Database) in memory.

    Returns this process's copy if it is of the set's current version; else maps the
    disk cache if it matches the version, else reads SQLite and writes the cache.
    BadInput if there is no such set.
    """
    version = set_version(db, name)
    key = (db_key(db), name)
    with _LOCK:
        cached = _MEMORY.get(key)
    if cached is not None and cached.version == version:
        return cached
    root = cache_root(db)
    loaded = open_cache(root, name, version) if root is not None else None
    if loaded is None:
        loaded = read_set(db, name, version)
        if root is not None and len(loaded.kinds) >= DISK_MIN:
            try:
                write_cache(root, name, loaded)
                loaded = open_cache(root, name, version) or loaded
            except OSError:  # a read-only or full disk: search from memory regardless
                pass
    with _LOCK:
        _MEMORY[key] = loaded
    return loaded


# -- reading SQLite ----------------------------------------------------------------------


def read_set(db, name: str, version: str) -> LoadedSet:
    """A set from SQLite: its image items (rows, read in chunks) and imported hash blocks."""
    image = _read_image_items(db, name)
    blocks = list(read_blocks(db, name))
    if not blocks:
        return LoadedSet.from_arrays(version, **image)
    img_rows = len(image["kinds"])
    hash_ids = [b["ids"] for b in blocks]
    n_hash = sum(len(i) for i in hash_ids)
    total = img_rows + n_hash
    ids = np.concatenate([image["ids"], *hash_ids])
    count = np.concatenate([image["count"], np.ones(n_hash, np.int64)])
    block_kinds = np.concatenate(
        [np.full(len(b["ids"]), KIND_BITS[b["kind"]], np.uint8) for b in blocks]
    )
    kinds = np.concatenate([image["kinds"], block_kinds])
    quality = np.concatenate([image["quality"], *[b["quality"] for b in blocks]])
    offsets = np.cumsum([0] + [len(i) for i in hash_ids]) + img_rows
    codes = {}
    for kind in _KINDS:
        words = [image[kind] if image[kind].ndim == 2 else image[kind][None, :]]
        rows = [np.arange(img_rows)]
        for b, at in zip(blocks, offsets):
            if b["kind"] == kind:
                words.append(b["words"])
                rows.append(np.arange(at, at + len(b["ids"])))
        w = np.concatenate(words, axis=1) if len(words) > 1 else words[0]
        r = np.concatenate(rows)
        codes[kind] = KindCodes(HammingCodes(w), None if len(r) == total else r, total)
    clip = image["clip"]
    if clip is not None:
        clip = np.concatenate([clip, np.full((n_hash, clip.shape[1]), np.nan, np.float32)])
    return LoadedSet.from_arrays(
        version,
        ids=ids,
        count=count,
        kinds=kinds,
        quality=quality,
        clip=clip,
        clip_model=image["clip_model"],
        **codes,
    )


def _read_image_items(db, name: str) -> dict:
    cur = db.conn.execute(
        """SELECT id, phash, dhash, pdq, pdq_quality, variants, clip, clip_model
           FROM ref_items WHERE set_name = ? ORDER BY id""",
        [name],
    )
    parts = []
    while True:
        rows = cur.fetchmany(READ_CHUNK)
        if not rows:
            break
        parts.append(arrays_from_rows(rows))
    if not parts:
        return arrays_from_rows([])
    if len(parts) == 1:
        return parts[0]
    arrays = {
        k: np.concatenate([p[k] for p in parts], axis=-1)
        for k in ("ids", "count", "kinds", "phash", "dhash", "pdq", "quality")
    }
    arrays["clip"] = arrays["clip_model"] = None
    clip_parts = [p for p in parts if p["clip"] is not None]
    if clip_parts:
        model = clip_parts[0]["clip_model"]
        dim = clip_parts[0]["clip"].shape[1]
        arrays["clip"] = np.concatenate(
            [
                p["clip"]
                if p["clip"] is not None and p["clip_model"] == model
                else np.full((len(p["ids"]), dim), np.nan, np.float32)
                for p in parts
            ]
        )
        arrays["clip_model"] = model
    return arrays


def block_words(kind: str, codes: bytes, n: int) -> np.ndarray:
    """A block's packed codes as (words, n) uint64 (PDQ: 4 words, pHash/dHash: 1)."""
    if kind == "pdq":
        return np.ascontiguousarray(np.frombuffer(codes, np.uint64).reshape(n, 4).T)
    return np.frombuffer(codes, ">u8").astype(np.uint64)[None, :]


def read_blocks(db, name: str):
    """Each imported hash block of a set: kind, item ids, words and qualities (removed
    hashes left out)."""
    for bid, kind, n, codes, quality, removed in db.conn.execute(
        """SELECT id, kind, n, codes, quality, removed FROM ref_hash_blocks
           WHERE set_name = ? ORDER BY id""",
        [name],
    ):
        ids = hash_item_id(bid, 0) + np.arange(n, dtype=np.int64)
        words = block_words(kind, codes, n)
        qual = np.frombuffer(quality, np.uint8)
        if removed:
            keep = np.frombuffer(removed, np.uint8) == 0
            ids, words, qual = ids[keep], np.ascontiguousarray(words[:, keep]), qual[keep]
        yield {"kind": kind, "ids": ids, "words": words, "quality": qual}


# -- the disk cache ----------------------------------------------------------------------


def _arrays_of(loaded: LoadedSet) -> dict[str, np.ndarray]:
    out = {
        "ids": loaded.ids,
        "start": loaded.start,
        "count": loaded.count,
        "owner": loaded.owner,
        "kinds": loaded.kinds,
        "quality": loaded.quality,
    }
    for kind in _KINDS:
        kc: KindCodes = getattr(loaded, kind)
        out[f"{kind}.words"] = kc.codes.words
        if kc.rows is not None:
            out[f"{kind}.rows"] = kc.rows
        if len(kc.codes) >= hamming.MIH_MIN:
            perm, offsets, bucket_words = kc.codes._multi_index()
            out[f"{kind}.mih_perm"], out[f"{kind}.mih_offsets"] = perm, offsets
            if bucket_words is not None:
                out[f"{kind}.mih_words"] = bucket_words
    if loaded.clip is not None:
        out["clip"] = loaded.clip
    return out


def write_cache(root: Path, name: str, loaded: LoadedSet) -> Path:
    """Save a loaded set's arrays under ``root`` (atomically); returns its folder."""
    root.mkdir(parents=True, exist_ok=True)
    key = _set_key(name)
    final = root / f"{key}-{loaded.version}"
    tmp = root / f".tmp-{key}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        sizes = {}
        for fname, arr in _arrays_of(loaded).items():
            arr = np.ascontiguousarray(arr)
            np.save(tmp / f"{fname}.npy", arr, allow_pickle=False)
            sizes[fname] = list(arr.shape)
        meta = {
            "format": FORMAT,
            "set": name,
            "version": loaded.version,
            "items": len(loaded.ids),
            "code_rows": len(loaded.kinds),
            "clip_model": loaded.clip_model,
            "arrays": sizes,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:  # the folder exists: another process wrote this version first,
            if open_cache(root, name, loaded.version) is None:  # or it is damaged or
                shutil.rmtree(final, ignore_errors=True)  # of an older format: replace it
                try:
                    os.rename(tmp, final)
                except OSError:  # a third process won that race: keep theirs
                    pass
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in root.glob(f"{key}-*"):  # older versions (open maps stay valid until closed)
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def open_cache(root: Path | None, name: str, version: str) -> LoadedSet | None:
    """Map the cached arrays of ``name`` at ``version``; None if absent, stale or damaged."""
    if root is None:
        return None
    folder = root / f"{_set_key(name)}-{version}"
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if (
            meta.get("format") != FORMAT
            or meta.get("version") != version
            or meta.get("set") != name
        ):
            return None
        arrays = {}
        for fname, shape in meta["arrays"].items():
            arr = np.load(folder / f"{fname}.npy", mmap_mode="r", allow_pickle=False)
            if list(arr.shape) != shape:
                return None
            arrays[fname] = np.asarray(arr)  # a plain view: np.memmap indexes through Python
    except (OSError, ValueError, KeyError, TypeError):
        return None
    total = meta["code_rows"]
    if len(arrays["ids"]) != meta["items"] or len(arrays["kinds"]) != total:
        return None
    kinds = {}
    for kind in _KINDS:
        codes = HammingCodes(arrays[f"{kind}.words"])
        if f"{kind}.mih_perm" in arrays:
            codes._mih = (
                arrays[f"{kind}.mih_perm"],
                arrays[f"{kind}.mih_offsets"],
                arrays.get(f"{kind}.mih_words"),
            )
        rows = arrays.get(f"{kind}.rows")
        if rows is None and len(codes) != total:
            return None
        kinds[kind] = KindCodes(codes, rows, total)
    return LoadedSet(
        version=version,
        ids=arrays["ids"],
        start=arrays["start"],
        count=arrays["count"],
        owner=arrays["owner"],
        kinds=arrays["kinds"],
        quality=arrays["quality"],
        clip=arrays.get("clip"),
        clip_model=meta.get("clip_model"),
        **kinds,
    )


__all__ = [
    "DISK_MIN",
    "KIND_BITS",
    "cache_root",
    "forget",
    "load_set",
    "open_cache",
    "preload",
    "read_set",
    "write_cache",
]
