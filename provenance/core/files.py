"""Writing files atomically: a private temp file beside the destination, fsync, rename.

A reader never sees a half-written file, and a failed write leaves whatever was
at the destination before untouched. Keys use ``mode=0o600``: the temp file has
that mode from its first byte. ``overwrite=False`` installs the file only if the
destination does not exist at that moment (a hard link, which cannot replace),
so two writers never silently clobber each other. :func:`atomic_move` moves a finished
file the same way, across file systems too.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from pathlib import Path

#: Block size of the cross-device copy in :func:`atomic_move`.
COPY_CHUNK = 1 << 20


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _install(tmp: Path, dest: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, dest)
        return
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(dest)) from None
    except OSError:  # no hard links on this file system: check, then rename
        if dest.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(dest)) from None
        os.replace(tmp, dest)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_file(dest, *, mode: int | None = None, overwrite: bool = True):
    """A binary file object (read-write) whose contents become ``dest`` on success.

    The temp file (``.NAME.RANDOM.tmp`` in ``dest``'s folder) is created exclusively,
    with ``mode`` when given; it is flushed and fsynced, then renamed into place when
    the ``with`` block ends without an exception, and removed otherwise. With
    ``overwrite=False`` an existing ``dest`` raises FileExistsError (and is kept)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666 if mode is None else mode)  # umask applies
            break
        except FileExistsError:
            continue
    f = os.fdopen(fd, "w+b")
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        if mode is not None:
            os.chmod(tmp, mode)
        _install(tmp, dest, overwrite)
        _fsync_dir(dest.parent)
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(dest, data: bytes, *, mode: int | None = None, overwrite: bool = True) -> None:
    """Write ``data`` to ``dest`` atomically (see :func:`atomic_file`)."""
    with atomic_file(dest, mode=mode, overwrite=overwrite) as f:
        f.write(data)


def atomic_move(src, dest) -> None:
    """Move ``src`` to ``dest`` all or nothing, never replacing a file at ``dest``.

    On one file system: a hard link, then the old name goes (a rename, after checking
    that ``dest`` is free, where the file system has no hard links). Across file
    systems (EXDEV): a copy into a temp file beside ``dest`` that takes its name only
    once complete (:func:`atomic_file`), and ``src`` goes only after
    that. Whatever fails or interrupts it, the file is whole at one of the two names
    and ``dest`` never holds part of it."""
    src, dest = Path(src), Path(dest)
    try:
        os.link(src, dest)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno != errno.EXDEV:  # no hard links on this file system
            if dest.exists():
                raise FileExistsError(errno.EEXIST, "file exists", str(dest)) from None
            try:
                os.rename(src, dest)
                return
            except OSError as e2:
                if e2.errno != errno.EXDEV:
                    raise
        with src.open("rb") as fin, atomic_file(dest, overwrite=False) as fout:
            shutil.copyfileobj(fin, fout, COPY_CHUNK)
    try:
        src.unlink()
    except BaseException:
        dest.unlink(missing_ok=True)  # src stays the one copy
        raise


def file_sha256(path) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
