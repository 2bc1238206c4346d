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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from detect.evidence import (
    AI_EDITED,
    AI_GENERATED,
    CAPTURE,
    Evidence,
    c2pa_evidence,
    classifier_evidence,
    duplicates_evidence,
    metadata_evidence,
    not_checked,
    watermark_evidence,
)
from provenance.core.errors import BadInput, ProvkitError, describe
from provenance.core.imageio import load_rgb, sniff
from provenance.fingerprint import file_sha256, fingerprint_image
from provenance.trust import trust_options, trust_source_of

VERDICTS = ("ai-generated", "ai-edited", "camera/authentic-claimed", "unknown")
DEFAULT_THRESHOLD = 0.8
#: Files decoded and classified together: bounds memory (a 12 MP image is ~36 MB decoded)
#: while keeping CLIP batches full enough to be fast.
CHUNK = 16


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
    path: str
    verdict: str
    score: float | None
    decided_by: tuple[Evidence, ...]
    evidence: tuple[Evidence, ...]
    duplicates: tuple[dict, ...] = ()
    sha256: str | None = None
    c2pa: dict | None = None
    watermark: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "score": self.score,
            "decided_by": [e.kind for e in self.decided_by],
            "evidence": [e.to_json() for e in self.evidence],
            "duplicates": list(self.duplicates),
        }

    def policy_context(self) -> dict:
        """The ``asset`` part of a policy decision context (docs/architecture.md)."""
        from detect.index import policy_duplicate

        c2pa = self.c2pa or {}
        wm = self.watermark or {}
        now = datetime.now(UTC)
        return {
            "path": self.path,
            "sha256": self.sha256,
            "asset_id": c2pa.get("asset_id") or wm.get("asset_id"),
            "verdict": self.verdict,
            "score": self.score,
            "decided_by": [e.kind for e in self.decided_by],
            "c2pa": {
                "state": c2pa.get("state", "absent"),
                "digital_source_type": c2pa.get("digital_source_type"),
                "signer": c2pa.get("signer"),
                "trust_source": trust_source_of(c2pa) if c2pa else None,
                "signals": c2pa.get("signals") or {},
                "training_mining": c2pa.get("training_mining") or {},
            },
            "watermark": {"found": bool(wm.get("found")), "scheme": wm.get("scheme"),
                          "payload": wm.get("payload"), "third_party": wm.get("third_party")},
            "metadata": {
                "digital_source_type": self.metadata.get("digital_source_type"),
                "generator": self.metadata.get("generator"),
            },
            "duplicates": [policy_duplicate(d, now) for d in self.duplicates],
        }


