"""``provkit verify``: a thin shell over :func:`provenance.verify.verify`.

Kept apart from the other provenance commands so ``provkit verify`` imports only what
verifying needs (no signing, no key handling)."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.core.errors import BadInput
from provenance.core.imageio import expand_inputs
from provenance.core.options import db_option, emit, json_option, progress, trust_option
from provenance.status import HARD_BINDING_CODES
from provenance.trust import trust_source_of
from provenance.verify import verify as verify_
from provenance.words import action_words, source_type_words, training_words

#: The status sentence for an untrusted signing credential (provenance.status).
UNTRUSTED_SENTENCE = "The signer is not on your trust list."


_STATE_WORDS = {
    "trusted": "the credentials check out and a trust source vouches for the signer",
    "valid": "the credentials check out, but no trust source vouches for the signer",
    "invalid": "the credentials do not check out",
    "absent": "no Content Credentials",
    "recovered": "credentials recovered from this workspace's ledger",
    "mismatch": "the watermark names an issued asset, but the pixels differ from it",
}


def _who(c: dict) -> list[str]:
    """Author, signer and trust, signing time, asset id."""
    lines = []
    if c.get("author"):
        lines.append(f"  author:       {', '.join(str(a) for a in c['author'])}")
    s = c.get("signer")
    if s:
        who = s.get("organization") or s.get("common_name") or "an unnamed signer"
        if s.get("issuer") and s.get("issuer") != who:
            who += f" (certificate from {s['issuer']})"
        source = trust_source_of(c)
        if c.get("state") != "invalid":  # an invalid signature vouches for nobody
            who += (f"; trusted: {source}" if source
                    else "; not vouched for by any trust source in use")
        lines.append(f"  signed by:    {who}")
        if s.get("time"):
            lines.append(f"  signed at:    {s['time']} (time-stamp)")
    if c.get("asset_id"):
        lines.append(f"  asset id:     {c['asset_id']}")
    return lines


def _how(c: dict) -> str | None:
    """The actions in words; the software agent is the tool that recorded them."""
    steps, tools = [], []
    for a in c.get("actions") or []:
        steps.append(action_words(a.get("action")))
        if a.get("software_agent") and a["software_agent"] not in tools:
            tools.append(a["software_agent"])
    if not steps:
        return None
    text = ", then ".join(steps)
    if tools:
        text += f" (recorded and signed with {', '.join(tools)})"
    return text


def _report_lines(r: dict) -> str:
    c = r["c2pa"]
    lines = [f"{r['path']}: {c['state'].upper()} - {_STATE_WORDS.get(c['state'], c['state'])}"]
    lines += _who(c)
    if c.get("digital_source_type"):
        lines.append(f"  what:         {source_type_words(c['digital_source_type'])}")
    how = _how(c)
    if how:
        lines.append(f"  how:          {how}")
    for ing in c.get("ingredients") or []:
        if "omitted" in ing:
            lines.append(f"  made from:    ... {ing['omitted']} more ingredients not listed")
            continue
        failures = ing.get("failures") or []
        if ing.get("state") == "invalid" and failures and set(failures) <= HARD_BINDING_CODES:
            state = ("its credentials' signature checks out; only its bytes differ from what "
                     "they were signed over" + (" (expected for recovered credentials)"
                                                 if "expected" in (ing.get("note") or "") else ""))
        else:
            state = f"{ing.get('state')}" + (f" ({ing['note']})" if ing.get("note") else "")
        what = source_type_words(ing.get("digital_source_type"))
        lines.append(f"  made from:    {ing.get('title')} ({ing.get('relationship')}"
                     + (f", {what}" if what else "") + f"): {state}")
    for sentence in training_words(c.get("training_mining") or {}):
        lines.append(f"  training:     {sentence}")
    if c.get("recovered_by"):
        by = {"watermark": "the invisible watermark", "fingerprint": "the image's fingerprints"}
        lines.append(f"  recovered by: {by.get(c['recovered_by'].get('method'), c['recovered_by'].get('method'))}")
    if c.get("remote_url"):
        lines.append(f"  remote:       {c['remote_url']}")
    for sentence in c.get("explanation") or []:
        if sentence == UNTRUSTED_SENTENCE and trust_source_of(c):
            continue  # a trust source vouches for the signer after all (said above)
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
    files = expand_inputs(files)
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
