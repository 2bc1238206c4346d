"""YAML with line numbers: every mapping remembers where it and each of its keys stand.

PyYAML's node marks carry the positions; this loader keeps them on the loaded
mappings, and records duplicate keys (which plain PyYAML silently overwrites), so pack
validation can point at the line of a problem.

Bounded: aliases (``*name``) are refused, so a few hundred bytes cannot expand into
billions of nodes once a pack's params are inlined (the "billion laughs"), and a file
is at most :data:`MAX_YAML_BYTES` and nests at most :data:`MAX_DEPTH` deep. Every YAML
file provkit reads (packs, test cases) goes through :func:`parse` or :func:`load`.
"""

from __future__ import annotations

import yaml


class LineDict(dict):
    """A mapping that knows its own line and the line of each of its keys (1-based)."""

    line: int | None = None
    key_lines: dict


#: Largest YAML file read, and the deepest nesting of collections accepted.
MAX_YAML_BYTES = 4 << 20
MAX_DEPTH = 64


class _Loader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed in policy files; write the value out",
                event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _Loader, node, deep=False):
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            key = str(key)
        if key in mapping:
            loader.duplicates.append((line, key))
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = line
    return mapping


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def parse(text: str) -> tuple[object, list[tuple[int | None, str]]]:
    """The YAML document (mappings as :class:`LineDict`) and its problems as (line, message).

    On a syntax error (or an alias, or a file over the bounds) the document is None.
    """
    if len(text) > MAX_YAML_BYTES:
        return None, [(None, f"invalid YAML: larger than {MAX_YAML_BYTES >> 20} MB")]
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        return None, [(mark.line + 1 if mark else None, f"invalid YAML: {problem}")]
    finally:
        loader.dispose()
    return data, [(line, f"duplicate key {key!r}") for line, key in loader.duplicates]


def load(text: str):
    """The YAML document with plain dicts' line info, raising ``yaml.YAMLError`` on a
    syntax error, an alias, or a file over the bounds (for callers that report it)."""
    data, problems = parse(text)
    if data is None and problems:
        raise yaml.YAMLError(
            problems[0][1].removeprefix("invalid YAML: ")
            + (f" (line {problems[0][0]})" if problems[0][0] else "")
        )
    return data
