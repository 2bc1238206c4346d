"""The ``bank`` commands (add, import, export, list, stats, set, remove, remove-item) and
``dupes``.

Thin shells over the verbs of :mod:`detect.reference_sets`; no logic lives here. The
group's old name, ``provkit index``, is kept as a hidden alias for one release.

Why one module of over 400 lines: every bank verb and ``dupes`` share the option
parsers (metadata pairs, match distances, actions) and the match printer; each command
is a few lines of shell over its library twin.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from provkit.detect import reference_sets as verbs
from provkit.options import bank_option, db_option, emit, json_option, out_option, progress
from provkit.provenance.core.errors import BadInput, shown
from provkit.provenance.core.imageio import expand_inputs

ACTIONS = ("deny", "review", "label", "allow", "none")


def _action_option(f):
    return click.option(
        "--action",
        type=click.Choice(ACTIONS),
        default=None,
        help="What a match in this bank means to a policy: deny, review or label the "
        "image, or allow (a negative bank: a match there cancels the others); none "
        "only reports matches. Kept when not given.",
    )(f)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_metadata(pairs) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"metadata {pair!r} must be KEY=VALUE (e.g. licence=CC-BY-4.0)")
        out[key] = _parse_value(value)
    return out


@click.group()
def bank():
    """Manage banks: reference images and partner hash lists to match uploads against."""


#: The old name of the group, kept one release (hidden; same commands).
index = click.Group(
    "index",
    commands=bank.commands,
    hidden=True,
    help="Old name of `provkit bank` (kept one release).",
)


@bank.command("add")
@click.argument("name")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--label", help="Label reported with every match (e.g. 'training data').")
@click.option(
    "--protected", is_flag=True, help="Mark the set protected (training data, opt-out registry)."
)
@click.option("--description", help="What the bank holds.")
@_action_option
@click.option(
    "--metadata",
    "-m",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata for every item added (source_url, licence, opt_out=true...). Repeatable.",
)
@click.option(
    "--clip",
    "clip_spec",
    metavar="ARCH:WEIGHTS",
    help="Also store CLIP embeddings from this local model (e.g. ViT-B-32:/models/b32.bin).",
)
@click.option(
    "--no-crops", is_flag=True, help="Skip crop fingerprints (smaller, but crops are missed)."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    help="Processes for fingerprinting (default: all cores).",
)
@db_option
@json_option
def index_add(
    name,
    sources,
    label,
    protected,
    description,
    action,
    metadata,
    clip_spec,
    no_crops,
    workers,
    db_path,
    as_json,
):
    """Add images to bank NAME from folders, image files or list files.

    A list file has one path per line (relative to the list file); a .jsonl list has
    one object per line with "path" and any per-item metadata (an "id" there is the
    partner's id for the item). Files that cannot be read are reported and skipped;
    the exit code is then 2.
    """
    with progress("fingerprinting") as bar:
        report = verbs.add(
            name,
            sources,
            db=db_path,
            label=label,
            protected=protected,
            description=description,
            action=action,
            clip=clip_spec,
            metadata=_parse_metadata(metadata),
            crops=not no_crops,
            workers=workers,
            progress=bar.update,
            on_start=bar.start,
        )
    for path, reason in report.errors:
        click.echo(f"error: {shown(path)}: {reason}", err=True)

    def human(r):
        rate = (r["added"] + r["already_present"] + r["failed"]) / max(r["seconds"], 1e-9)
        return (
            f"{r['set']}: added {r['added']}, already present {r['already_present']}, "
            f"failed {r['failed']} ({r['seconds']:.1f}s, {rate:.0f} images/s)"
        )

    emit(report.to_json(), as_json, human)
    if report.errors:
        sys.exit(2)


@bank.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["pdq", "phash", "dhash"]),
    default="pdq",
    show_default=True,
    help="Hash kind the list holds.",
)
@click.option("--label", help="Label reported with every match (e.g. 'partner bank').")
@click.option("--protected", is_flag=True, help="Mark the bank protected.")
@click.option("--description", help="What the bank holds.")
@_action_option
@click.option(
    "--metadata",
    "-m",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata for every hash imported (a column of the same name wins).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 2 when any line was skipped (the usable lines are imported either way).",
)
@db_option
@json_option
def index_import(
    name, file, kind, label, protected, description, action, metadata, strict, db_path, as_json
):
    """Import a hash list (CSV/TSV, JSONL, ThreatExchange/HMA export) into bank NAME.

    Each line keeps the partner's id (an id, source_id, content_id or bank_content_id
    column) and every other column as its metadata. Lines that cannot be used are
    reported on stderr with their numbers (and in --json under "errors") and skipped: a
    partial import exits 0 and says so ("complete": false); exit 2 only when no line
    could be used, or with --strict when any was skipped. Hashes already in the bank
    (same id) are counted, not added twice, so an interrupted import is finished by
    running it again.
    """
    report = verbs.import_(
        name,
        file,
        kind=kind,
        db=db_path,
        label=label,
        protected=protected,
        description=description,
        action=action,
        metadata=_parse_metadata(metadata),
    )
    usable = report.imported + report.already_present + report.low_quality
    word = "error" if strict or not usable else "skipped"
    for line, reason in report.errors:
        click.echo(f"{word}: {file}: line {line}: {reason}", err=True)
    if report.invalid > len(report.errors):
        click.echo(
            f"{word}: {file}: {report.invalid - len(report.errors)} more invalid lines", err=True
        )
    if report.invalid and usable:
        click.echo(
            f"partial import: {file}: {report.invalid} line(s) skipped, the other "
            f"{usable} hash(es) are in bank {name}",
            err=True,
        )

    def human(r):
        return (
            f"{r['set']}: imported {r['imported']} {r['kind']} hashes, already present "
            f"{r['already_present']}, invalid lines {r['invalid']}, low quality (kept, "
            f"flagged) {r['low_quality']} ({r['seconds']:.1f}s, "
            f"{r['hashes_per_second']} hashes/s)"
        )

    emit({**report.to_json(), "complete": not report.invalid}, as_json, human)
    if report.invalid and (strict or not usable):
        sys.exit(2)


@bank.command("export")
@click.argument("name")
@out_option("File to write (.csv, .tsv or .jsonl).")
@db_option
@json_option
def index_export(name, out, db_path, as_json):
    """Write the hashes of bank NAME to a file that `bank import` reads back."""
    report = verbs.export(name, out, db=db_path)
    emit(
        report.to_json(),
        as_json,
        lambda r: f"{r['set']}: wrote {r['exported']} hashes to {r['out']}",
    )


@bank.command("list")
@db_option
@json_option
def index_list(db_path, as_json):
    """List banks: size, action, whether each is switched on for matching."""
    sets = [s.to_json() for s in verbs.list_(db_path)]

    def human(rows):
        if not rows:
            return "no banks (add one with `provkit bank add NAME DIR`)"
        return "\n".join(
            ["NAME\tITEMS\tACTION\tMATCHING\tACCESS\tLABEL\tCLIP"]
            + [
                f"{r['name']}\t{r['items']} items\t{r['action'] or 'report'}"
                f"\t{'on' if r['enabled'] else 'off'}"
                + (
                    " (" + " ".join(f"{k}<={v}" for k, v in r["max_distance"].items()) + ")"
                    if r["max_distance"]
                    else ""
                )
                + f"\t{'protected' if r['protected'] else 'open'}"
                f"\t{r['label'] or ''}\t{'clip: ' + r['clip_model'] if r['clip_model'] else ''}".rstrip()
                for r in rows
            ]
        )

    emit(sets, as_json, human)


@bank.command("stats")
@click.argument("name")
@db_option
@json_option
def index_stats(name, db_path, as_json):
    """Size and fingerprint health of one bank."""
    stats = verbs.stats(name, db_path).to_json()
    emit(stats, as_json, lambda d: "\n".join(f"{k + ':':<18} {v}" for k, v in d.items()))


@bank.command("set")
@click.argument("name")
@_action_option
@click.option(
    "--enable/--disable",
    "enabled",
    default=None,
    help="Switch the bank on or off for matching (its items stay).",
)
@click.option(
    "--max-distance",
    "max_distance",
    multiple=True,
    metavar="KIND=VALUE",
    help="The bank's own match distance per kind, e.g. pdq=20 phash=8 "
    "(used when a search gives none); 'default' resets it.",
)
@click.option("--label", help="Label reported with every match.")
@click.option("--description", help="What the bank holds.")
@db_option
@json_option
def bank_set(name, action, enabled, max_distance, label, description, db_path, as_json):
    """Change bank NAME's action, matching switch, match distance, label or description."""
    options = {}
    if action is not None:
        options["action"] = None if action == "none" else action
    if max_distance:
        options["max_distance"] = (
            None if max_distance == ("default",) else _bank_limits(max_distance)
        )
    result = verbs.set_(
        name, db=db_path, enabled=enabled, label=label, description=description, **options
    ).to_json()
    emit(
        result,
        as_json,
        lambda r: (
            f"{r['name']}: action {r['action'] or 'none (report only)'}, matching "
            f"{'on' if r['enabled'] else 'off'}, distance "
            + (
                " ".join(f"{k}<={v}" for k, v in r["max_distance"].items())
                if r["max_distance"]
                else "default"
            )
        ),
    )


