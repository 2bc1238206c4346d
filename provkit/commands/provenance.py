"""The ``keys``, ``sign``, ``recover`` and ``ledger`` commands (``verify`` has a module of
its own, provenance/verify_commands.py, so it loads only what verifying needs).

Each is a thin shell over the library verb of the same name; no logic lives here.

Why one module: keys, sign, recover, ledger and config are the provenance library's CLI
shells and share this module's option helpers.
"""

from __future__ import annotations

from pathlib import Path

import click

from provkit.options import (
    db_option,
    dev_identity_option,
    disclosure_options,
    emit,
    force_option,
    json_option,
    out_option,
    training_option,
    trust_option,
)
from provkit.provenance import disclosure as disclosure_lib
from provkit.provenance import keys as k
from provkit.provenance import ledger as ledger_lib
from provkit.provenance.core.config import describe, show
from provkit.provenance.core.transparency import key as log_key
from provkit.provenance.core.transparency import receipt_path, write_receipt
from provkit.provenance.core.vocabulary import DIGITAL_SOURCE_TYPES, canonical_source_type
from provkit.provenance.recover import recover as recover_
from provkit.verbs import sign as sign_

_file = click.Path(path_type=Path, dir_okay=False)


# --------------------------------------------------------------------------- keys


@click.group()
def keys():
    """Manage the signing identity (development CA or your own chain)."""


def _cert_lines(info: dict) -> str:
    return "\n".join(
        [
            f"subject:     {info['subject']}",
            f"issuer:      {info['issuer']}",
            f"valid:       {info['not_before']} .. {info['not_after']}",
            f"algorithm:   {info['algorithm']}",
            f"sha256:      {info['sha256']}",
        ]
    )


@keys.command("init")
@click.option(
    "--org",
    default="provkit development",
    show_default=True,
    help="Organisation name in the certificates.",
)
@click.option("--force", is_flag=True, help="Replace an existing identity.")
@json_option
def keys_init(org, force, as_json):
    """Create a development CA and an ES256 signing certificate.

    With --force the old development CA is retired, not deleted: what it signed still
    verifies as trusted in this workspace, and the output says how to stop trusting it."""
    retiring = k.retiring_ca() if force else None
    info = k.init(org, force=force).to_json()
    info["retired_ca"] = _retired(retiring)
    emit(
        info,
        as_json,
        lambda d: (
            f"created signing identity in {k.keys_dir()}\n"
            + _cert_lines(d)
            + _retired_lines(d["retired_ca"])
        ),
    )


def _retired(digest: str | None) -> dict | None:
    if digest is None:
        return None
    path = k.keys_dir() / "retired" / f"ca-{digest[:16]}.pem"
    return {
        "sha256": digest,
        "path": str(path),
        "effect": "files signed under it still verify as trusted in this workspace",
        "to_distrust": f"delete {path}",
    }


def _retired_lines(retired: dict | None) -> str:
    if not retired:
        return ""
    return (
        f"\nretired:     the previous development CA (sha256 {retired['sha256'][:16]}...) "
        "signs nothing more;\n             files it signed still verify as trusted here. "
        f"To stop trusting them:\n             rm {retired['path']}"
    )


@keys.command("import")
@click.option(
    "--chain", "chain", type=_file, required=True, help="PEM chain, signing certificate first."
)
@click.option("--key", "key", type=_file, required=True, help="PEM private key of the leaf.")
@click.option("--force", is_flag=True, help="Replace an existing identity.")
@json_option
def keys_import(chain, key, force, as_json):
    """Use an organisation's own certificate chain and key."""
    retiring = k.retiring_ca() if force else None
    info = k.import_(chain, key, force=force).to_json()
    info["retired_ca"] = _retired(retiring)
    emit(
        info,
        as_json,
        lambda d: (
            f"imported signing identity into {k.keys_dir()}\n"
            + _cert_lines(d)
            + _retired_lines(d["retired_ca"])
        ),
    )


@keys.command("show")
@json_option
def keys_show(as_json):
    """Show the signing certificate: subject, issuer, validity, fingerprint, algorithm."""

    def human(d):
        text = _cert_lines(d["signer"])
        text += f"\nchain:       {len(d['chain'])} certificate(s)"
        if d["local_trust_anchor"]:
            text += "\ntrust:       this workspace trusts its development CA"
        if d["retired_anchors"]:
            text += (
                f"\nretired:     {d['retired_anchors']} replaced development CA(s), "
                "still trusted for what they signed"
            )
        if d["expired"]:
            text += (
                "\nEXPIRED:     this identity cannot sign; run `provkit keys init --force` "
                "or import a current chain"
            )
        elif d["problem"]:
            text += f"\nPROBLEM:     {d['problem']}"
        return text

    emit(k.show().to_json(), as_json, human)


# --------------------------------------------------------------------------- sign


def _no_mark(issued) -> str:
    skipped = getattr(issued, "watermark_skipped", None)
    return f"none ({skipped})" if skipped else "none"


