"""The one place provkit sniffs file types, opens images and encodes them.

Every reader goes through :func:`sniff` and :func:`open_image`, so size limits and
error messages are the same everywhere: a bad file gives a :class:`BadInput` naming
the file and the cause, never a traceback. Every writer of pixels goes through
:func:`encode`, so a JPEG, PNG or WebP provkit writes is the same whichever verb
wrote it.

Why one module over 400 lines: sniffing (images and every other format C2PA carries),
the pixel budget and decoding are one contract: the budget is checked on what the
sniffer recognised, before the decoder sees a byte, and splitting them would give
readers two doors to pass through.
"""

from __future__ import annotations

import io
import os
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from PIL import Image
from provkit.provenance.core import imagecost
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.files import open_regular, read_head, regular_file

#: Default of the largest image provkit decodes, in pixels: 100 MP (a 100-megapixel
#: medium-format frame). A header declaring more is refused before any pixel is decoded.
#: ``$PROVKIT_MAX_PIXELS`` replaces it, smaller or larger (read each time an image is
#: opened); provkit enforces it itself, and Pillow's own bomb limit is set aside.
DEFAULT_MAX_PIXELS = 100_000_000
_limit_override: int | None = None  # set_max_pixels (``provkit serve --max-pixels``)


def set_max_pixels(value: int | None) -> None:
    """Set this process's pixel limit (None: back to ``$PROVKIT_MAX_PIXELS``/default)."""
    global _limit_override
    _limit_override = None if value is None else max(1, int(value))


_context_limit: ContextVar[int | None] = ContextVar("provkit_pixel_limit", default=None)


@contextmanager
def pixel_limit(value: int | None):
    """Within the block (this thread or task), a pixel limit of at most ``value``
    (the service's lower limit for anonymous callers); None: no change."""
    token = _context_limit.set(value)
    try:
        yield
    finally:
        _context_limit.reset(token)


def max_pixels() -> int:
    """The pixel limit in force: :func:`set_max_pixels`, else ``$PROVKIT_MAX_PIXELS``,
    else :data:`DEFAULT_MAX_PIXELS`; lowered within a :func:`pixel_limit` block."""
    lowered = _context_limit.get()
    if lowered is not None:
        return min(lowered, _process_max_pixels())
    return _process_max_pixels()


def _process_max_pixels() -> int:
    if _limit_override is not None:
        return _limit_override
    text = os.environ.get("PROVKIT_MAX_PIXELS", "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        raise ConfigError(f"PROVKIT_MAX_PIXELS must be a number of pixels, not {text!r}") from None
    return max(1, value)


# provkit checks every declared size itself (check_size); Pillow's own limit (89.5 MP
# warns, 179 MP raises) would override a larger PROVKIT_MAX_PIXELS.
Image.MAX_IMAGE_PIXELS = None


# Magic numbers -> MIME type, for the formats C2PA can carry a manifest in.
_SIGNATURES: list[tuple[int, bytes, str]] = [
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\xff\x0a", "image/jxl"),
    (0, b"\x00\x00\x00\x0cJXL \r\n\x87\n", "image/jxl"),
    (0, b"<svg", "image/svg+xml"),
    (0, b"<?xml", "image/svg+xml"),
]
_FTYP_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
}

#: A BMP starts "BM"; its info header (at byte 14) has one of these sizes.
_BMP_INFO_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})

EXTENSION_FOR_MIME = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/tiff": ".tif",
    "image/avif": ".avif",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/jxl": ".jxl",
    "image/svg+xml": ".svg",
    "image/bmp": ".bmp",  # read only: C2PA cannot be embedded in BMP
}


