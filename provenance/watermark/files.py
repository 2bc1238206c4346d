"""``provkit watermark embed`` and ``provkit watermark decode``: the file verbs (the
image-level ones are :mod:`provenance.watermark.marks`)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from provkit.provenance.core import imageio
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.files import atomic_write
from provkit.provenance.core.guard import guarded
from provkit.provenance.watermark import marks
from provkit.provenance.watermark.base import get_backend
from provkit.provenance.watermark.marks import DEFAULT_SCHEME
from provkit.provenance.watermark.thirdparty import third_party_marks


@dataclass(frozen=True)
class Embedded:
    path: str
    source: str
    scheme: str
    payload: bytes
    psnr: float | None

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "source": self.source,
            "scheme": self.scheme,
            "payload": self.payload.hex(),
            "psnr": self.psnr,
        }


@dataclass(frozen=True)
class WatermarkReport:
    """What :func:`decode` found: provkit's mark, or a third-party mark, or nothing."""

    path: str
    found: bool
    payload: bytes | None = None
    confidence: float | None = None
    scheme: str | None = None
    third_party: str | None = None
    error: str | None = None

    def to_json(self) -> dict:
        out = {
            "path": self.path,
            "found": self.found,
            "payload": self.payload.hex() if self.payload is not None else None,
            "confidence": self.confidence,
            "scheme": self.scheme,
            "third_party": self.third_party,
        }
        if self.error:
            out["error"] = self.error
        return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def save_atomic(
    image: Image.Image,
    out: Path,
    *,
    quality: int = 95,
    icc: bytes | None = None,
    exif: bytes | None = None,
) -> None:
    """Write ``image`` to ``out`` atomically (temporary file, fsync, rename)."""
    mime = imageio.mime_for_suffix(out)
    if mime not in ("image/png", "image/jpeg", "image/webp", "image/tiff"):
        raise BadInput("unsupported output format (use .png, .jpg, .webp or .tif)", path=out)
    atomic_write(
        out, imageio.encode(image, mime, quality=quality, icc_profile=icc, exif=exif, path=out)
    )


def psnr(a: Image.Image, b: Image.Image) -> float | None:
    x, y = np.asarray(imageio.to_rgb(a), np.float64), np.asarray(imageio.to_rgb(b), np.float64)
    if x.shape != y.shape:
        return None
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else round(10 * np.log10(255.0**2 / mse), 2)


def embed(
    source,
    out,
    *,
    payload: bytes | None = None,
    scheme: str = DEFAULT_SCHEME,
    quality: int = 95,
    force: bool = False,
) -> Embedded:
    """Watermark the image at ``source`` into ``out`` (never the source itself)."""
    src, dst = Path(source), Path(out)
    if _same_file(src, dst):
        raise BadInput("refusing to overwrite the input; choose another output path", path=dst)
    if dst.exists() and not force:
        raise BadInput("output exists (use --force to replace it)", path=dst)
    backend = get_backend(scheme)
    if payload is None:
        payload = secrets.token_bytes(backend.payload_bytes)
    image = imageio.open_image(src)
    try:
        marked = marks.embed(image, payload, scheme=scheme)
    except BadInput as e:
        raise BadInput(e.reason, path=src) from None
    save_atomic(
        marked, dst, quality=quality, icc=image.info.get("icc_profile"), exif=image.info.get("exif")
    )
    return Embedded(str(dst), str(src), scheme, bytes(payload), psnr(image, marked))


@guarded("read its watermark")
def decode(path, *, scheme: str | None = None) -> WatermarkReport:
    """Read the watermark of ``path``; third-party marks are reported when provkit's is absent."""
    image = imageio.open_image(path)
    mark = marks.decode(image, scheme=scheme)
    if mark is not None:
        conf = None if mark.confidence != mark.confidence else round(mark.confidence, 4)
        return WatermarkReport(str(path), True, mark.payload, conf, mark.scheme, mark.third_party)
    for other in third_party_marks(image):
        return WatermarkReport(
            str(path),
            True,
            other.payload,
            round(other.confidence, 4),
            other.scheme,
            other.third_party,
        )
    return WatermarkReport(str(path), False)
