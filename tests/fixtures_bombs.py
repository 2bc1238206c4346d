"""Hostile image files: tiny files that declare huge pixel counts, header-only and truncated
files of every format provkit decodes. Each is made here, in a few milliseconds.

``BOMBS`` maps a name to a function returning the file's bytes. Every one of them
declares 49 megapixels (under the pixel limits of the library and of ``provkit serve``,
so the pixel limit alone does not stop them) and holds next to no pixel data.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

W, H = 7000, 7000  # 49 MP declared: under the service default of 50 MP


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_ihdr(w: int, h: int, colour: int = 6) -> bytes:
    return _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))


def png_header_only() -> bytes:
    """The 68-byte PNG of the finding: a signature and IHDR, no image data."""
    return b"\x89PNG\r\n\x1a\n" + _png_ihdr(W, H) + _png_chunk(b"IEND", b"")


def png_tiny_idat() -> bytes:
    """An RGBA IHDR of 81 MP and one IDAT holding a few rows' worth."""
    rows = zlib.compress(b"\x00" + b"\x00" * (W * 4), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_ihdr(W, H)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def png_cut() -> bytes:
    """A PNG that ends in the middle of its IDAT chunk."""
    rows = zlib.compress(b"\x00" * (W * 4 + 1) * 50, 9)
    whole = b"\x89PNG\r\n\x1a\n" + _png_ihdr(W, H) + _png_chunk(b"IDAT", rows)
    return whole[: len(whole) - len(rows) // 2]


def webp_vp8x_header_only() -> bytes:
    """The 38-byte WebP of the finding: RIFF/WEBP, a VP8X chunk declaring 9000x9000."""
    vp8x = (
        b"VP8X"
        + struct.pack("<I", 10)
        + bytes([0, 0, 0, 0])
        + (W - 1).to_bytes(3, "little")
        + (H - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_flat_lossless() -> bytes:
    """A valid lossless WebP of one flat colour: 49 MP in a few kilobytes."""
    buf = io.BytesIO()
    Image.new("RGB", (W, H), (0, 0, 0)).save(buf, "WEBP", lossless=True, method=0)
    return buf.getvalue()


def webp_cut() -> bytes:
    """A real lossy WebP of 49 MP whose VP8 chunk is cut to its first 200 bytes."""
    buf = io.BytesIO()
    Image.new("RGB", (W, H), (90, 30, 10)).save(buf, "WEBP", quality=20, method=0)
    return buf.getvalue()[:200]


def webp_vp8_truncated() -> bytes:
    """A lossy VP8 key frame header declaring 9000x9000 and no partition data."""
    frame = b"\x9d\x01\x2a" + struct.pack("<HH", W, H)
    tag = 0 | (0 << 1) | (1 << 4) | (100000 << 5)  # key frame, version 0, shown, size
    data = tag.to_bytes(3, "little") + frame + b"\x00" * 8
    chunk = b"VP8 " + struct.pack("<I", len(data)) + data
    body = b"WEBP" + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_vp8l_truncated() -> bytes:
    """A lossless VP8L header declaring 9000x9000 followed by a few bytes."""
    bits = (W - 1) | ((H - 1) << 14) | (1 << 28)  # alpha used, version 0
    data = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 6
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data
    body = b"WEBP" + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _jpeg_head(w: int, h: int, progressive: bool = False) -> bytes:
    sof = (
        (b"\xff\xc2" if progressive else b"\xff\xc0")
        + struct.pack(">HBHHB", 17, 8, h, w, 3)
        + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    )
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64)
    return b"\xff\xd8" + dqt + sof


def jpeg_header_only() -> bytes:
    """SOI, a quantisation table and SOF0 of 9000x9000, then EOI: no scan at all."""
    return _jpeg_head(W, H) + b"\xff\xd9"


def jpeg_truncated() -> bytes:
    """A real JPEG (100x100) whose SOF is rewritten to 9000x9000, cut after its scan header."""
    buf = io.BytesIO()
    Image.new("RGB", (100, 100), (20, 40, 60)).save(buf, "JPEG", quality=80)
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", H, W)
    sos = data.find(b"\xff\xda")
    return bytes(data[: sos + 40])


def jpeg_progressive_truncated() -> bytes:
    """A progressive JPEG rewritten to declare 9000x9000, cut in its first scan."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, "JPEG", progressive=True, quality=70)
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc2")
    data[sof + 5 : sof + 9] = struct.pack(">HH", H, W)
    sos = data.find(b"\xff\xda")
    return bytes(data[: sos + 30])


def gif_header_only() -> bytes:
    """A GIF whose screen and one image are 9000x9000, with no LZW data."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", W, H, 0, 0, 0)
        + b","
        + struct.pack("<HHHHB", 0, 0, W, H, 0)
        + b"\x08\x00;"
    )


def gif_tiny_lzw() -> bytes:
    """A 9000x9000 GIF image with a colour table and three bytes of LZW data."""
    palette = bytes(range(6))
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", W, H, 0x80, 0, 0)
        + palette
        + b","
        + struct.pack("<HHHHB", 0, 0, W, H, 0)
        + b"\x02\x03\x84\x01\x00\x00;"
    )


