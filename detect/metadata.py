"""Metadata that says an image came from a generator, read without decoding pixels.

Three sources, each walked in its own container (no pixel decoding):

* XMP packets: JPEG APP1 ``http://ns.adobe.com/xap/1.0/``, PNG ``iTXt``
  ``XML:com.adobe.xmp``, the WebP ``XMP `` chunk (a raw scan for ``<x:xmpmeta`` covers
  TIFF, GIF and the rest). From it: IPTC ``Iptc4xmpExt:DigitalSourceType``,
  ``Iptc4xmpExt:AISystemUsed`` and ``xmp:CreatorTool``.
* PNG text chunks written by generators: ``parameters`` (AUTOMATIC1111 and its
  forks), ``prompt``/``workflow`` (ComfyUI), ``invokeai_metadata``/``sd-metadata``
  (InvokeAI), ``fooocus_scheme`` (Fooocus), ``Software: NovelAI``, a ``Description``
  ending in Midjourney's parameters and ``Job ID: <uuid>`` (Midjourney).
* EXIF: ``Software`` matched against :data:`GENERATOR_SOFTWARE`, ``Make``/``Model``,
  and the ``UserComment`` where AUTOMATIC1111 writes its parameters in JPEG/WebP.

All of it is unsigned: anyone can write or strip it. A generator's mark is strong
evidence that a generator made the file; a camera's name proves nothing.

Every read is bounded (the first 16 MB, at most 8 XMP packets, linear-time packet search,
JSON only up to a size and nesting depth, text searched only in its first 64 KB).

Why one module of over 400 lines: the three container walkers, the field parsers and
their bounds share one reader (one read of the file's head, one error list); split apart,
each walker would re-read the file and re-check the same limits.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from provkit.provenance import tc260
from provkit.provenance.core.guard import guarded
from provkit.provenance.core.imageio import read_head, sniff
from provkit.provenance.core.vocabulary import source_type_name

#: EXIF Software / XMP CreatorTool / AISystemUsed names (matched case-insensitively as whole
#: words) of known image generators -> the generator's display name.
GENERATOR_SOFTWARE: dict[str, str] = {
    "stable diffusion": "Stable Diffusion",
    "automatic1111": "AUTOMATIC1111",
    "sd.next": "SD.Next",
    "comfyui": "ComfyUI",
    "invokeai": "InvokeAI",
    "novelai": "NovelAI",
    "midjourney": "Midjourney",
    "dall-e": "DALL-E",
    "dall·e": "DALL-E",
    "dalle": "DALL-E",
    "firefly": "Adobe Firefly",
    "imagen": "Google Imagen",
    "gemini": "Google Gemini",
    "fooocus": "Fooocus",
    "draw things": "Draw Things",
    "diffusionbee": "DiffusionBee",
    "leonardo.ai": "Leonardo.Ai",
    "ideogram": "Ideogram",
    "flux.1": "FLUX.1",
    "black forest labs": "FLUX (Black Forest Labs)",
    "dreamstudio": "DreamStudio",
    "playground ai": "Playground",
    "craiyon": "Craiyon",
    "nightcafe": "NightCafe",
    "bing image creator": "Bing Image Creator",
    "easy diffusion": "Easy Diffusion",
    "krita ai": "Krita AI Diffusion",
    "sdxl": "Stable Diffusion XL",
}

_A1111_RE = re.compile(r"(?:^|\n)Steps: \d+,[^\n]*?Sampler: ")
#: Midjourney's downloads: a ``Description`` text chunk holding the prompt, its parameters
#: (``--v 6.1``, ``--niji 6``, ``--ar 16:9``...) and, at the end, ``Job ID: <uuid>``
#: (with ``Author`` and ``Creation Time`` chunks beside it). A caption that only mentions
#: Midjourney does not match: the parameter and the job id must both be there.
_MIDJOURNEY_RE = re.compile(
    r"--(?:v|version|niji|ar|aspect|style|stylize|s|chaos|q|seed)\s+[\w.:]+[^\n]*?"
    r"Job ID:\s*[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"\s*$"
)
#: Characters of one text field that the generator patterns look at (A1111 parameters and
#: software names are short; the rest of a long field is never searched).
MAX_TEXT_SEARCH = 64 << 10
_XMP_OPEN, _XMP_CLOSE = b"<x:xmpmeta", b"</x:xmpmeta>"
_XMP_JPEG = b"http://ns.adobe.com/xap/1.0/\x00"
_SCAN_LIMIT = 16 << 20
#: Most XMP packets read from one file, and the largest one parsed (real packets are a few KB;
#: an Adobe packet with padding stays well under 1 MB).
MAX_XMP_PACKETS = 8
MAX_XMP_BYTES = 4 << 20
#: Longest text chunk parsed as JSON (ComfyUI graphs are tens of KB), and the deepest
#: nesting accepted: deeper is not a generator's graph, and would exhaust the stack.
MAX_JSON_CHARS = 4 << 20
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Metadata:
    """What a file's metadata says about its origin."""

    digital_source_type: str | None = None  # short IPTC name from XMP
    generator: str | None = None  # display name of the generator that wrote a mark
    generator_source: str | None = None  # where: "png:parameters", "exif:Software", ...
    generator_detail: str | None = None  # e.g. the first line of the prompt parameters
    software: str | None = None  # EXIF Software / XMP CreatorTool as written
    camera: str | None = None  # EXIF Make + Model as written (unsigned)
    xmp: bool = False
    text_keys: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())
    #: the GB 45438 implicit label (``TC260:AIGC`` in XMP, any producer's), as
    #: :meth:`provenance.tc260.AigcLabel.to_json`; None when the file has none
    tc260: dict | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["text_keys"] = list(self.text_keys)
        d["errors"] = list(self.errors)
        return d


