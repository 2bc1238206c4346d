"""The root ``provkit`` command.

Subcommands are known by import path and imported only when they run (click's
lazy-group pattern), so ``provkit --help`` and ``provkit verify`` never pay for
torch. Each package owns its commands; this module only routes to them and turns
:class:`ProvkitError` into one line on stderr and an exit code.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

import click

from provkit.provenance.core.errors import ProvkitError

#: command name -> "module:attribute"; modules are imported only when the command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "keys": (
        "provkit.commands.provenance",
        "Manage the signing identity (development CA or your own chain).",
    ),
    "sign": ("provkit.commands.provenance", "Watermark and sign an image with a C2PA manifest."),
    "verify": ("provkit.commands.verify", "Validate C2PA credentials (and recover stripped ones)."),
    "trust": (
        "provkit.commands.trust",
        "List, show, add and remove trust sources (C2PA Trust List built in).",
    ),
    "recover": (
        "provkit.commands.provenance",
        "Re-attach a recovered manifest to a stripped image.",
    ),
    "ledger": ("provkit.commands.provenance", "List and show the assets this workspace issued."),
    "watermark": ("provkit.commands.watermark", "Embed and decode the invisible watermark."),
    "generate": (
        "provkit.commands.generate",
        "Generate images that leave sealed: watermarked, signed, recorded.",
    ),
    "detect": (
        "provkit.commands.detect",
        "Collect evidence and give a verdict: is this image AI-made?",
    ),
    "dupes": ("provkit.commands.index", "Find near-duplicates of an image in the banks."),
    "bank": (
        "provkit.commands.index",
        "Manage banks: reference images and partner hash lists to match against.",
    ),
    "index": ("provkit.commands.index", "Old name of `provkit bank` (kept one release)."),
    "scan": (
        "provkit.commands.detect",
        "Scan a folder or list of images in parallel into JSONL, CSV or SQLite.",
    ),
    "check": (
        "provkit.commands.detect",
        "One answer per image: credentials, verdict, seen before, decision.",
    ),
    "config": (
        "provkit.commands.provenance",
        "Show the workspace settings (provkit.toml) and where each came from.",
    ),
    "policy": ("provkit.commands.policies", "Check, lint and test usage policies."),
    "audit": (
        "provkit.commands.policies",
        "Read, verify and export the tamper-evident decision log.",
    ),
    "log": (
        "provkit.commands.log",
        "Checkpoints and proofs of the Merkle logs of issued assets and decisions.",
    ),
    "serve": ("provkit.commands.serve", "Serve the desk page and the HTTP API."),
    "tokens": ("provkit.commands.tokens", "Create, list and revoke API tokens for serve."),
    "report": ("provkit.commands.serve", "Write a self-contained HTML report of images."),
    "comply": (
        "provkit.commands.comply",
        "Check files against one law's AI-disclosure requirements (eu, us-ca, cn).",
    ),
    "label": (
        "provkit.commands.comply",
        "Add a platform's propagator fields to a GB 45438 implicit label.",
    ),
}


#: Old command names, kept working one release but not listed (see CHANGELOG.md).
HIDDEN = frozenset({"index"})


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx):
        return sorted((set(super().list_commands(ctx)) | set(self.lazy)) - HIDDEN)

    def get_command(self, ctx, name):
        if name in self.commands:
            return self.commands[name]
        if name not in self.lazy:
            return None
        module_name, _ = self.lazy[name]
        module = importlib.import_module(module_name)
        command = getattr(module, name.replace("-", "_"))
        self.commands[name] = command
        return command

    def format_commands(self, ctx, formatter):
        # Help from the table above, so `provkit --help` imports no subcommand module.
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy) if name not in HIDDEN]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        if not os.environ.get("PROVKIT_DEBUG"):
            # Library warnings (Pillow's "Corrupt EXIF data", "Tag data larger than
            # file", ...) would add lines to stderr: an error is one line, and a file's
            # problems surface as provkit's own errors or report fields instead.
            warnings.simplefilter("ignore")
        try:
            return super().invoke(ctx)
        except ProvkitError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as e:  # a bug: one line unless debugging
            if os.environ.get("PROVKIT_DEBUG"):
                raise
            click.echo(
                f"error: unexpected {type(e).__name__}: {e} (set PROVKIT_DEBUG=1 for details)",
                err=True,
            )
            ctx.exit(2)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=None, package_name="provkit", prog_name="provkit")
def root():
    """provkit: provenance for images: sign, watermark, verify, detect, and enforce policy."""


def main(argv=None) -> None:
    root.main(args=argv, prog_name="provkit")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
