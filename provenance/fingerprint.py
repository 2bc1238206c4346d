"""Perceptual fingerprints of images: pHash, dHash, PDQ and the SHA-256 of the bytes.

A :class:`Fingerprint` is a small immutable value. pHash and dHash (imagehash, 64 bits
each) are stored as unsigned ints; PDQ (Meta's 256-bit hash) as 32 bytes with its
quality score (0-100; hashes of quality <= 49 are unreliable). Compare two with
:func:`hamming`. Typical match distances: pHash/dHash <= 10 of 64, PDQ <= 31 of 256.

Every image is first reduced to at most :data:`WORK_SIZE` pixels on its long side
(box filter), so a JPEG decoded in draft mode (the decoder's own 1/2, 1/4, 1/8
scaling, several times faster) hashes to nearly the same bits as a full decode:
measured on 35 JPEGs of real photographs (five shapes, 300x200 to 2048x1536), at
most 4 bits of 64 for pHash, 3 for dHash and 10 of 256 for PDQ (means 0.2, 0.5, 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image
from provkit.provenance.core.files import file_sha256
from provkit.provenance.core.guard import guarded
from provkit.provenance.core.imageio import open_image, to_rgb

#: Long side, in pixels, of the working copy every hash is computed from.
WORK_SIZE = 256
#: Smallest size (both sides) a JPEG is asked to decode to in fast mode; libjpeg
#: picks the largest 1/2, 1/4 or 1/8 reduction that keeps both sides at least this
#: (a 4:3 image then keeps its long side >= WORK_SIZE).
DRAFT_SIZE = (WORK_SIZE * 3 // 4, WORK_SIZE * 3 // 4)

#: Matching thresholds used by provkit's near-duplicate search (bits that may differ).
#: pHash bits; a pHash match also needs dHash within DHASH_MATCH of the same image
#: (measured: either hash alone calls distinct small, smooth images duplicates).
PHASH_MATCH = 10
DHASH_MATCH = 12
PDQ_MATCH = 31
#: PDQ hashes below this quality are too flat to trust (Meta's recommendation).
PDQ_MIN_QUALITY = 50


@dataclass(frozen=True)
class Fingerprint:
    """The perceptual and exact identity of one image."""

    sha256: str | None
    phash: int
    dhash: int
    pdq: bytes
    pdq_quality: int

    def to_json(self) -> dict:
        return {
            "sha256": self.sha256,
            "phash": f"{self.phash:016x}",
            "dhash": f"{self.dhash:016x}",
            "pdq": self.pdq.hex(),
            "pdq_quality": self.pdq_quality,
        }

    @classmethod
    def from_json(cls, data: dict) -> Fingerprint:
        return cls(
            sha256=data.get("sha256"),
            phash=int(data["phash"], 16),
            dhash=int(data["dhash"], 16),
            pdq=bytes.fromhex(data["pdq"]),
            pdq_quality=int(data["pdq_quality"]),
        )

    def distance(self, other: Fingerprint) -> dict:
        """Bits that differ, per hash kind."""
        return {
            "phash": hamming(self.phash, other.phash),
            "dhash": hamming(self.dhash, other.dhash),
            "pdq": hamming(self.pdq, other.pdq),
        }


def hamming(a: int | bytes, b: int | bytes) -> int:
    """Number of differing bits between two hashes (both ints, or equal-length bytes)."""
    if isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray)):
        if len(a) != len(b):
            raise ValueError(f"hashes differ in length ({len(a)} and {len(b)} bytes)")
        a, b = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    elif not (isinstance(a, int) and isinstance(b, int)):
        raise TypeError(f"cannot compare {type(a).__name__} with {type(b).__name__}")
    return (a ^ b).bit_count()


def working_copy(img: Image.Image) -> Image.Image:
    """The RGB image every hash is computed from: long side at most WORK_SIZE."""
    img = to_rgb(img)
    w, h = img.size
    scale = WORK_SIZE / max(w, h)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    return img


def _bits_to_int(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.astype(bool).ravel()).tobytes(), "big")


def _pdq(rgb: np.ndarray) -> tuple[bytes, int]:
    import pdqhash

    bits, quality = pdqhash.compute(rgb)
    return np.packbits(np.asarray(bits, dtype=bool)).tobytes(), int(quality)


def fingerprint_image(img: Image.Image, *, sha256: str | None = None) -> Fingerprint:
    """Fingerprint a decoded image (any mode); ``sha256`` of its file if known."""
    import imagehash

    work = working_copy(img)
    pdq, quality = _pdq(np.asarray(work))
    return Fingerprint(
        sha256=sha256,
        phash=_bits_to_int(imagehash.phash(work).hash),
        dhash=_bits_to_int(imagehash.dhash(work).hash),
        pdq=pdq,
        pdq_quality=quality,
    )


@guarded("fingerprint")
def fingerprint_file(path: str | os.PathLike, *, fast: bool = True) -> Fingerprint:
    """Fingerprint an image file; ``fast`` decodes JPEGs in draft (reduced) mode.

    Raises BadInput (naming the file) for missing, corrupt or oversized files.
    """
    return fingerprint_image(load_for_fingerprint(path, fast=fast), sha256=file_sha256(path))


def load_for_fingerprint(path: str | os.PathLike, *, fast: bool = True) -> Image.Image:
    """Decode an image for fingerprinting: RGB, JPEGs reduced while decoding when ``fast``.

    The reduction never takes the long side below WORK_SIZE, so the working copy
    (and so every hash) is made at the same size as from a full decode.
    """
    img = open_image(path, draft=DRAFT_SIZE if fast else None)
    if fast and img.format == "JPEG" and max(img.size) < WORK_SIZE:
        img = open_image(path, draft=(WORK_SIZE, WORK_SIZE))  # squarer image: reduce less
    return to_rgb(img)
