"""Marks other tools put in images: today the Stable Diffusion XL mark.

diffusers' ``StableDiffusionXLWatermarker`` embeds 48 fixed bits with invisible-watermark's
``dwtDct`` method (Haar approximation band of the U channel, 4x4 blocks, step 36). The reader
here is a vectorised re-implementation of that decoder in numpy and PyWavelets (no torch, no
OpenCV, no per-block Python loop); tests pin that it reads the same bits as
invisible-watermark's own decoder and that its colour conversion gives OpenCV's values. Implementations
disagree on RGB/BGR order, so both are tried, each on the pixels as stored and as the
encoder saw them (float). The mark is fragile (JPEG at quality 90 erases it): its absence
proves nothing.

Speed: the reader is one pass over the pixels, all four readings at once, compiled with
numba when it is installed (:mod:`provenance.watermark.sdxl_kernel`, about 10 ms a
megapixel on one core) or in numpy otherwise (:func:`_fast_bits`, strip by strip); both
do the reference reader's arithmetic operation for operation and read the same bits
(tests/test_watermark_fast.py). :func:`use_engine` picks one; ``"reference"`` is the
reader as first written (one reading at a time through PyWavelets), kept as the oracle.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .base import Decoded, to_rgb8

SDXL_MESSAGE = 0b101100111110110010010000011110111011000110011110
SDXL_BITS = np.array([int(b) for b in bin(SDXL_MESSAGE)[2:]], dtype=bool)
SDXL_NAME = "Stable Diffusion XL watermark"
#: Bit errors tolerated (the mark is fragile: a clean SDXL output can read with a few errors).
#: A uniformly random 48-bit read lands this close with p = 1.7e-6; four readings are tried
#: (two channel orders x two colour domains), so p <= 6.6e-6 per image.
MAX_ERRORS = 8
_STEP = 36.0
_BLOCK = 4
#: OpenCV's BT.601 YUV coefficients: 14-bit fixed point for 8-bit input, float32 otherwise.
_Y_FIXED = (1868, 9617, 4899)  # B, G, R
_U_FIXED = 8061
_Y_FLOAT = tuple(np.float32(c) for c in (0.114, 0.587, 0.299))
_U_FLOAT = np.float32(0.492)


def _fma(a: np.ndarray, b: np.float32, c) -> np.ndarray:
    """float32 fused multiply-add (a * b + c rounded once), as OpenCV's SIMD code does it."""
    return (a.astype(np.float64) * np.float64(b) + np.asarray(c, np.float64)).astype(np.float32)


def bgr_to_u(bgr: np.ndarray) -> np.ndarray:
    """The U plane of OpenCV's ``cvtColor(bgr, COLOR_BGR2YUV)``, value for value.

    8-bit input: OpenCV's integer arithmetic (14-bit coefficients, rounded shifts,
    saturated). float32 input: its vectorised float path (fused multiply-adds), chroma
    offset 0.5 (not 128); the last (width mod 8) pixels of each row, which OpenCV's scalar
    loop converts, may differ in the last bit, which no read notices.
    """
    if bgr.dtype == np.uint8:
        b, g, r = (bgr[..., i].astype(np.int32) for i in range(3))
        cb, cg, cr = _Y_FIXED
        y = (b * cb + g * cg + r * cr + (1 << 13)) >> 14
        u = ((b - y) * _U_FIXED + (128 << 14) + (1 << 13)) >> 14
        return np.clip(u, 0, 255).astype(np.uint8)
    f = bgr.astype(np.float32, copy=False)
    b, g, r = f[..., 0], f[..., 1], f[..., 2]
    cb, cg, cr = _Y_FLOAT
    y = _fma(b, cb, _fma(g, cg, r * cr))
    return _fma(b - y, _U_FLOAT, np.float32(0.5))


#: Rows of pixels the reader converts at a time (a multiple of the 8-pixel block), so its
#: memory is a few strips, not several copies of the whole image.
STRIP_ROWS = 256


def dwtdct_bits(bgr: np.ndarray, n_bits: int) -> np.ndarray:
    """The bits invisible-watermark's ``dwtDct`` decoder reads from a BGR array.

    uint8 input gives exactly what its decoder reads; float32 input (0..255) reproduces the
    colour conversion its encoder applied to diffusers' float images (OpenCV offsets float
    chroma by 0.5, not 128, so the two domains read different bits).
    """
    sums, counts = _dwtdct_scores(bgr, n_bits, 0)
    return sums / np.maximum(counts, 1) * 255 > 127