class Detector:
    """Models, probe, index and trust settings loaded once; :meth:`detect` per file.

    ``probe`` is a :class:`~detect.classifier.Probe` or a path to one; ``clip`` a
    loaded model or a spec (default: the spec the probe was trained with).
    ``index_sets`` limits the near-duplicate search (default: every set there is).
    """

    def __init__(self, *, db=None, probe=None, clip=None, index_sets=None, trust_anchors=None,
                 threshold: float = DEFAULT_THRESHOLD, search_index: bool = True, trust=None):
        from provenance.core.workspace import connect

        self.db = connect(db) if db is None or isinstance(db, (str, Path)) else db
        self.trust_anchors = trust_anchors
        self.trust_local = True
        if trust is not None:  # trust sources (local, c2pa, PEM paths) as verify takes them
            opts = trust_options(trust)
            self.trust_anchors = opts["trust_anchors"]
            self.trust_local = opts["trust_local"]
        self.threshold = threshold
        self.index_sets = list(index_sets) if index_sets else None
        self.probe = self.clip = None
        if probe is not None:
            from detect.classifier import Probe

            self.probe = Probe.load(probe) if isinstance(probe, (str, Path)) else probe
        if clip is not None or self.probe is not None:
            from detect.clip import load_model

            spec = clip if clip is not None else self.probe.clip_spec
            self.clip = load_model(spec) if isinstance(spec, str) else spec
            if self.probe is not None:
                self.probe.check_clip(self.clip)
        self.index, self.index_problem = (None, None)
        if search_index:
            self.index, self.index_problem = self._open_index()

    def _open_index(self):
        try:
            from detect.index import ReferenceIndex
        except ImportError as e:
            return None, f"the reference index is unavailable ({e})"
        try:
            index = ReferenceIndex(self.db)
            sets = _set_names(index)
        except Exception as e:  # noqa: BLE001
            return None, ("the reference index could not be opened "
                          f"({describe(e, with_path=False)})")
        if sets is not None:
            check_index_sets(self.index_sets, sets)
            if not sets:
                return None, "no reference sets in this workspace (add one with `provkit index add`)"
        return index, None

    # -- per file ------------------------------------------------------------

    def _gather(self, path) -> tuple[list[Evidence], dict]:
        """Everything except the classifier; BadInput for an unreadable file."""
        sniff(path)
        sha256 = file_sha256(path)  # the file's bytes are hashed once and decoded once
        image = load_rgb(path)
        evidence: list[Evidence] = []
        c2pa_item, c2pa = c2pa_evidence(path, trust_anchors=self.trust_anchors, db=self.db,
                                        image=image, trust_local=self.trust_local)
        evidence.append(c2pa_item)
        meta_items, meta = metadata_evidence(path)
        evidence += meta_items
        wm_items, wm = watermark_evidence(image, c2pa)
        evidence += wm_items
        duplicates: list[dict] = []
        if self.index is None:
            evidence.append(not_checked("duplicates", self.index_problem or "index search is off"))
        else:
            try:
                query = fingerprint_image(image, sha256=sha256)
                matches = self.index.search(query, sets=self.index_sets, image=image)
                duplicates = [m.to_json() if hasattr(m, "to_json") else dict(m) for m in matches]
                evidence.append(duplicates_evidence(
                    matches, getattr(self.index, "clip_not_checked", None)))
            except BadInput:
                raise
            except Exception as e:  # noqa: BLE001
                why = f"index search failed ({describe(e, with_path=False)})"
                evidence.append(not_checked("duplicates", why))
        state = {"image": image, "c2pa": c2pa, "watermark": wm,
                 "metadata": meta.to_json() if meta else {}, "duplicates": duplicates,
                 "sha256": sha256}
        return evidence, state

    def _classifier_items(self, images) -> list[tuple[Evidence, float | None]]:
        if self.probe is None:
            reason = ("no probe configured (train one with `provkit detect train`, "
                      "then pass --probe)")
            if self.clip is None:
                reason = "no CLIP model or probe configured (--clip ARCH:/path/to/weights, --probe)"
            return [(not_checked("classifier", reason), None) for _ in images]
        try:
            feats = self.clip.embed_images(images)
            probs = self.probe.probability(feats)
        except Exception as e:  # noqa: BLE001
            why = f"classifier failed ({describe(e, with_path=False)})"
            return [(not_checked("classifier", why), None) for _ in images]
        return [(classifier_evidence(float(p), self.probe, self.threshold), float(p))
                for p in probs]

    def _report(self, path, evidence, state, item, score) -> DetectReport:
        evidence = evidence + [item]
        verdict, deciding = combine(evidence)
        return DetectReport(
            path=str(path), verdict=verdict, score=score, decided_by=tuple(deciding),
            evidence=tuple(evidence), duplicates=tuple(state["duplicates"]),
            sha256=state["sha256"], c2pa=state["c2pa"], watermark=state["watermark"],
            metadata=state["metadata"],
        )

    def detect(self, path) -> DetectReport:
        """Evidence and verdict for one file; raises BadInput if it cannot be read."""
        evidence, state = self._gather(path)
        (item, score), = self._classifier_items([state.pop("image")])
        return self._report(path, evidence, state, item, score)

    def iter_detect(self, paths: Sequence, *, chunk: int = CHUNK):
        """Reports in input order, yielded chunk by chunk (an unreadable file yields its
        ProvkitError). CLIP runs batched within a chunk, so at most ``chunk`` decoded
        images are held at once however many paths there are."""
        paths = list(paths)
        for start in range(0, len(paths), max(1, chunk)):
            yield from self._detect_chunk(paths[start : start + max(1, chunk)])

    def detect_many(self, paths: Sequence, *, progress=None,
                    chunk: int = CHUNK) -> list[DetectReport | ProvkitError]:
        """Reports in input order; an unreadable file yields its ProvkitError.

        ``progress(n)`` is called as files finish."""
        out: list = []
        for report in self.iter_detect(paths, chunk=chunk):
            out.append(report)
            if progress:
                progress(1)
        return out

    def _detect_chunk(self, paths: Sequence) -> list[DetectReport | ProvkitError]:
        gathered: list = []
        for path in paths:
            try:
                gathered.append((path, *self._gather(path)))
            except ProvkitError as e:
                gathered.append(e)
        ok = [g for g in gathered if not isinstance(g, ProvkitError)]
        items = iter(self._classifier_items([g[2].pop("image") for g in ok]))
        out: list = []
        for g in gathered:
            if isinstance(g, ProvkitError):
                out.append(g)
            else:
                item, score = next(items)
                out.append(self._report(g[0], g[1], g[2], item, score))
        return out


