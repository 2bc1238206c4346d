"""``provkit verify``: a thin shell over :func:`provenance.verify.verify`.

Kept apart from the other provenance commands so ``provkit verify`` imports only what
verifying needs (no signing, no key handling)."""

from __future__ import annotations

from pathlib import Path

import click

from provkit.options import db_option, emit, json_option, progress, trust_option
from provkit.provenance.core.errors import BadInput, shown
from provkit.provenance.core.imageio import expand_inputs
from provkit.provenance.status import HARD_BINDING_CODES
from provkit.provenance.trust import resolve as resolve_trust
from provkit.provenance.verify import verify as verify_
from provkit.provenance.words import action_words, source_type_words, training_words

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


def _trust_source(c: dict) -> str | None:
    """The trust source that vouches for the signer (verify11's ``signer.trust_source``);
    for a recovered or mismatched file, its recovered manifest's."""
    if c.get("state") in ("recovered", "mismatch"):
        rec = c.get("recovered_manifest") or {}
        if rec.get("state") != "trusted":
            return None
        return (
            (c.get("signer") or {}).get("trust_source")
            or (rec.get("signer") or {}).get("trust_source")
            or "your trust anchors"
        )
    if c.get("state") == "valid":  # trusted signer, another check failed (an identity)
        return (c.get("signer") or {}).get("trust_source")
    if c.get("state") != "trusted":
        return None
    return (c.get("signer") or {}).get("trust_source") or "your trust anchors"


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
        source = _trust_source(c)
        if c.get("state") != "invalid":  # an invalid signature vouches for nobody
            who += (
                f"; trusted: {source}" if source else "; not vouched for by any trust source in use"
            )
        lines.append(f"  signed by:    {who}")
        if s.get("time"):
            lines.append(f"  signed at:    {s['time']} (time-stamp)")
    if c.get("asset_id"):
        lines.append(f"  asset id:     {c['asset_id']}")
    return lines + _disclosure_lines(c.get("disclosure") or {})


def _disclosure_lines(d: dict) -> list[str]:
    """The AI-content disclosures, one line each (docs/compliance.md)."""
    lines = []
    sb = d.get("sb942")
    if isinstance(sb, dict):
        lines.append(
            f"  SB 942:       latent AI disclosure: provider {sb.get('provider')}, system "
            f"{sb.get('system')} {sb.get('system_version') or ''}".rstrip()
            + f", made {sb.get('time')}, id {sb.get('id')}"
        )
    block = d.get("tc260")
    if isinstance(block, dict):
        f = block.get("fields") or {}
        words = (
            f"implicit AI label (GB 45438): producer {f.get('ContentProducer') or '?'}, "
            f"id {f.get('ProduceID') or '?'}, Label {f.get('Label')}"
        )
        if f.get("ContentPropagator"):
            words += f", propagated by {f['ContentPropagator']} (id {f.get('PropagateID')})"
        if not block.get("well_formed"):
            words += " - malformed: " + "; ".join(block.get("problems") or [])
        lines.append(f"  GB 45438:     {words} (unsigned XMP)")
    visible = d.get("visible_labels")
    if isinstance(visible, dict) and visible.get("labels"):
        texts = ", ".join(
            f"{x.get('text')} ({x.get('regime')}, {x.get('text_height_px')} px)"
            for x in visible["labels"]
            if isinstance(x, dict)
        )
        lines.append(f"  visible label: drawn before sealing: {texts}")
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


def _claim_line(c: dict) -> str | None:
    """What the manifest claims about capture, worded by trust: never "authentic"."""
    sig = c.get("signals") or {}
    if "capturedMedia" in (sig.get("not_credible") or []):
        return "camera capture claimed, but not credible (its product may not claim capture)"
    if not ({"capturedMedia", "capturedMediaStitched"} & set(sig.get("inception") or [])):
        return None
    signer = c.get("signer") or {}
    if c["state"] == "trusted":
        return (
            f"camera capture claimed by a recognised signer "
            f"({signer.get('trust_source') or 'trusted'})"
        )
    if c["state"] == "valid":
        return "camera capture claimed by an unrecognised signer"
    return None