def _bank_limits(values) -> dict:
    limits = _parse_limits(values)
    if not isinstance(limits, dict):
        raise BadInput("--max-distance of a bank is per kind: KIND=VALUE, e.g. pdq=20")
    return limits


@bank.command("remove-item")
@click.argument("name")
@click.argument("ids", nargs=-1, required=True)
@db_option
@json_option
def remove_item(name, ids, db_path, as_json):
    """Remove items from bank NAME by the partner's id (or provkit's item id, or the
    stored path of an image item)."""
    result = verbs.remove_item(name, ids, db=db_path).to_json()
    emit(
        result,
        as_json,
        lambda r: (
            f"{name}: removed {r['removed_items']} item(s)"
            + (f"; not found: {', '.join(r['not_found'])}" if r.get("not_found") else "")
        ),
    )
    if result.get("not_found"):
        sys.exit(1)


@bank.command("remove")
@click.argument("name")
@click.option(
    "--item",
    "items",
    multiple=True,
    metavar="ID_OR_PATH",
    help="Remove only these items (partner ids, item ids or stored paths); default: the "
    "whole bank.",
)
@db_option
@json_option
def index_remove(name, items, db_path, as_json):
    """Remove a bank, or some of its items."""
    result = verbs.remove(name, items, db=db_path).to_json()
    emit(
        result,
        as_json,
        lambda r: (
            f"removed {'bank ' + name + ' and ' if r['removed_set'] else ''}"
            f"{r['removed_items']} item(s)"
        ),
    )


