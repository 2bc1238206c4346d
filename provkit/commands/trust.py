"""``provkit trust``: list, show, add and remove trust sources; each a thin shell over
the function of the same name in :mod:`provenance.trust`."""

from __future__ import annotations

from pathlib import Path

import click

from provkit.options import emit, force_option, json_option
from provkit.provenance import trust as trust_lib

_file = click.Path(path_type=Path, dir_okay=False)


# --------------------------------------------------------------------------- trust


@click.group()
def trust():
    """List, show, add and remove trust sources (the C2PA Trust List is built in)."""


def _source_line(d: dict) -> str:
    extra = f"  {d['note']}" if d.get("note") else ""
    return (
        f"{d['name']:<12} {d['kind']:<6} {d.get('certificates', 0):>3} cert(s)  {d['label']}{extra}"
    )


@trust.command("list")
@json_option
def trust_list(as_json):
    """Every trust source: built in (c2pa, c2pa-tsa, local) and added."""
    emit(trust_lib.list_(), as_json, lambda rows: "\n".join(_source_line(d) for d in rows))


@trust.command("show")
@click.argument("name")
@json_option
def trust_show(name, as_json):
    """One trust source and the subjects of its certificates."""
    emit(
        trust_lib.show(name),
        as_json,
        lambda d: (
            _source_line(d)
            + "\n"
            + "\n".join(
                f"  {c['subject']}  (until {c['not_after']})" for c in d["certificate_subjects"]
            )
        ),
    )


@trust.command("add")
@click.argument("file", type=_file)
@click.option("--name", default=None, help="Name of the source (default: the file's stem).")
@force_option
@json_option
def trust_add(file, name, force, as_json):
    """Keep a copy of a PEM file of CA certificates as a trust source (used by default)."""
    emit(
        trust_lib.add(file, name=name, force=force),
        as_json,
        lambda d: f"added trust source {d['name']} ({d['certificates']} certificate(s))",
    )


@trust.command("remove")
@click.argument("name")
@json_option
def trust_remove(name, as_json):
    """Forget an added trust source."""
    emit(trust_lib.remove(name), as_json, lambda d: f"removed trust source {d['name']}")