def _tiff(w: int, h: int, compression: int, strip: bytes | None, claimed: int) -> bytes:
    entries = [
        (256, 4, 1, w),
        (257, 4, 1, h),
        (258, 3, 1, 8),
        (259, 3, 1, compression),
        (262, 3, 1, 1),
        (273, 4, 1, 0),
        (277, 3, 1, 1),
        (278, 4, 1, h),
        (279, 4, 1, claimed),
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_offset
        if kind == 3:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0)
    if strip:
        out += strip
    return bytes(out)


def tiff_strip_missing() -> bytes:
    """An uncompressed 9000x9000 greyscale TIFF whose one strip is not in the file."""
    return _tiff(W, H, 1, None, W * H)


def tiff_deflate_tiny() -> bytes:
    """A deflate TIFF of 9000x9000 whose strip holds 20 bytes."""
    return _tiff(W, H, 8, zlib.compress(b"\x00" * 1000), W * H)


def bmp_header_only() -> bytes:
    """A 24-bit BMP header declaring 9000x9000 and no pixel rows."""
    row = (W * 3 + 3) // 4 * 4
    info = struct.pack("<IiiHHIIiiII", 40, W, H, 1, 24, 0, row * H, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + row * H, 0, 0, 54) + info


def avif_flat() -> bytes | None:
    """A valid AVIF of one flat colour: 49 MP in about a kilobyte (None without AVIF)."""
    from PIL import features

    if not features.check("avif"):
        return None
    buf = io.BytesIO()
    Image.new("RGB", (W, H), (0, 0, 0)).save(buf, "AVIF", quality=10, speed=10)
    return buf.getvalue()


def avif_truncated() -> bytes | None:
    """A real AVIF whose declared size (ispe) is rewritten to 9000x9000, the coded frame
    cut short; None where this Pillow cannot write AVIF."""
    from PIL import features

    if not features.check("avif"):
        return None
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "AVIF", quality=50)
    data = bytearray(buf.getvalue())
    ispe = data.find(b"ispe")
    if ispe < 0:
        return None
    data[ispe + 8 : ispe + 16] = struct.pack(">II", W, H)
    mdat = data.find(b"mdat")
    return bytes(data[: mdat + 12]) if mdat > 0 else bytes(data)


BOMBS = {
    "png-header-only": png_header_only,
    "png-tiny-idat": png_tiny_idat,
    "png-cut": png_cut,
    "webp-vp8x-header-only": webp_vp8x_header_only,
    "webp-flat-lossless": webp_flat_lossless,
    "webp-cut": webp_cut,
    "webp-vp8-truncated": webp_vp8_truncated,
    "webp-vp8l-truncated": webp_vp8l_truncated,
    "jpeg-header-only": jpeg_header_only,
    "jpeg-truncated": jpeg_truncated,
    "jpeg-progressive-truncated": jpeg_progressive_truncated,
    "gif-header-only": gif_header_only,
    "gif-tiny-lzw": gif_tiny_lzw,
    "tiff-strip-missing": tiff_strip_missing,
    "tiff-deflate-tiny": tiff_deflate_tiny,
    "bmp-header-only": bmp_header_only,
    "avif-flat": avif_flat,
    "avif-truncated": avif_truncated,
}


def bombs() -> dict[str, bytes]:
    """Every bomb this Pillow can make, by name."""
    out = {}
    for name, make in BOMBS.items():
        data = make()
        if data is not None:
            out[name] = data
    return out
