"""``provkit policy`` and ``provkit audit``: thin shells over the library verbs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provkit.options import (
    db_option,
    emit,
    force_option,
    json_option,
    out_option,
    progress,
    trust_option,
)
from provkit.policies import audit as audit_lib
from provkit.policies import verbs
from provkit.policies.check import DEFAULT_EVIDENCE, read_contexts
from provkit.policies.check import check as check_
from provkit.policies.pack import POINTS
from provkit.provenance.core.errors import shown

_MARK = {"allow": "ALLOW", "deny": "DENY", "label": "LABEL", "review": "REVIEW"}


# ---------------------------------------------------------------- policy
@click.group()
def policy():
    """Check inputs against usage policies; lint and test policy packs."""


def _human_result(r: dict) -> str:
    if r.get("error"):
        error = r["error"]
        return (
            f"error: {error}"
            if error.startswith(r["source"])
            else f"{shown(r['source'])}: error: {error}"
        )
    head = f"{shown(r['source'])}: {_MARK[r['outcome']]}"
    if r["labels"]:
        head += " [" + "; ".join(r["labels"]) + "]"
    lines = [head + f"  ({r['pack']} at {r['point']})"]
    rules = r["matched_rules"]
    for i, reason in enumerate(r["reasons"]):
        lines.append(f"  - {rules[i]}: {reason}" if i < len(rules) else f"  - {reason}")
    return "\n".join(lines)


@policy.command("check")
@click.option(
    "--pack",
    "pack_name",
    default=None,
    help="Shipped pack name or a pack YAML path (default: [policy] POINT in provkit.toml).",
)
@click.option(
    "--point",
    type=click.Choice(POINTS),
    default=None,
    help="Decision point (default: the context's point, else verify).",
)
@trust_option
@click.option("--dry-run", is_flag=True, help="Decide without writing to the audit log.")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--context",
    "context_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A prepared decision context (JSON object, array or JSON lines).",
)
@click.option("--actor", default=None, help="Who is deciding (recorded in the audit log).")
@click.option("--role", default=None, help="The actor's role.")
@click.option("--org", default=None, help="The actor's organisation.")
@click.option(
    "--evidence",
    default=None,
    metavar="MODULE:FUNCTION",
    help="Evidence provider for FILES (default: detect.verdict:policy_context_for_file).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["deny", "review", "never"]),
    default="deny",
    show_default=True,
    help="Exit 1 when any decision is this strong or stronger.",
)
@db_option
@json_option
def check(
    pack_name,
    point,
    trust,
    dry_run,
    files,
    context_files,
    actor,
    role,
    org,
    evidence,
    fail_on,
    db_path,
    as_json,
):
    """Run FILES or folders (through detection evidence) or prepared contexts through a pack.

    Prints each decision with the rules that matched and their reasons, and appends every
    decision to the audit log (not with --dry-run). A prepared context that lacks a field
    the pack reads is refused, naming it. Exit 1 on a deny (see --fail-on), 2 if an input
    was unusable.
    """
    if not files and not context_files:
        raise click.UsageError("give FILE arguments or --context JSON_FILE")
    contexts = [c for path in context_files for c in read_contexts(path)]
    total = len(files) + len(contexts)
    with progress("checking", total) as bar:
        results = check_(
            pack_name,
            files,
            point=point,
            actor=actor,
            role=role,
            org=org,
            contexts=contexts,
            db=db_path,
            evidence=evidence or DEFAULT_EVIDENCE,
            on_item=lambda _: bar.update(1),
            trust=trust,
            dry_run=dry_run,
        )
    data = [r.to_json() for r in results]
    emit(data, as_json, lambda rows: "\n".join(_human_result(r) for r in rows))
    ctx = click.get_current_context()
    if any(r.error for r in results):
        ctx.exit(2)
    stop = {"deny": ("deny",), "review": ("deny", "review"), "never": ()}[fail_on]
    if any(r.decision.outcome in stop for r in results):
        ctx.exit(1)


@policy.command("lint")
@click.argument("pack_name", metavar="PACK")
@json_option
def lint(pack_name, as_json):
    """Validate a pack: fields, CEL expressions, term lists, reachability. Exit 1 on errors."""
    data = verbs.lint(pack_name).to_json()
    path = data["pack"]

    def human(d):
        lines = [f"{path}:{f['line'] or 1}: {f['severity']}: {f['message']}" for f in d["findings"]]
        lines.append(
            f"{shown(path)}: {'ok' if d['ok'] else 'invalid'} "
            f"({sum(f['severity'] == 'error' for f in d['findings'])} errors, "
            f"{sum(f['severity'] == 'warning' for f in d['findings'])} warnings)"
        )
        return "\n".join(lines)

    emit(data, as_json, human)
    if not data["ok"]:
        click.get_current_context().exit(1)


@policy.command("test")
@click.argument("pack_name", metavar="PACK")
@click.option(
    "--cases",
    type=click.Path(path_type=Path),
    default=None,
    help="Cases file (default: cases.yaml beside the pack).",
)
@json_option
def test(pack_name, cases, as_json):
    """Run a pack's own test cases; exit 1 if any fails."""
    data = verbs.test(pack_name, cases).to_json()

    def human(d):
        lines = []
        for c in d["cases"]:
            lines.append(f"{'ok  ' if c['passed'] else 'FAIL'} {c['point']}: {c['name']}")
            lines += [f"     {p}" for p in c["problems"]]
        lines.append(f"{d['passed']}/{d['total']} cases passed")
        return "\n".join(lines)

    emit(data, as_json, human)
    if data["passed"] != data["total"]:
        click.get_current_context().exit(1)