def check_index_sets(wanted, existing) -> None:
    """ConfigError when a reference set asked for by name does not exist."""
    missing = [s for s in wanted or [] if s not in existing]
    if not missing:
        return
    from provenance.core.errors import ConfigError

    have = f"sets: {', '.join(sorted(existing))}" if existing else \
        "this workspace has no reference sets; add one with `provkit index add`"
    raise ConfigError(f"no reference set named {', '.join(missing)} ({have})")


def check_options(*, db=None, probe=None, clip=None, index_sets=None, **_ignored) -> None:
    """Check detector options without loading any model: the probe file, the CLIP
    spec (architecture and weights on disk) and that each named reference set exists.

    Raises the ConfigError/BadInput a :class:`Detector` would raise; batch jobs call
    it before writing any output."""
    if probe is not None and isinstance(probe, (str, Path)):
        from detect.classifier import Probe

        probe = Probe.load(probe)
    spec = clip if clip is not None else getattr(probe, "clip_spec", None)
    if isinstance(spec, str):
        from detect.clip import check_spec

        check_spec(spec)
    if index_sets:
        from detect.index import ReferenceIndex
        from provenance.core.workspace import connect

        handle = connect(db) if db is None or isinstance(db, (str, Path)) else db
        try:
            check_index_sets(index_sets, set(ReferenceIndex(handle).set_names()))
        finally:
            if handle is not db:
                handle.conn.close()


def _set_names(index) -> set[str] | None:
    """Names of the reference sets, if the index can list them."""
    for attr in ("set_names", "list_sets", "sets"):
        fn = getattr(index, attr, None)
        if callable(fn):
            got = fn()
            return {s if isinstance(s, str) else getattr(s, "name", None) or s.get("name")
                    for s in got}
    return None


def detect_file(path, *, db=None, probe=None, clip=None, index_sets=None, trust_anchors=None,
                threshold: float = DEFAULT_THRESHOLD, trust=None) -> DetectReport:
    """Collect every kind of evidence for one image and combine it into a verdict.

    ``trust``: trust sources as verify takes them (``local``, ``c2pa``, PEM paths)."""
    return Detector(db=db, probe=probe, clip=clip, index_sets=index_sets,
                    trust_anchors=trust_anchors, threshold=threshold, trust=trust).detect(path)


def detect(paths, *, progress=None, **kwargs) -> list[DetectReport | ProvkitError]:
    """:func:`detect_file` over many files with models loaded once; errors in place.

    Files are processed in chunks of :data:`CHUNK`; ``progress(n)`` is called as they finish."""
    return Detector(**kwargs).detect_many(list(paths), progress=progress)


def policy_context_for_file(path, db=None, **kwargs) -> dict:
    """The ``asset`` part of a policy decision context for one file.

    Without explicit ``probe``/``clip``, ``$PROVKIT_PROBE`` and ``$PROVKIT_CLIP`` are used
    (as by ``provkit detect``), so policy checks see the same classifier evidence.
    """
    import os

    kwargs.setdefault("probe", os.environ.get("PROVKIT_PROBE") or None)
    kwargs.setdefault("clip", os.environ.get("PROVKIT_CLIP") or None)
    return detect_file(path, db=db, **kwargs).policy_context()
