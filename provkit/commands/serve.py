"""The ``serve`` and ``report`` commands (``tokens`` is in :mod:`.tokens_commands`).

``provkit serve`` is a shell over :func:`provenance.server.service.serve` (uvicorn, one
process, or ``--workers N``); ``provkit report`` is a thin shell over
:func:`provenance.server.desk.report`.
"""

from __future__ import annotations

from pathlib import Path

import click

from provkit.provenance.core.extras import require

for _module in ("fastapi", "uvicorn", "jinja2", "python_multipart"):  # one line if missing
    require("serve", _module, what="provkit serve and provkit report")

from provkit.options import db_option, emit, json_option
from provkit.provenance.core.errors import BadInput
from provkit.server.budget import DEFAULT_PIXEL_BUDGET
from provkit.server.connections import Limits
from provkit.server.desk import report as report_
from provkit.server.http import MAX_FILES, MAX_UPLOAD, MB, QUEUE, TIME_LIMIT
from provkit.server.service import SERVE_MAX_PIXELS_PER_BYTE, SERVE_PUBLIC_MAX_PIXELS, app_from_env
from provkit.server.service import serve as serve_


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes (each holds its own copy of the reference sets).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=None,
    help="CPU threads per process for image work (default: CPU count, at most 4).",
)
@click.option(
    "--queue",
    type=click.IntRange(0, 10_000),
    default=QUEUE,
    show_default=True,
    help="Requests that may wait for a CPU thread; past that, 503 + Retry-After.",
)
@click.option(
    "--public-read",
    is_flag=True,
    help="Let anyone use the read endpoints (a desk on a closed network).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0.001, 4096),
    default=MAX_UPLOAD / MB,
    show_default=True,
    help="Largest request body (413 above).",
)
@click.option(
    "--max-files",
    type=click.IntRange(1, 1000),
    default=MAX_FILES,
    show_default=True,
    help="Most files in one request.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(1),
    default=None,
    help="Largest image to decode, in pixels (422 above; default: "
    "$PROVKIT_MAX_PIXELS or 50,000,000).",
)
@click.option(
    "--max-pixels-per-byte",
    type=click.IntRange(0),
    default=SERVE_MAX_PIXELS_PER_BYTE,
    show_default=True,
    help="Refuse files declaring more pixels per byte of file (decompression bombs; 0: off).",
)
@click.option(
    "--public-max-pixels",
    type=click.IntRange(0),
    default=SERVE_PUBLIC_MAX_PIXELS,
    show_default=True,
    help="Largest image decoded for an anonymous caller "
    "(--public-read; 0: the same as --max-pixels).",
)
@click.option(
    "--pixel-budget-mp",
    type=click.FloatRange(1),
    default=DEFAULT_PIXEL_BUDGET / 1e6,
    show_default=True,
    help="Megapixels of images decoded at once per process; "
    "past that, requests wait, then 503 + Retry-After.",
)
@click.option(
    "--public-url",
    default=None,
    metavar="URL",
    help="This server's public base URL, named in soft-binding answers "
    "(default: the address it listens on).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(0.5),
    default=Limits.header_timeout,
    show_default=True,
    help="Seconds a client has to send a request's headers.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0.5),
    default=Limits.body_timeout,
    show_default=True,
    help="Seconds after which a request body must keep arriving at 16 KB/s on average.",
)
@click.option(
    "--keep-alive",
    type=click.FloatRange(1),
    default=Limits.keep_alive,
    show_default=True,
    help="Seconds an idle keep-alive connection stays open.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=Limits.max_connections,
    show_default=True,
    help="Open connections per process.",
)
@click.option(
    "--max-connections-per-client",
    type=click.IntRange(0),
    default=Limits.max_per_client,
    show_default=True,
    help="Open connections per client address (0: no cap; behind a proxy every "
    "client has the proxy's address).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(0.1),
    default=TIME_LIMIT,
    show_default=True,
    help="Seconds one request may compute (503 above).",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where signed and generated files are kept (default: $PROVKIT_HOME/served).",
)
@click.option(
    "--probe",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Classifier probe JSON from `provkit detect train`, used by every detect, "
    "policy check and desk request (default: $PROVKIT_PROBE, else none).",
)
@click.option(
    "--clip",
    "clip_spec",
    metavar="ARCH:WEIGHTS",
    default=None,
    help="CLIP model for the probe: open_clip architecture and local weights "
    "(default: $PROVKIT_CLIP, else the one the probe names).",
)
@click.option(
    "--public-detection",
    is_flag=True,
    help="Serve the free public AI detection page and API (/public, "
    "POST /public/v1/detect) without a token (California SB 942).",
)
@click.option(
    "--public-rate",
    type=click.FloatRange(0.1, 100_000),
    default=30.0,
    show_default=True,
    help="Public detection requests a minute per client (429 above).",
)
@db_option
def serve(
    host,
    port,
    workers,
    threads,
    queue,
    public_read,
    max_upload_mb,
    max_files,
    max_pixels,
    max_pixels_per_byte,
    public_max_pixels,
    pixel_budget_mp,
    public_url,
    header_timeout,
    body_timeout,
    keep_alive,
    max_connections,
    max_connections_per_client,
    time_limit,
    out_dir,
    probe,
    clip_spec,
    public_detection,
    public_rate,
    db_path,
):
    """Serve the desk page and the HTTP API (see docs/serve.md)."""
    limits = Limits(
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        keep_alive=keep_alive,
        max_connections=max_connections,
        max_per_client=max_connections_per_client,
    )
    serve_(
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        queue=queue,
        public_read=public_read,
        max_upload=int(max_upload_mb * MB),
        max_files=max_files,
        max_pixels=max_pixels,
        time_limit=time_limit,
        out_dir=out_dir,
        db=db_path,
        probe=probe,
        clip=clip_spec,
        max_pixels_per_byte=max_pixels_per_byte,
        pixel_budget=int(pixel_budget_mp * 1e6),
        public_url=public_url,
        limits=limits,
        public_max_pixels=public_max_pixels,
        public_detection=public_detection,
        public_rate=public_rate,
    )


# --------------------------------------------------------------------------- report


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML report to write.",
)
@click.option("--pack", default=None, help="Also decide under this shipped policy pack.")
@click.option("--point", default="publish", show_default=True, help="Decision point.")
@click.option("--actor", default=None, help="Who is deciding (recorded in the audit log).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@db_option
@json_option
def report(files, out, pack, point, actor, force, db_path, as_json):
    """Write the desk page's report of FILES as one self-contained HTML file."""
    if out.exists() and not force:
        raise BadInput("output already exists (use --force to replace it)", path=out)
    result = report_(files, out, db=db_path, pack=pack, point=point, actor=actor)
    emit(
        result,
        as_json,
        lambda d: f"wrote {d['out']} ({d['files']} file(s), {d['errors']} unreadable)",
    )
    if result["errors"]:
        click.get_current_context().exit(2)


__all__ = ["app_from_env", "report", "serve"]
