"""``provkit watermark``: embed and decode invisible watermarks (thin shells over files.py)."""

from __future__ import annotations

from pathlib import Path

import click

from provkit.options import emit, force_option, json_option, out_option, progress
from provkit.provenance.core.errors import BadInput, ProvkitError, shown
from provkit.provenance.watermark import files
from provkit.provenance.watermark.base import names
from provkit.provenance.watermark.files import WatermarkReport


def _scheme_option(default):
    return click.option(
        "--scheme",
        default=default,
        show_default=True,
        type=click.Choice(names()),
        help="Watermark scheme.",
    )


@click.group()
def watermark():
    """Embed and decode invisible watermarks (provkit's 64-bit asset id mark by default)."""


@watermark.command("embed")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@out_option("Where to write the marked image (.png, .jpg, .webp, .tif).")
@click.option(
    "--payload",
    help="Payload as hex (provkit: 16 hex digits, the asset id). Default: a fresh random id.",
)
@_scheme_option("provkit")
@click.option(
    "--quality",
    default=95,
    show_default=True,
    type=click.IntRange(1, 100),
    help="JPEG/WebP quality of the output.",
)
@force_option
@json_option
def embed(source, out, payload, scheme, quality, force, as_json):
    """Embed a watermark into SOURCE and write it to OUT."""
    data = None
    if payload is not None:
        try:
            data = bytes.fromhex(payload)
        except ValueError:
            raise BadInput(f"--payload must be hexadecimal, got {payload!r}") from None
    result = files.embed(source, out, payload=data, scheme=scheme, quality=quality, force=force)
    emit(
        result,
        as_json,
        lambda r: f"{shown(r.path)}: {r.scheme} mark {r.payload.hex()} (PSNR {r.psnr} dB)",
    )


@watermark.command("decode")
@click.argument(
    "paths", metavar="FILES...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@_scheme_option(None)
@json_option
def decode(paths, scheme, as_json):
    """Read the watermark of each FILE (provkit's mark, else known third-party marks)."""
    reports, failed = [], False
    with progress("decoding", len(paths)) as bar:
        for path in bar.iter(paths):
            try:
                reports.append(files.decode(path, scheme=scheme))
            except ProvkitError as e:
                failed = True
                click.echo(f"error: {e}", err=True)
                reports.append(WatermarkReport(str(path), False, error=e.reason))
    emit(reports, as_json, _human)
    if failed:
        raise click.exceptions.Exit(2)


def _human(reports) -> str:
    lines = []
    for r in reports:
        if r.error:
            continue  # already reported on stderr
        if not r.found:
            lines.append(f"{shown(r.path)}: no watermark found")
        elif r.third_party:
            lines.append(
                f"{shown(r.path)}: {r.third_party} ({r.scheme}, confidence {r.confidence})"
            )
        else:
            conf = "unknown" if r.confidence is None else r.confidence
            lines.append(f"{shown(r.path)}: {r.scheme} mark {r.payload.hex()} (confidence {conf})")
    return "\n".join(lines)
