"""Click options and output helpers shared by every provkit command.

Each package's CLI uses these so ``--db`` and ``--json`` mean the same thing
everywhere, and human and JSON output are produced from the same data.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path

import click

db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="PROVKIT_DB",
    help="SQLite database to use (default: $PROVKIT_HOME/provkit.db).",
)

#: ``--db`` for commands that only read the workspace: a path given must exist (a typo
#: must not pass as an empty ledger or index).
read_db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    envvar="PROVKIT_DB",
    help="SQLite database to read (default: $PROVKIT_HOME/provkit.db).",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _default(o):
    if hasattr(o, "to_json"):
        return o.to_json()
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    try:  # numpy scalars and arrays
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"cannot serialise {type(o).__name__}")


def _plain(o):
    """``o`` as JSON-ready values in one walk: to_json and friends applied, NaN and
    infinities as None."""
    if isinstance(o, str) or o is None or isinstance(o, (bool, int)):
        return o
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    return _plain(_default(o))


def dumps(data, *, indent: int | None = 2) -> str:
    """JSON text for provkit values (dataclasses with to_json, datetimes, paths, numpy);
    NaN and infinities become null."""
    return json.dumps(_plain(data), indent=indent)


def emit(data, as_json: bool, human=None) -> None:
    """Print ``data`` as JSON, or through ``human(data) -> str`` for people."""
    if as_json or human is None:
        click.echo(dumps(data))
    else:
        text = human(data)
        if text:
            click.echo(text)


def _trust_sources(ctx, param, value):
    return list(value) if value else None


#: ``--trust SOURCE`` (repeatable), the same on every command that judges credentials:
#: ``local`` (the workspace's own CA), ``c2pa`` (the C2PA Trust List) or a PEM file.
trust_option = click.option(
    "--trust", "trust", multiple=True, metavar="SOURCE", callback=_trust_sources,
    help="Trust source: local (this workspace's CA), c2pa (the C2PA Trust List) or a PEM "
         "file (repeatable; default: [trust] sources in provkit.toml, else local).")
