"""Invisible watermarks: provkit's robust 64-bit asset-id mark, invisible-watermark's
methods, TrustMark (only where its model files are on disk), and readers for marks
other tools leave (the Stable Diffusion XL mark).

    marked = embed(image, bytes.fromhex(asset_id))   # scheme="provkit" by default
    mark = decode(marked)                            # Decoded | None (None: no provkit mark)
    readable(marked, payload)                        # False: these pixels cannot carry it
    third_party_marks(image)                         # [Decoded(..., third_party="Stable Diffusion XL watermark")]
    files.embed("in.png", "out.png")                # the file verbs of ``provkit watermark``

``SOFT_BINDING_ALG`` names provkit's scheme in a C2PA ``c2pa.soft-binding`` assertion.
"""

from __future__ import annotations

from provkit.provenance.watermark import files
from provkit.provenance.watermark.base import (
    MIN_DECODE_SIDE,
    MIN_SIDE,
    Backend,
    Decoded,
    get_backend,
    names,
    register,
)
from provkit.provenance.watermark.marks import DEFAULT_SCHEME, decode, embed, readable
from provkit.provenance.watermark.provkit_scheme import ALG as SOFT_BINDING_ALG
from provkit.provenance.watermark.thirdparty import SDXL_NAME, third_party_marks

__all__ = [
    "DEFAULT_SCHEME",
    "MIN_DECODE_SIDE",
    "MIN_SIDE",
    "SDXL_NAME",
    "SOFT_BINDING_ALG",
    "Backend",
    "Decoded",
    "decode",
    "embed",
    "files",
    "get_backend",
    "names",
    "readable",
    "register",
    "third_party_marks",
]
