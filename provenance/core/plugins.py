"""Objects named by import path (``"package.module:attr"``), loaded when needed.

Backends, generator functions and evidence providers are all given as such strings,
so a lower package can call code from a higher one (or a user's own) without importing it.
"""

from __future__ import annotations

import importlib
from typing import Any

from provkit.provenance.core.errors import ConfigError, describe


def load_object(target: str, *, what: str = "object") -> Any:
    """Import ``"package.module:attr.sub"`` (or ``package.module.attr``) and return the object.

    Raises ConfigError, naming ``what`` and the target, when it cannot be imported or found.
    """
    if ":" in target:
        module_name, _, attr = target.partition(":")
    else:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr or module_name.startswith("."):
        raise ConfigError(f"{what} must be given as module:name, not {target!r}")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(
            f"{what} {target} is not available: cannot import {module_name!r} ({e})"
        ) from None
    except Exception as e:  # noqa: BLE001 - the module itself failed while importing
        raise ConfigError(f"{what} {target} failed to import: {describe(e)}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"{what} {target} is not available: {module_name} has no {attr!r}"
            ) from None
    return obj
