"""Which documented context fields a pack's rules read, and checks built on that.

- :func:`fields_read` lists the documented field paths a point's rules read
  (``asset.c2pa.state``; ``asset.duplicates[].age_days`` for the items of a list);
- :func:`missing_fields` names those a prepared context lacks, so ``policy check
  --context`` refuses a half-empty row instead of deciding on nulls;
- :func:`expression_findings` is what lint reports about an expression's fields: a
  field that is not documented, and a nullable field compared or computed with
  without a guard (``asset.score != null && ...``), which would fail closed at run time.
"""

from __future__ import annotations

import re

from provkit.policies.engine import SCHEMA, _ListOf
from provkit.policies.expressions import _STRING
from provkit.policies.pack import Finding, _read_pack, resolve_pack_path
from provkit.provenance.core.context import OPTIONAL_FIELDS

_ROOTS = ("asset", "request", "actor")
_CHAIN = re.compile(r"(?<![\w.])(" + "|".join(_ROOTS) + r")((?:\s*\.\s*[A-Za-z_]\w*)+)")
_MACRO = re.compile(
    r"((?:" + "|".join(_ROOTS) + r")(?:\s*\.\s*[A-Za-z_]\w*)+)\s*\.\s*"
    r"(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,"
)
_ORDER = r"(?:<=|>=|<|>|\+|-|\*|/|%)"


def _code(expr: str) -> str:
    """``expr`` with string literals blanked, so words inside them are not fields."""
    return _STRING.sub(lambda m: '""', expr)


def _walk(path: tuple[str, ...]):
    """``(documented prefix, schema node at its end, rest)`` for a dotted path."""
    node, depth = SCHEMA, 0
    while depth < len(path) and isinstance(node, dict) and path[depth] in node:
        node = node[path[depth]]
        depth += 1
        if isinstance(node, _ListOf) or not (isinstance(node, dict) and node):
            break
    return path[:depth], node, path[depth:]


def _chains(expr: str) -> list[tuple[str, ...]]:
    code = _code(expr)
    return [
        tuple([m.group(1)] + [p.strip() for p in m.group(2).split(".") if p.strip()])
        for m in _CHAIN.finditer(code)
    ]


def _list_vars(expr: str) -> dict[str, tuple[str, ...]]:
    """Macro variables bound to a documented list's items: ``{"d": ("asset", "duplicates")}``."""
    out = {}
    for m in _MACRO.finditer(_code(expr)):
        path = tuple(p.strip() for p in m.group(1).split("."))
        prefix, node, _ = _walk(path)
        if isinstance(node, _ListOf) and prefix == path:
            out[m.group(2)] = path
    return out


def _sources(pack, point: str, conditions_only: bool = False) -> list[str]:
    out = []
    for rule in pack.by_point.get(point, ()):
        programs = (rule.program,) if conditions_only else (rule.program, rule.detail_program)
        for program in programs:
            if program is not None:
                out.append(program.source)
    return out


def fields_read(pack, point: str, *, conditions_only: bool = False) -> list[str]:
    """The documented fields (dotted; ``[]`` for list items) the point's rules read
    (in their conditions only, with ``conditions_only``: details are decoration)."""
    found: dict[str, None] = {}
    for expr in _sources(pack, point, conditions_only):
        for chain in _chains(expr):
            prefix, _node, _ = _walk(chain)
            if len(prefix) > 1:
                found[".".join(prefix)] = None
        code = _code(expr)
        for var, path in _list_vars(expr).items():
            item = _walk(path)[1].item
            for m in re.finditer(r"(?<![\w.])" + re.escape(var) + r"\s*\.\s*([A-Za-z_]\w*)", code):
                if m.group(1) in item:
                    found[".".join(path) + "[]." + m.group(1)] = None
    return sorted(found)


