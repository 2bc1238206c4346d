"""YAML with line numbers: every mapping remembers where it and each of its keys stand.

PyYAML's node marks carry the positions; this loader keeps them on the loaded
mappings, and records duplicate keys (which plain PyYAML silently overwrites), so pack
validation can point at the line of a problem.
"""

from __future__ import annotations

import yaml


class LineDict(dict):
    """A mapping that knows its own line and the line of each of its keys (1-based)."""

    line: int | None = None
    key_lines: dict


class _Loader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []


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

    On a syntax error the document is None.
    """
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
