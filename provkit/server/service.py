"""``provkit serve`` as a library call: :func:`serve` runs the app under uvicorn.

The settings travel to each worker process in an environment variable and
:func:`app_from_env` (uvicorn's app factory) builds the app from them there.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path

from provkit.detect.verdict import check_options
from provkit.server import tokens as tokens_lib
from provkit.provenance.core.errors import ConfigError
from provkit.provenance.core.extras import require
from provkit.server.http import MAX_FILES, MAX_UPLOAD, QUEUE, TIME_LIMIT, ServiceConfig
from provkit.server.app import create_service, sweep_outputs

#: The environment variable that carries the server's settings to each worker process.
CONFIG_ENV = "PROVKIT_SERVE_CONFIG"


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
    public = {k: raw.pop(k) for k in ("public_detection", "public_rate") if k in raw}
    for key in ("out_dir", "temp_dir"):
        if raw.get(key):
            raw[key] = Path(raw[key])
    return create_service(ServiceConfig(**raw), refresh=refresh, max_pixels=max_pixels, **public)


def serve(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          threads: int | None = None, queue: int = QUEUE, public_read: bool = False,
          max_upload: int = MAX_UPLOAD, max_files: int = MAX_FILES,
          max_pixels: int | None = None, time_limit: float = TIME_LIMIT,
          out_dir=None, db=None, probe=None, clip: str | None = None,
          public_detection: bool = False, public_rate: float = 30.0) -> None:
    """``provkit serve``: the desk page and the HTTP API until stopped (see docs/serve.md).

    ``probe``/``clip``: the classifier every detect, policy check and desk request uses
    (as ``$PROVKIT_PROBE``/``$PROVKIT_CLIP`` for the CLI); checked before listening.
    ``public_detection``: serve the token-free SB 942 page and API (``/public``), each
    client limited to ``public_rate`` requests a minute.
    Refuses (ConfigError) to listen beyond loopback while no API token exists."""
    uvicorn = require("serve", "uvicorn", what="provkit serve")
    if not is_loopback(host) and not tokens_lib.any_active(db):
        raise ConfigError(f"refusing to listen on {host}: no API token exists; create one with "
                          "`provkit tokens create NAME --scope read` (or listen on 127.0.0.1)")
    if probe is not None or clip is not None:
        check_options(probe=probe, clip=clip)  # a bad probe or model: one line, no server
        for name, value in (("PROVKIT_PROBE", probe), ("PROVKIT_CLIP", clip)):
            if value is not None:  # the workers inherit them
                os.environ[name] = str(Path(value).resolve()) if name == "PROVKIT_PROBE" \
                    else str(value)
    settings = {
        "db": str(db) if db else None, "public_read": public_read,
        "max_upload": int(max_upload), "max_files": max_files,
        "time_limit": time_limit, "cpu_threads": threads or min(os.cpu_count() or 1, 4),
        "queue": queue, "out_dir": str(out_dir) if out_dir else None, "max_pixels": max_pixels,
        "public_detection": bool(public_detection), "public_rate": float(public_rate),
    }
    os.environ[CONFIG_ENV] = json.dumps(settings)
    swept = sweep_outputs(ServiceConfig(db=settings["db"],
                                        out_dir=Path(out_dir) if out_dir else None))
    if swept["removed_temp_files"] or swept["forgotten_staged_assets"]:
        print(f"provkit serve: cleared after an interrupted run: "
              f"{swept['removed_temp_files']} half-written file(s), "
              f"{len(swept['forgotten_staged_assets'])} unreleased asset(s)", file=sys.stderr)
    access = "public read" if public_read else "token required"
    if public_detection:
        access += f"; public detection at /public, {public_rate:g} requests/min per client"
    print(f"provkit serve: http://{host}:{port}/ ({access}; {workers} process(es))",
          file=sys.stderr, flush=True)
    uvicorn.run("provkit.server.service:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5)


__all__ = ["CONFIG_ENV", "app_from_env", "is_loopback", "serve"]