def missing_fields(pack, point: str, context) -> list[str]:
    """The fields the point's conditions read that ``context`` lacks (or holds in a value
    of the wrong shape: an object or list expected)."""
    if not isinstance(context, dict):
        return ["the context is not an object"]
    problems = []
    for dotted in fields_read(pack, point, conditions_only=True):
        if dotted.startswith(OPTIONAL_FIELDS):
            continue  # defaults to "no failure cause found" / "no relation measured"
        head, _, item_key = dotted.partition("[].")
        value, node, where = context, SCHEMA, []
        for key in head.split("."):
            where.append(key)
            if not isinstance(value, dict):
                problems.append(f"{'.'.join(where[:-1])} is not an object")
                break
            if key not in value:
                problems.append(".".join(where))
                break
            value, node = value[key], node[key] if isinstance(node, dict) else None
        else:
            if isinstance(node, _ListOf):
                if not isinstance(value, list):
                    problems.append(f"{head} is not a list")
                elif item_key:
                    for i, entry in enumerate(value):
                        if not isinstance(entry, dict) or item_key not in entry:
                            problems.append(f"{head}[{i}].{item_key}")
                            break
            elif isinstance(node, dict) and node and not isinstance(value, dict):
                problems.append(f"{head} is not an object")
    return list(dict.fromkeys(problems))


def _nullable(path: tuple[str, ...]) -> bool:
    prefix, node, _rest = _walk(path)
    return prefix == path and node is None


def expression_findings(expr: str) -> list[tuple[str, str]]:
    """``(severity, message)`` about the fields an expression reads (see module doc)."""
    findings: list[tuple[str, str]] = []
    code = _code(expr)
    compact = re.sub(r"\s+", "", code)
    for chain in dict.fromkeys(_chains(expr)):
        _prefix, node, rest = _walk(chain)
        if rest and not isinstance(node, _ListOf) and isinstance(node, dict) and node:
            findings.append(
                (
                    "warning",
                    (
                        f"{'.'.join(chain)} is not a documented field of the "
                        "decision context (a context without it fails closed)"
                    ),
                )
            )
    nullable = [".".join(c) for c in dict.fromkeys(_chains(expr)) if _nullable(c)]
    for var, path in _list_vars(expr).items():
        item = _walk(path)[1].item
        nullable += [f"{var}.{k}" for k, default in item.items() if default is None]
    for field in dict.fromkeys(nullable):
        esc = re.escape(field).replace(r"\.", r"\s*\.\s*")
        used = re.search(rf"(?<![\w.]){esc}(?![\w.(])\s*{_ORDER}", code) or re.search(
            rf"{_ORDER}\s*(?<![\w.]){esc}(?![\w.(])", code
        )
        plain = field.replace(" ", "")
        guarded = (
            f"{plain}!=null" in compact or f"null!={plain}" in compact or f"has({plain})" in compact
        )
        if used and not guarded:
            findings.append(
                (
                    "error",
                    (
                        f"{field} may be null (not provided or not checked) and "
                        f"is compared or computed with unguarded; write "
                        f"{field} != null && ..."
                    ),
                )
            )
    return findings


def lint_pack(name_or_path) -> list:
    """All problems in a pack (:func:`policies.pack.lint_pack`) plus what the context
    schema says about the fields each rule reads (:func:`expression_findings`)."""
    pack, findings = _read_pack(resolve_pack_path(name_or_path))
    for rule in pack.rules if pack is not None else ():
        for text, program, is_condition in (
            (rule.when, rule.program, True),
            (rule.detail, rule.detail_program, False),
        ):
            if not isinstance(text, str) or program is None:
                continue  # absent, or does not compile (reported already)
            for severity, message in expression_findings(text):
                if severity == "error" and not is_condition:
                    continue  # a detail that fails only loses its decoration
                findings.append(
                    Finding(severity, rule.line, f"rule {rule.id!r}: {message}", rule.id)
                )
    return sorted(findings, key=lambda f: (f.line or 0, f.severity))
