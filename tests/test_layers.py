"""The package layers, read from the source: no import cycle, no import against the order.

The order (docs/architecture.md), lowest first:

    provkit.provenance.core  <-  provkit.provenance  <-  provkit.detect  <-  provkit.generate
    provkit.provenance.core  <-  provkit.policies
    everything               <-  the app (provkit/: the CLI, the commands, the routes, the
                                 server, check, the everyday verbs)

A library module may import its own layer and the layers below it; ``policies`` imports
only ``provenance.core``, and only ``generate`` (and the app) import ``policies``. Nothing
imports the app. Imports by name count as imports (``importlib.import_module("x")``,
``__import__("x")`` with a literal name), and the bare library names of the repository's
folders (``import detect``) are never imported: installed, they are ``provkit.detect``.

Only top-level imports count for the order and the cycles (an import inside a function
hides a dependency, so those are counted too and must each load a module that pulls a
heavy third-party library).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: repository folder -> the package it installs as (pyproject.toml's package-dir)
FOLDERS = {
    "provkit": "provkit",
    "provenance": "provkit.provenance",
    "detect": "provkit.detect",
    "generate": "provkit.generate",
    "policies": "provkit.policies",
}
LIBRARIES = ("provenance", "detect", "generate", "policies")
RANK = {"core": 0, "provenance": 1, "detect": 2, "generate": 3}

#: provkit modules that may be imported inside a function, and why: only one that pulls
#: a heavy third-party library (torch, open_clip, diffusers, c2pa, sklearn, scipy, numba)
#: the moment it is imported. Those libraries are otherwise imported inside the functions
#: that use them, so every other provkit import sits at the top of its module.
LAZY_OK: dict[str, str] = {
    "provkit.provenance.crjson": "provkit verify loads it only with --format crjson "
                                 "(bench/cli.py: verify as a light process)",
    "provkit.provenance.core.proofs": "provkit verify loads it only with --receipt",
    "provkit.provenance.recovery": "numpy, scipy, the watermark decoders and the ledger: "
    "verify loads them only for a file without credentials",
    "provkit.provenance.fingerprint": "numpy and pdqhash: verify loads them only to compare a "
    "picture with its signed thumbnail",
    "provkit.detect.hamming_kernel": "numba's compiled search: loaded only by "
    "detect.hamming.use_compiled (provkit serve), never by a "
    "CLI verb",
    "provkit.provenance.watermark.sdxl_kernel": "numba's compiled SDXL mark reader: loaded "
    "on the first read, only where numba is "
    "installed (numpy otherwise)",
}
MAX_LAZY = 30


def _modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root / folder).with_suffix("")
            parts = [*package.split("."), *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str, modules=MODULES) -> str | None:
    """The provkit module ``name`` refers to (a module, or the package holding a name)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _by_name(node) -> str | None:
    """The literal module name of ``importlib.import_module("x")`` / ``__import__("x")``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    called = (
        func.attr
        if isinstance(func, ast.Attribute)
        else func.id
        if isinstance(func, ast.Name)
        else None
    )
    arg = node.args[0]
    if (
        called in ("import_module", "__import__")
        and isinstance(arg, ast.Constant)
        and isinstance(arg.value, str)
    ):
        return arg.value
    return None


def _imports(path: Path, module: str, *, top: bool, modules=MODULES):
    """(lineno, target) of the provkit imports at module level (``top``) or inside
    functions (not ``top``). ``if TYPE_CHECKING:`` blocks are not imports. A bare library
    name (``detect.verdict``) is yielded as it is written, so the rule can refuse it."""
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
                yield full if full in modules else base
        else:
            name = _by_name(node)
            if name:
                yield name

    def walk(nodes, inside: bool):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.Call)) and inside != top:
                for name in targets(node):
                    head = name.split(".")[0]
                    if head in LIBRARIES:
                        yield node.lineno, name  # a bare library name: always refused
                    elif head == "provkit":
                        target = _resolve(name, modules)
                        if target and target != module:
                            yield node.lineno, target
            inner = inside or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(ast.iter_child_nodes(node), inner)

    yield from walk(tree.body, False)


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "provkit":
        return "outside"  # a bare library name
    if len(parts) == 1 or parts[1] not in LIBRARIES:
        return "app"
    if parts[1:3] == ["provenance", "core"]:
        return "core"
    return parts[1]


def allowed(source: str, target: str) -> bool:
    a, b = layer(source), layer(target)
    if b == "outside":
        return False
    if a == "app":
        return True
    if b == "app":
        return False
    if a == "policies":
        return b in ("policies", "core")
    if b == "policies":
        return a == "generate"
    return RANK[b] <= RANK[a]


def graph(modules=MODULES) -> dict[str, list[str]]:
    return {
        m: sorted({t for _, t in _imports(p, m, top=True, modules=modules)})
        for m, p in modules.items()
    }


def violations(modules=MODULES) -> list[str]:
    return [
        f"{m} ({layer(m)}) imports {t} ({layer(t)})"
        for m, targets in graph(modules).items()
        for t in targets
        if not allowed(m, t)
    ]


GRAPH = graph()


def test_the_walk_sees_the_packages():
    assert {
        "provkit.provenance.core.errors",
        "provkit.detect.evidence",
        "provkit.detect.evidence.c2pa",
        "provkit.policies.engine",
        "provkit.generate.seal",
        "provkit.provenance.watermark.files",
        "provkit.cli",
        "provkit.server.app",
        "provkit.answers",
    } <= set(MODULES)
    assert "provkit.provenance.core.errors" in GRAPH["provkit.detect.verdict"]


def test_the_rule_itself():
    assert allowed("provkit.detect.verdict", "provkit.provenance.verify")
    assert not allowed("provkit.provenance.verify", "provkit.detect.verdict")
    assert not allowed("provkit.policies.check", "provkit.detect.verdict")
    assert not allowed("provkit.provenance.core.weights", "provkit.provenance.fingerprint")
    assert allowed("provkit.generate.checks", "provkit.policies.engine")
    assert allowed("provkit.cli", "provkit.commands.detect")
    assert not allowed("provkit.detect.verdict", "provkit.commands.detect")
    assert not allowed("provkit.provenance.ledger", "provkit.server.app")
    assert not allowed("provkit.detect.scan", "policies")


def test_no_import_goes_against_the_layer_order():
    assert violations() == []


def _planted(tmp_path: Path, rel: str, source: str) -> dict[str, Path]:
    """The repository's modules with one file replaced by ``source``."""
    modules = dict(MODULES)
    name = next(m for m, p in MODULES.items() if p == ROOT / rel)
    planted = tmp_path / Path(rel).name
    planted.write_text((ROOT / rel).read_text(encoding="utf-8") + "\n" + source, encoding="utf-8")
    modules[name] = planted
    return modules