def sniff_bytes(head: bytes) -> str | None:
    """The MIME type of a file from its first bytes, or None if it is no known image."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    if (
        len(head) >= 18
        and head[:2] == b"BM"
        and int.from_bytes(head[14:18], "little") in _BMP_INFO_SIZES
    ):
        return "image/bmp"
    for offset, magic, mime in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return mime
    return None


#: Non-image formats C2PA can carry a manifest in (read by :func:`sniff_media`), with
#: the extension a signed output of that type gets.
MEDIA_EXTENSION_FOR_MIME = {
    "application/pdf": ".pdf",
    "audio/wav": ".wav",
    "video/avi": ".avi",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/x-m4v": ".m4v",
    "audio/mp4": ".m4a",
    "audio/mpeg": ".mp3",
    "audio/flac": ".flac",
    "application/epub+zip": ".epub",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
}
_MEDIA_FTYP = {
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"M4V ": "video/x-m4v",
    b"qt  ": "video/quicktime",
}
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


#: Image types provkit decodes to pixels (watermark, fingerprints, classifier). HEIC/HEIF,
#: JPEG XL and SVG carry C2PA manifests but are not decoded here: only their credentials
#: are read.
PIXEL_MIMES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/bmp", "image/avif"}
)


def is_image_mime(mime: str | None) -> bool:
    """Whether provkit decodes this type to pixels (watermark, fingerprints, classifier)."""
    return mime in PIXEL_MIMES


def sniff_media_bytes(head: bytes) -> str | None:
    """The MIME type of a non-image file C2PA can carry a manifest in, from its first
    bytes (ZIP containers are told apart by :func:`sniff_media`), or None."""
    if head[:5] == b"%PDF-":
        return "application/pdf"
    if len(head) >= 8 and head[4:8] == b"jumb":  # a C2PA manifest store on its own (.c2pa)
        return "application/c2pa"
    if len(head) >= 12 and head[:4] == b"RIFF":
        return {b"WAVE": "audio/wav", b"AVI ": "video/avi"}.get(head[8:12])
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _MEDIA_FTYP:
            return _MEDIA_FTYP[brand]
        if brand in _FTYP_BRANDS:
            return None
        return "video/mp4"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:3] == b"ID3" or (
        len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06
    ):
        return "audio/mpeg"
    return None


def _zip_mime(p: Path) -> str | None:
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            if "mimetype" in names:
                info = z.getinfo("mimetype")
                if info.file_size <= 200:
                    mime = z.read("mimetype").decode("ascii", "replace").strip()
                    return mime if mime in MEDIA_EXTENSION_FOR_MIME else None
            if "[Content_Types].xml" in names:
                for prefix, mime in _OOXML.items():
                    if any(n.startswith(prefix) for n in names):
                        return mime
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return None
    return None


def sniff_media(path: str | os.PathLike) -> str:
    """The MIME type of any file C2PA can carry a manifest in: an image (:func:`sniff`),
    a PDF, audio (WAV, MP3, FLAC, M4A), video (MP4, MOV, AVI) or an office/EPUB
    document, told by content, never by the name. BadInput for anything else."""
    p = Path(path)
    try:
        return sniff(p)
    except BadInput as e:
        if "unrecognised file signature" not in e.reason:
            raise
    with open_regular(p) as f:
        head = f.read(64)
        if head[:3] == b"ID3" and len(head) >= 10:  # an ID3v2 tag may front FLAC as well as MP3
            size = (
                10
                + (
                    (head[6] & 0x7F) << 21
                    | (head[7] & 0x7F) << 14
                    | (head[8] & 0x7F) << 7
                    | (head[9] & 0x7F)
                )
                + (10 if head[5] & 0x10 else 0)
            )
            f.seek(size)
            if f.read(4) == b"fLaC":
                return "audio/flac"
    mime = sniff_media_bytes(head)
    if mime is None and head[:4] == b"PK\x03\x04":
        mime = _zip_mime(p)
    if mime is None:
        raise BadInput(
            "not an image or other file C2PA can carry (unrecognised file signature)", path=p
        )
    return mime


def sniff(path: str | os.PathLike) -> str:
    """The MIME type of an image file; raises BadInput if missing, empty or not an image."""
    p = Path(path)
    try:
        head = read_head(p, 64)
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    if not head:
        raise BadInput("empty file (0 bytes)", path=p)
    mime = sniff_bytes(head)
    if mime is None:
        raise BadInput("not an image (unrecognised file signature)", path=p)
    return mime


def open_image(path: str | os.PathLike, *, draft: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode an image, checking its declared size first.

    ``draft`` asks the JPEG decoder for a reduced size (fast, for fingerprints).
    Raises BadInput for missing, empty, truncated, oversized or unreadable files.
    """
    p = Path(path)
    sniff(p)
    try:
        with warnings.catch_warnings():
            # Pillow's warnings (corrupt EXIF, truncated reads...) are not printed: the
            # one-line error rule holds, and a file's problems surface as BadInput.
            warnings.simplefilter("ignore")
            img = Image.open(p)  # a regular file: sniff checked it
            check_size(img.size, path=p)
            imagecost.check(img, p)  # ends before its data, or too small to hold it
            if draft is not None and img.format == "JPEG":
                img.draft("RGB", draft)
            img.load()
    except BadInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput("image too large to decode safely", path=p) from None
    except OSError as e:
        msg = str(e)
        low = msg.lower()  # Pillow says "image file is truncated" and "Truncated File Read"
        if "truncated" in low or "broken data stream" in low or "premature end" in low:
            raise BadInput("truncated image data", path=p) from None
        raise BadInput(f"cannot decode image ({msg})", path=p) from None
    except MemoryError:
        raise BadInput("cannot decode image (out of memory)", path=p) from None
    except Exception as e:  # noqa: BLE001  # any decoder failure is this file's problem
        first = (str(e).splitlines() or [""])[0][:200]
        raise BadInput(f"cannot decode image ({type(e).__name__}: {first})", path=p) from None
    return img


