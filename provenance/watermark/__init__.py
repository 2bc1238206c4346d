"""Invisible watermarks: provkit's robust 64-bit asset-id mark, invisible-watermark's
methods, TrustMark (only where its model files are on disk), and readers for marks
other tools leave (the Stable Diffusion XL mark).

    marked = embed(image, bytes.fromhex(asset_id))   # scheme="provkit" by default
    mark = decode(marked)                            # Decoded | None (None: no provkit mark)
    readable(marked, payload)                        # False: these pixels cannot carry it
    third_party_marks(image)                         # [Decoded(..., third_party="Stable Diffusion XL watermark")]

``SOFT_BINDING_ALG`` names provkit's scheme in a C2PA ``c2pa.soft-binding`` assertion.
"""

from __future__ import annotations

from PIL import Image

from .base import MIN_DECODE_SIDE, MIN_SIDE, Backend, Decoded, get_backend, names, register
from .invisible import METHODS, InvisibleWatermark
from .provkit_scheme import ALG as SOFT_BINDING_ALG
from .provkit_scheme import ProvkitScheme
from .thirdparty import SDXL_NAME, third_party_marks
from .trustmark import TrustMarkBackend

DEFAULT_SCHEME = "provkit"

register("provkit", ProvkitScheme)
for _method in METHODS:
    register(_method, lambda _m=_method: InvisibleWatermark(_m))
register("trustmark", TrustMarkBackend)


def embed(image: Image.Image, payload: bytes, *, scheme: str = DEFAULT_SCHEME) -> Image.Image:
    """``image`` with ``payload`` embedded (same size; alpha untouched)."""
    return get_backend(scheme).embed(image, payload)


def decode(image: Image.Image, *, scheme: str | None = None) -> Decoded | None:
    """The mark of ``scheme`` (default: provkit's) in ``image``, or None when there is none."""
    return get_backend(scheme or DEFAULT_SCHEME).decode(image)


def readable(image: Image.Image, payload: bytes, *, scheme: str = DEFAULT_SCHEME) -> bool:
    """Whether ``decode`` will read ``payload`` back from ``image`` (a freshly marked image).

    Call it after :func:`embed` before claiming the mark anywhere: some pixels (pure noise,
    uniform random noise) cannot carry a readable mark. The provkit scheme checks at the
    scale it embedded at (about a third of a decode's cost); other schemes decode fully.
    """
    backend = get_backend(scheme)
    check = getattr(backend, "readable", None)
    if check is not None:
        return bool(check(image, payload))
    found = backend.decode(image)
    return found is not None and found.payload == bytes(payload)


# File-level verbs last: they use the functions above.
from .files import decode_file, embed_file

__all__ = [
    "DEFAULT_SCHEME",
    "MIN_DECODE_SIDE",
    "MIN_SIDE",
    "SDXL_NAME",
    "SOFT_BINDING_ALG",
    "Backend",
    "Decoded",
    "decode",
    "decode_file",
    "embed",
    "embed_file",
    "get_backend",
    "names",
    "readable",
    "register",
    "third_party_marks",
]