def _dwtdct_scores(bgr: np.ndarray, n_bits: int, first_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bit score sums and block counts of one horizontal strip of the image whose
    first block (in row-major block order) is number ``first_block``."""
    rows, cols = bgr.shape[:2]
    u = bgr_to_u(bgr[: rows // 4 * 4, : cols // 4 * 4])
    if u.size == 0:
        return np.zeros(n_bits), np.zeros(n_bits)
    import pywt  # the reference reader only

    ca, _ = pywt.dwt2(u, "haar")  # the same transform, so values (and ties) match exactly
    nr, nc = ca.shape[0] // _BLOCK, ca.shape[1] // _BLOCK
    blocks = ca[: nr * _BLOCK, : nc * _BLOCK].reshape(nr, _BLOCK, nc, _BLOCK)
    blocks = blocks.transpose(0, 2, 1, 3).reshape(nr * nc, _BLOCK * _BLOCK)
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    val = np.abs(blocks[np.arange(len(blocks)), pos])
    score = (np.mod(val, _STEP) > 0.5 * _STEP).astype(np.float64)
    which = (first_block + np.arange(len(blocks))) % n_bits
    return np.bincount(which, score, n_bits), np.bincount(which, None, n_bits)


def _strip_bits(image: Image.Image, n_bits: int) -> dict[tuple[str, bool], np.ndarray]:
    """:func:`dwtdct_bits` of the whole image for each channel order and colour domain,
    computed strip by strip from crops of ``image`` (same result: the blocks are 8 x 8
    pixels and strips are cut on block rows), so no copy of the whole image is made."""
    cols, rows = image.size
    keys = [(order, as_float) for order in ("BGR", "RGB") for as_float in (False, True)]
    sums = {k: np.zeros(n_bits) for k in keys}
    counts = {k: np.zeros(n_bits) for k in keys}
    blocks_per_row = (cols // 4 * 4 // 2) // _BLOCK
    usable_rows = rows // 8 * 8
    for top in range(0, usable_rows, STRIP_ROWS):
        rgb = to_rgb8(image.crop((0, top, cols, min(top + STRIP_ROWS, usable_rows))))
        for order, as_float in keys:
            strip = rgb[..., ::-1] if order == "BGR" else rgb
            strip = np.ascontiguousarray(strip, dtype=np.float32 if as_float else np.uint8)
            s, c = _dwtdct_scores(strip, n_bits, (top // 8) * blocks_per_row)
            sums[order, as_float] += s
            counts[order, as_float] += c
    return {k: sums[k] / np.maximum(counts[k], 1) * 255 > 127 for k in keys}


#: The four readings, in the order the fast readers return them.
KEYS = (("BGR", False), ("BGR", True), ("RGB", False), ("RGB", True))
_H64 = 0.7071067811865476  # PyWavelets' Haar filter tap, in float64 and float32
_H32 = np.float32(_H64)
_CB, _CG = (np.float64(c) for c in _Y_FLOAT[:2])
_CR32 = _Y_FLOAT[2]
_U64 = np.float64(_U_FLOAT)

_engine: str | None = None  # None: not chosen yet (compiled when numba is installed)


def use_engine(name: str | None = None) -> str:
    """Choose the reader: ``"compiled"`` (numba), ``"numpy"`` or ``"reference"``;
    None: ``"reference"`` when ``PROVKIT_READERS=reference`` (the bench's path as it
    was, in scan's workers too), else compiled when numba imports (``PROVKIT_COMPILED=0``
    keeps numpy). Returns the engine in use."""
    global _engine
    if name not in (None, "compiled", "numpy", "reference"):
        raise ValueError(f"unknown reader engine {name!r}")
    if name is None and os.environ.get("PROVKIT_READERS") == "reference":
        name = "reference"
    if name is None or name == "compiled":
        name = "numpy"
        if os.environ.get("PROVKIT_COMPILED", "1") != "0":
            try:
                from provkit.provenance.watermark import sdxl_kernel  # noqa: F401

                name = "compiled"
            except ImportError:  # numba is not installed: numpy it is
                pass
    _engine = name
    return name


def engine() -> str:
    return _engine or use_engine()


def warm() -> str:
    """Choose the engine and load the compiled reader now (from numba's cache, compiling
    it the first time), for both array layouts it is called with, so that processes
    forked from this one start with it loaded. Returns the engine."""
    name = engine()
    if name == "compiled":
        from provkit.provenance.watermark.sdxl_kernel import block_scores

        pixels = np.zeros((8, 16, 3), np.uint8)
        for view in (pixels, pixels[:, :8]):  # contiguous and strided
            block_scores(view, 0, 1, np.zeros((4, 1)))
    return name


def _haar(u: np.ndarray, h) -> np.ndarray:
    """PyWavelets' ``dwt2(u, "haar")`` approximation band, operation for operation
    (along rows, then columns; each output is ``h * odd + h * even``)."""
    r = h * u[1::2] + h * u[0::2]
    return h * r[:, 1::2] + h * r[:, 0::2]


def _block_scores(ca: np.ndarray) -> np.ndarray:
    nr, nc = ca.shape[0] // _BLOCK, ca.shape[1] // _BLOCK
    blocks = ca[: nr * _BLOCK, : nc * _BLOCK].reshape(nr, _BLOCK, nc, _BLOCK)
    ac = np.abs(blocks.transpose(0, 2, 1, 3).reshape(nr * nc, _BLOCK * _BLOCK)[:, 1:])
    val = ac[np.arange(len(ac)), np.argmax(ac, axis=1)]
    return np.mod(val, _STEP) > 0.5 * _STEP


def _strip_scores(rgb: np.ndarray) -> list[np.ndarray]:
    """Each block's score in the four readings (:data:`KEYS`) of one uint8 strip."""
    red, green, blue = (rgb[..., i].astype(np.int32) for i in range(3))
    out = []
    for b, g, r in ((blue, green, red), (red, green, blue)):
        y = (b * 1868 + g * 9617 + r * 4899 + 8192) >> 14
        u = np.clip(((b - y) * _U_FIXED + ((128 << 14) + 8192)) >> 14, 0, 255)
        out.append(_block_scores(_haar(u.astype(np.float64), _H64)))
        bf, gf = b.astype(np.float64), g.astype(np.float64)
        rc = (r.astype(np.float32) * _CR32).astype(np.float64)
        t = (gf * _CG + rc).astype(np.float32).astype(np.float64)
        yf = (bf * _CB + t).astype(np.float32)
        d = (b.astype(np.float32) - yf).astype(np.float64)
        out.append(_block_scores(_haar((d * _U64 + 0.5).astype(np.float32), _H32)))
    return out


def _fast_bits(image: Image.Image, n_bits: int, compiled: bool) -> dict:
    """The four readings' bits, as :func:`_strip_bits` reads them, in one pass over
    strips cut from ``image`` (no copy of the whole picture is made: a 12 MP image stays
    under its own size in extra memory)."""
    width, height = image.size
    rows, cols = height // 8 * 8, width // 8 * 8
    sums = np.zeros((4, n_bits))
    nc = cols // 8
    if compiled:
        from provkit.provenance.watermark.sdxl_kernel import block_scores
    for top in range(0, rows, STRIP_ROWS):
        strip = to_rgb8(image.crop((0, top, cols, min(top + STRIP_ROWS, rows))))
        if compiled:
            block_scores(strip, (top // 8) * nc, n_bits, sums)
            continue
        which = ((top // 8) * nc + np.arange((strip.shape[0] // 8) * nc)) % n_bits
        for k, scores in enumerate(_strip_scores(strip)):
            sums[k] += np.bincount(which, scores, n_bits)
    counts = np.bincount(np.arange((rows // 8) * nc) % n_bits, None, n_bits)
    return {key: sums[k] / np.maximum(counts, 1) * 255 > 127 for k, key in enumerate(KEYS)}


def sdxl_bits(image: Image.Image, n_bits: int = len(SDXL_BITS)) -> dict:
    """(channel order, float domain) -> the bits read, by the engine in use."""
    name = engine()
    if name == "reference":
        return _strip_bits(image, n_bits)
    return _fast_bits(image, n_bits, compiled=name == "compiled")


def third_party_marks(image: Image.Image) -> list[Decoded]:
    """Known third-party marks in ``image`` (empty list when none is found)."""
    w, h = image.size
    if w * h < 256 * 256:
        return []  # the SDXL watermarker skips images this small, and its decoder refuses them
    best = None
    for (order, _), bits in sdxl_bits(image).items():
        errors = int((bits != SDXL_BITS).sum())
        if best is None or errors < best[0]:
            best = (errors, order)
    if best[0] > MAX_ERRORS:
        return []
    return [
        Decoded(
            np.packbits(SDXL_BITS).tobytes(),
            1.0 - best[0] / len(SDXL_BITS),
            f"invisible-watermark/dwtDct ({best[1]})",
            SDXL_NAME,
        )
    ]
