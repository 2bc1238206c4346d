"""The one place provkit sniffs file types, opens images and encodes them.

Every reader goes through :func:`sniff` and :func:`open_image`, so size limits and
error messages are the same everywhere: a bad file gives a :class:`BadInput` naming
the file and the cause, never a traceback. Every writer of pixels goes through
:func:`encode`, so a JPEG, PNG or WebP provkit writes is the same whichever verb
wrote it.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

from PIL import Image

from provenance.core.errors import BadInput

#: Largest image provkit will decode, in pixels (a 60k x 60k header bomb is refused).
MAX_PIXELS = int(os.environ.get("PROVKIT_MAX_PIXELS", "200000000"))

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
    if len(head) >= 18 and head[:2] == b"BM" and \
            int.from_bytes(head[14:18], "little") in _BMP_INFO_SIZES:
        return "image/bmp"
    for offset, magic, mime in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return mime
    return None


def sniff(path: str | os.PathLike) -> str:
    """The MIME type of an image file; raises BadInput if missing, empty or not an image."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise BadInput("no such file", path=p) from None
    except IsADirectoryError:
        raise BadInput("is a directory, not an image", path=p) from None
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
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(p)
            check_size(img.size, path=p)
            if draft is not None and img.format == "JPEG":
                img.draft("RGB", draft)
            img.load()
    except BadInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput("image too large to decode safely", path=p) from None
    except OSError as e:
        msg = str(e)
        if "truncated" in msg or "broken data stream" in msg or "premature end" in msg.lower():
            raise BadInput("truncated image data", path=p) from None
        raise BadInput(f"cannot decode image ({msg})", path=p) from None
    except (ValueError, SyntaxError, Image.UnidentifiedImageError) as e:
        raise BadInput(f"cannot decode image ({e})", path=p) from None
    return img


def check_size(size: tuple[int, int], *, path=None) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise BadInput(f"invalid image dimensions {w}x{h}", path=path)
    if w * h > MAX_PIXELS:
        raise BadInput(
            f"image too large: {w}x{h} = {w * h:,} pixels exceeds the limit of {MAX_PIXELS:,}",
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
    for mime, e in EXTENSION_FOR_MIME.items():
        if e == ext:
            return mime
    return None


#: File name endings taken as images when a folder is listed.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".tif", ".tiff",
                            ".bmp", ".avif", ".heic", ".heif", ".jxl"})


def image_paths(source: str | os.PathLike) -> list[Path]:
    """Images under a folder (recursive, sorted), one image, or the paths in a list file.

    A list file has one path per line (blank lines and ``#`` comments skipped);
    relative paths are taken relative to the list file's folder. Raises BadInput for
    a missing source or a file that is neither an image nor a text list.
    """
    src = Path(source)
    if src.is_dir():
        return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not src.exists():
        raise BadInput("no such file or folder", path=src)
    if src.suffix.lower() in IMAGE_SUFFIXES:
        return [src]
    try:
        sniff(src)
        return [src]
    except BadInput:
        pass
    try:
        lines = src.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"neither an image, a folder nor a text list of paths ({e})", path=src) from None
    paths = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            paths.append(p if p.is_absolute() else src.parent / p)
    return paths


#: PIL format name for each output MIME type provkit encodes pixels to.
PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP",
              "image/gif": "GIF", "image/tiff": "TIFF", "image/avif": "AVIF"}
JPEG_QUALITY = 95
#: zlib level for PNG: 1 encodes about 5x faster than PIL's default 6 for ~10% larger files.
PNG_COMPRESS_LEVEL = 1


def encode(image: Image.Image, mime: str, *, quality: int = JPEG_QUALITY,
           icc_profile: bytes | None = None, exif: bytes | None = None, path=None) -> bytes:
    """Encode pixels to ``mime`` (JPEG and WebP at ``quality``, JPEG 4:4:4; PNG fast
    level 1; lossless where the format is). ``icc_profile`` and ``exif`` are kept where
    the format carries them.

    ``path``: the output file, named in the error when ``mime`` cannot be encoded."""
    fmt = PIL_FORMAT.get(mime)
    if fmt is None:
        raise BadInput(f"provkit cannot encode pixels as {mime}; choose .jpg, .png or .webp",
                       path=path)
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
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    if exif and fmt in ("JPEG", "PNG", "WEBP"):
        kwargs["exif"] = exif
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()
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
