"""``provkit log``: the Merkle logs' checkpoints, proofs and key; thin shells over
:mod:`provkit.provenance.core.transparency`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from provkit.options import db_option, emit, force_option, json_option, out_option
from provkit.provenance.core import transparency
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.files import atomic_write
from provkit.provenance.core.tlog import LOGS

log_choice = click.option(
    "--log",
    "log_name",
    type=click.Choice(sorted(LOGS)),
    default=None,
    help="Which log: assets (issued assets) or decisions (the audit log).",
)


@click.group()
def log():
    """Checkpoints and proofs of the workspace's Merkle logs (issued assets, decisions)."""


def _write(out: Path | None, data: bytes, force: bool) -> None:
    if out is None:
        return
    try:
        atomic_write(out, data, overwrite=force)
    except FileExistsError:
        raise BadInput("output already exists (use --force to replace it)", path=out) from None


@log.command("checkpoint")
@log_choice
@out_option("Also write the signed checkpoint (note text) here.", required=False)
@force_option
@db_option
@json_option
def checkpoint(log_name, out, force, db_path, as_json):
    """Sign the log's current tree and print the checkpoint (C2SP tlog-checkpoint)."""
    cp = transparency.checkpoint(log_name or "assets", db=db_path)
    _write(out, cp.note.encode(), force)
    emit(cp.to_json(), as_json, lambda d: d["note"].rstrip("\n"))


@log.command("prove")
@click.argument("ref", metavar="ASSET_ID|AUDIT_ROW")
@log_choice
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Prove against this checkpoint (one a verifier holds) instead of a new one.",
)
@out_option("Write the proof (JSON) here.", required=False)
@force_option
@db_option
@json_option
def prove(ref, log_name, checkpoint_file, out, force, db_path, as_json):
    """Prove that an issued asset (16 hex digits) or an audit row (its number) is in
    its log, against a checkpoint of the log as it is now (or --checkpoint)."""
    proof = transparency.prove(ref, log=log_name, db=db_path, checkpoint=checkpoint_file)
    proof = proof.to_json()
    _write(out, json.dumps(proof, indent=1).encode() + b"\n", force)

    def human(d):
        saved = f"; proof written to {out}" if out else " (use -o FILE to save the proof)"
        return (
            f"{d['log']} entry {d['key']} is leaf {d['index']} of {d['size']}, "
            f"{len(d['hashes'])} hashes to the checkpoint's root{saved}"
        )

    emit(proof, as_json, human)


@log.command("consistency")
@click.argument("old_checkpoint", type=click.Path(path_type=Path))
@out_option("Write the proof (JSON) here.", required=False)
@force_option
@db_option
@json_option
def consistency(old_checkpoint, out, force, db_path, as_json):
    """Prove that the log now extends an older checkpoint of it (nothing recorded before
    was changed, dropped or reordered)."""
    proof = transparency.consistency(old_checkpoint, db=db_path).to_json()
    _write(out, json.dumps(proof, indent=1).encode() + b"\n", force)

    def human(d):
        saved = f"; proof written to {out}" if out else " (use -o FILE to save the proof)"
        return (
            f"{d['log']}: {d['old_size']} -> {d['new_size']} leaves, "
            f"{len(d['hashes'])} hashes{saved}"
        )

    emit(proof, as_json, human)


@log.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    required=True,
    type=click.Path(path_type=Path),
    help="The checkpoint you hold (note text).",
)
@click.option(
    "--proof",
    "proof_file",
    type=click.Path(path_type=Path),
    default=None,
    help="An inclusion or consistency proof (JSON) to check against it.",
)
@click.option(
    "--key",
    "key",
    required=True,
    metavar="KEY|FILE",
    help="The log's verifier key (NAME+HASH+KEY, from `provkit log key`), or a file holding it.",
)
@json_option
def verify(checkpoint_file, proof_file, key, as_json):
    """Check a checkpoint's signature and a proof against it, offline (no database).
    Exit 1 if either fails."""
    result = transparency.verify(checkpoint=checkpoint_file, proof=proof_file, key=key)
    emit(result.to_json(), as_json, lambda d: ("ok: " if d["ok"] else "FAILED: ") + d["statement"])
    if not result.ok:
        click.get_current_context().exit(1)


@log.command("key")
@click.option(
    "--init", is_flag=True, help="Make the workspace's log key if it has none (never replaces one)."
)
@json_option
def key(init, as_json):
    """Print the log's public verifier key (C2SP note format) to give to partners."""
    k = transparency.key(init=init)
    emit(k.to_json(), as_json, lambda d: d["verifier_key"])
