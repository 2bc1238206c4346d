"""The ``keys``, ``sign``, ``verify``, ``recover`` and ``ledger`` commands.

Each is a thin shell over the library verb of the same name; no logic lives here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provenance.core.errors import BadInput
from provenance.core.imageio import expand_inputs
from provenance.core.options import db_option, emit, json_option
from provenance.manifest import DIGITAL_SOURCE_TYPES
from provenance.status import HARD_BINDING_CODES
from provenance.trust import trust_source_of
from provenance.words import action_words, source_type_words, training_words

#: The status sentence for an untrusted signing credential (provenance.status).
UNTRUSTED_SENTENCE = "The signer is not on your trust list."

_file = click.Path(path_type=Path, dir_okay=False)


# --------------------------------------------------------------------------- keys


@click.group()
def keys():
    """Manage the signing identity (development CA or your own chain)."""


def _cert_lines(info: dict) -> str:
    return "\n".join([
        f"subject:     {info['subject']}",
        f"issuer:      {info['issuer']}",
        f"valid:       {info['not_before']} .. {info['not_after']}",
        f"algorithm:   {info['algorithm']}",
        f"sha256:      {info['sha256']}",
    ])


@keys.command("init")
@click.option("--org", default="provkit development", show_default=True,
              help="Organisation name in the certificates.")
@click.option("--force", is_flag=True, help="Replace an existing identity.")
@json_option
def keys_init(org, force, as_json):
    """Create a development CA and an ES256 signing certificate."""
    from provenance import keys as k

    info = k.init(org, force=force).to_json()
    emit(info, as_json, lambda d: f"created signing identity in {k.keys_dir()}\n"
                                  + _cert_lines(d))


@keys.command("import")
@click.option("--chain", "chain", type=_file, required=True,
              help="PEM chain, signing certificate first.")
@click.option("--key", "key", type=_file, required=True, help="PEM private key of the leaf.")
@click.option("--force", is_flag=True, help="Replace an existing identity.")
@json_option
def keys_import(chain, key, force, as_json):
    """Use an organisation's own certificate chain and key."""
    from provenance import keys as k

    info = k.import_chain(chain, key, force=force).to_json()
    emit(info, as_json, lambda d: f"imported signing identity into {k.keys_dir()}\n"
                                  + _cert_lines(d))


@keys.command("show")
@json_option
def keys_show(as_json):
    """Show the signing certificate: subject, issuer, validity, fingerprint, algorithm."""
    from provenance import keys as k

    def human(d):
        text = _cert_lines(d["signer"])
        text += f"\nchain:       {len(d['chain'])} certificate(s)"
        if d["local_trust_anchor"]:
            text += "\ntrust:       this workspace trusts its development CA"
        if d["retired_anchors"]:
            text += (f"\nretired:     {d['retired_anchors']} replaced development CA(s), "
                     "still trusted for what they signed")
        if d["expired"]:
            text += "\nEXPIRED:     this identity cannot sign; run `provkit keys init --force` " \
                    "or import a current chain"
        elif d["problem"]:
            text += f"\nPROBLEM:     {d['problem']}"
        return text

    emit(k.show(), as_json, human)


# --------------------------------------------------------------------------- sign


def _no_mark(issued) -> str:
    skipped = getattr(issued, "watermark_skipped", None)
    return f"none ({skipped})" if skipped else "none"


@click.command()
@click.argument("source", type=_file)
@click.option("-o", "--out", "out", type=_file, required=True, help="Signed output file.")
@click.option("--source-type", default=None,
              help="IPTC digital source type, any case: " + ", ".join(DIGITAL_SOURCE_TYPES) + ".")
@click.option("--action", default=None,
              help="created (default), edited, ... (c2pa.<action>).")
@click.option("--ingredient", "ingredients", type=_file, multiple=True,
              help="A parent asset (parentOf); repeatable.")
@click.option("--component", "components", type=_file, multiple=True,
              help="A component asset (componentOf); repeatable.")