_GENERATOR_RES = tuple(
    (re.compile(rf"(?<![a-z0-9]){re.escape(needle)}(?![a-z0-9])", re.IGNORECASE), name)
    for needle, name in GENERATOR_SOFTWARE.items()
)


def match_generator(text: str | None) -> str | None:
    """The generator a software name names, matched as whole words ("Imagen 3", not
    "Imagenomic"); None when it names none."""
    if not text:
        return None
    text = text[:MAX_TEXT_SEARCH]
    for pattern, name in _GENERATOR_RES:
        if pattern.search(text):
            return name
    return None


# -- container walkers ----------------------------------------------------------------


def _png_chunks(data: bytes):
    pos = 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        yield ctype, body
        if ctype == b"IEND":
            return
        pos += 12 + length


class _TooLarge(ValueError):
    pass


def _inflate(data: bytes) -> bytes:
    """Decompress a PNG text chunk, at most Pillow's MAX_TEXT_CHUNK bytes (a zip bomb
    of a few hundred KB would otherwise inflate to hundreds of MB)."""
    from PIL.PngImagePlugin import MAX_TEXT_CHUNK

    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT_CHUNK)
    if inflater.unconsumed_tail:
        raise _TooLarge(f"decompresses to more than {MAX_TEXT_CHUNK} bytes")
    return out


def _png_text(data: bytes) -> tuple[dict[str, str], list[bytes], list[str]]:
    text, xmps, errors = {}, [], []
    for ctype, body in _png_chunks(data):
        try:
            if ctype == b"tEXt":
                key, _, value = body.partition(b"\x00")
                text[key.decode("latin-1")] = value.decode("latin-1")
            elif ctype == b"zTXt":
                key, _, rest = body.partition(b"\x00")
                text[key.decode("latin-1")] = _inflate(rest[1:]).decode("latin-1")
            elif ctype == b"iTXt":
                key, _, rest = body.partition(b"\x00")
                compressed, rest = rest[0], rest[2:]
                _lang, _, rest = rest.partition(b"\x00")
                _tkey, _, value = rest.partition(b"\x00")
                if compressed:
                    value = _inflate(value)
                k = key.decode("latin-1")
                if k == "XML:com.adobe.xmp":
                    xmps.append(value)
                else:
                    text[k] = value.decode("utf-8", "replace")
            elif ctype == b"eXIf":
                text["\x00exif"] = body.hex()
        except _TooLarge as e:
            key = body.partition(b"\x00")[0].decode("latin-1", "replace")
            errors.append(f"PNG {ctype.decode('latin-1')} chunk {key!r} skipped: {e}")
        except (zlib.error, IndexError, UnicodeDecodeError):
            continue
    return text, xmps, errors


def _jpeg_segments(data: bytes):
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan: metadata is over
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        yield marker, data[pos + 4 : pos + 2 + length]
        pos += 2 + length


def _riff_chunks(data: bytes):
    pos = 12
    while pos + 8 <= len(data):
        ctype, length = struct.unpack("<4sI", data[pos : pos + 8])
        yield ctype, data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)


