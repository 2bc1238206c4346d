"""Writing files atomically: a private temp file beside the destination, fsync, rename.

A reader never sees a half-written file, and a failed write leaves whatever was
at the destination before untouched. Temp files are named ``.NAME.PID.RANDOM.tmp``;
one whose process is gone (a writer killed with ``kill -9``) is removed by the next
write into that folder (:func:`clean_stale`). Keys use ``mode=0o600``: the temp file has
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
import re
import secrets
import shutil
import stat
from pathlib import Path

from provkit.provenance.core.errors import BadInput

#: Block size of the cross-device copy in :func:`atomic_move`.
COPY_CHUNK = 1 << 20
#: provkit's temp file names: ``.NAME.PID.12HEX.tmp``.
_TMP_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def clean_stale(folder) -> list[Path]:
    """Remove provkit temp files in ``folder`` whose writing process no longer exists;
    returns what was removed. Other files (any name not provkit's) are never touched."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_NAME.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False):
            continue
        if not _alive(int(m.group(1))):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


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
    clean_stale(dest.parent)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
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


# --------------------------------------------------------------------------- reading


def regular_file(path: str | os.PathLike) -> Path:
    """``path`` if it names a regular file (links followed); BadInput otherwise.

    A named pipe, socket or device is never opened: opening a FIFO waits for a writer
    forever, and a device can be endless. A path with a NUL byte is refused too."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise BadInput("no such file", path=p) from None
    except ValueError:  # embedded NUL byte
        raise BadInput("the path contains a NUL byte", path=repr(str(p))) from None
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput("is a directory, not an image", path=p)
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a named pipe"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a device"
        )
        raise BadInput(f"not a regular file ({kind}); provkit reads only files", path=p)
    return p


def open_regular(path: str | os.PathLike):
    """A binary file object for a regular file, opened without blocking (a FIFO swapped
    in after the check is still never waited on)."""
    p = regular_file(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInput("not a regular file; provkit reads only files", path=p)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_head(path: str | os.PathLike, limit: int) -> bytes:
    """At most ``limit`` bytes from the start of a regular file."""
    with open_regular(path) as f:
        return f.read(limit)
