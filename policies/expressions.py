"""CEL conditions: compiling them with the pack's params, and checking what they read.

Params are pack constants, so ``params.NAME`` is replaced by the value as a CEL literal
before compiling (a decision then need not convert them into CEL values). Lint checks
here find unknown variables, functions and term lists; ``term_functions`` gives the
functions provkit adds to CEL; ``flatten_paths`` rewrites field paths (``asset.c2pa.state``)
into single variables, so a decision converts only the values at their ends.
"""

from __future__ import annotations

import json
import re

import cel
from provkit.policies.terms import TermList

#: Top-level names a condition may read (see docs/policies.md for their fields).
CONTEXT_ROOTS = ("point", "actor", "request", "asset", "now", "params")
#: Functions provkit adds to CEL: term-list matching, and joining a list into a string.
PACK_FUNCTIONS = ("matches_terms", "terms_found", "join")
#: Functions native to the CEL library (besides operators).
CEL_FUNCTIONS = frozenset(
    {
        "size",
        "has",
        "all",
        "exists",
        "exists_one",
        "map",
        "filter",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "timestamp",
        "duration",
        "dyn",
        "type",
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)

_NAME = re.compile(r"[A-Za-z_]\w*")
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_TERM_REF = re.compile(r"(?:matches_terms|terms_found)\s*\(([^()]*)\)")
_LAST_STRING = re.compile(r"""["']([^"']*)["']\s*$""")

_STRING = re.compile(
    r"""(?:[rR]?(?:\'\'\'.*?\'\'\'|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"))""",
    re.DOTALL,
)
_PARAM = re.compile(r"(?<![\w.])params\s*\.\s*([A-Za-z_]\w*)")


def cel_literal(value) -> str:
    """A CEL literal for a YAML value (null, bool, int, double, string, list, map)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".eEn") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(cel_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{cel_literal(str(k))}: {cel_literal(v)}" for k, v in value.items())
            + "}"
        )
    raise TypeError(f"a param cannot be {type(value).__name__}")


def inline_params(expr: str, params: dict) -> tuple[str, list[str]]:
    """Replace ``params.NAME`` (outside string literals) by the value as a CEL literal.

    Params are constants of the pack, so they are compiled into the program instead of
    being converted into CEL values on every decision. Returns the new text and the
    names that are not params of the pack.
    """
    unknown: list[str] = []

    def swap(m):
        name = m.group(1)
        if name not in params:
            unknown.append(name)
            return m.group(0)
        return "(" + cel_literal(params[name]) + ")"

    out, pos = [], 0
    for m in _STRING.finditer(expr):
        out.append(_PARAM.sub(swap, expr[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_PARAM.sub(swap, expr[pos:]))
    return "".join(out), unknown


#: The most evaluation steps a condition may take, as :func:`estimate_steps` counts them.
#: CEL runs in native code that cannot be stopped halfway, so the budget is checked
#: when the pack is loaded, and context lists are capped when a decision is made.
STEP_BUDGET = 1_000_000
#: Items a list in a decision context may hold (and what a loop over one is counted as).
CONTEXT_LIST = 1000
_MACRO_CALL = re.compile(r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(")


def estimate_steps(expr: str) -> int:
    """The most iterations ``expr``'s comprehensions (``all``, ``exists``, ``map``...) can
    make: per loop, the size of its list (a literal's items, else :data:`CONTEXT_LIST`)
    times one plus the steps of the loops inside its body."""
    text = _STRING.sub(lambda m: '""' + " " * (len(m.group(0)) - 2), expr)
    spans = []  # (start of body, end of body, size of the list looped over)
    for m in _MACRO_CALL.finditer(text):
        open_at = m.end() - 1
        close_at = _matching(text, open_at, "(", ")")
        spans.append((open_at, close_at, _receiver_size(text, m.start())))

    def cost(i: int) -> int:
        start, end, size = spans[i]
        inner = [
            j
            for j in range(i + 1, len(spans))
            if start < spans[j][0] < end
            and not any(start < spans[k][0] < spans[j][0] < spans[k][1] for k in range(i + 1, j))
        ]
        return size * (1 + sum(cost(j) for j in inner))

    roots = [
        i
        for i in range(len(spans))
        if not any(spans[k][0] < spans[i][0] < spans[k][1] for k in range(i))
    ]
    return sum(cost(i) for i in roots)


def _matching(text: str, at: int, opening: str, closing: str, step: int = 1) -> int:
    depth = 0
    i = at
    while 0 <= i < len(text):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i
        i += step
    return len(text) if step > 0 else -1


def _receiver_size(text: str, dot: int) -> int:
    """Items of the list a loop at ``dot`` (the ``.`` before ``all(``...) runs over."""
    i = dot - 1
    while i >= 0 and text[i].isspace():
        i -= 1
    if i < 0 or text[i] != "]":
        return CONTEXT_LIST
    start = _matching(text, i, "]", "[", -1)
    before = text[:start].rstrip()
    if start < 0 or (before and (before[-1].isalnum() or before[-1] in "_)]")):
        return CONTEXT_LIST  # an index (``a[0]``), not a list literal
    body = text[start + 1 : i]
    if not body.strip():
        return 0
    depth, items = 0, 1
    for ch in body:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items += 1
    return items


def compile_expression(expr, what: str, params: dict) -> tuple[object, list[str]]:
    """Compile ``expr`` with the pack's params inlined: ``(program or None, problems)``;
    a condition over the step budget is a problem."""
    if not isinstance(expr, str) or not expr.strip():
        return None, [f"{what} must be a non-empty CEL expression"]
    expr, unknown = inline_params(expr, params)
    problems = [
        f"{what} reads params.{name}, which the pack does not define "
        f"(params: {', '.join(params) or 'none'})"
        for name in unknown
    ]
    steps = estimate_steps(expr)
    if steps > STEP_BUDGET:
        problems.append(
            f"{what} may take {steps:,} steps (nested loops; the budget is "
            f"{STEP_BUDGET:,}, a loop over context data counting "
            f"{CONTEXT_LIST:,} items)"
        )
    try:
        return cel.compile(expr), problems
    except (ValueError, RuntimeError, TypeError) as e:  # syntax errors are ValueError
        message = re.sub(r"\s*expecting \{[^}]*\}", "", str(e)).replace("\n", " ").strip()
        return None, [*problems, f"{what} does not compile: {message}"]


def reference_problems(program, expr: str, terms) -> list[str]:
    """Unknown variables, functions and term lists a compiled expression refers to."""
    problems = []
    bound = set(_MACRO_VAR.findall(expr))
    for var in program.variables():
        if var not in CONTEXT_ROOTS and var not in bound and var not in CEL_FUNCTIONS:
            problems.append(
                f"unknown variable {var!r} (the context has: {', '.join(CONTEXT_ROOTS)})"
            )
    for fn in program.functions():
        if fn[0] in "_@!" or fn in CEL_FUNCTIONS or fn in PACK_FUNCTIONS:
            continue
        problems.append(f"unknown function {fn!r}")
    for args in _TERM_REF.findall(expr):
        m = _LAST_STRING.search(args)
        if not m:
            problems.append("a term-list function needs the list's name as a string literal")
        elif m.group(1) not in terms:
            problems.append(
                f"unknown term list {m.group(1)!r} (the pack defines: {', '.join(terms) or 'none'})"
            )
    return problems


def constant_value(program):
    """The value of a condition that reads no variables and calls no pack function."""
    if program.variables() or any(f in PACK_FUNCTIONS for f in program.functions()):
        return None
    try:
        return program.execute({})
    except Exception:  # noqa: BLE001 - a constant that fails to evaluate is not constant
        return None


def names_read(rules) -> frozenset:
    """Every identifier the rules' compiled conditions and details mention."""
    found: set[str] = set()
    for rule in rules:
        for program in (rule.program, rule.detail_program):
            if program is not None:
                found.update(_NAME.findall(program.source))
    return frozenset(found)


def term_functions(terms: dict[str, TermList]) -> dict:
    """The CEL functions ``matches_terms(text, list)`` and ``terms_found(text, list)``."""

    def term_list(name):
        try:
            return terms[name]
        except KeyError:
            raise ValueError(f"unknown term list {name!r}") from None

    def matches_terms(text, name):
        return term_list(name).matches(text if isinstance(text, str) else None)

    def terms_found(text, name):
        return term_list(name).find(text if isinstance(text, str) else None)

    return {"matches_terms": matches_terms, "terms_found": terms_found, "join": join}


def join(items, separator=", ") -> str:
    """``join(list, ", ")``: the items as strings, joined (for a rule's ``detail``)."""
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"join() takes a list, not {type(items).__name__}")  # noqa: TRY004
    return str(separator).join(str(i) for i in items)


_CHAIN = re.compile(r"(?<![\w.])([A-Za-z_]\w*)((?:\s*\.\s*[A-Za-z_]\w*)*)")
_HAS_OPEN = re.compile(r"\bhas\s*\(\s*$")
_MESSAGE = re.compile(r"\w\s*\{")
_BOUND_ROOT = re.compile(r"[(,]\s*(?:" + "|".join(CONTEXT_ROOTS) + r")\s*,")


def flatten_paths(expr: str, depth, names: dict[tuple, str], prefix: str) -> str | None:
    """Replace field paths such as ``asset.c2pa.state`` by single variables.

    For each path rooted at a context variable, ``depth(root, fields)`` says how many of
    ``fields`` to fold into the variable; the folded path is named in ``names`` (path
    tuple -> variable name, extended with ``prefix`` + a number for new paths). The
    rest of the path stays a CEL selection on that variable, so ``has(...)``, method
    calls and indexing keep their meaning. Returns the new text, or None when the
    expression uses something this rewrite does not handle (comments, message literals,
    a comprehension variable named like a context variable, an unusual selection).
    """
    if any(v in CONTEXT_ROOTS for v in _MACRO_VAR.findall(expr)) or _BOUND_ROOT.search(expr):
        return None  # a name that may be a comprehension variable shadowing the context
    pieces: list[tuple[bool, str]] = []  # (is code, text)
    pos = 0
    for m in _STRING.finditer(expr):
        pieces += [(True, expr[pos : m.start()]), (False, m.group(0))]
        pos = m.end()
    pieces.append((True, expr[pos:]))
    out: list[str] = []
    for is_code, text in pieces:
        if not is_code:
            out.append(text)
            continue
        if "//" in text or _MESSAGE.search(text) or "`" in text:
            return None
        done = 0
        for m in _CHAIN.finditer(text):
            root = m.group(1)
            if root not in CONTEXT_ROOTS:
                continue
            head = text[: m.start()].rstrip()
            if head.endswith("."):
                return None
            written = [f.strip() for f in m.group(2).split(".")[1:]]
            fields = written
            if text[m.end() :].lstrip().startswith("("):
                if not fields:
                    return None
                fields = fields[:-1]  # the last name is a method call, not a field
            if _HAS_OPEN.search(head):
                if not fields:
                    return None
                fields = fields[:-1]  # has() tests its last selection: keep it
            keep = depth(root, tuple(fields))
            var = names.setdefault((root, *fields[:keep]), f"{prefix}{len(names)}")
            out.append(text[done : m.start()] + var + "".join("." + f for f in written[keep:]))
            done = m.end()
        out.append(text[done:])
    return "".join(out)
