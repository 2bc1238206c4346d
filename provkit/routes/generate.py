"""HTTP route of the generate package: ``POST /v1/generate``.

A thin shell over :func:`generate.generator.generate` with the server's output
folder; every image leaves sealed (watermarked, signed, recorded) and checked by
the policy pack, with the calling token's name as the actor of its decisions.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from provkit.generate.generator import generate
from provkit.generate.request import MAX_SIDE, MIN_SIDE
from provkit.policies.pack import shipped_packs
from provkit.server.http import ERRORS, ApiError, Caller, Generate, config, out_dir, run_cpu_to_end

router = APIRouter(responses=ERRORS)


#: The service's cap on a generated side (the library allows up to MAX_SIDE; a public
#: endpoint keeps the cost of one request small). The smallest side is the library's own.
SERVICE_MAX_SIDE = min(1024, MAX_SIDE)


class GenerateRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=2000)
    n: int = Field(1, ge=1, le=4)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    width: int = Field(256, ge=MIN_SIDE, le=SERVICE_MAX_SIDE)
    height: int = Field(256, ge=MIN_SIDE, le=SERVICE_MAX_SIDE)
    format: str = Field("png", pattern="^(png|jpg|webp)$")
    policy: str | None = Field(None, description="A shipped policy pack checking the output")


@router.post(
    "/v1/generate",
    tags=["verbs"],
    summary="provkit generate",
    responses={
        200: {
            "content": {"image/*": {}, "application/json": {}},
            "description": "n=1: the sealed image (asset id in "
            "X-Provkit-Asset-Id); n>1: the run as JSON",
        }
    },
)
async def generate_route(
    request: Request, body: GenerateRequest, caller: Caller = Generate, as_json: bool = False
):
    """Generate sealed images with the built-in generator (no weights needed)."""
    if body.policy is not None and body.policy not in shipped_packs():
        raise ApiError(404, f"no policy pack {body.policy!r}")
    cfg = config(request)
    run = await run_cpu_to_end(
        request,
        generate,
        body.prompt,
        backend="builtin",
        n=body.n,
        out_dir=out_dir(cfg),
        seed=body.seed,
        size=(body.width, body.height),
        format=body.format,
        policy=body.policy,
        db=cfg.db,
        actor={"id": caller.actor},
    )
    data = run.to_json()
    if not run.sealed:
        why = "; ".join(f["error"] for f in data.get("failed", [])) or "no reason given"
        raise ApiError(422, f"no image was released: {why}")
    if body.n > 1 or as_json:
        return JSONResponse(data)
    image = run.sealed[0]
    return FileResponse(
        image.path,
        media_type=image.mime,
        filename=Path(image.path).name,
        headers={"X-Provkit-Asset-Id": image.asset_id, "X-Provkit-Manifest": image.manifest_label},
    )


__all__ = ["router"]
