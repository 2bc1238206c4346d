"""The SHA-256 that names a model's weights, computed once per file version.

Hashing a checkpoint is slow (a ViT-L CLIP is about 1.7 GB, a diffusion pipeline
several GB), and every process that names a model (a scan's workers, each generation
run) needs the digest. :func:`weights_sha256` keeps the answers in
``$PROVKIT_HOME/cache/weights-sha256.json``, keyed by the path, size and modification
time of every file that went in, so a changed file is hashed again and an unchanged
one never is.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.files import atomic_write, file_sha256
from provkit.provenance.core.workspace import home

#: Files that count as weights inside a model folder (others, e.g. configs, are ignored
#: unless the folder holds none of these).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".onnx", ".gguf", ".msgpack")


def cache_path() -> Path:
    return home() / "cache" / "weights-sha256.json"


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, or of a model folder (each weights file by relative path).

    BadInput if there is no such file or folder. The result is cached (see module doc)."""
    root = Path(path)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
        if not files:
            files = sorted(p for p in root.rglob("*") if p.is_file())
    else:
        raise BadInput("no such weights file or model folder", path=root)
    # ctime and inode too: copy tools can restore a size and mtime, not these
    stamp = [
        (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        for p in files
        for st in (p.stat(),)
    ]
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()
    cache = _read_cache()
    if key in cache:
        return cache[key]
    if root.is_file():
        digest = file_sha256(root)
    else:
        outer = hashlib.sha256()
        for p in files:
            outer.update(f"{p.relative_to(root).as_posix()}\0{file_sha256(p)}\n".encode())
        digest = outer.hexdigest()
    cache = _read_cache()  # another process may have added entries meanwhile
    cache[key] = digest
    _write_cache(cache)
    return digest


def _read_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict) -> None:
    path = cache_path()
    try:
        atomic_write(path, json.dumps(cache).encode())
    except OSError:
        return  # a read-only home only costs a re-hash next time