@click.option("--author", default=None, help="Author name (CreativeWork).")
@click.option("--title", default=None, help="Manifest title (default: output file name).")
@click.option("--no-train", is_flag=True, help="Forbid AI training and data mining.")
@click.option("--watermark/--no-watermark", default=True, show_default=True,
              help="Embed the asset id as an invisible watermark first.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@db_option
@json_option
def sign(source, out, source_type, action, ingredients, components, author, title, no_train,
         watermark, force, db_path, as_json):
    """Watermark and sign an image with a C2PA manifest, and record it."""
    from provenance.issue import sign as sign_
    from provenance.manifest import ManifestSpec

    spec = ManifestSpec(
        title=title, source_type=source_type, action=action, author=author, no_train=no_train,
        ingredients=tuple((p, "parentOf") for p in ingredients)
        + tuple((p, "componentOf") for p in components),
    )
    issued = sign_(source, out, spec=spec, watermark=watermark, db=db_path, force=force)
    emit(issued, as_json, lambda d: (
        f"signed {d.path}\n  asset id:    {d.asset_id}\n  manifest:    {d.manifest_label}\n"
        f"  signer:      {d.signer.get('common_name')}\n"
        f"  watermark:   {d.soft_binding_alg or _no_mark(d)}\n  sha256:      {d.sha256}"))


# --------------------------------------------------------------------------- verify


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
@click.option("--trust-anchors", type=_file, default=None,
              help="PEM file of trust anchors (e.g. the C2PA trust list).")
@click.option("--no-local-trust", is_flag=True,
              help="Do not trust this workspace's own development CA.")
@click.option("--fetch-remote", is_flag=True, help="Fetch remote manifests over the network.")
@click.option("--no-recover", is_flag=True,
              help="Do not look stripped files up in the ledger.")
@db_option
@json_option
def verify(files, trust_anchors, no_local_trust, fetch_remote, no_recover, db_path, as_json):
    """Validate C2PA credentials (and recover stripped ones).

    Exit 0 when every file is valid, trusted or recovered with a valid manifest;
    1 when any is invalid or absent; 2 when any file cannot be read."""
    from provenance.verify import verify as verify_

    files = expand_inputs(files)
    kwargs = {"trust_anchors": trust_anchors, "fetch_remote": fetch_remote, "db": db_path,
              "recover": not no_recover, "trust_local": not no_local_trust}
    if len(files) > 1 and sys.stderr.isatty():
        with click.progressbar(files, label="verifying", file=sys.stderr) as bar:
            results = verify_(bar, **kwargs)
    else:
        results = verify_(files, **kwargs)
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


# --------------------------------------------------------------------------- recover


@click.command()
@click.argument("source", type=_file)
@click.option("-o", "--out", "out", type=_file, required=True, help="Output file.")
@click.option("--trust-anchors", type=_file, default=None, help="PEM file of trust anchors.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@db_option
@json_option
def recover(source, out, trust_anchors, force, db_path, as_json):
    """Re-attach a recovered manifest to a stripped image."""
    from provenance.recover import recover as recover_

    result = recover_(source, out, db=db_path, trust_anchors=trust_anchors, force=force)
    emit(result, as_json, lambda d: (
        f"recovered {d['asset_id']} by {d['recovered_by']['method']}; wrote {d['path']} "
        f"(parent manifest {d['recovered_manifest']})"))


# --------------------------------------------------------------------------- ledger


@click.group()
def ledger():
    """List and show the assets this workspace issued."""


@ledger.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--source-type", default=None,
              help="Only this digital source type, any case: " + ", ".join(DIGITAL_SOURCE_TYPES)
              + ".")
@db_option
@json_option
def ledger_list(limit, source_type, db_path, as_json):
    """Issued assets, newest first."""
    from provenance.ledger import Ledger
    from provenance.manifest import canonical_source_type

    if source_type:
        source_type = canonical_source_type(source_type)
    book = Ledger(db_path, create=False)
    rows = book.list(limit=limit, source_type=source_type)

    def human(items):
        if not items:
            total = book.count()
            if total and source_type:
                return f"no assets with source type {source_type} ({total} issued in all)"
            return "no assets issued yet"
        lines = [f"{'ASSET ID':<16}  {'CREATED':<20}  {'STATUS':<8} {'SOURCE TYPE':<24} PATH"]
        lines += [f"{a.asset_id}  {a.created}  {a.status:<8} {a.source_type or '-':<24} "
                  f"{a.path}" for a in items]
        return "\n".join(lines)

    emit(rows, as_json, human)


@ledger.command("show")
@click.argument("asset_id")
@db_option
@json_option
def ledger_show(asset_id, db_path, as_json):
    """One issued asset, with its manifest."""
    from provenance.ledger import Ledger

    book = Ledger(db_path, create=False)
    asset = book.get(asset_id)
    if asset is None:
        raise BadInput(f"no asset {asset_id} in the ledger")
    data = {**asset.to_json(), "manifest": book.manifest_json(asset.asset_id)}

    def human(d):
        keys_ = ("asset_id", "created", "status", "status_reason", "path", "source_path",
                 "sha256", "source_type",
                 "manifest_label", "soft_binding_alg", "phash", "pdq")
        text = "\n".join(f"{k + ':':<17}{d[k]}" for k in keys_ if d.get(k))
        if d.get("signer"):
            text += f"\n{'signer:':<17}{d['signer'].get('common_name')}"
        return text

    emit(data, as_json, human)


# --------------------------------------------------------------------------- config


@click.group()
def config():
    """The workspace settings ($PROVKIT_HOME/provkit.toml)."""


@config.command("show")
@json_option
def config_show(as_json):
    """Print the effective settings and where each came from (the file, or the default)."""
    from provenance.core.config import describe, show

    cfg = show()

    def human(d):
        rows = [("SETTING", "VALUE", "FROM")]
        for s in d["settings"]:
            value = s["value"]
            shown = "-" if value is None else ", ".join(value) if isinstance(value, list) else str(value)
            rows.append((s["key"], shown, "default" if s["from"] == "default" else "provkit.toml"))
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        lines = [f"configuration file: {d['path']}"
                 + ("" if any(s["from"] != "default" for s in d["settings"]) else " (none: defaults)")]
        lines += [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows]
        lines.append("")
        lines += [f"{s['key']}: {describe(s['key'])}" for s in d["settings"]]
        return "\n".join(lines)

    emit(cfg.to_json(), as_json, human)
