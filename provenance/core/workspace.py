"""Where provkit keeps its state, and how it opens its database.

One fact each: the home directory (``$PROVKIT_HOME`` or the user data dir), the
default database path inside it, and the one way to open a database (sqlite-utils,
WAL journal, busy timeout), so concurrent processes can write safely.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from provkit.provenance.core.errors import BadInput

if TYPE_CHECKING:  # imported when a database is opened, not at start-up
    import sqlite_utils

BUSY_TIMEOUT_MS = 30_000


def home() -> Path:
    """The workspace directory; created on first use."""
    env = os.environ.get("PROVKIT_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("provkit", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_path() -> Path:
    return home() / "provkit.db"


def load_sqlite_utils():
    """Import sqlite-utils without pandas (the module; idempotent).

    sqlite-utils imports pandas when it is installed, only to store pandas timestamps,
    which provkit never does; that import is most of the time ``provkit check`` and
    ``detect`` spend loading (0.2-0.5 s of pandas on this machine's 2 cores). So while
    sqlite-utils loads, ``import pandas`` fails for it alone; pandas stays importable
    for everything else (Ray Data). When pandas or sqlite-utils is already loaded,
    nothing changes."""
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        import sqlite_utils

        return sqlite_utils
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        import sqlite_utils
    finally:
        sys.meta_path.remove(finder)
    return sqlite_utils


class _NoPandas:
    """A meta-path finder refusing pandas (see :func:`load_sqlite_utils`)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not loaded for sqlite-utils")


def connect(path: str | os.PathLike | None = None, *, create: bool = True) -> sqlite_utils.Database:
    """Open a provkit database with WAL, ``synchronous=FULL`` and a busy timeout.

    ``create=False`` is for commands that only read: a ``path`` that does not exist
    is then a BadInput ("no such database") instead of a new empty database (a typo
    in ``--db`` must not pass as an empty, intact log). The default workspace
    database (``path`` None) is always created when missing."""
    sqlite_utils = load_sqlite_utils()

    db_path = Path(path) if path is not None else default_db_path()
    if path is not None and not create and str(path) != ":memory:" and not db_path.exists():
        raise BadInput("no such database", path=db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit (a ledger row, an audit decision) survives a power cut once it
    # returns; NORMAL in WAL mode may lose the last commits before the cut.
    conn.execute("PRAGMA synchronous = FULL")
    return sqlite_utils.Database(conn)


def database(db=None, *, create: bool = True) -> sqlite_utils.Database:
    """The one coercion of a ``db`` argument: a path (str or PathLike) is opened with
    :func:`connect`, None opens the workspace database, and an open ``Database`` is
    returned as it is (the caller keeps ownership of it)."""
    if db is None or isinstance(db, (str, os.PathLike)):
        return connect(db, create=create)
    return db


def migrate(db: sqlite_utils.Database, component: str, steps: list) -> int:
    """Apply versioned migrations for one component, each exactly once.

    ``steps`` is an ordered list of callables ``step(db)``; the version stored in the
    ``_migrations`` table says how many have run. Returns the current version. The
    write lock is taken only when a step is due; a Database already seen up to date
    is not checked again.
    """
    with _migrated_lock:
        if _migrated.get(db, {}).get(component, -1) >= len(steps):
            return len(steps)
    conn = db.conn
    try:  # up to date already: no write lock needed (readers stay readers)
        row = conn.execute(
            "SELECT version FROM _migrations WHERE component = ?", [component]
        ).fetchone()
    except sqlite3.OperationalError:  # no _migrations table yet
        row = None
    if row is not None and row[0] >= len(steps):
        _remember(db, component, row[0])
        return len(steps)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (component TEXT PRIMARY KEY, version INTEGER)"
    )
    conn.commit()
    conn.execute("BEGIN IMMEDIATE")  # one migrator at a time across processes
    try:
        row = conn.execute(
            "SELECT version FROM _migrations WHERE component = ?", [component]
        ).fetchone()
        version = row[0] if row else 0
        for step in steps[version:]:
            step(db)
        if len(steps) > version:
            conn.execute(
                "INSERT INTO _migrations (component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                [component, len(steps)],
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    _remember(db, component, len(steps))
    return len(steps)


#: Database object -> {component: version} it is known to be migrated to, so a
#: component opened many times on one connection checks once.
_migrated: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_migrated_lock = threading.Lock()


def _remember(db, component: str, version: int) -> None:
    with _migrated_lock:
        _migrated.setdefault(db, {})[component] = version


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection):
    """``BEGIN IMMEDIATE`` (the write lock first) ... ``COMMIT`` around the block, rolled
    back on any exception; inside a transaction the caller already holds, nothing of its
    own: the block then commits or rolls back with the caller's."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