def _report_lines(r: dict) -> str:
    c = r["c2pa"]
    words = _STATE_WORDS.get(c["state"], c["state"])
    if c["state"] == "valid" and _trust_source(c):
        words = "the signature checks out and a trust source vouches for the signer"
    lines = [f"{shown(r['path'])}: {c['state'].upper()} - {words}"]
    if c.get("ingredient_failed_when_added"):
        lines.append("  WARNING:      a component's credentials were invalid when it was added")
    for cause in c.get("causes") or []:  # why they fail (provenance.causes)
        lines.append(f"  why:          {cause.get('phrase') or cause['cause']}")
    lines += _who(c)
    product = (c.get("signer") or {}).get("conforming_product")
    if product:
        lines.append(
            f"  product:      {product['product']} by {product['vendor']} "
            f"(assurance level {product['assurance_level']}; {product['list']})"
        )
    claim = _claim_line(c)
    if claim:
        lines.append(f"  claim:        {claim}")
    if c.get("generator"):
        lines.append(f"  made with:    {', '.join(c['generator'])}")
    capture = c.get("capture") or {}
    if capture:
        lines.append(
            "  capture:      " + "; ".join(f"{k} {v}" for k, v in capture.items()) + " (as signed)"
        )
    if c.get("format") and not c["format"].startswith("image/"):
        lines.append(f"  format:       {c['format']}")
    if c.get("digital_source_type"):
        lines.append(f"  what:         {source_type_words(c['digital_source_type'])}")
    how = _how(c)
    if how:
        lines.append(f"  how:          {how}")
    sig = c.get("signals") or {}
    if sig.get("inception") or sig.get("transformation") or sig.get("not_credible"):
        parts = [
            f"{x['signal']} [{x['rule_id']}]" + (" (not credible)" if x.get("not_credible") else "")
            for x in sig.get("rules") or []
        ]
        lines.append("  signals:      " + ", ".join(parts))
    if c.get("timestamp") and c["timestamp"].get("present"):
        lines.append(f"  time-stamp:   {c['timestamp']['sentence']}")
    for ident in c.get("cawg_identity") or []:
        lines.append(
            f"  identity:     {ident['label']}: {ident['trust']} (judged apart from the signer)"
        )
    for ing in c.get("ingredients") or []:
        if "omitted" in ing:
            lines.append(f"  made from:    ... {ing['omitted']} more ingredients not listed")
            continue
        failures = ing.get("failures") or []
        hard_only = (
            bool(set(failures) & HARD_BINDING_CODES)
            and set(failures) - {"signingCredential.untrusted"} <= HARD_BINDING_CODES
        )
        if hard_only and (ing.get("state") == "invalid" or "expected" in (ing.get("note") or "")):
            state = (
                "its credentials' signature checks out; only its bytes differ from what "
                "they were signed over"
                + (
                    " (expected for recovered credentials)"
                    if "expected" in (ing.get("note") or "")
                    else ""
                )
            )
        else:
            state = f"{ing.get('state')}" + (f" ({ing['note']})" if ing.get("note") else "")
        what = source_type_words(ing.get("digital_source_type"))
        lines.append(
            f"  made from:    {ing.get('title')} ({ing.get('relationship')}"
            + (f", {what}" if what else "")
            + f"): {state}"
        )
        if ing.get("sentence"):
            lines.append(f"                {ing['sentence']}")
    for sentence in training_words(c.get("training_mining") or {}):
        lines.append(f"  training:     {sentence}")
    if c.get("recovered_by"):
        by = {"watermark": "the invisible watermark", "fingerprint": "the image's fingerprints"}
        lines.append(
            f"  recovered by: {by.get(c['recovered_by'].get('method'), c['recovered_by'].get('method'))}"
        )
    if c.get("relation"):  # its sentence is among the explanation's
        lines.append(f"  relation:     {c['relation']['class']}")
    if c.get("remote_url"):
        lines.append(f"  remote:       {c['remote_url']}")
    if c.get("thumbnail_check") and c["thumbnail_check"].get("sentence"):
        lines.append(f"  thumbnail:    {c['thumbnail_check']['sentence']}")
    details = c.get("failure_details") or []
    for sentence in c.get("explanation") or []:
        if sentence == UNTRUSTED_SENTENCE and _trust_source(c):
            continue  # a trust source vouches for the signer after all (said above)
        if not any(e["sentence"] == sentence for e in details):
            lines.append(f"  - {sentence}")
    for e in details:  # every failure, with its code and where it was found
        where = "" if e.get("where") == "active manifest" else f" ({e.get('where')})"
        lines.append(f"  - {e['sentence']} [{e['code']}{where}]")
    for note in c.get("notes") or []:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _crjson_ok(doc: dict) -> bool:
    """Whether a crJSON document shows a valid active manifest (no failure codes)."""
    manifests = doc.get("manifests") or []
    if not manifests:
        return False
    failures = (manifests[0].get("validationResults") or {}).get("failure") or []
    return all(f.get("code") == "signingCredential.untrusted" for f in failures)


