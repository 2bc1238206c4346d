"""Optional extras: the one place that imports a heavy optional library or says which
``pip install 'provkit[EXTRA]'`` brings it.

``pip install provkit`` is the light core (verify, sign, watermark, fingerprints, index,
dupes, policy, audit, ledger, the built-in generator). Everything heavier is an extra::

    torch = require("torch", "torch")          # the module, or ConfigError:
    # "torch is not installed: the gan backend needs it; pip install 'provkit[torch]'"

``available(module)`` answers without importing (for optional speed-ups that change no
result, such as the built-in generator's torch path).
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from provkit.provenance.core.errors import ConfigError

#: extra -> what it brings (mirrors pyproject.toml's optional-dependencies).
EXTRAS: dict[str, str] = {
    "torch": "torch and torchvision (the gan and vae backends, CUDA for the built-in generator)",
    "clip": "CLIP detection and probe training (torch, open_clip, scikit-learn)",
    "diffusers": "the diffusers generator backend (torch, diffusers, transformers)",
    "bench": "the benchmark baselines (invisible-watermark, onnxruntime, opencv, faiss)",
    "scale": "scans on a Ray cluster (ray[data], pyarrow)",
    "serve": "the HTTP service and desk page (fastapi, uvicorn, jinja2, python-multipart)",
}

#: importable name -> the PyPI distribution a user would recognise in the message.
DISTRIBUTIONS: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torchvision",
    "open_clip": "open_clip_torch",
    "sklearn": "scikit-learn",
    "diffusers": "diffusers",
    "transformers": "transformers",
    "accelerate": "accelerate",
    "imwatermark": "invisible-watermark",
    "onnxruntime": "onnxruntime",
    "cv2": "opencv-python",
    "faiss": "faiss-cpu",
    "ray": "ray",
    "pyarrow": "pyarrow",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "jinja2": "jinja2",
    "multipart": "python-multipart",
    "python_multipart": "python-multipart",
}


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r} (known: {', '.join(sorted(EXTRAS))})")
    return f"pip install 'provkit[{extra}]'"


def available(module: str) -> bool:
    """Whether ``module`` can be imported here (found on the path; not imported)."""
    top = module.partition(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def require(extra: str, module: str, *, what: str | None = None) -> ModuleType:
    """Import ``module`` (dotted names allowed) from the optional ``extra``.

    Raises ConfigError, one line naming the missing distribution, ``what`` needs it for,
    and the ``pip install 'provkit[extra]'`` to run, when it (or a library it imports)
    is not installed. Any other import failure is a ConfigError naming the module.
    """
    hint = install_hint(extra)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = (e.name or module).partition(".")[0]
        dist = DISTRIBUTIONS.get(missing, missing)
        needs = f": {what} needs it" if what else ""
        raise ConfigError(f"{dist} is not installed{needs}; {hint}") from None
    except ImportError as e:
        needs = f" ({what} needs it)" if what else ""
        raise ConfigError(
            f"{module} cannot be imported{needs}: {e}; reinstall with {hint}"
        ) from None
