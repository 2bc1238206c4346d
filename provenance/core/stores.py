"""The storage seam: one small interface per kind of workspace state, one backend chosen
by one setting.

Each kind of state has its interface (a ``typing.Protocol``) and its SQLite
implementation in the module that owns the state, and a factory that opens the store for
the configured backend:

| state | interface | SQLite implementation | factory |
| --- | --- | --- | --- |
| the ledger of issued assets | ``provenance.ledger.LedgerStore`` | ``SqliteLedgerStore`` | ``ledger_store(db)`` |
| the audit log | ``policies.audit.AuditStore`` | ``SqliteAuditStore`` | ``audit_store(db)`` |
| API tokens | ``provkit.server.tokens.TokenStore`` | ``SqliteTokenStore`` | ``token_store(db)`` |
| bank metadata | ``detect.index_bank.BankStore`` | ``SqliteBankStore`` | ``bank_store(db)`` |
| the Merkle logs (assets, decisions) | ``provenance.core.tlog.TlogStore`` | ``SqliteTlogStore`` | ``tlog_store(db)`` |

Nothing outside those store classes touches ``sqlite_utils.Database``. The ledger and
audit stores append their rows' Merkle leaves through the log store on their own
connection, inside the row's transaction (one commit for both). The backend is
``[storage] backend`` in provkit.toml (default and, today, only value: ``sqlite``). A
second backend (PostgreSQL, for several service replicas sharing one database) is one
more class per interface plus one branch in each factory, registered in
``config.STORAGE_BACKENDS``; nothing above the stores changes.
"""

from __future__ import annotations

from provkit.provenance.core import config
from provkit.provenance.core.errors import ConfigError


def backend() -> str:
    """The configured storage backend (``[storage] backend``; default ``sqlite``)."""
    return config.load().get("storage.backend")


def require_sqlite(kind: str) -> None:
    """Refuse, with one line, a backend this build has no ``kind`` store for."""
    name = backend()
    if name != "sqlite":
        raise ConfigError(f"no {kind} store for storage backend {name!r} in this build")
