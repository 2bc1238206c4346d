"""What decoding an image will cost, decided from its header before a pixel is decoded.

A decoder allocates the whole declared canvas before it reads the first byte of pixel
data, so a 40-byte file that declares 9000x9000 costs hundreds of megabytes and seconds
of work downstream, and a file cut after its header costs the allocation before it
fails. :func:`check` runs on an opened (not loaded) PIL image and refuses, with one line
naming the cause:

- a file that ends before its image data (no PNG IDAT, no JPEG scan, no WebP frame
  chunk, a TIFF strip or an AVIF ``mdat`` past the end of the file, a BMP shorter than
  its rows);
- a file whose compressed data is too small to hold the declared pixels at the
  format's best possible compression (deflate cannot exceed 1032:1, so a PNG's IDAT
  must be at least the raw size / 1032; a baseline or progressive JPEG spends at least
  one bit per 8x8 block; GIF's LZW at most 4096 pixels per 12-bit code);
- when :func:`set_max_pixels_per_byte` set a ratio (``provkit serve`` does), a file
  whose declared pixels per byte of file exceed it: formats with no such bound (WebP
  lossless, AVIF) can hold a flat 81-megapixel canvas in 2 KB.

The pixel limit itself stays in :mod:`provenance.core.imageio` (``check_size``).
:func:`declared` reads a file's declared size without decoding, for a caller that
budgets work before it starts (the service's decode budget).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from provkit.provenance.core.errors import BadInput

#: deflate's largest possible expansion (RFC 1951: 258 bytes from a ~2-bit code).
DEFLATE_RATIO = 1032
#: LZW (GIF, TIFF): a 12-bit code stands for at most 4096 bytes.
LZW_RATIO = 2731
#: PackBits: two bytes stand for at most 128.
PACKBITS_RATIO = 64

_max_per_byte: int | None = None


def set_max_pixels_per_byte(value: int | None) -> None:
    """Refuse files declaring more than ``value`` pixels per byte of file (None: no
    ratio limit beyond each format's own bound). ``provkit serve`` sets it."""
    global _max_per_byte
    _max_per_byte = None if value is None else max(1, int(value))


def max_pixels_per_byte() -> int | None:
    return _max_per_byte


@dataclass(frozen=True)
class Declared:
    """What a file's header says: format, size, bytes on disk."""

    format: str
    width: int
    height: int
    size: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def declared(path: str | os.PathLike) -> Declared | None:
    """The declared format and size of an image file, read from its header only (no
    pixel decoded); None for a file Pillow cannot open."""
    import warnings

    from PIL import Image

    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(p) as img:
                return Declared(img.format or "?", img.width, img.height, p.stat().st_size)
    except Exception:  # noqa: BLE001 - not an image we can size: the reader will say why
        return None


def check(img, path: str | os.PathLike) -> None:
    """BadInput when the opened, not yet loaded ``img`` (from ``path``) cannot hold the
    pixels it declares, or its declared pixels per byte exceed the set ratio."""
    p = Path(path)
    size = p.stat().st_size
    pixels = img.width * img.height
    reader = _CHECKS.get(img.format or "")
    if reader is not None:
        with open(p, "rb") as f:
            reader(img, f, size, p)
    if _max_per_byte is not None and pixels > _max_per_byte * max(size, 1):
        raise BadInput(
            f"declares {img.width}x{img.height} pixels in {size:,} bytes "
            f"(over {_max_per_byte:,} pixels per byte): refused as a "
            "decompression bomb",
            path=p,
        )


def _too_small(img, have: int, need: float, what: str, path) -> None:
    if have < need:
        raise BadInput(
            f"truncated or a decompression bomb: {have:,} bytes of {what} "
            f"cannot hold the declared {img.width}x{img.height} pixels",
            path=path,
        )


def _no_data(what: str, path) -> BadInput:
    return BadInput(f"truncated image data: the file ends before its {what}", path=path)


def _png(img, f, size: int, path) -> None:
    f.seek(8)
    idat = 0
    depth, colour = 8, 6
    while True:
        head = f.read(8)
        if len(head) < 8:
            break
        length, kind = struct.unpack(">I4s", head)
        start = f.tell()
        if kind == b"IHDR" and length >= 13:
            depth, colour = f.read(10)[8:10]
        if kind == b"IDAT":
            idat += max(0, min(length, size - start))
        if kind == b"IEND":
            break
        f.seek(start + length + 4)
    if idat == 0:
        raise _no_data("image data (no IDAT chunk)", path)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
    raw = img.height * (1 + (img.width * channels * depth + 7) // 8)
    _too_small(img, idat, raw / DEFLATE_RATIO, "compressed data", path)


def _jpeg(img, f, size: int, path) -> None:
    f.seek(2)
    arithmetic = False
    while True:
        marker = f.read(2)
        if len(marker) < 2:
            raise _no_data("image data (no scan)", path)
        if marker[0] != 0xFF:
            raise _no_data("image data (markers end before a scan)", path)
        code = marker[1]
        if code == 0xFF:  # fill byte
            f.seek(-1, 1)
            continue
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue
        if code == 0xD9:
            raise _no_data("image data (no scan)", path)
        raw_len = f.read(2)
        if len(raw_len) < 2:
            raise _no_data("image data (no scan)", path)
        length = struct.unpack(">H", raw_len)[0]
        if code in (0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            arithmetic = True
        if code == 0xDA:
            f.seek(length - 2, 1)
            break
        f.seek(length - 2, 1)
    entropy = size - f.tell()
    blocks = ((img.width + 7) // 8) * ((img.height + 7) // 8)
    # at least one Huffman-coded bit per block of the full-resolution component
    _too_small(img, entropy, blocks / (800 if arithmetic else 10), "scan data", path)


def _gif(img, f, size: int, path) -> None:
    f.seek(10)
    flags = f.read(3)[0:1]
    if flags and flags[0] & 0x80:
        f.seek(3 * (2 << (flags[0] & 7)), 1)
    while True:
        kind = f.read(1)
        if kind == b"!":
            f.read(1)
            _skip_subblocks(f)
        elif kind == b",":
            desc = f.read(9)
            if len(desc) < 9:
                raise _no_data("image data", path)
            w, h = struct.unpack("<HH", desc[4:8])
            if desc[8] & 0x80:
                f.seek(3 * (2 << (desc[8] & 7)), 1)
            f.read(1)  # LZW minimum code size
            data = _skip_subblocks(f)
            _too_small(img, data, w * h / LZW_RATIO * 0.9, "LZW data", path)
            return
        else:
            raise _no_data("image data (no image block)", path)


def _skip_subblocks(f) -> int:
    total = 0
    while True:
        n = f.read(1)
        if not n or n[0] == 0:
            return total
        got = len(f.read(n[0]))
        total += got
        if got < n[0]:
            return total


def _webp(img, f, size: int, path) -> None:
    f.seek(12)
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise _no_data("image data (no VP8/VP8L chunk)", path)
        kind, length = struct.unpack("<4sI", head)
        start = f.tell()
        if kind in (b"VP8 ", b"VP8L", b"ANMF"):
            if start + length > size:
                raise _no_data(f"{kind.decode().strip()} data (the chunk runs past it)", path)
            return
        f.seek(start + length + (length & 1))


def _tiff(img, f, size: int, path) -> None:
    tags = getattr(img, "tag_v2", {})
    offsets = tags.get(273) or tags.get(324) or ()
    counts = tags.get(279) or tags.get(325) or ()
    if isinstance(offsets, int):
        offsets = (offsets,)
    if isinstance(counts, int):
        counts = (counts,)
    if not offsets or not counts:
        raise _no_data("image data (no strips or tiles)", path)
    have = 0
    for off, n in zip(offsets, counts, strict=False):
        if off >= size:
            raise _no_data("image data (a strip or tile lies past the end)", path)
        have += min(n, size - off)
    per_sample, samples = tags.get(258), tags.get(277) or 1  # TIFF defaults: 1 and 1
    if isinstance(per_sample, tuple):
        bits = sum(per_sample) * (samples if len(per_sample) == 1 else 1)
    else:
        bits = (per_sample or 1) * samples
    raw = (img.width * bits + 7) // 8 * img.height
    compression = tags.get(259) or 1
    ratio = {
        1: 1.0,
        5: LZW_RATIO,
        8: DEFLATE_RATIO,
        32946: DEFLATE_RATIO,
        32773: PACKBITS_RATIO,
    }.get(compression)
    if ratio is not None:
        _too_small(img, have, raw / ratio, "strip data", path)
    else:  # JPEG, fax and the rest: at least a bit per row
        _too_small(img, have, img.height / 8, "strip data", path)


def _bmp(img, f, size: int, path) -> None:
    f.seek(10)
    start, header = struct.unpack("<II", f.read(8))
    if start >= size:
        raise _no_data("pixel data", path)
    if header < 40:  # an OS/2 core header: no compression field to read
        return
    f.seek(30)
    compression = struct.unpack("<I", f.read(4) or b"\0\0\0\0")[0]
    if compression in (0, 3, 6):  # rows stored as they are
        bits = {"1": 1, "L": 8, "P": 8, "RGB": 24, "RGBA": 32}.get(img.mode, 8)
        f.seek(28)
        bits = struct.unpack("<H", f.read(2))[0] or bits
        stride = (img.width * bits + 31) // 32 * 4
        _too_small(img, max(0, size - start), stride * img.height, "pixel rows", path)


def _isobmff(img, f, size: int, path) -> None:
    f.seek(0)
    seen_mdat = False
    while f.tell() < size:
        head = f.read(8)
        if len(head) < 8:
            break
        length, kind = struct.unpack(">I4s", head)
        start = f.tell() - 8
        if length == 1:
            length = struct.unpack(">Q", f.read(8))[0]
        elif length == 0:
            length = size - start
        if start + length > size:
            raise _no_data(f"{kind.decode('latin-1')} box (it runs past the end)", path)
        if kind == b"mdat" and length > 16:
            seen_mdat = True
        f.seek(start + length)
    if not seen_mdat:  # small images may keep their data in the meta box's idat
        f.seek(0)
        if b"idat" not in f.read(1 << 16):
            raise _no_data("image data (no mdat box)", path)


_CHECKS = {
    "PNG": _png,
    "JPEG": _jpeg,
    "MPO": _jpeg,
    "GIF": _gif,
    "WEBP": _webp,
    "TIFF": _tiff,
    "BMP": _bmp,
    "AVIF": _isobmff,
}

__all__ = ["Declared", "check", "declared", "max_pixels_per_byte", "set_max_pixels_per_byte"]
