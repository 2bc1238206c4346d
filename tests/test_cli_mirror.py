"""The CLI mirrors the library exactly: every command is a thin shell over a library
function of the same name, runs ``--help``, and is documented.

The mapping rule: ``provkit GROUP VERB`` calls ``LIBRARY[GROUP].verb`` and a top-level
``provkit VERB`` calls ``LIBRARY[VERB].verb``, where ``verb`` is the command's name in
snake_case (``detect-train`` -> ``detect_train``) with a trailing ``_`` when the name
is a Python keyword or builtin (``import_``, ``list_``). A group's default subcommand
(``provkit detect FILE...`` runs ``detect files``) calls the function named for the
group. The command's own code must call that function.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import keyword
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from provkit.cli import root

ROOT = Path(__file__).resolve().parent.parent

#: Where each group's (or top-level verb's) library functions live.
LIBRARY = {
    "keys": "provkit.provenance.keys",
    "sign": "provkit.verbs",
    "verify": "provkit.provenance.verify",
    "recover": "provkit.provenance.recover",
    "trust": "provkit.provenance.trust",
    "ledger": "provkit.provenance.ledger",
    "watermark": "provkit.provenance.watermark.files",
    "generate": "provkit.generate",
    "detect": "provkit.detect",
    "scan": "provkit.detect.scan",
    "check": "provkit.answers",
    "dupes": "provkit.detect",
    "bank": "provkit.detect.reference_sets",
    "policy": "provkit.policies.verbs",
    "audit": "provkit.policies.audit",
    "log": "provkit.provenance.core.transparency",
    "serve": "provkit.server.service",
    "tokens": "provkit.server.tokens",
    "report": "provkit.server.desk",
    "config": "provkit.provenance.core.config",
    "comply": "provkit.provenance.comply",
    "label": "provkit.provenance.labelling",
}


def _walk(group: click.Group, path: tuple[str, ...], ctx: click.Context):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"provkit {' '.join(path + (name,))} does not load"
        if isinstance(command, click.Group):
            yield from _walk(command, path + (name,), ctx)
        else:
            yield path + (name,), command, group


def _commands():
    with click.Context(root) as ctx:
        return list(_walk(root, (), ctx))


COMMANDS = _commands()


def library_name(path: tuple[str, ...], group: click.Group) -> str:
    name = path[-1]
    if len(path) > 1 and getattr(group, "default", None) == name:
        name = path[-2]  # the default subcommand is the group's own verb
    name = name.replace("-", "_")
    if keyword.iskeyword(name) or hasattr(builtins, name):
        name += "_"
    return name


def _docs() -> str:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(texts + [(ROOT / "README.md").read_text(encoding="utf-8")])


def _id(item) -> str:
    return " ".join(item[0])


def test_the_tree_has_every_command():
    names = {" ".join(p) for p, _, _ in COMMANDS}
    assert {
        "keys import",
        "verify",
        "detect files",
        "detect train",
        "bank list",
        "dupes",
        "policy check",
        "audit export",
        "watermark decode",
        "generate",
    } <= names
    assert set(LIBRARY) == set(root.list_commands(click.Context(root)))


@pytest.mark.parametrize("item", COMMANDS, ids=_id)
def test_every_command_has_help(item):
    path, _, _ = item
    result = CliRunner().invoke(root, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("item", COMMANDS, ids=_id)
def test_every_command_calls_a_library_function_of_its_name(item):
    path, command, group = item
    name = library_name(path, group)
    module = importlib.import_module(LIBRARY[path[0]])
    fn = getattr(module, name, None)
    assert fn is not None and callable(fn) and not inspect.ismodule(fn), (
        f"provkit {' '.join(path)}: no {module.__name__}.{name}()"
    )
    body = inspect.getsource(inspect.unwrap(command.callback))
    body = body[body.index(":\n") + 2 :]  # past the def line
    assert re.search(rf"\b{re.escape(name)}_?\(", body), (
        f"provkit {' '.join(path)} does not call {module.__name__}.{name}()"
    )


@pytest.mark.parametrize("item", COMMANDS, ids=_id)
def test_every_command_is_in_the_docs(item):
    path, _, group = item
    shown = path[:-1] if len(path) > 1 and getattr(group, "default", None) == path[-1] else path
    assert f"provkit {' '.join(shown)}" in _docs(), f"provkit {' '.join(shown)} is not documented"


#: One spelling per meaning, on every command that has it.
OPTIONS = {
    "out": ("-o", "--out"),
    "force": ("--force",),
    "as_json": ("--json",),
    "db_path": ("--db",),
    "trust": ("--trust",),
}
FORBIDDEN = {"--output", "--overwrite", "--trust-anchors"}


@pytest.mark.parametrize("item", COMMANDS, ids=_id)
def test_option_names_agree_across_commands(item):
    path, command, _ = item
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        assert not FORBIDDEN & set(param.opts), f"provkit {' '.join(path)}: {param.opts}"
        if param.name in OPTIONS:
            assert tuple(param.opts) == OPTIONS[param.name], (
                f"provkit {' '.join(path)}: {param.name} is spelt {param.opts}"
            )
