"""The workspace configuration: ``$PROVKIT_HOME/provkit.toml``, read with tomllib.

A desk sets its defaults once instead of passing them to every command::

    [trust]
    sources = ["local", "c2pa"]      # the trust sources verify, detect, check and policy use

    [policy]                         # the pack decided at each point when none is named
    publish = "newsroom"
    ingest = "platform"
    train = "studio"

    [check]
    point = "publish"                # the point `provkit check` decides at

    [sign]
    tsa = "http://timestamp.example"  # the time-stamping authority `provkit sign` asks

    [thresholds]
    classifier = 0.8                 # classifier probability that counts as AI

    [storage]
    backend = "sqlite"               # the store behind the ledger, audit log, tokens, banks

    [disclosure]                     # what generate and sign write (docs/compliance.md)
    regimes = ["eu", "us-ca", "cn"]
    provider = "Example Studio Ltd"  # SB 942: the provider's name
    system = "provkit-builtin"       # SB 942: the generative system's name ...
    system_version = "1.0"           # ... and version
    cn_producer = "001..."           # GB 45438: the ContentProducer code

A value given on the command line wins over the file, and the file over the built-in
default. :func:`load` returns every setting with where it came from
(``provkit config show``). An unreadable or malformed file, an unknown section or key,
or a value of the wrong type is a :class:`ConfigError` naming the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from provkit.provenance.core.errors import ConfigError
from provkit.provenance.core.workspace import home

FILE_NAME = "provkit.toml"
#: the storage backends this build has (provenance/core/stores.py)
STORAGE_BACKENDS = ("sqlite",)
POINTS = ("generate.request", "generate.output", "verify", "publish", "ingest", "train")

#: section -> key -> (built-in default, check, what it is)
SETTINGS: dict[str, dict[str, tuple]] = {
    "trust": {
        "sources": (
            None,
            "sources",
            "trust sources: local, c2pa or PEM paths (default: the workspace's own CA)",
        )
    },
    "policy": {
        point: (None, "str", f"the pack decided at {point} when none is named") for point in POINTS
    },
    "check": {
        "point": ("publish", "point", "the decision point `provkit check` uses"),
        "pack": (
            None,
            "str",
            ("the pack `provkit check` uses (default: [policy] for its point, else newsroom)"),
        ),
    },
    "sign": {
        "tsa": (
            None,
            "url",
            (
                "the RFC 3161 time-stamping authority `provkit sign` asks to "
                "time-stamp each signature (default: none)"
            ),
        )
    },
    "thresholds": {
        "classifier": (0.8, "probability", "classifier probability at or above which it reports AI")
    },
    "storage": {
        "backend": (
            "sqlite",
            "backend",
            (
                "where the workspace's state lives: the ledger, the audit "
                "log, tokens and bank metadata (sqlite; see "
                "provenance/core/stores.py)"
            ),
        )
    },
    "disclosure": {
        "regimes": (
            None,
            "regimes",
            ("the disclosure regimes generate and sign meet: eu, us-ca, cn (default: none)"),
        ),
        "provider": (None, "str", "the provider's name in the SB 942 latent disclosure"),
        "system": (None, "str", "the generative system's name in the SB 942 disclosure"),
        "system_version": (None, "str", "the generative system's version (SB 942)"),
        "cn_producer": (None, "str", "the ContentProducer code of the GB 45438 implicit label"),
    },
}

#: the regimes a [disclosure] table may name (provenance/disclosure.py applies them)
DISCLOSURE_REGIMES = ("eu", "us-ca", "cn")


@dataclass(frozen=True)
class Config:
    """The effective settings and, for each ``section.key``, where its value came from."""

    values: dict = field(default_factory=dict)  # "section.key" -> value
    origins: dict = field(default_factory=dict)  # "section.key" -> "default" | file path
    path: str = ""

    def get(self, key: str, given=None):
        """``given`` (a command-line value) when not None, else the configured value."""
        return given if given is not None else self.values.get(key)

    def pack_for(self, point: str, given: str | None = None) -> str | None:
        return given or self.values.get(f"policy.{point}")

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "settings": [
                {"key": k, "value": v, "from": self.origins[k]} for k, v in self.values.items()
            ],
        }


def config_path() -> Path:
    return home() / FILE_NAME


def _check(section: str, key: str, kind: str, value, path: Path):
    where = f"[{section}] {key}"
    if kind == "sources":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(
                f"{where} must be a list of trust sources (local, c2pa or a PEM path)", path=path
            )
        return [
            v
            if v in ("local", "c2pa")
            else str((path.parent / v).expanduser())
            if not Path(v).expanduser().is_absolute()
            else str(Path(v).expanduser())
            for v in value
        ]
    if kind in ("str", "point"):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a string", path=path)
        if kind == "point" and value not in POINTS:
            raise ConfigError(
                f"{where}: unknown decision point {value!r} (known: {', '.join(POINTS)})", path=path
            )
        return value
    if kind == "url":
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ConfigError(f"{where} must be an http:// or https:// address", path=path)
        return value
    if kind == "regimes":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(v in DISCLOSURE_REGIMES for v in value):
            raise ConfigError(
                f"{where} must be a list of regimes from {', '.join(DISCLOSURE_REGIMES)}", path=path
            )
        return list(dict.fromkeys(value))
    if kind == "backend":
        if value not in STORAGE_BACKENDS:
            raise ConfigError(
                f"{where}: unknown storage backend {value!r} "
                f"(known: {', '.join(STORAGE_BACKENDS)})",
                path=path,
            )
        return value
    if kind == "probability":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value <= 1:
            raise ConfigError(f"{where} must be a number from 0.5 to 1", path=path)
        return float(value)
    raise AssertionError(kind)


def load(path: str | Path | None = None) -> Config:
    """The effective configuration: built-in defaults overlaid with the file, if any."""
    path = Path(path) if path is not None else config_path()
    values = {f"{s}.{k}": spec[0] for s, keys in SETTINGS.items() for k, spec in keys.items()}
    origins = dict.fromkeys(values, "default")
    if not path.exists():
        return Config(values, origins, str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the workspace configuration ({e})", path=path) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"the workspace configuration is not valid TOML ({e})", path=path
        ) from None
    for section, table in data.items():
        if section not in SETTINGS:
            raise ConfigError(
                f"unknown section [{section}] (known: {', '.join(SETTINGS)})", path=path
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{section} must be a [{section}] table", path=path)
        for key, value in table.items():
            if key not in SETTINGS[section]:
                raise ConfigError(
                    f"unknown setting [{section}] {key} (known: {', '.join(SETTINGS[section])})",
                    path=path,
                )
            values[f"{section}.{key}"] = _check(
                section, key, SETTINGS[section][key][1], value, path
            )
            origins[f"{section}.{key}"] = str(path)
    return Config(values, origins, str(path))


def describe(key: str) -> str:
    section, name = key.split(".", 1)
    return SETTINGS[section][name][2]


def show(path: str | Path | None = None) -> Config:
    """``provkit config show``: the effective settings, each with where it came from."""
    return load(path)
