"""Keep the Hugging Face libraries off the network: provkit never downloads weights.

:func:`force_offline` is called before any model is built (CLIP towers, diffusers
pipelines). It overrides a user's ``HF_HUB_OFFLINE=0`` and also reaches into an
already imported ``huggingface_hub``, which reads the variable only at import time.
"""

from __future__ import annotations

import os

_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE")


def force_offline() -> None:
    """Put huggingface_hub, transformers and diffusers in offline mode, whatever the
    environment said."""
    for name in _VARIABLES:
        os.environ[name] = "1"
    try:  # already imported: the constant was read at import time
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - installed with every model library
        return
    constants.HF_HUB_OFFLINE = True


def is_offline() -> bool:
    """True when huggingface_hub (if installed) will not touch the network."""
    if any(os.environ.get(name) != "1" for name in _VARIABLES):
        return False
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover
        return True
    return bool(constants.HF_HUB_OFFLINE)
