"""Click options and output helpers shared by every provkit command.

Each package's CLI uses these so ``--db`` and ``--json`` mean the same thing
everywhere, and human and JSON output are produced from the same data.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import date, datetime
from pathlib import Path
from typing import Self

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


def out_option(
    help: str,
    *,
    required: bool = True,
    file_okay: bool = True,
    dir_okay: bool = False,
    dest: str = "out",
):
    """``-o/--out``: where a command writes (the same spelling on every command)."""
    # No explicit default when required: click 8.2+ counts an explicit None as given.
    extra = {} if required else {"default": None}
    return click.option(
        "-o",
        "--out",
        dest,
        required=required,
        type=click.Path(file_okay=file_okay, dir_okay=dir_okay, path_type=Path),
        help=help,
        **extra,
    )


dev_identity_option = click.option(
    "--dev-identity",
    is_flag=True,
    help="If the workspace has no signing identity, create a development one now "
    "(otherwise signing stops and names `provkit keys init`).",
)


def training_option(default: bool | None, what: str):
    """``--allow-training/--no-training``: the one spelling of the training statement on
    every command that signs (``sign``, ``generate``); ``--no-train`` is the old spelling,
    kept hidden for one release."""
    said = {None: "no statement", True: "allowed", False: "notAllowed"}[default]

    def decorate(f):
        f = click.option("--no-train", "no_train_old", is_flag=True, hidden=True)(f)
        return click.option(
            "--allow-training/--no-training",
            "allow_training",
            default=default,
            help=f"State in the manifest whether {what} may be used for AI training and data "
            f"mining (cawg.training-mining; default: {said}).",
        )(f)

    return decorate


force_option = click.option(
    "--force", is_flag=True, help="Replace the output if it exists (never done silently)."
)

trust_option = click.option(
    "--trust",
    "trust",
    multiple=True,
    metavar="SOURCE",
    callback=lambda _ctx, _param, value: list(value) or None,
    help="Trust source: c2pa (the bundled C2PA Trust List), local (this workspace's CA), an "
    "added trust file's name (`provkit trust add`), or a PEM file; repeatable. Default: "
    "c2pa, local and every added trust file ([trust] sources in provkit.toml, where set).",
)


# -- progress ------------------------------------------------------------------------------

#: A bar is shown from this many items on (one file needs none).
PROGRESS_FROM = 2


class Progress:
    """The one progress bar of every long command, with one rule: on stderr (stdout stays
    for results and JSON), only from :data:`PROGRESS_FROM` items on, with the position,
    an ETA and the rate. ``$PROVKIT_NO_PROGRESS`` turns it off.

    ``total`` may be given late with :meth:`start` (scan knows it only after resuming);
    :meth:`update` is the ``progress(n)`` callback library verbs take; :meth:`iter`
    wraps an iterable."""

    def __init__(self, label: str, total: int | None = None):
        self.label, self.total, self._bar = label, None, None
        self._done, self._t0 = 0, time.perf_counter()
        if total is not None:
            self.start(total)

    def start(self, total: int) -> None:
        """The number of items; the bar itself appears with the first finished one (a
        batch refused before any work prints only its error)."""
        self.total, self._t0 = total, time.perf_counter()

    def _open(self) -> None:
        if (
            self.total is None
            or self.total < PROGRESS_FROM
            or os.environ.get("PROVKIT_NO_PROGRESS")
        ):
            return
        self._bar = click.progressbar(
            length=self.total,
            label=self.label,
            show_pos=True,
            show_eta=True,
            file=click.get_text_stream("stderr"),
            item_show_func=lambda _: self._rate(),
        )
        self._bar.__enter__()

    def _rate(self) -> str:
        elapsed = time.perf_counter() - self._t0
        return f"{self._done / elapsed:.1f}/s" if elapsed > 0 and self._done else ""

    def update(self, n: int = 1) -> None:
        if self._bar is None and self._done == 0:
            self._open()
        self._done += n
        if self._bar is not None:
            self._bar.update(n)

    def iter(self, items):
        for item in items:
            yield item
            self.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(label: str, total: int | None = None) -> Progress:
    """``with progress("detecting", len(files)) as bar: detect(files, progress=bar.update)``."""
    return Progress(label, total)


class OldSpelling(click.Option):
    """An option whose first spelling is shown in ``--help``; the later ones (an old
    name, kept one release: ``--index`` for ``--bank``) still work but are not shown."""

    def get_help_record(self, ctx):
        opts, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = opts


def bank_option(
    dest: str = "sets",
    help: str = "Search only this bank (repeatable; default: every bank switched on for matching).",
):
    """``--bank NAME`` (repeatable), with the old ``--index`` kept hidden one release."""
    return click.option(
        "--bank", "--index", dest, multiple=True, metavar="NAME", cls=OldSpelling, help=help
    )


def disclosure_options(fn):
    """``--disclose``, ``--provider``, ``--system``, ``--system-version``, ``--cn-producer``
    and ``--visible-label`` (generate and sign): the disclosure profile, over
    ``[disclosure]`` in provkit.toml (docs/compliance.md)."""
    opts = [
        click.option(
            "--disclose",
            metavar="REGIMES",
            default=None,
            help="Write what these laws ask: eu, us-ca, cn, comma-separated "
            "(default: [disclosure] regimes in provkit.toml, else none).",
        ),
        click.option("--provider", default=None, help="SB 942: the provider's name."),
        click.option(
            "--system",
            "system_name",
            default=None,
            help="SB 942: the generative system's name (generate: the backend).",
        ),
        click.option("--system-version", default=None, help="SB 942: the system's version."),
        click.option(
            "--cn-producer",
            default=None,
            help="GB 45438: the ContentProducer code of the implicit label.",
        ),
        click.option(
            "--visible-label",
            is_flag=True,
            help="Draw the explicit labels into the pixels before sealing "
            "(cn: 'AI生成', text 6% of the shorter side; eu: a corner label).",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn
