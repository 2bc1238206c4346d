"""One answer per image for an editor: credentials, verdict, near-duplicates and the
policy decision in one record (``provkit check``).

:func:`check` runs, for each image, the steps an editor would otherwise run as four
commands:

1. verify the Content Credentials (with the trust sources given or configured);
2. collect the detection evidence and combine it into a verdict;
3. search the reference sets for near-duplicates (part of the evidence);
4. decide at the chosen point with the pack given or configured (recorded in the audit
   log unless ``dry_run``).

Each image gives one :class:`CheckRecord`; its :meth:`~CheckRecord.line` is the
one-line answer ("AI-generated · signed by X (trusted: C2PA Trust List) · seen before:
archive/123, 2019 · publish: LABEL"), its ``to_json()`` the full record (the same
``asset`` object the policy context holds). An unreadable file gives a record with
``error`` set, and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provkit import policies
from provkit.detect.verdict import DEFAULT_THRESHOLD, Detector, DetectReport
from provkit.provenance.core import config as workspace_config
from provkit.provenance.core.errors import BadInput, ProvkitError, shown
from provkit.provenance.core.imageio import expand_inputs
from provkit.provenance.words import source_type_words

if TYPE_CHECKING:
    from provkit.policies.engine import Decision

DEFAULT_PACK = "newsroom"
VERDICT_WORDS = {
    "ai-generated": "AI-generated",
    "ai-edited": "edited with AI",
    "camera/authentic-claimed": "camera capture claimed",
    "unknown": "origin unknown",
}


_MARK = {"allow": "ALLOW", "deny": "DENY", "label": "LABEL", "review": "REVIEW"}


def _signer_name(signer) -> str:
    if not isinstance(signer, dict):
        return "an unnamed signer"
    return (
        signer.get("organization")
        or signer.get("common_name")
        or signer.get("name")
        or "an unnamed signer"
    )


def credentials_words(
    c2pa: dict, causes: Sequence[dict] | None = None, *, untrusted: bool = False
) -> str:
    """The credentials part of the one-line answer. ``causes``: the verify report's
    failure causes (:mod:`provenance.causes`), each with its phrase; "altered" is said
    only for the cause ``content_altered`` (the picture was shown to differ)."""
    state = c2pa.get("state") or "absent"
    who = _signer_name(c2pa.get("signer"))
    source = c2pa.get("trust_source")
    trust = f"trusted: {source}" if source else "unrecognised signer"
    relation = c2pa.get("relation")  # the report's dict, or the policy context's class
    copy = (relation.get("class") if isinstance(relation, dict) else relation) == "transformed"
    phrases = "; ".join(
        c.get("phrase") or c["cause"].replace("_", " ") for c in causes or [] if c.get("cause")
    )
    if state == "absent" and c2pa.get("remote_url"):
        return f"credentials stored at {c2pa['remote_url']}, not fetched"
    if state == "invalid":
        if untrusted:  # the SDK also found the signer on no trust list
            who += ", unrecognised signer"
        return (
            f"credentials invalid (signed by {who}: {phrases})"
            if phrases
            else f"credentials invalid (signed by {who})"
        )
    if state in ("valid", "trusted", "recovered") and phrases:
        base = credentials_words({**c2pa, "remote_url": None})
        return f"{base}; {phrases}"
    return {
        "absent": "no credentials",
        "mismatch": "credentials do not match (altered since issued)",
        "valid": f"signed by {who} ({trust})",
        "trusted": f"signed by {who} ({trust})",
        "recovered": (
            f"credentials recovered for a transformed copy: signed by {who} ({trust})"
            if copy
            else f"credentials recovered: signed by {who} ({trust})"
        ),
    }.get(state, f"credentials {state}")


def _year(match: dict) -> str | None:
    published = match.get("published")
    return str(published)[:4] if published else None


def seen_before_words(duplicates: Sequence[dict], checked: bool) -> str | None:
    """ "seen before: archive/123, 2019", "not seen before", or None when not searched."""
    if not duplicates:
        return "not seen before" if checked else None
    best = min(duplicates, key=lambda d: (d.get("distance") is None, d.get("distance") or 0))
    item = Path(str(best.get("item"))).name if best.get("item") is not None else "?"
    text = f"seen before: {best.get('set')}/{item}"
    if _year(best):
        text += f", {_year(best)}"
    if len(duplicates) > 1:
        text += f" (+{len(duplicates) - 1} more)"
    return text


@dataclass(frozen=True)
class CheckRecord:
    """Everything provkit says about one image, and what the pack decided."""

    path: str
    point: str
    pack: str | None = None
    verdict: str | None = None
    decided_by: tuple[str, ...] = ()
    credentials: dict = field(default_factory=dict)  # the verify report's c2pa part
    asset: dict = field(default_factory=dict)  # the policy context's asset object
    evidence: tuple = ()  # detect's evidence items (to_json form)
    duplicates_checked: bool = False
    decision: Decision | None = None
    error: str | None = None

    @property
    def outcome(self) -> str | None:
        return self.decision.outcome if self.decision else None

    def line(self) -> str:
        """The one-line answer."""
        if self.error:
            return f"{self.path}: error: {self.error}"
        what = VERDICT_WORDS.get(self.verdict, self.verdict or "?")
        c2pa = self.asset.get("c2pa") or {}
        declared = source_type_words(c2pa.get("digital_source_type"))
        if self.verdict == "unknown" and declared and c2pa.get("state") != "absent":
            what += f" (credentials say: {declared})"  # e.g. a composite
        creds = self.credentials or {}
        parts = [
            what,
            credentials_words(
                c2pa,
                creds.get("causes"),
                untrusted="signingCredential.untrusted" in (creds.get("failures") or []),
            ),
        ]
        seen = seen_before_words(self.asset.get("duplicates") or [], self.duplicates_checked)
        if seen:
            parts.append(seen)
        if self.decision is not None:
            verdict = f"{self.point}: {_MARK[self.decision.outcome]}"
            if self.decision.labels:
                verdict += " [" + "; ".join(self.decision.labels) + "]"
            parts.append(verdict)
        return f"{shown(Path(self.path).name)}: " + " · ".join(parts)

    def details(self) -> list[str]:
        """The evidence behind the line (``provkit check -v``)."""
        if self.error:
            return []
        lines = []
        if self.decision is not None:
            rules = self.decision.matched_rules
            for i, reason in enumerate(self.decision.reasons):
                lines.append(
                    f"  {self.pack}: {rules[i]}: {reason}"
                    if i < len(rules)
                    else f"  {self.pack}: {reason}"
                )
        for e in self.evidence:
            if e["finding"] in ("not checked", "none", "absent", "no match"):
                continue
            lines.append(f"  {e['strength']:>8}  {e['kind']}: {e['detail']}")
        skipped = sorted({e["kind"] for e in self.evidence if e["finding"] == "not checked"})
        if skipped:
            lines.append(f"  not checked: {', '.join(skipped)}")
        return lines

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "point": self.point,
            "pack": self.pack,
            "line": self.line(),
            "verdict": self.verdict,
            "decided_by": list(self.decided_by),
            "credentials": self.credentials,
            "asset": self.asset,
            "evidence": list(self.evidence),
            "duplicates_checked": self.duplicates_checked,
            "decision": self.decision.to_json() if self.decision else None,
            "error": self.error,
        }


def _record(
    path, report: DetectReport, pack, point: str, *, db, dry_run: bool, actor: str | None
) -> CheckRecord:
    asset = report.policy_context()
    context = {"asset": asset}
    if actor:
        context["actor"] = {"id": actor}
    if dry_run:
        decision = policies.evaluate(pack, point, context)
    else:
        decision = policies.decide(pack, point, context, db=db, actor=actor)
    checked = any(e.kind == "duplicates" and e.finding != "not checked" for e in report.evidence)
    return CheckRecord(
        path=str(path),
        point=point,
        pack=pack.name,
        verdict=report.verdict,
        decided_by=tuple(e.kind for e in report.decided_by),
        credentials=dict(report.c2pa or {}),
        asset=asset,
        evidence=tuple(e.to_json() for e in report.evidence),
        duplicates_checked=checked,
        decision=decision,
    )


def check(
    paths,
    *,
    pack=None,
    point: str | None = None,
    trust=None,
    db=None,
    probe=None,
    clip=None,
    index_sets=None,
    threshold: float | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    progress: Callable[[int], None] | None = None,
    config=None,
    all_evidence: bool = False,
) -> list[CheckRecord]:
    """Verify, detect, search and decide for each image (folders are listed as by scan).

    ``pack``/``point``/``trust``/``threshold`` default to the workspace configuration
    (:mod:`provenance.core.config`), then to newsroom at publish, the workspace's own CA
    and 0.8. Each decision is appended to the audit log unless ``dry_run``.
    ``all_evidence``: run every reader (see :class:`~detect.verdict.Detector`); it is
    also on when the pack's rules at ``point`` read the watermark (the pack's needs).
    """
    cfg = config if config is not None else workspace_config.load()
    point = cfg.get("check.point", point)
    if point not in workspace_config.POINTS:
        raise BadInput(
            f"unknown decision point {point!r} (known: {', '.join(workspace_config.POINTS)})"
        )
    pack = policies.load_pack(pack or cfg.get("check.pack") or cfg.pack_for(point) or DEFAULT_PACK)
    detector = Detector(
        db=db,
        probe=probe,
        clip=clip,
        index_sets=index_sets,
        trust=cfg.get("trust.sources", trust),
        threshold=cfg.get("thresholds.classifier", threshold) or DEFAULT_THRESHOLD,
        all_evidence=all_evidence or pack_reads_skipped(pack, point),
    )
    files = expand_inputs(paths)
    records: list[CheckRecord] = []
    for path, report in zip(files, detector.run(files), strict=True):
        if isinstance(report, ProvkitError):
            records.append(
                CheckRecord(path=str(path), point=point, pack=pack.name, error=str(report))
            )
        else:
            try:
                records.append(
                    _record(path, report, pack, point, db=detector.db, dry_run=dry_run, actor=actor)
                )
            except ProvkitError as e:
                records.append(
                    CheckRecord(path=str(path), point=point, pack=pack.name, error=str(e))
                )
        if progress:
            progress(1)
    return records


#: Names in a pack's rules that read what the order rule may leave unread (docs/detect.md).
SKIPPABLE_FIELDS = frozenset({"watermark"})


def pack_reads_skipped(pack, point: str) -> bool:
    """Whether the pack's rules at ``point`` read evidence the detector may skip (then
    every reader runs, so no rule sees an unread field as "not found")."""
    return bool(SKIPPABLE_FIELDS & set(pack.names.get(point) or ()))


def scan_judge(
    pack, point: str = "ingest", *, dry_run: bool = False, actor: str | None = None, db=None
) -> Callable[[list[dict]], None] | None:
    """``judge(rows)`` for :func:`provkit.detect.scan.scan`: puts the pack's decision at
    ``point`` into each row as it is written, and into the audit log unless ``dry_run``.
    None without a pack. detect sits below policies, so the app builds this and passes it
    down (``provkit scan --pack``, :func:`provkit.scan`)."""
    if pack is None:
        return None
    pack = policies.load_pack(pack)
    if point not in pack.names:
        raise BadInput(f"unknown decision point {point!r}")

    def judge(rows: list[dict]) -> None:
        ok = [r for r in rows if r.get("error") is None and r.get("asset") is not None]
        contexts = [
            {"asset": r["asset"], **({"actor": {"id": actor}} if actor else {})} for r in ok
        ]
        if dry_run:
            decisions = [policies.evaluate(pack, point, c) for c in contexts]
        else:
            decisions = (
                policies.decide_many(pack, point, contexts, db=db, actor=actor) if ok else []
            )
        for row, decision in zip(ok, decisions):
            row["decision"] = decision.to_json()

    return judge
