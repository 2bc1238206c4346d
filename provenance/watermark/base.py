"""What every watermark backend shares: the decoded value, the backend interface,
the registry, and the image-mode handling that keeps alpha and bit depth intact."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.imageio import to_rgb

#: Smallest short side (pixels) the provkit scheme embeds into.
MIN_SIDE = 128
#: Smallest short side it reads from (a marked image may have been downscaled since).
MIN_DECODE_SIDE = 96


@dataclass(frozen=True)
class Decoded:
    """A mark read from pixels: its payload, how sure the reader is, and whose mark it is."""

    payload: bytes
    confidence: float  # provkit: share of code bits that agreed; NaN where a scheme cannot say
    scheme: str
    third_party: str | None = None

    def to_json(self) -> dict:
        conf = None if math.isnan(self.confidence) else round(float(self.confidence), 4)
        return {
            "payload": self.payload.hex(),
            "confidence": conf,
            "scheme": self.scheme,
            "third_party": self.third_party,
        }


class Backend(Protocol):
    name: str
    payload_bytes: int

    def embed(self, image: Image.Image, payload: bytes) -> Image.Image: ...

    def decode(self, image: Image.Image) -> Decoded | None: ...


_FACTORIES: dict[str, Callable[[], Backend]] = {}
_INSTANCES: dict[str, Backend] = {}


def register(name: str, factory: Callable[[], Backend]) -> None:
    _FACTORIES[name] = factory


def names() -> list[str]:
    return sorted(_FACTORIES)


def get_backend(name: str) -> Backend:
    if name not in _FACTORIES:
        raise ConfigError(f"unknown watermark scheme {name!r} (known: {', '.join(names())})")
    if name not in _INSTANCES:
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]


def check_payload(payload: bytes, size: int, scheme: str) -> None:
    if not isinstance(payload, (bytes, bytearray)) or len(payload) != size:
        got = len(payload) if isinstance(payload, (bytes, bytearray)) else type(payload).__name__
        raise BadInput(f"the {scheme} watermark payload must be exactly {size} bytes (got {got})")


def check_min_size(image: Image.Image, minimum: int = MIN_SIDE) -> None:
    if min(image.size) < minimum:
        w, h = image.size
        raise BadInput(
            f"image too small for the watermark: {w}x{h}; the short side must be "
            f"at least {minimum} px"
        )


# --- modes -----------------------------------------------------------------------------------
# Pixels are marked on 8-bit RGB or greyscale planes. Alpha is split off and put back
# untouched; 16-bit greyscale is marked at 16 bits; palette and other modes become RGB.

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")


@dataclass
class Planes:
    """The colour planes to mark, and how to put the image back together."""

    colour: Image.Image  # "RGB" or "L" (8-bit) or "I;16" (16-bit grey)
    alpha: Image.Image | None

    def rebuild(self, colour: Image.Image) -> Image.Image:
        if self.alpha is None:
            return colour
        if colour.mode == "L":
            return Image.merge("LA", (colour, self.alpha))
        return Image.merge("RGBA", (*colour.split(), self.alpha))


def split_planes(image: Image.Image) -> Planes:
    mode = image.mode
    if mode in ("RGB", "L"):
        return Planes(image, None)
    if mode == "RGBA":
        return Planes(image.convert("RGB"), image.getchannel("A"))
    if mode == "LA":
        return Planes(image.getchannel("L"), image.getchannel("A"))
    if mode in SIXTEEN_BIT:
        arr = np.asarray(image)
        if mode == "I" and arr.max(initial=0) <= 255:
            return Planes(Image.fromarray(arr.astype(np.uint8), "L"), None)
        return Planes(Image.fromarray(np.clip(arr, 0, 65535).astype(np.uint16)), None)
    if mode in ("P", "PA") and ("transparency" in image.info or mode == "PA"):
        rgba = image.convert("RGBA")
        return Planes(rgba.convert("RGB"), rgba.getchannel("A"))
    return Planes(image.convert("RGB"), None)


def luma(colour: Image.Image) -> Image.Image:
    """An 8-bit-scale luma plane ("L" or float "F") of the colour planes."""
    if colour.mode == "I;16":
        return Image.fromarray(np.asarray(colour, np.float32) / 257.0, "F")
    return colour if colour.mode == "L" else colour.convert("L")


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Any image as an 8-bit RGB array (for backends that work on RGB only)."""

    return np.asarray(to_rgb(image))
