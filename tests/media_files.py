"""Tiny valid media files made in code, for the formats C2PA carries besides images."""

from __future__ import annotations

import io
import struct
import wave


def pdf_bytes(pages: int = 1, text: bytes = b"provkit") -> bytes:
    """A minimal valid PDF: catalog, page tree, pages with a content stream, xref, trailer."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(pages))
        + b"] /Count %d >>" % pages,
    ]
    for i in range(pages):
        stream = b"BT /F1 12 Tf 20 100 Td (" + text + b" %d) Tj ET" % i
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents %d 0 R >>"
            % (4 + 2 * i)
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for n, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def wav_bytes(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV written by the standard library's ``wave`` module."""
    import math

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 5))) for i in range(n)))
    return buf.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(brand: bytes = b"isom", media: bytes = bytes(range(256)) * 2) -> bytes:
    """A minimal ISO BMFF file: ftyp, a moov with an mvhd, and an mdat."""
    ftyp = _box(b"ftyp", brand + struct.pack(">I", 512) + b"isomiso2mp41")
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        b"\x00" * 4
        + struct.pack(">IIII", 0, 0, 1000, 0)
        + struct.pack(">IH", 0x10000, 0x100)
        + b"\x00" * 10
        + matrix
        + b"\x00" * 24
        + struct.pack(">I", 2),
    )
    return ftyp + _box(b"moov", mvhd) + _box(b"mdat", media)


def mp3_bytes(frames: int = 20) -> bytes:
    """MPEG-1 layer III frames (128 kbit/s, 44.1 kHz) of silence, after an ID3v2 tag."""
    header = b"\xff\xfb\x90\x64"
    frame = header + (bytes(range(1, 256)) * 2)[: 417 - 4]
    id3 = b"ID3\x04\x00\x00" + b"\x00\x00\x00\x00"
    return id3 + frame * frames


def flac_bytes() -> bytes:
    """A FLAC stream with a STREAMINFO block (last) and one verbatim frame-less body."""
    info = struct.pack(">HH", 4096, 4096) + b"\x00\x00\x00" + b"\x00\x00\x00"
    # sample rate 8000 (20 bits), channels-1 (3 bits)=0, bps-1 (5 bits)=15, total samples (36)
    packed = (8000 << 44) | (0 << 41) | (15 << 36) | 0
    info += packed.to_bytes(8, "big") + bytes(range(100, 116))  # the MD5 field
    block = bytes([0x80]) + len(info).to_bytes(3, "big") + info
    return b"fLaC" + block


def avi_bytes() -> bytes:
    """A RIFF AVI with an avih header list and an empty movi list."""
    avih = (
        b"avih"
        + struct.pack("<I", 56)
        + struct.pack("<14I", 40000, 0, 0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 0, 0)
    )
    hdrl = b"LIST" + struct.pack("<I", 4 + len(avih)) + b"hdrl" + avih
    movi = b"LIST" + struct.pack("<I", 4) + b"movi"
    body = b"AVI " + hdrl + movi
    return b"RIFF" + struct.pack("<I", len(body)) + body


def svg_bytes() -> bytes:
    """A small SVG drawing (C2PA carries it; provkit does not decode it to pixels)."""
    return (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        b'<rect width="40" height="40" fill="red"/><circle cx="20" cy="20" r="9"/></svg>'
    )


def docx_bytes() -> bytes:
    """A minimal Office Open XML word-processing container (stored, not deflated)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


MEDIA = {
    "svg": ("image/svg+xml", svg_bytes),
    "pdf": ("application/pdf", pdf_bytes),
    "wav": ("audio/wav", wav_bytes),
    "mp4": ("video/mp4", mp4_bytes),
    "mov": ("video/quicktime", lambda: mp4_bytes(b"qt  ")),
    "m4a": ("audio/mp4", lambda: mp4_bytes(b"M4A ")),
    "mp3": ("audio/mpeg", mp3_bytes),
    "flac": ("audio/flac", flac_bytes),
    "avi": ("video/avi", avi_bytes),
}
