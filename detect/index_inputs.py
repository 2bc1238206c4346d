"""Images going into a reference set: where they are, and their fingerprints.

Paths come from folders, image files, text lists or ``.jsonl`` lists with per-item
metadata. Each image is fingerprinted whole and as a few crops (so that a cropped
copy still matches), in worker processes across all cores; a file that cannot be
read becomes an error result, never an exception that stops the batch.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from provkit.provenance.core.errors import BadInput, ProvkitError
from provkit.provenance.core.imageio import MAX_LIST_BYTES, image_paths, read_head
from provkit.provenance.fingerprint import (
    Fingerprint,
    file_sha256,
    fingerprint_image,
    load_for_fingerprint,
    working_copy,
)

#: Crops fingerprinted at index time: (kept fraction of each side, x anchor, y anchor).
#: A cropped copy of a reference image is close to one of these.
CROPS = tuple((0.9, ax, ay) for ay in (0.0, 0.5, 1.0) for ax in (0.0, 0.5, 1.0)) + (
    (0.8, 0.5, 0.5),
    (0.7, 0.5, 0.5),
    (0.6, 0.5, 0.5),
)


#: One crop fingerprint, packed: pHash, dHash (big-endian), PDQ bytes, PDQ quality.
VARIANT = np.dtype([("phash", ">u8"), ("dhash", ">u8"), ("pdq", "V32"), ("quality", "u1")])


def read_sources(source: str | os.PathLike) -> tuple[list[Path], dict[str, dict]]:
    """Paths as :func:`provenance.core.imageio.image_paths`, plus per-item metadata from a ``.jsonl`` list.

    Each line of a ``.jsonl`` list is an object with ``path`` and any other fields
    (``source_url``, ``licence``, ``opt_out``...), which become that item's metadata.
    """
    src = Path(source)
    if src.suffix.lower() != ".jsonl" or src.is_dir():
        return image_paths(src), {}
    paths, meta = [], {}
    try:
        lines = read_head(src, MAX_LIST_BYTES).decode("utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as e:
        raise BadInput(f"cannot read list ({e})", path=src) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            p = Path(str(row.pop("path"))).expanduser()
        except (ValueError, KeyError, AttributeError, TypeError):
            raise BadInput(f'line {n} is not a JSON object with a "path"', path=src) from None
        p = p if p.is_absolute() else src.parent / p
        paths.append(p)
        meta[str(p)] = row
    return paths, meta


# -- fingerprinting (runs in worker processes) -----------------------------------------


def crop_fingerprints(img: Image.Image) -> list[Fingerprint]:
    """Fingerprints of the :data:`CROPS` of an image (computed on its working copy)."""
    work = working_copy(img)
    w, h = work.size
    out = []
    for keep, ax, ay in CROPS:
        cw, ch = max(1, round(w * keep)), max(1, round(h * keep))
        x, y = round((w - cw) * ax), round((h - ch) * ay)
        out.append(fingerprint_image(work.crop((x, y, x + cw, y + ch))))
    return out


#: Long side of the thumbnail stored per reference item.
THUMB_SIZE = 160


def thumbnail_jpeg(img: Image.Image) -> bytes:
    """A small JPEG of an image (long side :data:`THUMB_SIZE`), for showing matches."""
    import io

    small = img.convert("RGB")
    small.thumbnail((THUMB_SIZE, THUMB_SIZE))
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _pack_variants(fps: list[Fingerprint]) -> bytes:
    arr = np.zeros(len(fps), VARIANT)
    for i, fp in enumerate(fps):
        arr[i] = (fp.phash, fp.dhash, fp.pdq, fp.pdq_quality)
    return arr.tobytes()


def _fingerprint_job(args: tuple[str, bool]):
    """Worker: (path, crops) -> ("ok", path, fingerprint json, variants) or ("error", path, why)."""
    path, crops = args
    try:
        img = load_for_fingerprint(path)
        fp = fingerprint_image(img, sha256=file_sha256(path))
        variants = _pack_variants(crop_fingerprints(img)) if crops else b""
        return "ok", path, fp.to_json(), variants, thumbnail_jpeg(img)
    except ProvkitError as e:
        return "error", path, e.reason
    except Exception as e:  # noqa: BLE001 (a decoder bug on one file must not stop the batch)
        return "error", path, f"{type(e).__name__}: {e}"


def fingerprint_many(
    paths: list[str],
    *,
    crops: bool = True,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
):
    """Yield the worker results for each path, in input order, across processes."""
    import imagehash  # noqa: F401  (imported once here, not in every worker)
    import pdqhash  # noqa: F401

    workers = workers or os.cpu_count() or 1
    jobs = [(str(p), crops) for p in paths]
    if workers <= 1 or len(jobs) < 8:
        for job in jobs:
            yield _fingerprint_job(job)
            if progress:
                progress(1)
        return
    ctx = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    with ctx.Pool(workers) as pool:
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        for result in pool.imap(_fingerprint_job, jobs, chunksize=chunk):
            yield result
            if progress:
                progress(1)
