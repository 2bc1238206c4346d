"""``provkit detect`` and ``provkit scan``: thin shells over detect.verdict and detect.scan.

``provkit detect FILE...`` reports evidence and a verdict per file; ``provkit detect
train`` fits a classifier probe. A first argument that is not a subcommand name is
taken as the start of ``detect files``, so both forms work.

Why one module: the detect, scan and check commands share their options (probe, CLIP,
banks, trust, threshold, evidence) and their output shapes; split, each would repeat
them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provkit.answers import check as check_
from provkit.answers import pack_reads_skipped, scan_judge
from provkit.detect.classifier import train as train_
from provkit.detect.scan import scan as scan_
from provkit.detect.scan_ray import scan_ray
from provkit.detect.verdict import VERDICTS
from provkit.detect.verdict import detect as detect_
from provkit.options import (
    bank_option,
    emit,
    force_option,
    json_option,
    out_option,
    progress,
    read_db_option,
    trust_option,
)
from provkit.policies import load_pack
from provkit.provenance.core.config import load as load_config
from provkit.provenance.core.errors import ProvkitError, shown
from provkit.provenance.core.extras import require
from provkit.provenance.core.imageio import expand_inputs, image_paths


class DefaultGroup(click.Group):
    """A group that runs ``default`` when the first argument is not a subcommand."""

    default = "files"

    def parse_args(self, ctx, args):
        if not args or args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "[OPTIONS] FILE... | train [OPTIONS]")


def _clip_option(f):
    return click.option(
        "--clip",
        "clip_spec",
        metavar="ARCH:WEIGHTS",
        envvar="PROVKIT_CLIP",
        help="CLIP model: open_clip architecture and a local weights file or folder, "
        "e.g. ViT-L-14:/models/vit-l-14.bin (default: the one the probe names).",
    )(f)


def _probe_option(f):
    return click.option(
        "--probe",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="PROVKIT_PROBE",
        help="Classifier probe JSON from `provkit detect train`.",
    )(f)


def _index_option(f):
    return bank_option(
        "index_sets",
        help="Search only these banks for near-duplicates "
        "(repeatable; default: every bank switched on "
        "for matching).",
    )(f)


def _threshold_option(f):
    return click.option(
        "--threshold",
        type=click.FloatRange(0.5, 1.0),
        default=None,
        help="Classifier probability at or above which it reports AI "
        "(default: [thresholds] classifier in provkit.toml, else 0.8).",
    )(f)


def _settings(trust, threshold) -> dict:
    """Trust sources and threshold: the command line's, else the workspace configuration's."""
    cfg = load_config()
    out = {"trust": cfg.get("trust.sources", trust)}
    threshold = cfg.get("thresholds.classifier", threshold)
    if threshold is not None:  # else the detector's default
        out["threshold"] = threshold
    return out


@click.group(cls=DefaultGroup, invoke_without_command=False)
def detect():
    """Collect evidence and give a verdict: is this image AI-made?

    \b
    provkit detect FILE... [--json] [--probe P] [--clip ARCH:WEIGHTS] [--bank NAME]
    provkit detect train --real DIR --fake DIR -o probe.json --clip ARCH:WEIGHTS

    Run `provkit detect files --help` for the options of the first form.
    """


#: Findings that say nothing was found; listed only with -v.
QUIET_FINDINGS = ("none", "absent", "no match", "not checked", "no-ai-signal")


def _human(reports, verbose: bool = False) -> str:
    lines = []
    for r in reports:
        if "error" in r:
            lines.append(f"{shown(r['path'])}: error: {r['error']}")
            continue
        decided = ", ".join(r["decided_by"]) or "nothing conclusive"
        score = "" if r["score"] is None else f"  score {r['score']:.2f}"
        lines.append(f"{shown(r['path'])}: {r['verdict']}  (decided by: {decided}){score}")
        quiet = []
        for e in r["evidence"]:
            # "pixels" says the file is not a still image: always worth a line
            if not verbose and e["finding"] in QUIET_FINDINGS and e["kind"] != "pixels":
                quiet.append(
                    e["kind"] if e["finding"] != "not checked" else e["kind"] + " (not checked)"
                )
                continue
            lines.append(f"  {e['strength']:>8}  {e['kind']}: {e['finding']} - {e['detail']}")
            rules = (e.get("data") or {}).get("signal_rules") if e["kind"] == "c2pa" else None
            if rules:  # the C2PA asset-rubric signals, each with its rule id
                lines.append(
                    "            signals: "
                    + ", ".join(f"{x['signal']} [{x['rule_id']}]" for x in rules)
                )
        if quiet:
            lines.append(f"  nothing found: {', '.join(quiet)} (-v for details)")
        for d in r["duplicates"]:
            dist = d.get("distance")
            lines.append(
                f"  duplicate: {d.get('set')}/{d.get('item_id') or d.get('path')} "
                f"{d.get('kind')} distance {dist}"
            )
    return "\n".join(lines)


_all_evidence_option = click.option(
    "--all-evidence",
    is_flag=True,
    help="Run every reader even where its result cannot change the verdict (by default "
    "such a reader is skipped and its item says 'not checked'; docs/detect.md).",
)


@detect.command("files")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@_probe_option
@_clip_option
@_index_option
@trust_option
@_threshold_option
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    type=click.Choice(VERDICTS),
    help="Exit 1 if any file gets this verdict (repeatable).",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also list the evidence that found nothing or was not checked.",
)
@_all_evidence_option
@read_db_option
@json_option
def detect_files(
    files,
    probe,
    clip_spec,
    index_sets,
    trust,
    threshold,
    fail_on,
    verbose,
    all_evidence,
    db_path,
    as_json,
):
    """Report evidence and a verdict for each FILE (or each image in a folder)."""
    files = expand_inputs(files)
    with progress("detecting", len(files)) as bar:
        results = detect_(
            list(files),
            progress=bar.update,
            db=db_path,
            probe=probe,
            clip=clip_spec,
            index_sets=index_sets or None,
            all_evidence=all_evidence,
            **_settings(trust, threshold),
        )
    out, bad = [], 0
    for path, r in zip(files, results):
        if isinstance(r, ProvkitError):
            bad += 1
            click.echo(f"error: {r}", err=True)
            out.append({"path": str(path), "error": r.reason})
        else:
            out.append(r.to_json())
    shown = out if as_json else [r for r in out if "error" not in r]
    emit(
        shown if len(files) > 1 or not shown else shown[0],
        as_json,
        lambda data: _human(data if isinstance(data, list) else [data], verbose),
    )
    if bad:
        sys.exit(2)
    if fail_on and any(r.get("verdict") in fail_on for r in out):
        sys.exit(1)


@detect.command("train")
@click.option(
    "--real",
    "real_dirs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Folder (or list file) of real photographs (repeatable).",
)
@click.option(
    "--fake",
    "fake_dirs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Folder (or list file) of AI-generated images (repeatable).",
)
@out_option("Where to write the probe JSON.")
@force_option
@_clip_option
@click.option("--no-augment", is_flag=True, help="Skip JPEG/resize augmentation (not advised).")
@click.option("--test-fraction", type=click.FloatRange(0.05, 0.5), default=0.25, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def train(real_dirs, fake_dirs, out, force, clip_spec, no_augment, test_fraction, seed, as_json):
    """Fit a probe on frozen CLIP features (real vs AI-generated) and save it."""
    if not clip_spec:
        raise click.UsageError("--clip ARCH:WEIGHTS is required to train (or set PROVKIT_CLIP)")
    real = [p for d in real_dirs for p in image_paths(d)]
    fake = [p for d in fake_dirs for p in image_paths(d)]
    with progress("reading images", len(real) + len(fake)) as bar:
        trained = train_(
            real,
            fake,
            clip_spec,
            out=out,
            force=force,
            augment=not no_augment,
            test_fraction=test_fraction,
            seed=seed,
            progress=bar.update,
        )
    data = trained.to_json()

    def human(d):
        m = d["metrics"]
        return (
            f"probe written to {d['out']} (CLIP {d['clip']})\n"
            f"held-out accuracy {m['heldout_accuracy']:.3f}, AUC {m['heldout_auc']:.3f}, "
            f"Brier {m['heldout_brier']:.3f} on {m['heldout_rows']} rows from "
            f"{d['trained']['test_sources']} held-out images; "
            f"{d['trained']['skipped']} unreadable file(s) skipped"
        )

    emit(data, as_json, human)


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@out_option(
    "Output: FILE.jsonl, FILE.csv or FILE.db (SQLite); with --engine ray also "
    "DIR.parquet (a folder of Parquet part files).",
    dir_okay=True,
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: worker processes on this machine; ray: a Ray Data job (needs provkit[scale]).",
)
@click.option(
    "--address",
    metavar="ADDR",
    help="With --engine ray: the cluster to use (host:port or ray://...); default: "
    "start a local Ray instance for this scan.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes (default: CPU count, at most 4).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted scan into the same output.")
@force_option
@click.option(
    "--time-limit",
    type=click.FloatRange(0.1, None),
    default=60.0,
    show_default=True,
    help="Seconds one file may take; a file over it is an error row and skipped.",
)
@_index_option
@_probe_option
@_clip_option
@trust_option
@_threshold_option
@click.option(
    "--pack",
    "pack_name",
    default=None,
    help="Decide each row with this pack as it is scanned (name or YAML path).",
)
@click.option(
    "--point",
    default=None,
    type=click.Choice(("verify", "publish", "ingest", "train", "generate.output")),
    help="Decision point for --pack (default: ingest).",
)
@click.option("--dry-run", is_flag=True, help="With --pack: decide without writing the audit log.")
@click.option("--actor", default=None, help="Who is deciding (default: the OS user).")
@_all_evidence_option
@read_db_option
@json_option
def scan(
    source,
    out,
    engine,
    address,
    workers,
    resume,
    force,
    time_limit,
    index_sets,
    probe,
    clip_spec,
    trust,
    threshold,
    pack_name,
    point,
    dry_run,
    actor,
    all_evidence,
    db_path,
    as_json,
):
    """Scan a folder or a list of images (one path a line) in parallel.

    With --engine ray the source may also be a Parquet or JSONL manifest with a
    "path" (or "uri") column. With --pack, each row also carries the pack's decision at
    --point (and every decision is appended to the audit log unless --dry-run).
    """
    if engine == "ray":
        require("scale", "ray", what="--engine ray")
    elif address:
        raise click.UsageError("--address goes with --engine ray")
    if pack_name and not all_evidence:  # the pack's needs decide what must be read
        all_evidence = pack_reads_skipped(load_pack(pack_name), point or "ingest")
    with progress("scanning") as bar:
        options = {
            "workers": workers,
            "resume": resume,
            "force": force,
            "progress": bar.update,
            "on_start": bar.start,
            "db": str(db_path) if db_path else None,
            "probe": str(probe) if probe else None,
            "clip": clip_spec,
            "index_sets": list(index_sets) or None,
            "all_evidence": all_evidence,
            **_settings(trust, threshold),
        }
        judge = scan_judge(
            pack_name, point or "ingest", dry_run=dry_run, actor=actor, db=options["db"]
        )
        summary = (
            scan_ray(source, out, address=address, time_limit=time_limit, judge=judge, **options)
            if engine == "ray"
            else scan_(source, out, time_limit=time_limit, judge=judge, **options)
        )

    def human(s):
        counts = ", ".join(f"{k} {v}" for k, v in s["by_verdict"].items()) or "none"
        text = (
            f"{s['scanned']} scanned ({s['images_per_second']} img/s), "
            f"{s['resumed']} already done, {s['errors']} error(s) -> {s['out']}\n"
            f"verdicts in output: {counts}"
        )
        if s["by_outcome"]:
            text += "\ndecisions this run: " + ", ".join(
                f"{k} {v}" for k, v in s["by_outcome"].items()
            )
        return text

    for item in summary.skipped:  # said on stderr in either output mode; also in --json
        click.echo(f"skipped {shown(item['path'])}: {item['reason']}", err=True)

    emit(summary.to_json(), as_json, human)
    if summary.errors:  # rows are written either way; the exit status says some failed
        sys.exit(2)


# --------------------------------------------------------------------------- check


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--pack",
    "pack_name",
    default=None,
    help="Pack name or YAML path (default: provkit.toml, else newsroom).",
)
@click.option(
    "--point",
    default=None,
    type=click.Choice(("verify", "publish", "ingest", "train", "generate.output")),
    help="Decision point (default: [check] point in provkit.toml, else publish).",
)
@trust_option
@_probe_option
@_clip_option
@_index_option
@click.option(
    "--threshold",
    type=click.FloatRange(0.5, 1.0),
    default=None,
    help="Classifier probability counted as AI (default: provkit.toml, else 0.8).",
)
@click.option("--dry-run", is_flag=True, help="Decide without writing to the audit log.")
@click.option("--actor", default=None, help="Who is deciding (default: the OS user).")
@click.option("-v", "--verbose", is_flag=True, help="Show the evidence and reasons.")
@click.option(
    "--fail-on",
    type=click.Choice(["deny", "review", "never"]),
    default="never",
    show_default=True,
    help="Exit 1 when a decision is this strong or stronger.",
)
@_all_evidence_option
@read_db_option
@json_option
def check(
    files,
    pack_name,
    point,
    trust,
    probe,
    clip_spec,
    index_sets,
    threshold,
    dry_run,
    actor,
    verbose,
    fail_on,
    all_evidence,
    db_path,
    as_json,
):
    """One answer per image: credentials, verdict, near-duplicates and the decision.

    FILES may be images or folders (listed as scan lists them). Prints one line per image;
    -v adds the evidence, --json the full record. Exit 2 if a file could not be read."""
    kwargs = {
        "pack": pack_name,
        "point": point,
        "trust": trust,
        "db": db_path,
        "probe": probe,
        "clip": clip_spec,
        "index_sets": list(index_sets) or None,
        "threshold": threshold,
        "dry_run": dry_run,
        "actor": actor,
        "all_evidence": all_evidence,
    }
    files = expand_inputs(files)
    with progress("checking", len(files)) as bar:
        records = check_(files, progress=bar.update, **kwargs)

    def human(rows):
        lines = []
        for r in rows:
            lines.append(r.line())
            if verbose:
                lines += r.details()
        return "\n".join(lines)

    emit(records, as_json, human)
    if any(r.error for r in records):
        sys.exit(2)
    stop = {"deny": ("deny",), "review": ("deny", "review"), "never": ()}[fail_on]
    if any(r.outcome in stop for r in records):
        sys.exit(1)


__all__ = ["check", "detect", "scan"]
