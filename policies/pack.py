"""Policy packs: YAML rule files, validated at load with line numbers.

A pack is one YAML file (``pack.yaml`` in a folder, or any ``.yaml`` path) plus the
term-list files it names. Loading compiles every CEL condition once and checks the
pack: unknown or missing fields, duplicate keys and rule ids, expressions that do not
compile, unknown variables, functions and term lists, unknown decision points, and
unreachable rules. ``lint_pack`` returns the findings; ``load_pack`` raises
:class:`ConfigError` when any of them is an error.

Why one module of about 400 lines: reading a pack and linting it are the same pass
(fields, CEL compilation, term lists, reachability) producing the same line-numbered
findings; ``load_pack`` and ``lint_pack`` differ only in what they do with the errors.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provkit.policies.expressions import (
    cel_literal,
    compile_expression,
    constant_value,
    names_read,
    reference_problems,
    term_functions,
)
from provkit.policies.terms import TermList
from provkit.policies.yamllines import LineDict, parse
from provkit.provenance.core.errors import ConfigError

PACKS_DIR = Path(__file__).parent / "packs"
POINTS = ("generate.request", "generate.output", "verify", "publish", "ingest", "train")
OUTCOMES = ("allow", "deny", "label", "review")
#: Strongest first: a decision takes the strongest outcome among the rules that matched.
PRECEDENCE = ("deny", "review", "label", "allow")
PACK_FIELDS = {
    "pack": "the pack's name",
    "version": 'a human release label, e.g. "1.2"',
    "description": "what the pack is for",
    "default": "outcome when no rule matches (allow, deny, label, review)",
    "fail_closed": "outcome of a rule whose condition fails to evaluate (default deny)",
    "params": "named values conditions read as params.NAME",
    "terms": "term-list name -> file path relative to the pack",
    "rules": "the list of rules",
}
RULE_FIELDS = {
    "id": "unique rule id",
    "description": "what the rule is for",
    "points": "decision points the rule applies to",
    "when": "CEL condition (omitted: always)",
    "outcome": "allow, deny, label or review",
    "label": "label text (required for outcome label)",
    "reason": "sentence shown to users when the rule matches",
    "detail": "optional CEL expression whose value is appended to the reason",
}
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Finding:
    """One problem found in a pack."""

    severity: str  # "error" | "warning"
    line: int | None
    message: str
    rule: str | None = None

    def to_json(self) -> dict:
        return {
            "severity": self.severity,
            "line": self.line,
            "message": self.message,
            "rule": self.rule,
        }

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.severity}: {self.message}"


@dataclass(frozen=True)
class Rule:
    id: str
    points: tuple[str, ...]
    outcome: str
    reason: str
    when: str = "true"
    description: str = ""
    label: str | None = None
    detail: str | None = None
    line: int | None = None
    program: Any = field(default=None, repr=False, compare=False)
    detail_program: Any = field(default=None, repr=False, compare=False)
    constant: bool | None = None  # the condition's value when it reads nothing

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "description": self.description,
            "points": list(self.points),
            "when": self.when,
            "outcome": self.outcome,
            "label": self.label,
            "reason": self.reason,
            "detail": self.detail,
            "line": self.line,
        }


@dataclass(frozen=True)
class Pack:
    """A loaded, validated policy pack; ``digest`` is the sha256 of its content."""

    name: str
    version: str
    description: str
    default: str
    fail_closed: str
    params: dict
    terms: dict[str, TermList]
    rules: tuple[Rule, ...]
    path: Path
    digest: str
    by_point: dict[str, tuple[Rule, ...]] = field(repr=False, compare=False, default_factory=dict)
    functions: dict = field(repr=False, compare=False, default_factory=dict)
    term_files: dict = field(repr=False, compare=False, default_factory=dict)
    #: per point, every name the point's rules mention (the context passes only these)
    names: dict[str, frozenset] = field(repr=False, compare=False, default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "description": self.description,
            "default": self.default,
            "fail_closed": self.fail_closed,
            "path": str(self.path),
            "params": self.params,
            "terms": {name: len(t) for name, t in self.terms.items()},
            "rules": [r.to_json() for r in self.rules],
        }


# ---------------------------------------------------------------- locating and hashing
def resolve_pack_path(name_or_path: str | Path) -> Path:
    """A shipped pack name, a pack folder or a YAML file -> the pack's YAML file."""
    text = str(name_or_path)
    if re.fullmatch(r"[a-z0-9_-]+", text) and (PACKS_DIR / text / "pack.yaml").is_file():
        return PACKS_DIR / text / "pack.yaml"
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "pack.yaml"
    if not path.is_file():
        shipped = ", ".join(shipped_packs())
        raise ConfigError(f"no such policy pack (shipped packs: {shipped})", path=text)
    return path