@policy.command("show")
@click.argument("pack_name", metavar="PACK")
@json_option
def show(pack_name, as_json):
    """Show a pack: version, digest, defaults and rules."""
    pack = verbs.show(pack_name)

    def human(d):
        lines = [
            f"{d['name']} {d['version']}  (sha256 {d['digest'][:16]}...)",
            f"default {d['default']}, fail closed to {d['fail_closed']}",
            "",
        ]
        for r in d["rules"]:
            extra = f" [{r['label']}]" if r["label"] else ""
            lines.append(f"{r['id']}: {r['outcome']}{extra} at {', '.join(r['points'])}")
            lines.append(f"    when {' '.join(r['when'].split())}")
        return "\n".join(lines)

    emit(pack.to_json(), as_json, human)


@policy.command("list")
@json_option
def list_packs(as_json):
    """List the shipped packs."""
    data = [p.to_json() for p in verbs.list_()]
    emit(
        data,
        as_json,
        lambda d: "\n".join(
            ["PACK VERSION: DESCRIPTION"]
            + [f"{p['name']} {p['version']}: {' '.join(p['description'].split())}" for p in d]
        ),
    )


# ---------------------------------------------------------------- audit
@click.group()
def audit():
    """Read, verify and export the tamper-evident log of policy decisions."""


@audit.command("log")
@click.option("--since", default=None, help="ISO date/time, or an age such as 24h or 7d.")
@click.option("--outcome", type=click.Choice(["allow", "deny", "label", "review"]), default=None)
@click.option("--point", type=click.Choice(POINTS), default=None)
@click.option("--actor", default=None)
@click.option("--limit", type=int, default=None, help="At most this many rows (newest).")
@db_option
@json_option
def log(since, outcome, point, actor, limit, db_path, as_json):
    """List recorded decisions, oldest first."""
    rows = audit_lib.log(
        db_path, since=since, outcome=outcome, point=point, actor=actor, limit=limit
    )

    def human(rs):
        if not rs:
            filtered = any(v is not None for v in (since, outcome, point, actor))
            return (
                "no decisions match these filters"
                if filtered and audit_lib.audit_store(db_path, create=False).count()
                else "no decisions recorded"
            )
        lines = ["SEQ   TIME                  POINT      PACK       OUTCOME  ACTOR  SUBJECT"]
        for r in rs:
            labels = f" [{'; '.join(r['labels'])}]" if r["labels"] else ""
            lines.append(
                f"#{r['seq']:<4} {r['time'][:19]}Z  {r['point']:<10} {r['pack']:<10} "
                f"{_MARK.get(r['outcome'], r['outcome'])}{labels}  "
                f"{r['actor'] or '-'}  {r['subject'] or '-'}"
            )
            rules = r["matched_rules"]
            for i, reason in enumerate(r["reasons"]):
                lines.append(
                    f"      - {rules[i]}: {reason}" if i < len(rules) else f"      - {reason}"
                )
        return "\n".join(lines)

    emit(rows, as_json, human)