def test_a_planted_upward_import_is_caught(tmp_path):
    modules = _planted(tmp_path, "provenance/ledger.py", "from provkit.detect import verdict\n")
    assert violations(modules) == [
        "provkit.provenance.ledger (provenance) imports provkit.detect.verdict (detect)"
    ]


def test_a_planted_import_of_the_app_is_caught(tmp_path):
    modules = _planted(tmp_path, "detect/verdict.py", "from provkit.server import app\n")
    assert violations(modules) == [
        "provkit.detect.verdict (detect) imports provkit.server.app (app)"
    ]


def test_a_planted_import_by_name_is_caught(tmp_path):
    modules = _planted(
        tmp_path,
        "detect/scan.py",
        "import importlib\npolicies = importlib.import_module('policies')\n"
        "engine = __import__('provkit.policies.engine')\n",
    )
    assert sorted(violations(modules)) == [
        "provkit.detect.scan (detect) imports policies (outside)",
        "provkit.detect.scan (detect) imports provkit.policies.engine (policies)",
    ]


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
    lazy = [
        (m, line, t)
        for m, p in MODULES.items()
        for line, t in _imports(p, m, top=False)
        if t.startswith("provkit")
    ]
    assert len(lazy) < MAX_LAZY
    unjustified = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {t}"
        for m, line, t in lazy
        if t not in LAZY_OK
    ]
    assert unjustified == []
    assert set(LAZY_OK) <= set(MODULES)


def test_a_module_over_400_lines_says_why_at_its_top():
    long = [m for m, p in MODULES.items() if len(p.read_text(encoding="utf-8").splitlines()) > 400]
    unexplained = [
        m
        for m in long
        if "Why one module"
        not in (ast.get_docstring(ast.parse(MODULES[m].read_text(encoding="utf-8"))) or "")
    ]
    assert unexplained == []
