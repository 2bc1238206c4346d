"""The decision engine: evaluate a pack's rules at a decision point, combine, audit.

Combination (documented in docs/policies.md): every rule that applies to the point is
evaluated in pack order. The decision's outcome is the strongest outcome among the rules
that matched, in the order deny > review > label > allow; when none matched it is the
pack's ``default``. Labels of all matched rules accumulate. A rule whose condition fails
to evaluate (missing field, wrong type, an error in a function) counts as matched with
the pack's ``fail_closed`` outcome (deny unless the pack says review), and the error is
in the decision's reasons.

Why one module of over 400 lines: context shaping, the compiled fast path and the
evaluation loop share the compiled plan of a pack (private structures of this module);
the documented context shape itself lives in provenance/core/context.py.
"""

from __future__ import annotations

import getpass
import weakref
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import compress
from pathlib import PurePath

import cel
from provkit.policies.audit import audit_store
from provkit.policies.expressions import CONTEXT_LIST, CONTEXT_ROOTS, flatten_paths
from provkit.policies.pack import POINTS, PRECEDENCE, Pack, load_pack
from provkit.provenance.core import context as context_schema
from provkit.provenance.core.errors import BadInput, Refused

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
            "outcome": self.outcome,
            "labels": list(self.labels),
            "matched_rules": list(self.matched_rules),
            "reasons": list(self.reasons),
            "pack": self.pack,
            "pack_version": self.pack_version,
            "point": self.point,
            "failed_rules": list(self.failed_rules),
            "audit_seq": self.audit_seq,
        }


# ---------------------------------------------------------------- the context
#: The documented context, with the value a missing field takes (provenance.core.context).
SCHEMA = context_schema.SCHEMA
_ListOf = context_schema.ListOf  # the schema's list marker
_MISSING = object()


