"""``provkit tokens create|list|revoke``: a thin shell over :mod:`provenance.core.tokens`."""

from __future__ import annotations

import click

from provkit.options import db_option, emit, json_option
from provkit.server import tokens as tokens_lib


@click.group()
def tokens():
    """Create, list and revoke API tokens for `provkit serve`."""


@tokens.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([*tokens_lib.SCOPES, *tokens_lib.OLD_SCOPES]),
    help="What the token may do (repeatable): "
    + "; ".join(f"{k}: {v}" for k, v in tokens_lib.SCOPES.items()),
)
@click.option(
    "--expires",
    default=None,
    metavar="AGE|DATE",
    help="Expiry: an age (30d, 12h, 2w) or an ISO date (default: never).",
)
@db_option
@json_option
def tokens_create(name, scopes, expires, db_path, as_json):
    """Create token NAME; the token is printed once and only its hash is kept."""
    created = tokens_lib.create(name, scopes, expires=expires, db=db_path)
    emit(
        created,
        as_json,
        lambda c: (
            f"{c.secret}\n(token {c.token.name}: scopes {', '.join(c.token.scopes)}, "
            f"expires {c.token.expires or 'never'}; shown once, store it now)"
        ),
    )


@tokens.command("list")
@db_option
@json_option
def tokens_list(db_path, as_json):
    """Tokens with their scopes, expiry and state (never their secrets)."""
    rows = tokens_lib.list_(db_path)

    def human(items):
        if not items:
            return "no tokens (create one with `provkit tokens create NAME --scope read`)"
        return "\n".join(
            f"{t.name}\t{','.join(t.scopes)}\tcreated {t.created}\texpires "
            f"{t.expires or 'never'}\t"
            + ("revoked " + t.revoked if t.revoked else "active" if t.active else "expired")
            for t in items
        )

    emit(rows, as_json, human)


@tokens.command("revoke")
@click.argument("name")
@db_option
@json_option
def tokens_revoke(name, db_path, as_json):
    """Revoke token NAME: it stops working at once."""
    token = tokens_lib.revoke(name, db_path)
    emit(token, as_json, lambda t: f"revoked token {t.name}")


__all__ = ["tokens"]