@click.command()
@click.argument("source", type=_file)
@out_option("Signed output file.")
@click.option(
    "--source-type",
    default=None,
    help="IPTC digital source type, any case: " + ", ".join(DIGITAL_SOURCE_TYPES) + ".",
)
@click.option("--action", default=None, help="created (default), edited, ... (c2pa.<action>).")
@click.option(
    "--ingredient",
    "ingredients",
    type=_file,
    multiple=True,
    help="A parent asset (parentOf); repeatable.",
)
@click.option(
    "--component",
    "components",
    type=_file,
    multiple=True,
    help="A component asset (componentOf); repeatable.",
)
@click.option("--author", default=None, help="Author name (CreativeWork).")
@click.option("--title", default=None, help="Manifest title (default: output file name).")
@training_option(None, "the file")
@click.option(
    "--watermark/--no-watermark",
    default=True,
    show_default=True,
    help="Embed the asset id as an invisible watermark first.",
)
@click.option(
    "--tsa",
    metavar="URL",
    default=None,
    help="RFC 3161 time-stamping authority to time-stamp the signature "
    "(default: [sign] tsa in provkit.toml, else none).",
)
@click.option(
    "--receipt",
    is_flag=True,
    help="Also write OUT.receipt.json: the asset's inclusion proof in the assets "
    "log with a signed checkpoint (needs the log key).",
)
@disclosure_options
@dev_identity_option
@force_option
@db_option
@json_option
def sign(
    source,
    out,
    source_type,
    action,
    ingredients,
    components,
    author,
    title,
    allow_training,
    no_train_old,
    watermark,
    tsa,
    receipt,
    disclose,
    provider,
    system_name,
    system_version,
    cn_producer,
    visible_label,
    dev_identity,
    force,
    db_path,
    as_json,
):
    """Watermark and sign a file with a C2PA manifest, and record it.

    Images are watermarked first; PDF, audio and video are signed as they are (the
    watermark lives in pixels) and the output says so."""
    if no_train_old:
        allow_training = False
    if receipt:  # no log key, or a receipt in the way: say so before any work
        log_key()
        receipt_path(out, force=force)
    issued = sign_(
        source,
        out,
        source_type=source_type,
        action=action,
        ingredients=ingredients,
        components=components,
        author=author,
        title=title,
        allow_training=allow_training,
        watermark=watermark,
        db=db_path,
        force=force,
        tsa=tsa,
        dev_identity=dev_identity,
        disclosure=disclosure_lib.profile(
            disclose=disclose,
            provider=provider,
            system=system_name,
            system_version=system_version,
            cn_producer=cn_producer,
            visible_label=visible_label,
            source_type=source_type,
        ),
    )
    written = (
        write_receipt(issued.asset_id, issued.path, db=db_path, force=force) if receipt else None
    )
    data = {**issued.to_json(), "receipt": written} if written else issued
    emit(
        data,
        as_json,
        lambda d: (
            f"signed {issued.path}\n  asset id:    {issued.asset_id}\n"
            f"  manifest:    {issued.manifest_label}\n"
            f"  signer:      {issued.signer.get('common_name')}\n"
            f"  watermark:   {issued.soft_binding_alg or _no_mark(issued)}\n"
            f"  sha256:      {issued.sha256}" + (f"\n  receipt:     {written}" if written else "")
        ),
    )


# --------------------------------------------------------------------------- recover


@click.command()
@click.argument("source", type=_file)
@out_option("Output file.")
@trust_option
@force_option
@db_option
@json_option
def recover(source, out, trust, force, db_path, as_json):
    """Re-attach a recovered manifest to a stripped image."""
    result = recover_(source, out, db=db_path, trust=trust, force=force)
    emit(
        result.to_json(),
        as_json,
        lambda d: (
            f"recovered {d['asset_id']} by {d['recovered_by']['method']}; wrote {d['path']} "
            f"(parent manifest {d['recovered_manifest']}; "
            f"{', '.join(d.get('actions') or [])}: "
            f"{(d.get('relation') or {}).get('sentence', '')})"
        ),
    )


# --------------------------------------------------------------------------- ledger


@click.group()
def ledger():
    """List and show the assets this workspace issued."""


@ledger.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option(
    "--source-type",
    default=None,
    help="Only this digital source type, any case: " + ", ".join(DIGITAL_SOURCE_TYPES) + ".",
)
@db_option
@json_option
def ledger_list(limit, source_type, db_path, as_json):
    """Issued assets, newest first."""
    if source_type:
        source_type = canonical_source_type(source_type)
    rows = ledger_lib.list_(db_path, limit=limit, source_type=source_type)

    def human(items):
        if not items:
            total = ledger_lib.ledger_store(db_path, create=False).count()
            if total and source_type:
                return f"no assets with source type {source_type} ({total} issued in all)"
            return "no assets issued yet"
        lines = [f"{'ASSET ID':<16}  {'CREATED':<20}  {'STATUS':<8} {'SOURCE TYPE':<24} PATH"]
        lines += [
            f"{a.asset_id}  {a.created}  {a.status:<8} {a.source_type or '-':<24} {a.path}"
            for a in items
        ]
        return "\n".join(lines)

    emit(rows, as_json, human)


@ledger.command("show")
@click.argument("asset_id")
@db_option
@json_option
def ledger_show(asset_id, db_path, as_json):
    """One issued asset, with its manifest."""
    data = ledger_lib.show(asset_id, db_path).to_json()

    def human(d):
        keys_ = (
            "asset_id",
            "created",
            "status",
            "status_reason",
            "path",
            "source_path",
            "sha256",
            "source_type",
            "manifest_label",
            "soft_binding_alg",
            "phash",
            "pdq",
        )
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
    cfg = show()

    def human(d):
        rows = [("SETTING", "VALUE", "FROM")]
        for s in d["settings"]:
            value = s["value"]
            shown = (
                "-"
                if value is None
                else ", ".join(value)
                if isinstance(value, list)
                else str(value)
            )
            rows.append((s["key"], shown, "default" if s["from"] == "default" else "provkit.toml"))
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        lines = [
            f"configuration file: {d['path']}"
            + ("" if any(s["from"] != "default" for s in d["settings"]) else " (none: defaults)")
        ]
        lines += [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows]
        lines.append("")
        lines += [f"{s['key']}: {describe(s['key'])}" for s in d["settings"]]
        return "\n".join(lines)

    emit(cfg.to_json(), as_json, human)