def _xmp_fields(packet: bytes) -> dict[str, str]:
    """DigitalSourceType, AISystemUsed and CreatorTool from one XMP packet."""
    import xml.etree.ElementTree as ET

    out: dict[str, str] = {}
    wanted = {"DigitalSourceType", "AISystemUsed", "CreatorTool"}
    try:
        root = ET.fromstring(packet.strip(b"\x00 \r\n\t"))
    except ET.ParseError:
        m = re.search(rb"digitalsourcetype/([A-Za-z]+)", packet)
        if m:
            out["DigitalSourceType"] = m.group(1).decode()
        return out
    for el in root.iter():
        for attr, value in el.attrib.items():
            local = attr.rsplit("}", 1)[-1]
            if local in wanted:
                out.setdefault(local, value)
            if local == "resource" and el.tag.rsplit("}", 1)[-1] in wanted:
                out.setdefault(el.tag.rsplit("}", 1)[-1], value)
        local = el.tag.rsplit("}", 1)[-1]
        if local in wanted:
            value = (el.text or "").strip() or " ".join(
                (c.text or "").strip() for c in el.iter() if (c.text or "").strip()
            )
            if value:
                out.setdefault(local, value)
    return out


def _exif_fields(blob: bytes) -> dict[str, str]:
    from PIL import Image

    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    exif = Image.Exif()
    try:
        exif.load(blob)
    except Exception:  # noqa: BLE001  # malformed EXIF is common; it just yields nothing
        return {}
    out = {}
    for tag, name in ((0x0131, "Software"), (0x010F, "Make"), (0x0110, "Model")):
        if isinstance(exif.get(tag), str):
            out[name] = exif[tag].strip("\x00 ")
    try:
        comment = exif.get_ifd(0x8769).get(0x9286)
    except Exception:  # noqa: BLE001
        comment = None
    if isinstance(comment, bytes):
        head, body = comment[:8], comment[8:]
        if head.startswith(b"UNICODE"):
            enc = "utf-16-le" if body[:1] != b"\x00" and body[1:2] == b"\x00" else "utf-16-be"
            out["UserComment"] = body.decode(enc, "replace")
        else:
            out["UserComment"] = body.decode("utf-8", "replace")
    elif isinstance(comment, str):
        out["UserComment"] = comment
    return {k: v.strip("\x00 ") for k, v in out.items() if v and v.strip("\x00 ")}


# -- the reader ---------------------------------------------------------------------


@guarded("read its metadata")
def read_metadata(path) -> Metadata:
    """Read generator marks, XMP source type and EXIF software/camera from a file.

    Raises BadInput (via sniff) for a missing, empty or non-image file; damaged
    metadata inside an image is reported in ``errors``, never raised.
    """
    mime = sniff(path)
    data = read_head(Path(path), _SCAN_LIMIT)
    text: dict[str, str] = {}
    xmps: list[bytes] = []
    exif_blobs: list[bytes] = []
    errors: list[str] = []
    try:
        if mime == "image/png":
            text, xmps, errors = _png_text(data)
            if "\x00exif" in text:
                exif_blobs.append(bytes.fromhex(text.pop("\x00exif")))
        elif mime == "image/jpeg":
            for marker, body in _jpeg_segments(data):
                if marker == 0xE1 and body.startswith(_XMP_JPEG):
                    xmps.append(body[len(_XMP_JPEG) :])
                elif marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
                    exif_blobs.append(body)
                elif marker == 0xFE:
                    text["jpeg:comment"] = body.decode("utf-8", "replace")
        elif mime == "image/webp":
            for ctype, body in _riff_chunks(data):
                if ctype == b"XMP ":
                    xmps.append(body)
                elif ctype == b"EXIF":
                    exif_blobs.append(body)
    except (struct.error, ValueError) as e:
        errors.append(f"damaged {mime} structure: {e}")
    if not xmps:
        xmps = _raw_xmp_packets(data)
    xmps = [x for x in xmps[:MAX_XMP_PACKETS] if len(x) <= MAX_XMP_BYTES]

    fields: dict[str, str] = {}
    aigc = None
    for packet in xmps:
        for k, v in _xmp_fields(packet).items():
            fields.setdefault(k, v)
        if aigc is None:
            aigc = tc260.from_packet(packet)
    exif: dict[str, str] = {}
    for blob in exif_blobs:
        for k, v in _exif_fields(blob).items():
            exif.setdefault(k, v)

    generator, source, detail = _generator_from_text(text)
    if generator is None and _A1111_RE.search(exif.get("UserComment", "")[:MAX_TEXT_SEARCH]):
        generator, source = "AUTOMATIC1111", "exif:UserComment"
        detail = _first_line(exif["UserComment"])
    software = exif.get("Software") or fields.get("CreatorTool")
    for key, value in (
        ("xmp:AISystemUsed", fields.get("AISystemUsed")),
        ("exif:Software", exif.get("Software")),
        ("xmp:CreatorTool", fields.get("CreatorTool")),
    ):
        if generator is None and value:
            name = match_generator(value) or (value if key == "xmp:AISystemUsed" else None)
            if name:
                generator, source, detail = name, key, value
    camera = " ".join(v for v in (exif.get("Make"), exif.get("Model")) if v) or None
    return Metadata(
        digital_source_type=source_type_name(fields.get("DigitalSourceType")),
        generator=generator,
        generator_source=source,
        generator_detail=detail,
        software=software,
        camera=camera,
        xmp=bool(xmps),
        text_keys=tuple(sorted(k for k in text if not k.startswith("\x00"))),
        errors=tuple(errors),
        tc260=aigc.to_json() if aigc is not None else None,
    )


