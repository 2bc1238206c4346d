"""The everyday verbs as Python calls, with the CLI's names and arguments.

``provkit.sign(...)`` is ``provkit sign ...``, ``provkit.verify(...)`` is ``provkit verify
...``, and so on: each CLI command is a thin shell over the function of the same name
here (or, for ``detect`` and ``generate``, over the library function the package itself
calls: ``provkit.detect(...)``, ``provkit.generate(...)``).

One path in, one answer out; a list of paths in, a list out with an unreadable file's
error in its place, as the CLI prints an error line for it and goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from provkit.answers import CheckRecord, pack_reads_skipped, scan_judge
from provkit.answers import check as check_many
from provkit.detect.reference_sets import DupesReport
from provkit.detect.reference_sets import dupes as dupes_many
from provkit.detect.scan import TIME_LIMIT, ScanSummary
from provkit.detect.scan import scan as scan_rows
from provkit.policies import load_pack
from provkit.provenance.core.errors import BadInput
from provkit.provenance.issue import Issued
from provkit.provenance.issue import sign as sign_with_spec
from provkit.provenance.manifest import ManifestSpec
from provkit.provenance.recover import Recovered
from provkit.provenance.recover import recover as recover_file
from provkit.provenance.report import VerifyReport
from provkit.provenance.verify import verify as verify_many


def _one_or_many(paths) -> tuple[list, bool]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths], True
    return list(paths), False


def sign(
    source,
    out,
    *,
    source_type: str | None = None,
    action: str | None = None,
    ingredients: Sequence = (),
    components: Sequence = (),
    author: str | None = None,
    title: str | None = None,
    allow_training: bool | None = None,
    watermark: bool = True,
    tsa: str | None = None,
    dev_identity: bool = False,
    force: bool = False,
    db=None,
    disclosure=None,
) -> Issued:
    """``provkit sign SOURCE -o OUT``: watermark, sign with a C2PA manifest and record.

    ``allow_training``: True/False states it in the manifest (cawg.training-mining),
    None (the default) states nothing. ``ingredients`` are parents (parentOf),
    ``components`` componentOf assets. ``disclosure``: a
    :class:`provenance.disclosure.Profile` (docs/compliance.md)."""
    spec = ManifestSpec(
        title=title,
        source_type=source_type,
        action=action,
        author=author,
        no_train=allow_training is False,
        allow_training=allow_training is True,
        ingredients=tuple((p, "parentOf") for p in ingredients)
        + tuple((p, "componentOf") for p in components),
    )
    return sign_with_spec(
        source,
        out,
        spec=spec,
        watermark=watermark,
        db=db,
        force=force,
        tsa=tsa,
        dev_identity=dev_identity,
        disclosure=disclosure,
    )


def verify(
    paths, *, trust=None, progress: Callable[[int], None] | None = None, **options
) -> VerifyReport | list:
    """``provkit verify FILE...``: one path gives its :class:`VerifyReport` (an unreadable
    file raises its BadInput); several give a list with errors in place."""
    items, one = _one_or_many(paths)
    reports = verify_many(items, trust=trust, progress=progress, **options)
    if one:
        if isinstance(reports[0], BadInput):
            raise reports[0]
        return reports[0]
    return reports


def recover(source, out, *, trust=None, force: bool = False, db=None) -> Recovered:
    """``provkit recover SOURCE -o OUT``: re-attach the credentials a stripped copy lost."""
    return recover_file(source, out, db=db, trust=trust, force=force)


def check(paths, **options) -> CheckRecord | list[CheckRecord]:
    """``provkit check FILE...``: credentials, verdict, near-duplicates and the decision;
    the options are :func:`provkit.answers.check`'s (pack, point, trust, db, ...)."""
    items, one = _one_or_many(paths)
    records = check_many(items, **options)
    return records[0] if one and len(records) == 1 else records


def scan(
    source,
    out,
    *,
    pack=None,
    point: str = "ingest",
    dry_run: bool = False,
    actor: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    time_limit: float | None = TIME_LIMIT,
    db=None,
    **detector_options,
) -> ScanSummary:
    """``provkit scan SOURCE OUT``: detect every image of a folder (or list) into
    JSONL/CSV/SQLite; with ``pack`` each row also carries the decision at ``point``."""
    judge = scan_judge(
        pack, point, dry_run=dry_run, actor=actor, db=str(db) if db is not None else None
    )
    if pack is not None and not detector_options.get("all_evidence"):
        # the pack's needs decide what must be read (docs/detect.md, the order rule)
        detector_options["all_evidence"] = pack_reads_skipped(load_pack(pack), point)
    return scan_rows(
        source,
        out,
        workers=workers,
        resume=resume,
        force=force,
        time_limit=time_limit,
        judge=judge,
        db=str(db) if db is not None else None,
        **detector_options,
    )


def dupes(files, **options) -> DupesReport | list[DupesReport]:
    """``provkit dupes FILE...``: near-duplicates of each file in the banks."""
    items, one = _one_or_many(files)
    reports = dupes_many([Path(f) for f in items], **options)
    return reports[0] if one and len(reports) == 1 else reports