def check_size(size: tuple[int, int], *, path=None) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise BadInput(f"invalid image dimensions {w}x{h}", path=path)
    limit = max_pixels()
    if w * h > limit:
        raise BadInput(
            f"image too large: {w}x{h} = {w * h:,} pixels exceeds the limit of {limit:,} "
            "(PROVKIT_MAX_PIXELS)",
            path=path,
        )


def load_rgb(path: str | os.PathLike, *, draft: tuple[int, int] | None = None) -> Image.Image:
    """Open an image and return it as 8-bit RGB (alpha dropped, 16-bit scaled)."""
    return to_rgb(open_image(path, draft=draft))


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL image (palette, greyscale, 16-bit, alpha) to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype("uint8")
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA").convert("RGB")
    return img.convert("RGB")


def mime_for_suffix(path: str | os.PathLike) -> str | None:
    """The MIME type an output file name asks for, from its extension."""
    ext = Path(path).suffix.lower()
    aliases = {".jpeg": ".jpg", ".tiff": ".tif", ".jpe": ".jpg"}
    ext = aliases.get(ext, ext)
    for mime, e in (EXTENSION_FOR_MIME | MEDIA_EXTENSION_FOR_MIME).items():
        if e == ext:
            return mime
    return None


#: File name endings taken as images when a folder is listed.
IMAGE_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".gif",
        ".tif",
        ".tiff",
        ".bmp",
        ".avif",
        ".heic",
        ".heif",
        ".jxl",
    }
)


#: Markers of key material: a file holding one is never read as a list of paths.
_SECRET_MARKERS = (b"PRIVATE KEY-----", b"-----BEGIN OPENSSH", b"-----BEGIN PGP PRIVATE")
#: Largest list file read (a list of a million paths is well under this).
MAX_LIST_BYTES = 256 << 20