@click.command()
@click.argument("files", type=click.Path(path_type=Path), nargs=-1, required=True)
@trust_option
@click.option(
    "--no-local-trust", is_flag=True, help="Do not trust this workspace's own development CA."
)
@click.option("--fetch-remote", is_flag=True, help="Fetch remote manifests over the network.")
@click.option(
    "--ocsp", is_flag=True, help="Check certificate revocation online (OCSP); off by default."
)
@click.option("--no-recover", is_flag=True, help="Do not look stripped files up in the ledger.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["human", "json", "crjson"]),
    default=None,
    help="Output: human (default), json (provkit's report) or crjson (the C2PA JSON "
    "report format, from the SDK).",
)
@click.option(
    "--thumbnails",
    is_flag=True,
    help="Embed the manifests' thumbnails in --json as data: URIs (by default "
    "they are only referenced, which keeps the answer small).",
)
@click.option(
    "--receipt",
    "receipt_file",
    type=click.Path(path_type=Path),
    default=None,
    help="An inclusion receipt (FILE.receipt.json from sign/generate --receipt) to "
    "check offline with --log-key (one file at a time).",
)
@click.option(
    "--log-key",
    "log_key",
    default=None,
    metavar="KEY|FILE",
    help="The issuing workspace's log verifier key (`provkit log key`).",
)
@db_option
@json_option
def verify(
    files,
    trust,
    no_local_trust,
    fetch_remote,
    ocsp,
    no_recover,
    fmt,
    thumbnails,
    receipt_file,
    log_key,
    db_path,
    as_json,
):
    """Validate C2PA credentials (and recover stripped ones).

    Reads every format c2pa-python reads: images, PDF, audio and video. Exit 0 when
    every file is valid, trusted or recovered with a valid manifest; 1 when any is
    invalid or absent; 2 when any file cannot be read."""
    files = expand_inputs(files)
    fmt = fmt or ("json" if as_json else "human")
    receipt = None
    if receipt_file is not None or log_key is not None:
        if receipt_file is None or log_key is None or len(files) != 1:
            raise click.UsageError("--receipt and --log-key go together, with one file")
        from provkit.provenance.core.proofs import verify_receipt  # only with --receipt

        receipt = verify_receipt(files[0], receipt_file, log_key)
    resolved = resolve_trust(trust, trust_local=not no_local_trust)
    if fmt == "crjson":
        docs, failed = [], False
        from provkit.provenance.crjson import crjson_file  # only with --format crjson

        for f in files:
            try:
                docs.append(crjson_file(f, trust=resolved, fetch_remote=fetch_remote, ocsp=ocsp))
            except BadInput as e:
                click.echo(f"error: {e}", err=True)
                docs.append({"extras:path": str(f), "extras:error": e.reason})
                failed = True
        emit(docs[0] if len(docs) == 1 else docs, True)
        if failed:
            click.get_current_context().exit(2)
        if not all(_crjson_ok(d) for d in docs):  # as --json: 1 when any is not valid
            click.get_current_context().exit(1)
        return
    with progress("verifying", len(files)) as bar:
        results = verify_(
            files,
            trust=resolved,
            fetch_remote=fetch_remote,
            db=db_path,
            recover=not no_recover,
            ocsp=ocsp,
            progress=bar.update,
            thumbnails="inline" if thumbnails and fmt == "json" else None,
        )
    reports = [r for r in results if not isinstance(r, BadInput)]
    errors = [r for r in results if isinstance(r, BadInput)]
    for e in errors:
        click.echo(f"error: {e}", err=True)
    if fmt == "json":  # every input has a row, in order; an unreadable one says why
        rows = [
            {"path": str(f), "error": r.reason} if isinstance(r, BadInput) else r.to_json()
            for f, r in zip(files, results, strict=True)
        ]
        if receipt is not None:
            rows[0]["receipt"] = receipt.to_json()
        emit(rows, True)
    else:
        for r in reports:
            click.echo(_report_lines(r.to_json()))
        if receipt is not None:
            click.echo(f"  receipt: {'ok' if receipt.ok else 'NOT SHOWN'}: {receipt.statement}")
    if errors:
        click.get_current_context().exit(2)
    if not all(r.ok for r in reports) or (receipt is not None and not receipt.ok):
        click.get_current_context().exit(1)
