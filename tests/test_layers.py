"""The package layers, read from the source: no import cycle, no import against the order.

The order (docs/architecture.md), lowest first:

    provenance.core  <-  provenance  <-  detect  <-  generate
    provenance.core  <-  policies

A module may import its own layer and the layers below it; ``policies`` imports only
``provenance.core``, and only ``generate`` (and the composition modules) import
``policies``. Composition modules build the CLI and the HTTP service from every
package and may import anything: ``provenance/cli.py``, every ``commands.py`` /
``*_commands.py``, every ``routes.py`` and the ``server`` package. Nothing imports a
composition module except another one.

Only top-level imports count for the order and the cycles (an import inside a function
hides a dependency, so those are counted too and must each load a module that pulls a
heavy third-party library).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("provenance", "detect", "generate", "policies")
RANK = {"core": 0, "provenance": 1, "detect": 2, "generate": 3}

#: provkit modules that may be imported inside a function, and why: only one that pulls
#: a heavy third-party library (torch, open_clip, diffusers, c2pa, sklearn, scipy, numba)
#: the moment it is imported. Those libraries are otherwise imported inside the functions
#: that use them, so every other provkit import sits at the top of its module.
LAZY_OK: dict[str, str] = {
    "detect.hamming_kernel": "numba's compiled search: loaded only by "
                             "detect.hamming.use_compiled (provkit serve), never by a CLI verb",
}
MAX_LAZY = 30


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The provkit module ``name`` refers to (a module, or the package holding a name)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, module: str, *, top: bool):
    """(lineno, target module) of the provkit imports at module level (``top``) or inside
    functions (not ``top``). ``if TYPE_CHECKING:`` blocks are not imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def targets(node):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in MODULES else base

    def walk(nodes, inside: bool):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)) and inside != top:
                for name in targets(node):
                    if name.split(".")[0] in PACKAGES:
                        target = _resolve(name)
                        if target and target != module:
                            yield node.lineno, target
            inner = inside or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                ast.Lambda))
            yield from walk(ast.iter_child_nodes(node), inner)

    yield from walk(tree.body, False)


def layer(module: str) -> str:
    parts = module.split(".")
    last = parts[-1]
    if (module == "provenance.cli" or last == "commands" or last.endswith("_commands")
            or last == "routes" or "server" in parts):
        return "composition"
    if parts[:2] == ["provenance", "core"]:
        return "core"
    return parts[0]


def allowed(source: str, target: str) -> bool:
    a, b = layer(source), layer(target)
    if a == "composition":
        return True
    if b == "composition":
        return False
    if a == "policies":
        return b in ("policies", "core")
    if b == "policies":
        return a == "generate"
    return RANK[b] <= RANK[a]


GRAPH = {m: sorted({t for _, t in _imports(p, m, top=True)}) for m, p in MODULES.items()}


def test_the_walk_sees_the_packages():
    assert {"provenance.core.errors", "detect.evidence", "detect.evidence.c2pa",
            "policies.engine", "generate.seal", "provenance.watermark.files"} <= set(MODULES)
    assert "provenance.core.errors" in GRAPH["detect.verdict"]


def test_the_rule_itself():
    assert allowed("detect.verdict", "provenance.verify")
    assert not allowed("provenance.verify", "detect.verdict")
    assert not allowed("policies.check", "detect.verdict")
    assert not allowed("provenance.core.weights", "provenance.fingerprint")
    assert allowed("generate.checks", "policies.engine")
    assert allowed("provenance.cli", "detect.commands")
    assert not allowed("detect.verdict", "detect.commands")


def test_no_import_goes_against_the_layer_order():
    bad = [f"{m} ({layer(m)}) imports {t} ({layer(t)})"
           for m, targets in GRAPH.items() for t in targets if not allowed(m, t)]
    assert bad == []


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_provkit_modules():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_imports_inside_functions_are_few_and_each_loads_a_heavy_library():
    lazy = [(m, line, t) for m, p in MODULES.items() for line, t in _imports(p, m, top=False)]
    assert len(lazy) < MAX_LAZY
    unjustified = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {t}" for m, line, t in lazy
                   if t not in LAZY_OK]
    assert unjustified == []
    assert set(LAZY_OK) <= set(MODULES)


def test_a_module_over_400_lines_says_why_at_its_top():
    long = [m for m, p in MODULES.items()
            if len(p.read_text(encoding="utf-8").splitlines()) > 400]
    unexplained = [m for m in long
                   if "Why one module" not in (ast.get_docstring(ast.parse(
                       MODULES[m].read_text(encoding="utf-8"))) or "")]
    assert unexplained == []
