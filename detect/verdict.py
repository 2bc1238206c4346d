"""One verdict per image from independent evidence, with the items that decided it.

The combination rule (also in docs/detect.md):

1. Items whose finding is ``ai-generated`` or ``ai-edited`` with strength at least
   ``moderate`` are the AI evidence. If there is any, the strongest level present
   decides: the verdict is ``ai-generated`` if any item at that level says so,
   otherwise ``ai-edited``; those items are ``decided_by``.
2. Otherwise, a ``decisive`` ``capture-claimed`` item (a trusted C2PA manifest
   declaring a capture with no AI step) gives ``camera/authentic-claimed``.
3. Otherwise the verdict is ``unknown``. Absence of evidence is never "authentic":
   no manifest, no watermark and a low classifier score still give ``unknown``.

``score`` is the calibrated classifier probability of AI, or None when no classifier
was configured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from provkit.detect.classifier import Probe
from provkit.detect.clip import check_spec
from provkit.detect.evidence import (
    AI_EDITED,
    AI_GENERATED,
    CAPTURE,
    COLLECTORS,
    Evidence,
    FileContext,
    Options,
    check_index_sets,
    not_checked,
)
from provkit.detect.index import ReferenceIndex
from provkit.provenance.core import context, vocabulary
from provkit.provenance.core.errors import ProvkitError
from provkit.provenance.core.files import file_sha256
from provkit.provenance.core.guard import TimeLimit, reading, time_limit
from provkit.provenance.core.imageio import is_image_mime, load_rgb, sniff_media
from provkit.provenance.core.workspace import database
from provkit.provenance.trust import resolve as resolve_trust
from provkit.provenance.verify import NOT_PIXELS

VERDICTS = vocabulary.VERDICTS
DEFAULT_THRESHOLD = 0.8
#: Files decoded and classified together: bounds memory (a 12 MP image is ~36 MB decoded)
#: while keeping CLIP batches full enough to be fast.
CHUNK = 16
#: A JPEG is decoded reduced (libjpeg's 1/2, 1/4, 1/8 scaling) to no less than this on
#: either side: every consumer works smaller (the watermark decoder at a 512 px short
#: side, fingerprints at 256, CLIP at 224), so a 9400 x 9400 header costs 1/64 of a
#: full decode.
DETECT_DRAFT = (1024, 1024)


def combine(evidence: Sequence[Evidence]) -> tuple[str, list[Evidence]]:
    """Apply the combination rule: (verdict, deciding items)."""
    ai = [e for e in evidence if e.finding in (AI_GENERATED, AI_EDITED) and e.rank >= 2]
    if ai:
        top = max(e.rank for e in ai)
        deciding = [e for e in ai if e.rank == top]
        verdict = AI_GENERATED if any(e.finding == AI_GENERATED for e in deciding) else AI_EDITED
        return verdict, deciding
    capture = [e for e in evidence if e.finding == CAPTURE and e.strength == "decisive"]
    if capture:
        return "camera/authentic-claimed", capture
    return "unknown", []


@dataclass(frozen=True)
class DetectReport:
    """Evidence and verdict for one file. ``found`` holds each collector's data by its
    name (``c2pa``, ``metadata``, ``watermark``, ``classifier``, ``duplicates``)."""

    path: str
    verdict: str
    score: float | None
    decided_by: tuple[Evidence, ...]
    evidence: tuple[Evidence, ...]
    sha256: str | None = None
    found: dict = field(default_factory=dict)
    report_parts: dict = field(default_factory=dict)
    context_parts: dict = field(default_factory=dict)

    @property
    def duplicates(self) -> tuple[dict, ...]:
        return tuple(self.found.get("duplicates") or ())

    @property
    def c2pa(self) -> dict | None:
        return self.found.get("c2pa")

    @property
    def watermark(self) -> dict:
        return self.found.get("watermark") or {}

    @property
    def metadata(self) -> dict:
        return self.found.get("metadata") or {}

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "score": self.score,
            "decided_by": [e.kind for e in self.decided_by],
            "evidence": [e.to_json() for e in self.evidence],
            **self.report_parts,
        }

    def policy_context(self, now: datetime | None = None) -> dict:
        """The ``asset`` part of a policy decision context (provenance.core.context)."""
        return context.asset(
            path=self.path,
            sha256=self.sha256,
            verdict=self.verdict,
            decided_by=[e.kind for e in self.decided_by],
            now=now or datetime.now(UTC),
            **self.context_parts,
        )


class Detector:
    """Every collector of :data:`detect.evidence.COLLECTORS`, made once (models, probe,
    index and trust settings loaded once) for many files; :func:`detect` is the verb.

    ``probe`` is a :class:`~detect.classifier.Probe` or a path to one; ``clip`` a
    loaded model or a spec (default: the spec the probe was trained with).
    ``index_sets`` limits the near-duplicate search (default: every set there is).
    ``collectors``: factories to use instead of the registry.
    """

    def __init__(
        self,
        *,
        db=None,
        probe=None,
        clip=None,
        index_sets=None,
        trust=None,
        threshold: float = DEFAULT_THRESHOLD,
        search_index: bool = True,
        collectors: Sequence | None = None,
        low_threshold: float | None = None,
        time_limit: float | None = None,
        all_evidence: bool = False,
    ):
        self.db = database(db)
        #: CPU seconds (this process) spent per step: "read" (sniff, hash, decode) and
        #: each collector by name; bench/throughput.py prints them
        self.cpu: dict[str, float] = {}
        #: seconds one file may take (reading it and every collector but the batched
        #: classifier, together); None: no limit (scan sets one)
        self.time_limit = time_limit
        # the trust sources are read once, here (a bad one fails before any file)
        self.options = Options(
            db=self.db,
            trust=resolve_trust(trust),
            probe=probe,
            clip=clip,
            index_sets=tuple(index_sets) if index_sets else None,
            threshold=threshold,
            search_index=search_index,
            low_threshold=low_threshold,
            all_evidence=all_evidence,
        )
        self.collectors = [make(self.options) for make in (collectors or COLLECTORS)]

    def run(self, paths: Sequence, *, chunk: int = CHUNK):
        """Reports in input order, yielded chunk by chunk (an unreadable file yields its
        ProvkitError). Collectors run over a chunk at once (CLIP batched), so at most
        ``chunk`` decoded images are held however many paths there are."""
        paths = list(paths)
        step = max(1, chunk)
        for start in range(0, len(paths), step):
            yield from self._chunk(paths[start : start + step])

    def _open(self, path) -> FileContext:
        """A file that is not a still image (PDF, audio, video) gets ``image=None``: only
        the collectors that need no pixels (C2PA) run on it."""
        mime = sniff_media(path)
        sha256 = file_sha256(path)  # the file's bytes are hashed once and decoded once
        image = load_rgb(path, draft=DETECT_DRAFT) if is_image_mime(mime) else None
        ctx = FileContext(path=str(path), image=image, sha256=sha256, options=self.options)
        if image is None:
            ctx.found["format"] = mime
        return ctx

    def _guarded(self, spent: dict, key, path, work):
        """``work()`` on one file under the reader guard (any reader failure becomes a
        BadInput naming the file) and what is left of the file's time limit."""
        left = None
        if self.time_limit:
            left = self.time_limit - spent.get(key, 0.0)
            if left <= 0:
                raise TimeLimit(
                    f"took longer than the per-file time limit of {self.time_limit:g} s; skipped",
                    path=path,
                )
        start = time.monotonic()
        try:
            with time_limit(left, path), reading(path, "detect"):
                return work()
        finally:
            spent[key] = spent.get(key, 0.0) + time.monotonic() - start

    def _chunk(self, paths: Sequence) -> list[DetectReport | ProvkitError]:
        files: list = []
        spent: dict[int, float] = {}  # seconds of each file's time limit used so far
        cpu = time.process_time()
        for i, path in enumerate(paths):
            try:
                files.append(self._guarded(spent, i, path, lambda p=path: self._open(p)))
            except ProvkitError as e:
                files.append(e)
        cpu = self._count_cpu("read", cpu)
        # each file's items so far, shared with its context (the order rule reads them)
        evidence: dict[int, list] = {
            i: f.evidence if isinstance(f, FileContext) else [] for i, f in enumerate(files)
        }
        for collector in self.collectors:
            live = [i for i, f in enumerate(files) if isinstance(f, FileContext)]
            if getattr(collector, "pixels", True):  # a file without pixels says so instead
                for i in [i for i in live if files[i].image is None]:
                    if not any(e.kind == "pixels" for e in evidence[i]):
                        mime = files[i].found["format"]
                        evidence[i].append(
                            not_checked("pixels", NOT_PIXELS.format(mime=mime), format=mime)
                        )
                    evidence[i].append(
                        not_checked(collector.name, "the file is not a still image provkit decodes")
                    )
                live = [i for i in live if files[i].image is not None]
            if getattr(collector, "batched", False):  # never raises for one file
                results = collector.collect_many([files[i] for i in live])
            else:
                results = []
                for i in live:
                    try:
                        ctx = files[i]
                        results.append(
                            self._guarded(
                                spent, i, ctx.path, lambda c=ctx, col=collector: col.collect(c)
                            )
                        )
                    except ProvkitError as e:  # this file is unreadable; the others go on
                        files[i] = e
                        results.append(None)
            for i, found in zip(live, results, strict=True):
                if found is not None:
                    evidence[i] += found.evidence
                    files[i].found[collector.name] = found.data
            cpu = self._count_cpu(collector.name, cpu)
        return [
            f if isinstance(f, ProvkitError) else self._report(f, evidence[i])
            for i, f in enumerate(files)
        ]

    def _count_cpu(self, step: str, since: float) -> float:
        now = time.process_time()
        self.cpu[step] = self.cpu.get(step, 0.0) + now - since
        return now

    def _report(self, ctx: FileContext, evidence: list) -> DetectReport:
        verdict, deciding = combine(evidence)
        report_parts: dict = {}
        parts: dict = {}
        for collector in self.collectors:
            data = ctx.found.get(collector.name)
            report_parts.update(collector.report_json(data))
            for key, value in collector.context(data).items():
                if parts.get(key) is None:  # an earlier collector's value wins
                    parts[key] = value
        return DetectReport(
            path=ctx.path,
            verdict=verdict,
            score=parts.get("score"),
            decided_by=tuple(deciding),
            evidence=tuple(evidence),
            sha256=ctx.sha256,
            found=dict(ctx.found),
            report_parts=report_parts,
            context_parts=parts,
        )