def _parse_limits(values):
    if not values:
        return None
    limits: dict = {}
    for v in values:
        kind, sep, num = v.partition("=")
        if not sep:
            try:
                return float(v) if len(values) == 1 else _bad_limits(values)
            except ValueError:
                _bad_limits(values)
        try:
            limits[kind] = float(num) if kind == "clip" else int(num)
        except ValueError:
            _bad_limits(values)
    return limits


def _bad_limits(values):
    raise BadInput(
        f"--max-distance {' '.join(values)}: give one number of bits (pHash/dHash; PDQ "
        "scales from it) or KIND=VALUE pairs such as pdq=24 phash=8 clip=0.9"
    )


def _human_matches(reports) -> str:
    lines = []
    for r in reports:
        if "error" in r:
            continue
        unchecked = [
            f"  CLIP similarity not checked for bank {name}: {why}"
            for name, why in sorted(r.get("clip_not_checked", {}).items())
        ]
        if not r["matches"]:
            lines.append(f"{shown(r['path'])}: no near-duplicates")
            lines += unchecked
            continue
        lines.append(f"{shown(r['path'])}: {len(r['matches'])} near-duplicate(s)")
        for m in r["matches"]:
            d = m["distances"]
            clip = f" clip={m['clip_similarity']:.3f}" if m["clip_similarity"] is not None else ""
            tag = " [protected]" if m["protected"] else ""
            exact = " identical file" if m["exact"] else ""
            what = m["path"] or f"id {m.get('partner_id')}"  # an imported hash has no file
            if m["path"] and m.get("partner_id"):
                what += f" (id {m['partner_id']})"
            dists = " ".join(
                f"{k}={d[k]}" for k in ("pdq", "phash", "dhash") if d.get(k) is not None
            )
            action = f" [{m['action']}]" if m.get("action") else ""
            lines.append(
                f"  {m['bank']}#{m['item_id']} {what}  by {m['kind']}: {dists}{clip}{tag}"
                f"{exact}{action}"
            )
        lines += unchecked
    return "\n".join(lines)


@click.command("dupes")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@bank_option()
@click.option(
    "--max-distance",
    "max_distance",
    multiple=True,
    metavar="BITS|KIND=VALUE",
    help="Match threshold: pHash bits (dHash and PDQ scale: 10 -> 12, 31), or per "
    "kind, e.g. pdq=24 phash=8 clip=0.9. Default: each bank's own (`bank set "
    "--max-distance`), else pdq=31 phash=10 dhash=12 clip=0.95.",
)
@click.option(
    "-k",
    "k",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="Most matches per file.",
)
@click.option(
    "--clip",
    "clip_spec",
    metavar="ARCH:WEIGHTS",
    help="CLIP model for similarity (default: the one the bank was embedded with).",
)
@click.option(
    "--no-clip", is_flag=True, help="Skip CLIP similarity even if the set has embeddings."
)
@click.option("--fail-on-match", is_flag=True, help="Exit 1 if any file has a near-duplicate.")
@db_option
@json_option
def dupes(files, sets, max_distance, k, clip_spec, no_clip, fail_on_match, db_path, as_json):
    """Find near-duplicates of FILES (or the images in folders) in the banks."""
    files = expand_inputs(files)
    with progress("searching", len(files)) as bar:
        found = verbs.dupes(
            files,
            sets=list(sets) or None,
            max_distance=_parse_limits(max_distance),
            k=k,
            clip=False if no_clip else clip_spec,
            db=db_path,
            progress=bar.update,
        )
    reports, bad = [r.to_json() for r in found], 0
    for r in found:
        if r.error is not None:
            bad += 1
            click.echo(f"error: {shown(r.path)}: {r.error}", err=True)
    emit(reports, as_json, _human_matches)
    if bad:
        sys.exit(2)
    if fail_on_match and any(r["matches"] for r in reports):
        sys.exit(1)