@audit.command("verify")
@click.option(
    "--expect-head",
    default=None,
    metavar="[SEQ:]HASH",
    help="A head recorded earlier (provkit audit head); catches rows cut from the end.",
)
@click.option(
    "--export",
    "export_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Verify an exported JSONL log instead of the database.",
)
@click.option(
    "--audit-key",
    "audit_key",
    default=None,
    metavar="HEX|FILE",
    help="The audit public key (hex, or the audit.pub file) to check signatures "
    "with (default: this workspace's).",
)
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(path_type=Path),
    default=None,
    help="A decisions-log checkpoint kept elsewhere (provkit log checkpoint --log "
    "decisions): the rows must still give the tree it signs.",
)
@click.option(
    "--log-key",
    "log_key",
    default=None,
    metavar="KEY|FILE",
    help="The log verifier key to check --checkpoint with (default: this workspace's).",
)
@db_option
@json_option
def verify(expect_head, export_file, audit_key, checkpoint_file, log_key, db_path, as_json):
    """Recompute the hash chain and check the signed checkpoints; name the first edited,
    deleted, reordered, forged or cut row. Exit 1 if bad."""
    if audit_key is not None and Path(audit_key).is_file():
        audit_key = Path(audit_key).read_text().strip()
    result = audit_lib.verify(
        db_path,
        expect_head=expect_head,
        export=export_file,
        public_key=audit_key,
        checkpoint=checkpoint_file,
        log_key=log_key,
    )

    def human(d):
        if d["ok"]:
            head = d["head"]
            where = f"; head {head['seq']}:{head['hash']}" if head else ""
            part = (
                f" from row {d['from_seq']} (a partial export: earlier rows were not "
                "exported and are not checked)"
                if d.get("from_seq")
                else ""
            )
            signed = (
                f", signed through row {d['signed_through']}"
                if d.get("signed_through")
                else ", no signed checkpoint (a log from before checkpoints)"
                if d["rows"]
                else ""
            )
            return f"ok: {d['rows']} rows{part}, chain intact{signed}{where}"
        return f"TAMPERED: first bad row {d['first_bad']}: {d['problem']}"

    emit(result.to_json(), as_json, human)
    if not result.ok:
        click.get_current_context().exit(1)


@audit.command("head")
@db_option
@json_option
def head(db_path, as_json):
    """Print the chain head (SEQ:HASH) to anchor outside the database."""
    h = audit_lib.head(db_path)
    emit(h.to_json() if h else None, as_json, lambda d: str(h) if h else "the log is empty")


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@out_option("Write here instead of stdout.", required=False)
@force_option
@click.option("--since", default=None, help="ISO date/time, or an age such as 24h or 7d.")
@db_option
def export(fmt, out, force, since, db_path):
    """Export every row with its hashes (re-verifiable with audit verify --export).

    With --since the export starts with a header line naming its first row; verifying
    it checks the chain from that row on."""
    done = audit_lib.export(
        out, db=db_path, format=fmt, since=since, force=force, stream=sys.stdout
    )
    click.echo(f"exported {done.rows} rows", err=True)


__all__ = ["audit", "policy"]