def _raw_xmp_packets(data: bytes) -> list[bytes]:
    """``<x:xmpmeta ... </x:xmpmeta>`` packets anywhere in ``data``, found in linear time.

    Each opener is paired with the first closer after it; an opener without one ends the
    search (there is no later closer either), so no byte is scanned more than twice."""
    out, pos = [], 0
    while len(out) < MAX_XMP_PACKETS:
        start = data.find(_XMP_OPEN, pos)
        if start == -1:
            break
        end = data.find(_XMP_CLOSE, start + len(_XMP_OPEN))
        if end == -1:
            break
        end += len(_XMP_CLOSE)
        out.append(data[start:end])
        pos = end
    return out


def _first_line(s: str, limit: int = 160) -> str:
    line = s.strip().splitlines()[0] if s.strip() else ""
    return line[:limit] + ("…" if len(line) > limit else "")


def _json_depth(s: str) -> int:
    """How deeply ``s`` nests brackets (strings skipped), stopping past MAX_JSON_DEPTH."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in s:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _json(s: str):
    """``s`` parsed as JSON, or None: not JSON, too long, or nested deeper than a
    generator writes (bounded work, and no RecursionError from the parser)."""
    s = s.strip()
    if not s or s[0] not in "[{" or len(s) > MAX_JSON_CHARS or _json_depth(s) > MAX_JSON_DEPTH:
        return None
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        return None


def _generator_from_text(text: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    params = text.get("parameters")
    if params is not None and _A1111_RE.search(params[:MAX_TEXT_SEARCH]):
        return "AUTOMATIC1111", "png:parameters", _first_line(params)
    prompt, workflow = _json(text.get("prompt", "")), _json(text.get("workflow", ""))
    if isinstance(prompt, dict) and any(
        isinstance(v, dict) and "class_type" in v for v in prompt.values()
    ):
        return "ComfyUI", "png:prompt", f"ComfyUI graph with {len(prompt)} nodes"
    if isinstance(workflow, dict) and "nodes" in workflow:
        return "ComfyUI", "png:workflow", f"ComfyUI workflow with {len(workflow['nodes'])} nodes"
    for key in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"):
        if key in text:
            return "InvokeAI", f"png:{key}", _first_line(text[key])
    if "fooocus_scheme" in text:
        return "Fooocus", "png:fooocus_scheme", _first_line(text.get("parameters", ""))
    description = text.get("Description")
    if description is not None and _MIDJOURNEY_RE.search(description[-MAX_TEXT_SEARCH:]):
        return "Midjourney", "png:Description", _first_line(description)
    # Only keys that name software: captions (Description, Comment, the JPEG comment)
    # are free text, where "the Gemini spacecraft" is not a generator.
    for key in ("Software", "Source"):
        name = match_generator(text.get(key))
        if name:
            return name, f"png:{key}" if ":" not in key else key, _first_line(text[key])
    if params is not None:  # a "parameters" chunk without the A1111 layout
        name = match_generator(params)
        if name:
            return name, "png:parameters", _first_line(params)
    return None, None, None