def image_paths(source: str | os.PathLike) -> list[Path]:
    """Images under a folder (recursive, sorted), one image, or the paths in a list file.

    A list file has one path per line (blank lines and ``#`` comments skipped);
    relative paths are taken relative to the list file's folder. Raises BadInput for
    a missing source or a file that is neither an image nor a text list.

    A text file is taken as a list only if it looks like one: no key material, and at
    least one of its entries names an existing file. Otherwise it is refused without
    quoting a single line of it (``provkit index add x signer.key`` must not print the
    key). Named pipes and other non-regular files are refused, never opened."""
    src = Path(source)
    if src.is_dir():
        return sorted(
            p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
    if not src.exists():
        raise BadInput("no such file or folder", path=src)
    regular_file(src)
    if src.suffix.lower() in IMAGE_SUFFIXES:
        return [src]
    try:
        sniff(src)
        return [src]
    except BadInput:
        pass
    refused = "neither an image, a folder nor a list of image paths"
    data = read_head(src, MAX_LIST_BYTES + 1)
    if len(data) > MAX_LIST_BYTES:
        raise BadInput(f"{refused} (over {MAX_LIST_BYTES >> 20} MB)", path=src)
    if any(marker in data for marker in _SECRET_MARKERS):
        raise BadInput(f"{refused}: it holds key material (its lines are not shown)", path=src)
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise BadInput(f"{refused} (not UTF-8 text)", path=src) from None
    paths = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            paths.append(p if p.is_absolute() else src.parent / p)
    if paths and not any(_exists(p) for p in paths[:1000]):
        raise BadInput(
            f"{refused}: not a list of image paths (none of its first "
            f"{min(len(paths), 1000)} entries names an existing file; its lines are "
            "not shown)",
            path=src,
        )
    return paths


#: PIL format name for each output MIME type provkit encodes pixels to.
PIL_FORMAT = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/tiff": "TIFF",
    "image/avif": "AVIF",
}
JPEG_QUALITY = 95
#: zlib level for PNG: 1 encodes about 5x faster than PIL's default 6 for ~10% larger files.
PNG_COMPRESS_LEVEL = 1


def encode(
    image: Image.Image,
    mime: str,
    *,
    quality: int = JPEG_QUALITY,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    path=None,
) -> bytes:
    """Encode pixels to ``mime`` (JPEG and WebP at ``quality``, JPEG 4:4:4; PNG fast
    level 1; lossless where the format is). ``icc_profile`` and ``exif`` are kept where
    the format carries them.

    ``path``: the output file, named in the error when ``mime`` cannot be encoded."""
    fmt = PIL_FORMAT.get(mime)
    if fmt is None:
        raise BadInput(
            f"provkit cannot encode pixels as {mime}; choose .jpg, .png or .webp", path=path
        )
    img = image
    if fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        img = to_rgb(img)
    if fmt == "WEBP" and img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")
    kwargs: dict = {}
    if fmt == "JPEG":
        kwargs = {"quality": quality, "subsampling": 0}
    elif fmt == "PNG":
        kwargs = {"compress_level": PNG_COMPRESS_LEVEL}
    elif fmt == "WEBP":
        kwargs = {"quality": quality, "method": 4}
    elif fmt == "TIFF":
        # Pillow would reuse the source's compression (a fax Group 4 TIFF's pixels come
        # back as RGB, which group4 cannot hold): choose one that fits the mode.
        kwargs = {"compression": "group4" if img.mode == "1" else "tiff_lzw"}
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    if exif and fmt in ("JPEG", "PNG", "WEBP"):
        kwargs["exif"] = exif
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except (OSError, ValueError):
        return False


#: what a folder listing passes over, by suffix, in words (anything else: "not an image type")
_SKIPPED_KINDS = {
    ".pdf": "a PDF, not a still image",
    ".mp4": "a video, not a still image",
    ".mov": "a video, not a still image",
    ".wav": "audio, not an image",
    ".mp3": "audio, not an image",
    ".c2pa": "a C2PA sidecar, not an image",
    ".txt": "text, not an image",
    ".json": "JSON, not an image",
}


def skipped_files(source: str | os.PathLike) -> list[tuple[Path, str]]:
    """The files :func:`image_paths` passes over in a folder, each with the reason in
    words (sorted; empty for a file or list source), so a scan can say what it skipped."""
    src = Path(source)
    if not src.is_dir():
        return []
    return [
        (p, _SKIPPED_KINDS.get(p.suffix.lower(), "not an image type"))
        for p in sorted(src.rglob("*"))
        if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES
    ]


def expand_inputs(args) -> list[Path]:
    """Command inputs with each folder replaced by its images (as :func:`image_paths`
    lists them: recursive, sorted, by suffix); files are kept as given, so one that is
    missing or unreadable is reported by the command that reads it. A folder holding no
    image is BadInput."""
    out: list[Path] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = image_paths(p)
            if not found:
                raise BadInput("the folder holds no images", path=p)
            out.extend(found)
        else:
            out.append(p)
    return out