def shipped_packs() -> list[str]:
    return sorted(p.parent.name for p in PACKS_DIR.glob("*/pack.yaml"))


def _digest(yaml_bytes: bytes, term_files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    h.update(b"pack\0" + yaml_bytes)
    for name in sorted(term_files):
        h.update(b"\0terms\0" + name.encode() + b"\0" + term_files[name])
    return h.hexdigest()


# ---------------------------------------------------------------- validation
def _check_fields(obj: LineDict, known: dict, what: str, findings, rule=None):
    for key in obj:
        if key not in known:
            hint = ", ".join(known)
            findings.append(
                Finding(
                    "error",
                    obj.key_lines.get(key, obj.line),
                    f"unknown field {key!r} in {what} (known: {hint})",
                    rule,
                )
            )


def _outcome(value, line, what, findings, default=None):
    if value is None and default is not None:
        return default
    if value not in OUTCOMES:
        findings.append(
            Finding("error", line, f"{what} must be one of {', '.join(OUTCOMES)}, not {value!r}")
        )
        return default or "deny"
    return value


def _build_rule(raw, index, terms, params, findings) -> Rule | None:
    if not isinstance(raw, LineDict):
        findings.append(Finding("error", None, f"rule #{index + 1} must be a mapping"))
        return None
    line = raw.line
    rid = raw.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        findings.append(
            Finding(
                "error",
                raw.key_lines.get("id", line),
                f"rule #{index + 1} needs an id of lowercase letters, digits, "
                f"'.', '-' or '_' (got {rid!r})",
            )
        )
        rid = f"#{index + 1}"
    _check_fields(raw, RULE_FIELDS, f"rule {rid!r}", findings, rid)
    for required in ("points", "outcome", "reason"):
        if required not in raw:
            findings.append(Finding("error", line, f"rule {rid!r} has no {required!r}", rid))
    points = raw.get("points", [])
    if isinstance(points, str):
        points = [points]
    pline = raw.key_lines.get("points", line)
    if not isinstance(points, list) or not points:
        findings.append(
            Finding("error", pline, f"rule {rid!r}: points must be a non-empty list", rid)
        )
        points = []
    for p in points:
        if p not in POINTS:
            findings.append(
                Finding(
                    "error",
                    pline,
                    f"rule {rid!r} names unknown decision point {p!r} (known: {', '.join(POINTS)})",
                    rid,
                )
            )
    points = tuple(p for p in points if p in POINTS)
    outcome = raw.get("outcome")
    if "outcome" in raw:
        outcome = _outcome(outcome, raw.key_lines["outcome"], f"rule {rid!r}: outcome", findings)
    label = raw.get("label")
    if outcome == "label" and not label:
        findings.append(
            Finding("error", line, f"rule {rid!r} has outcome label but no label text", rid)
        )
    if label is not None and not isinstance(label, str):
        findings.append(
            Finding(
                "error", raw.key_lines.get("label", line), f"rule {rid!r}: label must be text", rid
            )
        )
        label = str(label)
    reason = raw.get("reason", "")
    if not isinstance(reason, str):
        reason = str(reason)
    when = raw.get("when", "true")
    if isinstance(when, bool):
        when = "true" if when else "false"
    wline = raw.key_lines.get("when", line)
    program, problems = compile_expression(when, f"rule {rid!r}: when", params)
    constant = None
    if program is not None:
        problems += reference_problems(program, when, terms)
        constant = constant_value(program)
        if constant is not None and not isinstance(constant, bool):
            findings.append(
                Finding(
                    "error",
                    wline,
                    f"rule {rid!r}: when is always {constant!r}, not true or false",
                    rid,
                )
            )
            constant = None
    findings += [Finding("error", wline, p, rid) for p in problems]
    detail, detail_program = raw.get("detail"), None
    if detail is not None:
        dline = raw.key_lines.get("detail", line)
        detail_program, problems = compile_expression(detail, f"rule {rid!r}: detail", params)
        if detail_program is not None:
            problems += reference_problems(detail_program, detail, terms)
        findings += [Finding("error", dline, p, rid) for p in problems]
    return Rule(
        id=rid,
        points=points,
        outcome=outcome or "deny",
        reason=reason,
        when=when,
        description=str(raw.get("description", "")),
        label=label,
        detail=detail,
        line=line,
        program=program,
        detail_program=detail_program,
        constant=constant,
    )


def _check_reachability(rules: list[Rule], findings):
    """Flag rules that can never match or can never change a decision.

    Every rule at a point is evaluated and deny overrides, so where one rule denies
    unconditionally (no ``when``, or a constant ``true``), any other rule at that point can
    never change the outcome, wherever it stands in the pack.
    """
    always_deny: dict[str, Rule] = {}
    for rule in rules:
        if rule.constant is True and rule.outcome == "deny":
            for p in rule.points:
                always_deny.setdefault(p, rule)
    for rule in rules:
        if rule.constant is False:
            findings.append(
                Finding(
                    "error",
                    rule.line,
                    f"rule {rule.id!r} is unreachable: its condition is always false",
                    rule.id,
                )
            )
            continue
        covered = [
            always_deny[p] for p in rule.points if p in always_deny and always_deny[p] is not rule
        ]
        if rule.points and len(covered) == len(rule.points):
            first = covered[0]
            findings.append(
                Finding(
                    "error",
                    rule.line,
                    f"rule {rule.id!r} is unreachable: rule {first.id!r} "
                    f"(line {first.line}) denies unconditionally at "
                    f"{', '.join(rule.points)}, so this rule can never change a decision",
                    rule.id,
                )
            )


def _read_pack(path: Path) -> tuple[Pack | None, list[Finding]]:
    findings: list[Finding] = []
    try:
        raw_bytes = path.read_bytes()
        text = raw_bytes.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read policy pack: {e}", path=path) from None
    data, problems = parse(text)
    findings += [Finding("error", line, message) for line, message in problems]
    if data is None:
        if not findings:
            findings.append(Finding("error", 1, "the pack is empty"))
        return None, findings
    if not isinstance(data, LineDict):
        findings.append(Finding("error", 1, "a pack must be a mapping with pack, rules, ..."))
        return None, findings
    _check_fields(data, PACK_FIELDS, "the pack", findings)
    kl = data.key_lines
    name = data.get("pack")
    if not isinstance(name, str) or not name:
        findings.append(Finding("error", kl.get("pack", 1), "the pack needs a name ('pack: NAME')"))
        name = path.parent.name if path.name == "pack.yaml" else path.stem
    default = (
        _outcome(data.get("default"), kl.get("default", 1), "default", findings, None)
        if "default" in data
        else None
    )
    if default is None:
        findings.append(
            Finding(
                "error",
                1,
                "the pack must declare its default outcome ('default: allow|deny|label|review')",
            )
        )
        default = "deny"
    if default == "label":
        findings.append(Finding("error", kl["default"], "default cannot be label (no label text)"))
    fail_closed = _outcome(
        data.get("fail_closed"), kl.get("fail_closed", 1), "fail_closed", findings, "deny"
    )
    if fail_closed in ("allow", "label"):
        findings.append(
            Finding(
                "error",
                kl.get("fail_closed"),
                "fail_closed must be deny or review: an error must never let a request through",
            )
        )
    params = data.get("params") or {}
    if not isinstance(params, dict):
        findings.append(Finding("error", kl.get("params"), "params must be a mapping"))
        params = {}
    params = _plain(params)
    for pname, pvalue in params.items():
        try:
            cel_literal(pvalue)
        except TypeError as e:
            findings.append(Finding("error", kl.get("params"), f"params.{pname}: {e}"))
    terms: dict[str, TermList] = {}
    term_bytes: dict[str, bytes] = {}
    raw_terms = data.get("terms") or {}
    if not isinstance(raw_terms, dict):
        findings.append(Finding("error", kl.get("terms"), "terms must map a list name to a file"))
        raw_terms = {}
    for tname, rel in raw_terms.items():
        tline = raw_terms.key_lines.get(tname) if isinstance(raw_terms, LineDict) else None
        tpath = (path.parent / str(rel)).resolve()
        try:
            blob = tpath.read_bytes()
            terms[tname] = TermList.from_lines(tname, blob.decode("utf-8").splitlines())
            term_bytes[tname] = blob
        except (OSError, UnicodeDecodeError) as e:
            findings.append(
                Finding("error", tline, f"cannot read term list {tname!r} from {rel}: {e}")
            )
            continue
        if not terms[tname].terms:
            findings.append(Finding("warning", tline, f"term list {tname!r} is empty"))
    raw_rules = data.get("rules")
    rules: list[Rule] = []
    if not isinstance(raw_rules, list) or not raw_rules:
        findings.append(
            Finding("error", kl.get("rules", 1), "the pack needs a non-empty rules list")
        )
        raw_rules = []
    seen: dict[str, int | None] = {}
    for i, raw in enumerate(raw_rules):
        rule = _build_rule(raw, i, terms, params, findings)
        if rule is None:
            continue
        if rule.id in seen:
            findings.append(
                Finding(
                    "error",
                    rule.line,
                    f"duplicate rule id {rule.id!r} (first at line {seen[rule.id]})",
                    rule.id,
                )
            )
        seen.setdefault(rule.id, rule.line)
        rules.append(rule)
    _check_reachability(rules, findings)
    pack = Pack(
        name=name,
        version=str(data.get("version", "")),
        description=str(data.get("description", "")),
        default=default,
        fail_closed=fail_closed,
        params=params,
        terms=terms,
        rules=tuple(rules),
        path=path,
        digest=_digest(raw_bytes, term_bytes),
        by_point={p: tuple(r for r in rules if p in r.points) for p in POINTS},
        functions=term_functions(terms),
        term_files={n: str(rel) for n, rel in raw_terms.items()},
        names={p: names_read(r for r in rules if p in r.points) for p in POINTS},
    )
    return pack, findings


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def lint_pack(name_or_path: str | Path) -> list[Finding]:
    """All problems in a pack, errors and warnings, in line order."""
    _, findings = _read_pack(resolve_pack_path(name_or_path))
    return sorted(findings, key=lambda f: (f.line or 0, f.severity))


_CACHE: dict[str, tuple[tuple, Pack]] = {}


def _stamps(paths) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), None, None))
    return tuple(out)


def _files(pack: Pack) -> list[Path]:
    return [pack.path] + [pack.path.parent / rel for rel in pack.term_files.values()]


def load_pack(name_or_path: str | Path | Pack) -> Pack:
    """Load and validate a pack by shipped name ("newsroom", "platform", "studio") or path.

    Raises :class:`ConfigError` listing every error (with line numbers) if it is invalid.
    Loaded packs are cached until their YAML or term files change.
    """
    if isinstance(name_or_path, Pack):
        return name_or_path
    key = str(name_or_path)
    cached = _CACHE.get(key)
    if cached and _stamps(_files(cached[1])) == cached[0]:
        return cached[1]
    path = resolve_pack_path(name_or_path).resolve()
    pack, findings = _read_pack(path)
    errors = [f for f in sorted(findings, key=lambda f: f.line or 0) if f.severity == "error"]
    if errors:
        listed = "; ".join(str(f) for f in errors[:5])
        more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise ConfigError(f"invalid policy pack: {listed}{more}", path=path)
    _CACHE[key] = (_stamps(_files(pack)), pack)
    return pack
