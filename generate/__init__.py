"""generate: image generator backends behind one sealing wrapper; no image leaves unsealed.

    from provkit.generate import Generator
    images = Generator("builtin").generate("a quiet harbour at dawn", n=4)
    images[0].path, images[0].asset_id, images[0].manifest_label

``Generator`` and ``generate()`` return sealed images only (watermarked, C2PA-signed,
recorded); ``wrap_pipeline(pipe)`` does the same for an existing diffusers pipeline;
``seal()`` is the issuing step every output goes through. Exports load lazily, so
importing this package pulls in neither torch nor diffusers.
"""

from __future__ import annotations

import sys
import types

_EXPORTS = {
    "Generator": "provkit.generate.generator",
    "GenerationFailed": "provkit.generate.generator",
    "generate": "provkit.generate.generator",
    "wrap_pipeline": "provkit.generate.generator",
    "seal": "provkit.generate.seal",
    "SealedImage": "provkit.generate.results",
    "GenerationRun": "provkit.generate.results",
    "GenerationRequest": "generate.request",
    "BackendInfo": "generate.request",
}

__all__ = [
    "BackendInfo",
    "GenerationFailed",
    "GenerationRequest",
    "GenerationRun",
    "Generator",
    "SealedImage",
    "generate",
    "seal",
    "wrap_pipeline",
]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'generate' has no attribute {name!r}")


class _Verb(types.ModuleType):
    """The package is also its verb: ``provkit.generate(...)`` calls ``provkit.generate.generate(...)``
    (the CLI's ``provkit generate``), so one name serves both."""

    def __call__(self, *args, **kwargs):
        return self.generate(*args, **kwargs)


sys.modules[__name__].__class__ = _Verb
