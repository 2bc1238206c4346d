"""``provkit verify``: a thin shell over :func:`provenance.verify.verify`.

Kept apart from the other provenance commands so ``provkit verify`` imports only what
verifying needs (no signing, no key handling)."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.core.errors import BadInput
from provenance.core.options import db_option, emit, json_option, progress, trust_option
from provenance.verify import verify as verify_


def _report_lines(r: dict) -> str:
    c = r["c2pa"]
    lines = [f"{r['path']}: {c['state'].upper()}"]
    if c.get("signer"):
        s = c["signer"]
        who = s.get("common_name") or "?"
        if s.get("organization"):
            who += f" ({s['organization']})"
        if s.get("issuer"):
            who += f", issued by {s['issuer']}"
        lines.append(f"  signer:       {who}")
    if c.get("digital_source_type"):
        lines.append(f"  source type:  {c['digital_source_type']}")
    if c.get("actions"):
        lines.append("  actions:      " + ", ".join(
            a["action"] + (f" by {a['software_agent']}" if a.get("software_agent") else "")
            for a in c["actions"]))
    for ing in c.get("ingredients") or []:
        if "omitted" in ing:
            lines.append(f"  ingredient:   ... {ing['omitted']} more ingredients not listed")
            continue
        lines.append(f"  ingredient:   {ing.get('title')} ({ing.get('relationship')}): "
                     f"{ing.get('state')}" + (f" ({ing['note']})" if ing.get("note") else ""))
    if c.get("training_mining"):
        lines.append("  training:     " + ", ".join(f"{k}={v}" for k, v in
                                                   c["training_mining"].items()))
    if c.get("recovered_by"):
        lines.append(f"  recovered by: {c['recovered_by']['method']}")
    if c.get("remote_url"):
        lines.append(f"  remote:       {c['remote_url']}")
    for sentence in c.get("explanation") or []:
        lines.append(f"  - {sentence}")
    return "\n".join(lines)


@click.command()
@click.argument("files", type=click.Path(path_type=Path), nargs=-1, required=True)
@trust_option
@click.option("--no-local-trust", is_flag=True,
              help="Do not trust this workspace's own development CA.")
@click.option("--fetch-remote", is_flag=True, help="Fetch remote manifests over the network.")
@click.option("--no-recover", is_flag=True,
              help="Do not look stripped files up in the ledger.")
@db_option
@json_option
def verify(files, trust, no_local_trust, fetch_remote, no_recover, db_path, as_json):
    """Validate C2PA credentials (and recover stripped ones).

    Exit 0 when every file is valid, trusted or recovered with a valid manifest;
    1 when any is invalid or absent; 2 when any file cannot be read."""
    with progress("verifying", len(files)) as bar:
        results = verify_(files, trust=trust, fetch_remote=fetch_remote, db=db_path,
                          recover=not no_recover, trust_local=not no_local_trust,
                          progress=bar.update)
    reports = [r for r in results if not isinstance(r, BadInput)]
    errors = [r for r in results if isinstance(r, BadInput)]
    for e in errors:
        click.echo(f"error: {e}", err=True)
    if as_json:  # every input has a row, in order; an unreadable one says why
        emit([{"path": str(f), "error": r.reason} if isinstance(r, BadInput) else r.to_json()
              for f, r in zip(files, results, strict=True)], True)
    else:
        for r in reports:
            click.echo(_report_lines(r.to_json()))
    if errors:
        click.get_current_context().exit(2)
    if not all(r.ok for r in reports):
        click.get_current_context().exit(1)
