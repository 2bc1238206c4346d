"""HTTP routes of the policies package: policy check, packs, and the audit log.

Thin shells over :func:`policies.check.check` and :class:`policies.audit.AuditLog`.
Every decision made here is appended to the audit log with the calling token's
name as the actor. Only shipped packs can be named over HTTP (a path would read
the server's files).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile

from provkit.policies.audit import audit_store
from provkit.policies.check import check
from provkit.policies.pack import POINTS, load_pack, shipped_packs
from provkit.server.http import (
    ERRORS,
    ApiError,
    AuditRead,
    Caller,
    Read,
    Upload,
    Workdir,
    config,
    run_cpu_to_end,
)

router = APIRouter(responses=ERRORS)
Files = Annotated[list[UploadFile], File(description="One or more images.")]
Point = Annotated[str | None, Query(pattern="^(" + "|".join(POINTS).replace(".", r"\.") + ")$")]


def _pack(name: str):
    if name not in shipped_packs():
        raise ApiError(404, f"no policy pack {name!r} (packs: {', '.join(shipped_packs())})")
    return load_pack(name)


def check_rows(pack_name: str, paths, *, point=None, actor=None, db=None) -> list[dict]:
    """``provkit policy check --json``: one decision (or error) per file, each audited."""
    results = check(_pack(pack_name), paths, point=point, actor=actor, db=db)
    return [r.to_json() for r in results]


@router.get("/v1/policy/packs", tags=["policy"], summary="provkit policy list")
def packs(caller: Caller = Read) -> list[dict]:
    """The shipped policy packs and what they are for."""
    out = []
    for name in shipped_packs():
        pack = load_pack(name)
        out.append(
            {
                "name": name,
                "description": pack.description,
                "points": sorted({p for r in pack.rules for p in r.points}),
            }
        )
    return out


@router.post("/v1/policy/check", tags=["verbs", "policy"], summary="provkit policy check")
async def policy_check(
    request: Request,
    files: Files,
    pack: Annotated[str, Query(max_length=64)],
    point: Point = None,
    caller: Caller = Read,
    work: Workdir = Upload,
) -> list[dict]:
    """Decide for each upload under PACK (detection evidence in the decision context).

    Every decision is appended to the audit log with the token's name as the actor."""
    _pack(pack)
    paths = await work.save(files)
    rows = await run_cpu_to_end(
        request, check_rows, pack, paths, point=point, actor=caller.actor, db=config(request).db
    )
    return work.public(rows)


@router.get("/v1/audit", tags=["audit"], summary="provkit audit log")
def audit_log(
    request: Request,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    outcome: Annotated[str | None, Query(pattern="^(allow|deny|label|review)$")] = None,
    point: Point = None,
    actor: str | None = None,
    caller: Caller = AuditRead,
) -> dict:
    """Recorded decisions, oldest first, a page at a time: pass ``next_after`` back as
    ``after`` for the next page (null when this was the last)."""
    rows = list(
        audit_store(config(request).connection()).log(
            after=after, limit=limit + 1, outcome=outcome, point=point, actor=actor
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {"rows": rows, "next_after": rows[-1]["seq"] if more else None}


@router.get("/v1/audit/verify", tags=["audit"], summary="provkit audit verify")
def audit_verify(
    request: Request, expect_head: str | None = None, caller: Caller = AuditRead
) -> dict:
    """Recompute the hash chain; ``ok`` false names the first bad row."""
    return audit_store(config(request).connection()).verify(expect_head=expect_head).to_json()


__all__ = ["check_rows", "router"]
