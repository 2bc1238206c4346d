"""The decision engine: evaluate a pack's rules at a decision point, combine, audit.

Combination (documented in docs/policies.md): every rule that applies to the point is
evaluated in pack order. The decision's outcome is the strongest outcome among the rules
that matched, in the order deny > review > label > allow; when none matched it is the
pack's ``default``. Labels of all matched rules accumulate. A rule whose condition fails
to evaluate (missing field, wrong type, an error in a function) counts as matched with
the pack's ``fail_closed`` outcome (deny unless the pack says review), and the error is
in the decision's reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

import cel

from policies.errors import BadInput, Refused
from policies.pack import POINTS, PRECEDENCE, Pack, load_pack

_RANK = {outcome: i for i, outcome in enumerate(PRECEDENCE)}


@dataclass(frozen=True)
class Decision:
    """What a pack decided at one decision point, and why."""

    outcome: str  # allow | deny | label | review
    labels: tuple[str, ...]
    matched_rules: tuple[str, ...]
    reasons: tuple[str, ...]
    pack: str
    pack_version: str  # sha256 of the pack's YAML and term files
    point: str = ""
    failed_rules: tuple[str, ...] = ()  # rules whose condition raised (they failed closed)
    audit_seq: int | None = None  # the audit row that records this decision

    @property
    def allowed(self) -> bool:
        """True for allow and label (label: allowed, with the labels shown)."""
        return self.outcome in ("allow", "label")

    def raise_if_denied(self) -> Decision:
        """Raise :class:`Refused` with the reasons when the outcome is deny."""
        if self.outcome == "deny":
            raise Refused(f"denied by policy {self.pack}: " + "; ".join(self.reasons))
        return self

    def to_json(self) -> dict:
        return {
            "outcome": self.outcome, "labels": list(self.labels),
            "matched_rules": list(self.matched_rules), "reasons": list(self.reasons),
            "pack": self.pack, "pack_version": self.pack_version, "point": self.point,
            "failed_rules": list(self.failed_rules), "audit_seq": self.audit_seq,
        }


# ---------------------------------------------------------------- the context
class _ListOf:
    def __init__(self, item: dict):
        self.item = item


#: The documented context, with the value a missing field takes. ``None`` means "not
#: provided / not checked"; conditions must guard for it (``asset.score != null && ...``).
SCHEMA: dict = {
    "point": None,
    "actor": {"id": None, "role": None, "org": None},
    "request": {"prompt": None, "negative_prompt": None, "backend": None, "model": None,
                "allow_training": False},
    "asset": {
        "path": None, "sha256": None, "asset_id": None, "verdict": None, "score": None,
        "c2pa": {"state": None, "digital_source_type": None, "signer": None,
                 "training_mining": {}},
        "watermark": {"found": False, "scheme": None, "payload": None, "third_party": None},
        "metadata": {"digital_source_type": None, "generator": None},
        "duplicates": _ListOf({"set": None, "protected": False, "kind": None, "distance": None,
                               "age_days": None, "label": None, "item": None}),
    },
    "now": None,
    "params": {},
}
_MISSING = object()


def _fresh(default):
    if isinstance(default, _ListOf):
        return []
    if isinstance(default, dict):
        return {}
    return default


def _shape(schema: dict, given, names: frozenset):
    """Fill documented fields the rules name; drop fields no rule names."""
    if given is None:
        given = {}
    elif not isinstance(given, dict):
        return given  # a wrong type stays wrong: the rules reading it fail closed
    out = {}
    for key, default in schema.items():
        if key not in names:
            continue
        value = given.get(key, _MISSING)
        if isinstance(default, dict) and default:
            value = _shape(default, None if value is _MISSING else value, names)
        elif isinstance(default, _ListOf):
            if value is _MISSING or value is None:
                value = []
            elif isinstance(value, (list, tuple)):
                value = [_shape(default.item, v, names) for v in value]
        elif value is _MISSING:
            value = _fresh(default)
        out[key] = value
    for key, value in given.items():
        if key not in schema and key in names:
            out[key] = value
    return out


def parse_time(value) -> datetime:
    """An aware UTC datetime from a datetime or an ISO-8601 string (``Z`` allowed)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadInput(f"'now' is not an ISO-8601 time: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise BadInput(f"'now' must be an ISO-8601 string, not {type(value).__name__}")


def build_context(pack: Pack, point: str, context: dict | None) -> dict:
    """The variables the point's rules see: documented fields filled, unread ones dropped."""
    if point not in POINTS:
        raise BadInput(f"unknown decision point {point!r} (known: {', '.join(POINTS)})")
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise BadInput(f"a decision context must be a mapping, not {type(context).__name__}")
    names = pack.names[point]
    given = dict(context)
    given["point"] = point
    if "params" in names:  # params are compiled into the rules; passed only if still read
        given["params"] = pack.params
    variables = _shape(SCHEMA, given, names)
    if "now" in variables:
        now = context.get("now")
        variables["now"] = parse_time(now) if now is not None else datetime.now(timezone.utc)
    return variables


# ---------------------------------------------------------------- evaluation
def _error_text(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"no field {e.args[0]!r} in the context"
    text = str(e).replace("\n", " ").strip()
    first = text.split(". ", 1)[0].rstrip(".")
    return first or type(e).__name__


def evaluate(pack: Pack | str, point: str, context: dict | None) -> Decision:
    """Decide without recording: the pure function ``decide`` audits."""
    pack = load_pack(pack)
    variables = build_context(pack, point, context)
    rules = pack.by_point.get(point, ())
    cel_context = cel.Context(variables=variables, functions=pack.functions) if rules else None
    matched, reasons, labels, failed = [], [], [], []
    best = None
    for rule in rules:
        try:
            value = rule.program.execute(cel_context)
            if value is not True and value is not False:
                raise TypeError(f"condition gave {value!r}, not true or false")
        except Exception as e:  # noqa: BLE001 - any evaluation error fails closed
            outcome = pack.fail_closed
            matched.append(rule.id)
            failed.append(rule.id)
            reasons.append(f"{rule.reason} [could not evaluate: {_error_text(e)}; "
                           f"failing closed: {outcome}]")
            if best is None or _RANK[outcome] < _RANK[best]:
                best = outcome
            continue
        if not value:
            continue
        matched.append(rule.id)
        reason = rule.reason
        if rule.detail_program is not None:
            try:
                detail = rule.detail_program.execute(cel_context)
            except Exception:  # noqa: BLE001 - a detail is decoration, never a decision
                detail = None
            if isinstance(detail, (list, tuple)):
                detail = ", ".join(str(d) for d in detail)
            if detail not in (None, ""):
                reason = f"{reason} ({detail})"
        reasons.append(reason)
        if rule.label and rule.label not in labels:
            labels.append(rule.label)
        if best is None or _RANK[rule.outcome] < _RANK[best]:
            best = rule.outcome
    if best is None:
        best = pack.default
        reasons.append(f"no rule matched at {point}; the pack's default is {best}")
    return Decision(outcome=best, labels=tuple(labels), matched_rules=tuple(matched),
                    reasons=tuple(reasons), pack=pack.name, pack_version=pack.digest,
                    point=point, failed_rules=tuple(failed))


def _subject(context) -> str | None:
    asset = (context or {}).get("asset") or {}
    if isinstance(asset, dict):
        return asset.get("asset_id") or asset.get("sha256") or asset.get("path")
    return None


def _actor(context) -> str | None:
    actor = (context or {}).get("actor") or {}
    return actor.get("id") if isinstance(actor, dict) else None


def decide(pack: Pack | str, point: str, context: dict | None, *, db=None,
           actor: str | None = None, subject: str | None = None) -> Decision:
    """Evaluate ``pack`` at ``point`` and append the decision to the audit log.

    ``db``: a sqlite_utils.Database, a path, or None for the workspace database.
    ``actor``/``subject`` default to ``context.actor.id`` and the asset's id, content hash
    or path.
    """
    from policies.audit import AuditLog

    decision = evaluate(pack, point, context)
    seq = AuditLog(db).append(decision, actor=actor or _actor(context),
                              subject=subject or _subject(context))
    return replace(decision, audit_seq=seq)


def decide_many(pack: Pack | str, point: str, contexts, *, db=None,
                actor: str | None = None) -> list[Decision]:
    """Decide for many contexts and append all the decisions in one transaction."""
    from policies.audit import AuditLog

    pack = load_pack(pack)
    contexts = list(contexts)
    decisions = [evaluate(pack, point, c) for c in contexts]
    entries = [(d, actor or _actor(c), _subject(c)) for d, c in zip(decisions, contexts)]
    first = AuditLog(db).append_many(entries)
    return [replace(d, audit_seq=first + i) for i, d in enumerate(decisions)]