def check_options(*, db=None, probe=None, clip=None, index_sets=None, **_ignored) -> None:
    """Check detector options without loading any model: the probe file, the CLIP
    spec (architecture and weights on disk) and that each named reference set exists.

    Raises the ConfigError/BadInput a :class:`Detector` would raise; batch jobs call
    it before writing any output."""
    if probe is not None and isinstance(probe, (str, Path)):
        probe = Probe.load(probe)
    spec = clip if clip is not None else getattr(probe, "clip_spec", None)
    if isinstance(spec, str):
        check_spec(spec)
    if index_sets:
        handle = database(db)
        try:
            check_index_sets(index_sets, set(ReferenceIndex(handle).set_names()))
        finally:
            if handle is not db:
                handle.conn.close()


def detect(
    paths, *, progress=None, detector: Detector | None = None, chunk: int = CHUNK, **options
):
    """``provkit detect``: evidence and a verdict per file, the one way to detect.

    ``paths``: one path (returns its :class:`DetectReport`; raises BadInput when the
    file cannot be read) or a sequence of paths (returns a list in input order, an
    unreadable file's ProvkitError in its place). ``options`` configure a
    :class:`Detector` (db, probe, clip, index_sets, trust, threshold, search_index);
    ``detector`` reuses one already made. ``progress(n)`` is called as files finish.
    """
    detector = detector or Detector(**options)
    if isinstance(paths, (str, os.PathLike)):
        (result,) = detector.run([paths], chunk=chunk)
        if isinstance(result, ProvkitError):
            raise result
        return result
    out: list = []
    for report in detector.run(paths, chunk=chunk):
        out.append(report)
        if progress:
            progress(1)
    return out


def policy_context_for_file(path, db=None, **kwargs) -> dict:
    """The ``asset`` part of a policy decision context for one file (the evidence
    provider ``provkit policy check`` uses by default).

    Without explicit ``probe``/``clip``, ``$PROVKIT_PROBE`` and ``$PROVKIT_CLIP`` are used
    (as by ``provkit detect``), so policy checks see the same classifier evidence. Every
    reader runs (``all_evidence``): the provider does not know which fields the pack reads.
    """
    kwargs.setdefault("probe", os.environ.get("PROVKIT_PROBE") or None)
    # any pack may read any field: every reader runs, so none reads an unread one as "no"
    kwargs.setdefault("all_evidence", True)
    kwargs.setdefault("clip", os.environ.get("PROVKIT_CLIP") or None)
    return detect(path, db=db, **kwargs).policy_context()
