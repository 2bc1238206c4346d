"""Image-level watermark verbs over the registered schemes: embed, decode, readable.

The schemes register here (provkit's own, invisible-watermark's methods, TrustMark);
:mod:`provenance.watermark.files` builds the file verbs on top, and the package
re-exports both.
"""

from __future__ import annotations

from PIL import Image
from provkit.provenance.watermark.base import Decoded, get_backend, register
from provkit.provenance.watermark.invisible import METHODS, InvisibleWatermark
from provkit.provenance.watermark.provkit_scheme import ProvkitScheme
from provkit.provenance.watermark.trustmark import TrustMarkBackend

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
