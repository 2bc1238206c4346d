"""``provkit comply`` and ``provkit label``: thin shells over
:func:`provenance.comply.comply` and :func:`provenance.comply.label`."""

from __future__ import annotations

from pathlib import Path

import click

from provkit.options import (
    db_option,
    dev_identity_option,
    emit,
    force_option,
    json_option,
    out_option,
    trust_option,
)
from provkit.provenance.comply import REGIMES
from provkit.provenance.comply import comply as comply_
from provkit.provenance.core.errors import ProvkitError
from provkit.provenance.labelling import label as label_

_MARK = {"present": "ok ", "absent": "NO ", "invalid": "BAD", "not checked": " ? "}


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--regime",
    required=True,
    type=click.Choice(REGIMES),
    help="The law to check against: eu (AI Act Art. 50), us-ca (SB 942/AB 853), "
    "cn (GB 45438-2025).",
)
@click.option(
    "--visible",
    is_flag=True,
    help="Require the visible label as well (publishing where the law asks one).",
)
@trust_option
@db_option
@json_option
def comply(files, regime, visible, trust, db_path, as_json):
    """Check files against one law's AI-disclosure requirements.

    Each requirement is present, absent, invalid or not checked, with its evidence.
    Exit status 1 when a required one is absent or invalid, 2 when a file is unreadable.
    This is a check of what the files carry, not legal advice (docs/compliance.md)."""
    results = comply_(list(files), regime=regime, db=db_path, trust=trust, visible=visible)
    rows = [
        {"path": str(p), "error": str(r)} if isinstance(r, ProvkitError) else r.to_json()
        for p, r in zip(files, results, strict=True)
    ]
    emit(rows, as_json, _human)
    if any("error" in r for r in rows):
        raise click.exceptions.Exit(2)
    if any(not r["passed"] for r in rows):
        raise click.exceptions.Exit(1)


def _human(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        if "error" in row:
            lines.append(f"{row['path']}: error: {row['error']}")
            continue
        verdict = "meets" if row["passed"] else "MISSING " + ", ".join(row["missing"])
        lines.append(f"{row['path']}: {row['regime']}: {verdict}")
        for r in row["requirements"]:
            optional = "" if r["required"] else " (optional)"
            lines.append(f"  {_MARK[r['status']]} {r['requirement']}{optional}")
            lines.append(f"      {r['status']}: {r['evidence']}")
    return "\n".join(lines)


@click.command()
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--propagator", required=True, help="ContentPropagator: the platform's code.")
@click.option("--propagate-id", required=True, help="PropagateID: the platform's id for it.")
@click.option(
    "--create-label",
    type=click.Choice(["1", "2", "3"]),
    default=None,
    help="Write a new block when the file has none (Label 1 AI-generated, 2 "
    "possibly, 3 suspected).",
)
@out_option("The labelled copy.")
@dev_identity_option
@force_option
@json_option
def label(source, propagator, propagate_id, create_label, out, dev_identity, force, as_json):
    """Add a platform's propagator fields to a file's GB 45438 implicit label.

    The pixels are copied unchanged; a C2PA-signed file gets a new manifest with the
    original as its parent ingredient."""
    result = label_(
        source,
        out,
        propagator=propagator,
        propagate_id=propagate_id,
        create=create_label,
        force=force,
        dev_identity=dev_identity,
    )
    emit(
        result,
        as_json,
        lambda d: (
            f"labelled {d.path}: propagator {propagator}, id {propagate_id}"
            + ("; re-signed, the original as ingredient" if d.resigned else "")
            + ("; new block written" if d.created_block else "")
        ),
    )
