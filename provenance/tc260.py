"""China's implicit AI label (GB 45438-2025): the TC260 ``AIGC`` XMP property.

The standard puts the label in the file's XMP, namespace
``http://www.tc260.org.cn/ns/AIGC/1.0/`` (prefix ``TC260``), property ``AIGC``, whose
value is a JSON object::

    {"Label": "1", "ContentProducer": "...", "ProduceID": "...", "ReservedCode1": "...",
     "ContentPropagator": "...", "PropagateID": "...", "ReservedCode2": "..."}

This module writes that packet into JPEG (APP1 ``http://ns.adobe.com/xap/1.0/``), PNG
(``iTXt`` keyed ``XML:com.adobe.xmp``) and WebP (the ``XMP `` chunk of an extended
``VP8X`` file) without touching the coded pixels, and reads it back from any file
that carries an XMP packet, whoever wrote it.

Binding (``ReservedCode1``, provkit's producer form): ``sha256-rgb:<hex>``, the SHA-256 of
the image's pixels decoded as 8-bit RGB, row by row (Pillow's decoder). It binds the
block to the pixels it was written for: moving the block onto other pixels, or changing
the pixels, breaks it; rewriting metadata (a platform adding its propagator fields, a
C2PA manifest) does not. ``ReservedCode2`` is the propagator's: ``provkit label`` writes
the same form there. A lossy decoder other than libjpeg(-turbo) may decode a JPEG a few
levels differently; the check is made with the decoder provkit ships.

Why one module of over 400 lines: the writer and the reader of the one property in the
three containers share its constants, the packet layout and the container walkers (the
writer reads the file's existing packet to merge into it).

Every read is bounded by :mod:`detect.metadata`'s limits (the caller gives the packets);
here the JSON value is parsed only up to :data:`MAX_VALUE` characters.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from provkit.provenance.core.errors import BadInput

NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
PREFIX = "TC260"
FIELDS = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)
#: Label values of the standard: 1 generated, 2 possibly generated, 3 suspected generated.
LABELS = {"1": "AI-generated", "2": "possibly AI-generated", "3": "suspected AI-generated"}
BINDING_PREFIX = "sha256-rgb:"
MAX_VALUE = 64 << 10
#: the most XMP packets read from one file, and the largest one parsed
MAX_PACKETS = 8
MAX_PACKET = 4 << 20
IPTC_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_XMP_JPEG = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_KEY = b"XML:com.adobe.xmp"


@dataclass(frozen=True)
class AigcLabel:
    """One ``TC260:AIGC`` value, as found (every field a string; unknown keys kept)."""

    fields: dict = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def label(self) -> str | None:
        return self.fields.get("Label")

    @property
    def producer(self) -> str | None:
        return self.fields.get("ContentProducer") or None

    @property
    def produce_id(self) -> str | None:
        return self.fields.get("ProduceID") or None

    @property
    def well_formed(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {
            "fields": dict(self.fields),
            "problems": list(self.problems),
            "meaning": LABELS.get(str(self.label)),
            "well_formed": self.well_formed,
        }


def pixel_binding(image) -> str:
    """``sha256-rgb:<hex>`` of a PIL image's pixels as 8-bit RGB."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    h = hashlib.sha256()
    h.update(f"{rgb.width}x{rgb.height}\n".encode())
    h.update(rgb.tobytes())
    return BINDING_PREFIX + h.hexdigest()