def _fresh(default):
    if isinstance(default, (_ListOf, list)):
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
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadInput(f"'now' is not an ISO-8601 time: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
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
        variables["now"] = parse_time(now) if now is not None else datetime.now(UTC)
    return variables


# ---------------------------------------------------------------- evaluation
def _error_text(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"no field {e.args[0]!r} in the context"
    text = str(e).replace("\n", " ").strip()
    first = text.split(". ", 1)[0].rstrip(".")
    return first or type(e).__name__


def _check_lists(value, where: str = "context", depth: int = 0) -> None:
    """BadInput for a list in the context longer than the loops' budget counts
    (:data:`expressions.CONTEXT_LIST`): a rule's loops over it could run unbounded."""
    if depth > 32:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _check_lists(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list | tuple):
        if len(value) > CONTEXT_LIST:
            raise BadInput(
                f"{where} holds {len(value):,} items; a decision context list "
                f"may hold at most {CONTEXT_LIST:,}"
            )
        for v in value:
            _check_lists(v, where + "[]", depth + 1)


def evaluate(pack: Pack | str, point: str, context: dict | None) -> Decision:
    """Decide without recording: the pure function ``decide`` audits."""
    pack = load_pack(pack)
    _check_lists(context)
    rules = pack.by_point.get(point, ())
    plan = _fast_plan(pack, point) if rules else None
    if plan is not None:
        if context is None:
            context = {}
        elif not isinstance(context, dict):
            raise BadInput(f"a decision context must be a mapping, not {type(context).__name__}")
        hits = plan.run(pack, point, context)
        if hits is not None:
            return _combine(pack, point, hits)
    return _combine(pack, point, _per_rule(pack, point, context))


def _per_rule(pack: Pack, point: str, context: dict | None) -> list[tuple]:
    """The rules that matched or failed, ``(rule, True or the error, detail)``, in pack
    order, evaluating each rule on its own against the full context."""
    variables = build_context(pack, point, context)
    rules = pack.by_point.get(point, ())
    if not rules:
        return []
    cel_context = cel.Context(variables=variables, functions=pack.functions)
    return _each(((r, r.program, r.detail_program) for r in rules), cel_context)


def _each(rules, cel_context) -> list[tuple]:
    """Evaluate ``(rule, condition, detail)`` programs one by one: matches and failures."""
    hits = []
    for rule, condition, detail in rules:
        try:
            value = condition.execute(cel_context)
            if value is not True and value is not False:
                raise TypeError(f"condition gave {value!r}, not true or false")
        except Exception as e:  # noqa: BLE001 - any evaluation error fails closed
            hits.append((rule, e, None))
            continue
        if value:
            hits.append((rule, True, _detail(detail, cel_context)))
    return hits


def _detail(program, cel_context):
    if program is None:
        return None
    try:
        return program.execute(cel_context)
    except Exception:  # noqa: BLE001 - a detail is decoration, never a decision
        return None


def _combine(pack: Pack, point: str, hits) -> Decision:
    """The decision from the rules that matched or failed (``_per_rule``'s list)."""
    matched, reasons, labels, failed = [], [], [], []
    best = None
    for rule, value, detail in hits:
        matched.append(rule.id)
        if value is not True:
            outcome = pack.fail_closed
            failed.append(rule.id)
            reasons.append(
                f"{rule.reason} [could not evaluate: {_error_text(value)}; "
                f"failing closed: {outcome}]"
            )
        else:
            outcome = rule.outcome
            reason = rule.reason
            if isinstance(detail, (list, tuple)):
                detail = ", ".join(str(d) for d in detail)
            if detail not in (None, ""):
                reason = f"{reason} ({detail})"
            reasons.append(reason)
            if rule.label and rule.label not in labels:
                labels.append(rule.label)
        if best is None or _RANK[outcome] < _RANK[best]:
            best = outcome
    if best is None:
        best = pack.default
        reasons.append(f"no rule matched at {point}; the pack's default is {best}")
    return Decision(
        outcome=best,
        labels=tuple(labels),
        matched_rules=tuple(matched),
        reasons=tuple(reasons),
        pack=pack.name,
        pack_version=pack.digest,
        point=point,
        failed_rules=tuple(failed),
    )


# ---------------------------------------------------------------- the fast path
# Converting the context into CEL values is most of a decision's cost, and the library
# pays about a microsecond for every map key. So each field path the rules read
# (``asset.c2pa.state``) is compiled into a variable of its own that holds just the value
# at the end of the path, filled in as ``build_context`` would fill it, and all of a
# point's conditions run as one CEL program. Once every path resolves, the rules see the
# values they would read on the full context, so they give the same results: when the
# one program fails (a rule errors or gives a non-boolean), the rules run one by one on
# the same values to find which failed and why. When a path does not resolve (an
# undocumented field that is absent, an object of the wrong type) or a value cannot be
# converted, the decision is made on the full context instead, exactly as before.
_OBJECT, _LIST, _LEAF, _EXTRA = range(4)


def _fold_depth(root: str, fields: tuple) -> int:
    """How many of ``fields`` lead through documented objects (and one step beyond)."""
    node, depth = SCHEMA.get(root), 0
    while depth < len(fields) and isinstance(node, dict) and node:
        node = node.get(fields[depth], _MISSING)
        depth += 1
    return depth


@dataclass(frozen=True)
class _Node:
    """A documented object the rules read fields of, and how to read them."""

    plain: tuple  # (variable name, key, default): a documented value with a constant default
    leaves: tuple  # (variable name, key, kind, default): any other value handed to CEL
    children: tuple  # (key, _Node): documented objects within, read field by field
    extras: frozenset  # names the rules mention that this object's schema lacks

    def fill(self, obj: dict, values: dict, names: frozenset) -> bool:
        """Put the leaves' values (as ``build_context`` fills them) into ``values``."""
        if not obj.keys().isdisjoint(self.extras):
            return False  # an undocumented key a rule may read as a field
        for name, key, default in self.plain:
            values[name] = obj.get(key, default)
        for name, key, kind, default in self.leaves:
            value = obj.get(key, _MISSING)
            if kind == _OBJECT:
                value = _shape(default, None if value is _MISSING else value, names)
            elif kind == _LIST:
                if value is _MISSING or value is None:
                    value = []
                elif isinstance(value, (list, tuple)):
                    value = [_shape(default.item, v, names) for v in value]
            elif value is _MISSING:
                if kind == _EXTRA:
                    return False
                value = _fresh(default)
            values[name] = value
        for key, node in self.children:
            child = obj.get(key)
            if child is None:
                child = {}  # an object left out or null: its fields take defaults
            elif not isinstance(child, dict):
                return False
            if not node.fill(child, values, names):
                return False
        return True


@dataclass(frozen=True)
class _FastPlan:
    """How to decide at one point of one pack without converting the whole context."""

    top: _Node
    names: frozenset  # every name the point's rules mention
    functions: dict  # the pack's functions the point's rules call
    conditions: object  # one CEL program: the list of every rule's condition
    rules: tuple  # per rule, (the rule, its condition and detail (or None) rewritten)

    def run(self, pack: Pack, point: str, context: dict) -> list[tuple] | None:
        """The rules that matched, as ``_per_rule`` lists them; None: decide per rule."""
        names = self.names
        top = dict(context)
        top["point"] = point
        if "params" in names:
            top["params"] = pack.params
        if "now" in names:
            now = context.get("now")
            top["now"] = parse_time(now) if now is not None else datetime.now(UTC)
        values: dict = {}
        if not self.top.fill(top, values, names):
            return None
        try:
            cel_context = cel.Context(variables=values, functions=self.functions)
        except Exception:  # noqa: BLE001 - a value CEL cannot take: raised per rule
            return None
        try:
            conditions = self.conditions.execute(cel_context)
        except Exception:  # noqa: BLE001 - a rule failed: find which, and why
            conditions = None
        if conditions is None or not set(map(type, conditions)) <= _BOOL:
            # the same values and operations as on the full context, so the same errors
            return _each(self.rules, cel_context)
        return [
            (rule, True, _detail(detail, cel_context))
            for rule, _, detail in compress(self.rules, conditions)
        ]


_BOOL = {bool}
_PLANS: dict[int, tuple] = {}  # id(pack) -> (weak reference to the pack, point -> plan)


def _fast_plan(pack: Pack, point: str) -> _FastPlan | None:
    """The point's fast plan (built on first use), or None where the rules need the
    full context (a comprehension variable named like a context variable, and such)."""
    cached = _PLANS.get(id(pack))
    if cached is None or cached[0]() is not pack:
        cached = _PLANS[id(pack)] = (weakref.ref(pack), {})
        weakref.finalize(pack, _PLANS.pop, id(pack), None)
    plans = cached[1]
    if point not in plans:
        plans[point] = _build_plan(pack, point) if point in POINTS else None
    return plans[point]


def _build_plan(pack: Pack, point: str) -> _FastPlan | None:
    """Fold the point's field paths into variables and its conditions into one program;
    None where a rewritten expression does not read exactly what the original does."""
    rules = pack.by_point.get(point, ())
    names = pack.names[point]
    prefix = "_pk"
    while any(n.startswith(prefix) for n in names):
        prefix += "_"
    folded: dict[tuple, str] = {}

    def rewrite(program):
        text = flatten_paths(program.source, _fold_depth, folded, prefix)
        if text is None:
            return None
        try:
            new = cel.compile(text)
        except ValueError:
            return None
        left = set(new.variables()) - set(folded.values())
        if left & set(CONTEXT_ROOTS) or left - set(program.variables()):
            return None
        return new

    rewritten = []
    for rule in rules:
        condition = rewrite(rule.program)
        if condition is None:
            return None
        detail = None
        if rule.detail_program is not None:
            detail = rewrite(rule.detail_program)
            if detail is None:
                return None
        rewritten.append((rule, condition, detail))
    try:
        combined = cel.compile("[" + ", ".join(f"({c.source})" for _, c, _ in rewritten) + "]")
    except ValueError:
        return None
    return _FastPlan(
        top=_node((), SCHEMA, folded, names, prefix),
        names=names,
        functions={k: f for k, f in pack.functions.items() if k in names},
        conditions=combined,
        rules=tuple(rewritten),
    )


def _node(path: tuple, schema: dict, folded: dict, names: frozenset, prefix: str) -> _Node:
    """The reading plan for the documented object at ``path``, whose schema is ``schema``.

    The fields the rules name but no path reads are handed to CEL all the same, and an
    undocumented key the rules name sends the decision the per-rule way: either way a
    value CEL cannot take fails as it does on the full context.
    """
    depth = len(path)
    used = {p[depth] for p in folded if len(p) > depth and p[:depth] == path}
    for key in schema:
        if key in names and key not in used:
            folded.setdefault((*path, key), f"{prefix}{len(folded)}")
            used.add(key)
    plain, leaves, children = [], [], []
    for key in sorted(used, key=str):
        default = schema.get(key, _MISSING)
        if (*path, key) in folded:
            if default is _MISSING:
                kind = _EXTRA
            elif isinstance(default, _ListOf):
                kind = _LIST
            elif isinstance(default, dict) and default:
                kind = _OBJECT
            else:
                kind = _LEAF
            if kind == _LEAF and (default is None or isinstance(default, (bool, int, float, str))):
                plain.append((folded[(*path, key)], key, default))
            else:
                leaves.append((folded[(*path, key)], key, kind, default))
        if (
            isinstance(default, dict)
            and default
            and any(len(p) > depth + 1 and p[: depth + 1] == (*path, key) for p in folded)
        ):
            children.append((key, _node((*path, key), default, folded, names, prefix)))
    return _Node(
        plain=tuple(plain),
        leaves=tuple(leaves),
        children=tuple(children),
        extras=frozenset(names - set(schema) - used),
    )


def _subject(context) -> str | None:
    """The asset's id (else content hash, else path), with its file name when known."""
    asset = (context or {}).get("asset") or {}
    if not isinstance(asset, dict):
        return None
    ident = asset.get("asset_id") or asset.get("sha256")
    path = asset.get("path")
    name = PurePath(str(path)).name if path else None
    if ident and name:
        return f"{ident} ({name})"
    return ident or path


def _actor(context) -> str | None:
    actor = (context or {}).get("actor") or {}
    return actor.get("id") if isinstance(actor, dict) else None


def os_actor() -> str | None:
    """The operating-system user running provkit: who decided when nobody else is named."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        return None


def decide(
    pack: Pack | str,
    point: str,
    context: dict | None,
    *,
    db=None,
    actor: str | None = None,
    subject: str | None = None,
) -> Decision:
    """Evaluate ``pack`` at ``point`` and append the decision to the audit log.

    ``db``: a sqlite_utils.Database, a path, or None for the workspace database.
    ``actor``/``subject`` default to ``context.actor.id`` (else the OS user) and the
    asset's id or content hash with its file name (else its path).
    """

    decision = evaluate(pack, point, context)
    seq = audit_store(db).append(
        decision, actor=actor or _actor(context) or os_actor(), subject=subject or _subject(context)
    )
    return replace(decision, audit_seq=seq)


def decide_many(
    pack: Pack | str, point: str, contexts, *, db=None, actor: str | None = None
) -> list[Decision]:
    """Decide for many contexts and append all the decisions in one transaction."""

    pack = load_pack(pack)
    contexts = list(contexts)
    decisions = [evaluate(pack, point, c) for c in contexts]
    fallback = os_actor()
    entries = [
        (d, actor or _actor(c) or fallback, _subject(c)) for d, c in zip(decisions, contexts)
    ]
    first = audit_store(db).append_many(entries)
    return [replace(d, audit_seq=first + i) for i, d in enumerate(decisions)]
