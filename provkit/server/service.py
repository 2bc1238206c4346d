"""``provkit serve`` as a library call: :func:`serve` runs the app under uvicorn.

The settings travel to each worker process in an environment variable and
:func:`app_from_env` (uvicorn's app factory) builds the app from them there.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import sys
from pathlib import Path

from provkit.detect.verdict import check_options
from provkit.provenance.core.errors import ConfigError
from provkit.provenance.core.extras import require
from provkit.server import tokens as tokens_lib
from provkit.server.app import create_service, sweep_outputs
from provkit.server.budget import DEFAULT_PIXEL_BUDGET
from provkit.server.connections import CONFIG_ENV, Limits, uvicorn_options
from provkit.server.http import MAX_FILES, MAX_UPLOAD, QUEUE, TIME_LIMIT, ServiceConfig

#: The pixel limit of ``provkit serve`` when neither ``--max-pixels`` nor
#: ``$PROVKIT_MAX_PIXELS`` sets one: 50 MP (an 8160x6120 phone frame, a 45 MP camera)
#: decodes in about 0.9 GB at its peak, so one such image at a time fits a 2-core box
#: with a few GB beside the reference sets.
SERVE_MAX_PIXELS = 50_000_000
#: Refuse a file declaring more pixels than this per byte of file (a flat 49 MP WebP
#: fits in 34 bytes); real photographs and screenshots stay under 500.
SERVE_MAX_PIXELS_PER_BYTE = 4096
#: The pixel limit for anonymous callers under ``--public-read``: 24 MP (a 6000x4000
#: photograph), so that anyone on the internet costs at most half a token holder's image.
SERVE_PUBLIC_MAX_PIXELS = 24_000_000


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_from_env():
    """uvicorn's app factory (``--factory``): the app for the settings in the environment,
    behind the lookup fast path (:func:`provenance.server.app.create_service`)."""
    raw = json.loads(os.environ[CONFIG_ENV])
    max_pixels = raw.pop("max_pixels", None)
    refresh = raw.pop("refresh", 2.0)
    raw.pop("connections", None)  # read by the protocol (provkit.server.connections)
    raw.pop("grant_secret", None)  # read by provkit.server.grants
    public = {k: raw.pop(k) for k in ("public_detection", "public_rate") if k in raw}
    for key in ("out_dir", "temp_dir"):
        if raw.get(key):
            raw[key] = Path(raw[key])
    return create_service(ServiceConfig(**raw), refresh=refresh, max_pixels=max_pixels, **public)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int | None = None,
    queue: int = QUEUE,
    public_read: bool = False,
    max_upload: int = MAX_UPLOAD,
    max_files: int = MAX_FILES,
    max_pixels: int | None = None,
    time_limit: float = TIME_LIMIT,
    out_dir=None,
    db=None,
    probe=None,
    clip: str | None = None,
    max_pixels_per_byte: int | None = SERVE_MAX_PIXELS_PER_BYTE,
    pixel_budget: int = DEFAULT_PIXEL_BUDGET,
    public_url: str | None = None,
    public_max_pixels: int | None = SERVE_PUBLIC_MAX_PIXELS,
    limits: Limits | None = None,
    public_detection: bool = False,
    public_rate: float = 30.0,
) -> None:
    """``provkit serve``: the desk page and the HTTP API until stopped (see docs/serve.md).

    ``probe``/``clip``: the classifier every detect, policy check and desk request uses
    (as ``$PROVKIT_PROBE``/``$PROVKIT_CLIP`` for the CLI); checked before listening.
    ``max_pixels_per_byte`` (0 or None: off), ``public_max_pixels`` (the pixel limit
    for anonymous callers; None: the same as everyone's), ``pixel_budget`` (decoded pixels
    in flight per process), ``public_url`` (the base URL soft-binding answers name) and
    ``limits`` (timeouts and connection caps, :class:`provkit.server.connections.Limits`):
    see docs/serve.md, "Public deployment".

    ``public_detection``: serve the token-free SB 942 page and API (``/public``), each
    client limited to ``public_rate`` requests a minute.
    Refuses (ConfigError) to listen beyond loopback while no API token exists."""
    uvicorn = require("serve", "uvicorn", what="provkit serve")
    if not is_loopback(host) and not tokens_lib.any_active(db):
        raise ConfigError(
            f"refusing to listen on {host}: no API token exists; create one with "
            "`provkit tokens create NAME --scope read` (or listen on 127.0.0.1)"
        )
    if probe is not None or clip is not None:
        check_options(probe=probe, clip=clip)  # a bad probe or model: one line, no server
        for name, value in (("PROVKIT_PROBE", probe), ("PROVKIT_CLIP", clip)):
            if value is not None:  # the workers inherit them
                os.environ[name] = (
                    str(Path(value).resolve()) if name == "PROVKIT_PROBE" else str(value)
                )
    if max_pixels is None and not os.environ.get("PROVKIT_MAX_PIXELS", "").strip():
        max_pixels = SERVE_MAX_PIXELS
    limits = limits or Limits()
    settings = {
        "db": str(db) if db else None,
        "public_read": public_read,
        "max_upload": int(max_upload),
        "max_files": max_files,
        "time_limit": time_limit,
        "cpu_threads": threads or min(os.cpu_count() or 1, 4),
        "queue": queue,
        "out_dir": str(out_dir) if out_dir else None,
        "max_pixels": max_pixels,
        "max_pixels_per_byte": max_pixels_per_byte or None,
        "pixel_budget": int(pixel_budget),
        "public_max_pixels": public_max_pixels or None,
        "public_url": public_url.rstrip("/") if public_url else None,
        "connections": limits.to_json(),
        "grant_secret": secrets.token_hex(32),
        "public_detection": bool(public_detection),
        "public_rate": float(public_rate),
    }
    os.environ[CONFIG_ENV] = json.dumps(settings)
    swept = sweep_outputs(
        ServiceConfig(db=settings["db"], out_dir=Path(out_dir) if out_dir else None)
    )
    if swept["removed_uploads"] or swept["removed_temp_files"] or swept["forgotten_staged_assets"]:
        print(
            f"provkit serve: cleared after an interrupted run: "
            f"{swept['removed_uploads']} upload folder(s), "
            f"{swept['removed_temp_files']} half-written file(s), "
            f"{len(swept['forgotten_staged_assets'])} unreleased asset(s)",
            file=sys.stderr,
        )
    access = "public read" if public_read else "token required"
    if public_detection:
        access += f"; public detection at /public, {public_rate:g} requests/min per client"
    print(
        f"provkit serve: http://{host}:{port}/ ({access}; {workers} process(es))",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        "provkit.server.service:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        **uvicorn_options(limits),
    )


__all__ = ["CONFIG_ENV", "app_from_env", "is_loopback", "serve"]