def binding_of_bytes(data: bytes) -> str:
    """:func:`pixel_binding` of encoded image bytes (decoded with Pillow)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return pixel_binding(img)


def make_value(
    *,
    producer: str,
    produce_id: str,
    binding: str = "",
    label: str = "1",
    propagator: str = "",
    propagate_id: str = "",
    binding2: str = "",
) -> dict:
    return {
        "Label": str(label),
        "ContentProducer": producer,
        "ProduceID": produce_id,
        "ReservedCode1": binding,
        "ContentPropagator": propagator,
        "PropagateID": propagate_id,
        "ReservedCode2": binding2,
    }


def packet(value: dict | None, *, digital_source_type: str | None = None) -> bytes:
    """An XMP packet holding ``TC260:AIGC`` (None: left out) and, when given, the IPTC
    digital source type, which the EU marking and every IPTC reader understand."""
    aigc = ""
    if value is not None:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        aigc = f' {PREFIX}:AIGC="{html.escape(text, quote=True)}"'
    iptc = ""
    if digital_source_type:
        iptc = (
            f"\n   <Iptc4xmpExt:DigitalSourceType>{html.escape(digital_source_type)}"
            "</Iptc4xmpExt:DigitalSourceType>"
        )
    xml = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about="" xmlns:{PREFIX}="{NS}" '
        f'xmlns:Iptc4xmpExt="{IPTC_NS}"{aigc}>'
        f"{iptc}\n  </rdf:Description>\n"
        " </rdf:RDF>\n</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return xml.encode("utf-8")


# --------------------------------------------------------------------------- reading


def parse_value(text: str) -> AigcLabel:
    """The JSON value of one ``TC260:AIGC`` property, with what is wrong with it."""
    if len(text) > MAX_VALUE:
        return AigcLabel({}, (f"the AIGC value is longer than {MAX_VALUE} characters",))
    try:
        data = json.loads(text)
    except ValueError as e:
        return AigcLabel({}, (f"the AIGC value is not JSON ({e.msg})",))
    if not isinstance(data, dict):
        return AigcLabel({}, ("the AIGC value is not a JSON object",))
    fields = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    problems = []
    if str(fields.get("Label")) not in LABELS:
        problems.append(f"Label is {fields.get('Label')!r}, not 1, 2 or 3")
    for key in ("ContentProducer", "ProduceID"):
        if not fields.get(key):
            problems.append(f"{key} is missing or empty")
    return AigcLabel(fields, tuple(problems))


def from_packet(packet_bytes: bytes) -> AigcLabel | None:
    """The ``TC260:AIGC`` value of one XMP packet (attribute or element form), or None."""
    if NS.encode() not in packet_bytes:
        return None
    try:
        root = ET.fromstring(packet_bytes.strip(b"\x00 \r\n\t"))
    except ET.ParseError:
        m = re.search(rb'AIGC\s*=\s*"([^"]*)"', packet_bytes)
        if not m:
            return AigcLabel({}, ("the XMP packet naming the TC260 namespace does not parse",))
        return parse_value(html.unescape(m.group(1).decode("utf-8", "replace")))
    key = f"{{{NS}}}AIGC"
    for el in root.iter():
        if key in el.attrib:
            return parse_value(el.attrib[key])
        if el.tag == key:
            return parse_value((el.text or "").strip())
    return None


# --------------------------------------------------------------------------- writing


def merge(existing: bytes | None, xmp: bytes) -> bytes:
    """One packet: ``existing`` (the file's own XMP) with the ``rdf:Description`` of ``xmp``
    added; a property both name (``TC260:AIGC``, the IPTC source type) is taken from
    ``xmp``, every other property of ``existing`` is kept. ``xmp`` as it
    is when there is none, or when the existing packet does not parse as XML."""
    if not existing:
        return xmp
    try:
        prefixes = {}
        for _event, (prefix, uri) in ET.iterparse(
            io.BytesIO(existing.strip(b"\x00 \r\n\t")), events=("start-ns",)
        ):
            prefixes.setdefault(uri, prefix)
        old = ET.fromstring(existing.strip(b"\x00 \r\n\t"))
        new = ET.fromstring(xmp[xmp.index(b"<x:xmpmeta") : xmp.rindex(b"</x:xmpmeta>") + 12])
    except (ET.ParseError, ValueError):
        return xmp
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"
    old_rdf = old if old.tag == rdf else old.find(f".//{rdf}")
    new_rdf = new.find(f".//{rdf}")
    if old_rdf is None or new_rdf is None:
        return xmp
    about = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
    replaced = {k for d in new_rdf for k in d.attrib if k != about} | {
        c.tag for d in new_rdf for c in d
    }
    for desc in list(old_rdf):  # a property written anew replaces the old one
        for key in replaced:
            desc.attrib.pop(key, None)
        for child in [c for c in desc if c.tag in replaced]:
            desc.remove(child)
    for desc in new_rdf:
        old_rdf.append(desc)
    for uri, prefix in {
        **prefixes,
        NS: PREFIX,
        IPTC_NS: "Iptc4xmpExt",
        "adobe:ns:meta/": "x",
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    }.items():
        if prefix and not re.fullmatch(r"ns\d+", prefix):
            ET.register_namespace(prefix, uri)
    body = ET.tostring(old, encoding="unicode")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        + body
        + '\n<?xpacket end="w"?>'
    ).encode("utf-8")


def write(data: bytes, mime: str, xmp: bytes) -> bytes:
    """``data`` (a JPEG, PNG or WebP file) with ``xmp`` merged into its XMP packet
    (:func:`merge`: the file's other XMP properties are kept, an earlier AIGC replaced).

    The coded pixels are copied unchanged."""
    packets = xmp_packets(data, mime) if mime in ("image/jpeg", "image/png", "image/webp") else []
    xmp = merge(packets[0] if packets else None, xmp)
    if mime == "image/jpeg":
        return _jpeg(data, xmp)
    if mime == "image/png":
        return _png(data, xmp)
    if mime == "image/webp":
        return _webp(data, xmp)
    raise BadInput(f"the TC260 label is written into JPEG, PNG and WebP, not {mime}")


def _jpeg(data: bytes, xmp: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise BadInput("not a JPEG file")
    body = _XMP_JPEG + xmp
    if len(body) + 2 > 0xFFFF:
        raise BadInput("the XMP packet is too large for one JPEG segment")
    segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    out, pos, inserted = [data[:2]], 2, False
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        seg = data[pos : pos + 2 + length]
        is_xmp = marker == 0xE1 and seg[4 : 4 + len(_XMP_JPEG)] == _XMP_JPEG
        if not inserted and marker not in (0xE0,):  # after JFIF (APP0), before the rest
            out.append(segment)
            inserted = True
        if not is_xmp:
            out.append(seg)
        pos += 2 + length
    if not inserted:
        out.append(segment)
    out.append(data[pos:])
    return b"".join(out)


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + ctype
        + body
        + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)
    )


def _png(data: bytes, xmp: bytes) -> bytes:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise BadInput("not a PNG file")
    chunk = _png_chunk(b"iTXt", _PNG_KEY + b"\x00\x00\x00\x00\x00" + xmp)
    out, pos, inserted = [data[:8]], 8, False
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        raw = data[pos : pos + 12 + length]
        if ctype == b"iTXt" and raw[8 : 8 + len(_PNG_KEY) + 1] == _PNG_KEY + b"\x00":
            pos += 12 + length
            continue
        if not inserted and ctype in (b"IDAT", b"IEND"):
            out.append(chunk)
            inserted = True
        out.append(raw)
        pos += 12 + length
        if ctype == b"IEND":
            break
    return b"".join(out)


def _webp(data: bytes, xmp: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise BadInput("not a WebP file")
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        ctype, length = struct.unpack("<4sI", data[pos : pos + 8])
        chunks.append((ctype, data[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length & 1)
    chunks = [(t, b) for t, b in chunks if t != b"XMP "]
    if not chunks or chunks[0][0] != b"VP8X":
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            alpha = img.mode in ("RGBA", "LA") or "transparency" in img.info
        flags = 0x10 if alpha else 0
        vp8x = (
            struct.pack("<B3x", flags)
            + (w - 1).to_bytes(3, "little")
            + (h - 1).to_bytes(3, "little")
        )
        chunks.insert(0, (b"VP8X", vp8x))
    head = bytearray(chunks[0][1])
    head[0] |= 0x04  # the XMP flag
    chunks[0] = (b"VP8X", bytes(head))
    # the XMP chunk goes after the image data and EXIF, before anything unknown (C2PA)
    at = max(
        (
            i + 1
            for i, (t, _) in enumerate(chunks)
            if t in (b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L", b"EXIF")
        ),
        default=len(chunks),
    )
    chunks.insert(at, (b"XMP ", xmp))
    body = b"".join(
        t + struct.pack("<I", len(b)) + b + (b"\x00" if len(b) & 1 else b"") for t, b in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def xmp_packets(data: bytes, mime: str) -> list[bytes]:
    """The XMP packets of a JPEG, PNG or WebP file's bytes (its container's own places)."""
    out: list[bytes] = []
    if mime == "image/jpeg":
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker == 0xDA:
                break
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            body = data[pos + 4 : pos + 2 + length]
            if marker == 0xE1 and body.startswith(_XMP_JPEG):
                out.append(body[len(_XMP_JPEG) :])
            pos += 2 + length
    elif mime == "image/png":
        pos = 8
        while pos + 8 <= len(data):
            length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
            body = data[pos + 8 : pos + 8 + length]
            if ctype == b"iTXt" and body.startswith(_PNG_KEY + b"\x00"):
                rest = body[len(_PNG_KEY) + 1 :]
                compressed, rest = rest[0], rest[2:]
                _lang, _, rest = rest.partition(b"\x00")
                _tk, _, value = rest.partition(b"\x00")
                if compressed:  # bounded: a small zip bomb must not inflate to GBs
                    inflater = zlib.decompressobj()
                    value = inflater.decompress(value, MAX_PACKET)
                    if inflater.unconsumed_tail:
                        value = b""
                out.append(value)
            if ctype == b"IEND":
                break
            pos += 12 + length
    elif mime == "image/webp":
        pos = 12
        while pos + 8 <= len(data):
            ctype, length = struct.unpack("<4sI", data[pos : pos + 8])
            if ctype == b"XMP ":
                out.append(data[pos + 8 : pos + 8 + length])
            pos += 8 + length + (length & 1)
    return out


def read_bytes(data: bytes, mime: str) -> AigcLabel | None:
    """The first ``TC260:AIGC`` value in a file's XMP, or None (also when the container is
    too damaged to walk: no packet can be read from it)."""
    try:
        packets = xmp_packets(data, mime)
    except (struct.error, IndexError, ValueError, zlib.error):
        return None
    for p in packets[:MAX_PACKETS]:
        if len(p) > MAX_PACKET:
            continue
        found = from_packet(p)
        if found is not None:
            return found
    return None


def check_binding(value: str | None, data: bytes) -> str:
    """``valid``, ``invalid`` or ``not checked`` for a ``sha256-rgb:`` binding of ``data``."""
    if not value or not str(value).startswith(BINDING_PREFIX):
        return "not checked"
    try:
        return "valid" if binding_of_bytes(data) == value else "invalid"
    except Exception:  # noqa: BLE001 - pixels that do not decode cannot be bound
        return "invalid"
