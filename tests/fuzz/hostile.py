"""Small hostile files, built by the tests themselves (nothing is downloaded).

Each builder makes the smallest file that triggers one defect of the hardening issue:
a PNG text chunk of deep JSON, a certificate with a bad version, a JPEG/WebP whose
header declares far more pixels than it holds, a TIFF full of XMP openers, ...
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + ctype
        + body
        + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)
    )


def png_with_text(key: str, value: bytes, size=(64, 48)) -> bytes:
    """A valid PNG with one extra ``tEXt`` chunk ``key`` = ``value`` before IEND."""
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value) + data[iend:]


def deep_json_png(depth: int = 100_000) -> bytes:
    """The PNG whose ``prompt`` chunk is ``depth`` opening brackets (RecursionError in json)."""
    return png_with_text("prompt", b"[" * depth)


def jpeg_declaring(width: int, height: int, *, progressive: bool = True) -> bytes:
    """A tiny JPEG whose frame header declares ``width`` x ``height`` (data for 16x16 only)."""
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(
        buf, "JPEG", quality=80, progressive=progressive
    )
    data = bytearray(buf.getvalue())
    for marker in (b"\xff\xc2", b"\xff\xc0"):
        i = data.find(marker)
        if i != -1:
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            break
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """A lossless WebP (VP8L) whose header declares ``width`` x ``height``; a few bytes of
    data, every pixel the same colour."""
    small = io.BytesIO()
    Image.new("RGB", (1, 1), (10, 200, 30)).save(small, "WEBP", lossless=True)
    data = bytearray(small.getvalue())
    i = data.find(b"VP8L")
    # VP8L: signature 0x2f, then 14 bits width-1, 14 bits height-1, alpha, version
    bits = int.from_bytes(data[i + 9 : i + 13], "little")
    bits = (bits & ~((1 << 28) - 1)) | ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)
    data[i + 9 : i + 13] = bits.to_bytes(4, "little")
    return bytes(data)


def tiff_with_xmp_openers(size: int = 300_000) -> bytes:
    """A small valid TIFF followed by ``size`` bytes of ``<x:xmpmeta`` with no closing tag
    (the lazy XMP regex was quadratic in this)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "TIFF")
    opener = b"<x:xmpmeta "
    return buf.getvalue() + opener * (size // len(opener))


def damaged_certificate(signed: bytes) -> bytes:
    """``signed`` (a C2PA-signed file) with the X.509 version of its certificates set to 6,
    which ``cryptography`` rejects with InvalidVersion (not a ValueError)."""
    data = bytearray(signed)
    needle = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2 (v3)
    start = data.find(b"c2pa.signature")
    i = data.find(needle, max(start, 0))
    assert i != -1, "no certificate found"
    while i != -1:
        data[i + 4] = 0x05
        i = data.find(needle, i + 5)
    return bytes(data)


def laughing_yaml(levels: int = 9, fan: int = 10) -> str:
    """A policy pack whose params expand ``fan ** levels`` times through YAML aliases."""
    lines = ["pack: laughs", "version: '1'", "default: allow", "params:", "  a0: &a0 [lol]"]
    for n in range(1, levels + 1):
        refs = ", ".join(f"*a{n - 1}" for _ in range(fan))
        lines.append(f"  a{n}: &a{n} [{refs}]")
    lines += [
        "rules:",
        "  - id: r",
        "    points: [verify]",
        f"    when: asset.path in params.a{levels}",
        "    outcome: deny",
        "    reason: laughs",
    ]
    return "\n".join(lines) + "\n"


def tiff_with_oversized_tags() -> bytes:
    """A TIFF whose IFD entries claim more data than the file holds (Pillow warns
    "Tag data larger than file" for each while opening it)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(buf, "TIFF", description="x" * 40)
    data = bytearray(buf.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd : ifd + 2])[0]
    for n in range(count):
        entry = ifd + 2 + 12 * n
        tag = struct.unpack("<H", data[entry : entry + 2])[0]
        if tag == 270:  # ImageDescription: say it is 16 MB long
            data[entry + 4 : entry + 8] = struct.pack("<I", 16 << 20)
    return bytes(data)
