"""The generation log: one row per image asked for, and the quarantine folder.

Table ``generations`` in the workspace database: ``run_id, idx, seed, asset_id, status
(released | failed | refused | withheld | review), stage, reason, path, backend, model,
weights_sha256, prompt_sha256, created``. Outputs are sealed in ``$PROVKIT_HOME/staging``
until their checks pass; outputs a policy withholds are moved to ``$PROVKIT_HOME/quarantine``.
"""

from __future__ import annotations

from pathlib import Path

from provkit.provenance.core import workspace
from provkit.provenance.core.clock import now_iso


def _create_generations(db) -> None:
    db["generations"].create(
        {
            "run_id": str,
            "idx": int,
            "seed": int,
            "asset_id": str,
            "status": str,
            "stage": str,
            "reason": str,
            "path": str,
            "backend": str,
            "model": str,
            "weights_sha256": str,
            "prompt_sha256": str,
            "created": str,
        },
        pk=("run_id", "idx"),
    )
    db["generations"].create_index(["asset_id"])


def open_log(db):
    db = workspace.database(db)
    workspace.migrate(db, "generate.generations", [_create_generations])
    return db


def record(
    db,
    run_id,
    info,
    request,
    *,
    idx,
    seed,
    status,
    asset_id=None,
    stage=None,
    reason=None,
    path=None,
):
    with db.conn:
        db["generations"].insert(
            {
                "run_id": run_id,
                "idx": idx,
                "seed": seed,
                "asset_id": asset_id,
                "status": status,
                "stage": stage,
                "reason": reason,
                "path": path,
                "backend": info.name,
                "model": info.model,
                "weights_sha256": info.weights_sha256,
                "prompt_sha256": request.prompt_sha256,
                "created": now_iso(),
            },
            replace=True,
        )


def generations(db=None, *, run_id: str | None = None, status: str | None = None) -> list[dict]:
    """Rows of the generation log (one per image asked for), newest first."""
    db = open_log(db)
    where, params = [], []
    if run_id:
        where.append("run_id = ?")
        params.append(run_id)
    if status:
        where.append("status = ?")
        params.append(status)
    return list(
        db["generations"].rows_where(
            " AND ".join(where) or None, params, order_by="created DESC, rowid DESC"
        )
    )


def quarantine_dir() -> Path:
    path = workspace.home() / "quarantine"
    path.mkdir(parents=True, exist_ok=True)
    return path


def staging_dir() -> Path:
    """Where outputs are sealed before their checks decide whether they are released."""
    path = workspace.home() / "staging"
    path.mkdir(parents=True, exist_ok=True)
    return path
