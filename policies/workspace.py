"""Where provkit keeps its state, and how it opens its database.

One fact each: the home directory (``$PROVKIT_HOME`` or the user data dir), the
default database path inside it, and the one way to open a database (sqlite-utils,
WAL journal, busy timeout), so concurrent processes can write safely.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

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


def connect(path: str | os.PathLike | None = None) -> sqlite_utils.Database:
    """Open (creating if needed) a provkit database with WAL and a busy timeout."""
    import sqlite_utils

    db_path = Path(path) if path is not None else default_db_path()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return sqlite_utils.Database(conn)


def migrate(db: sqlite_utils.Database, component: str, steps: list) -> int:
    """Apply versioned migrations for one component, each exactly once.

    ``steps`` is an ordered list of callables ``step(db)``; the version stored in the
    ``_migrations`` table says how many have run. Returns the current version.
    """
    conn = db.conn
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
    return len(steps)
