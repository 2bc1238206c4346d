"""invisible-watermark's methods (dwtDct, dwtDctSvd, rivaGan) behind provkit's backend interface.

They are the baselines the bench compares against and a way to read marks made by
other tools. None of them can tell "no mark" from "a mark": ``decode`` returns the bits it
reads with an unknown (NaN) confidence. imwatermark (with OpenCV and torch; rivaGan also
onnxruntime) is not part of the core install: it comes with ``pip install 'provkit[bench]'``
and is imported only when one of these backends is used.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.extras import require

from .base import Decoded, check_payload, split_planes

#: method -> payload length in bytes (rivaGan's model carries exactly 32 bits).
METHODS = {"dwtDct": 8, "dwtDctSvd": 8, "rivaGan": 4}
MIN_PIXELS = 256 * 256


class InvisibleWatermark:
    """One invisible-watermark method; works on RGB (greyscale input comes back as RGB)."""

    def __init__(self, method: str):
        self.name = method
        self.payload_bytes = METHODS[method]

    def _bgr(self, image: Image.Image) -> tuple[np.ndarray, Image.Image | None]:
        planes = split_planes(image)
        rgb = planes.colour
        if rgb.mode == "I;16":
            rgb = Image.fromarray((np.asarray(rgb) >> 8).astype(np.uint8), "L")
        arr = np.asarray(rgb.convert("RGB"))
        if arr.shape[0] * arr.shape[1] < MIN_PIXELS:
            raise BadInput(
                f"image too small for {self.name}: {image.width}x{image.height} "
                "(needs at least 256x256 pixels)"
            )
        return np.ascontiguousarray(arr[..., ::-1]), planes.alpha

    def _load(self):
        what = f"the {self.name} watermark"
        if self.name == "rivaGan":
            require("bench", "onnxruntime", what=what)
        imwatermark = require("bench", "imwatermark", what=what)
        encoder, decoder = imwatermark.WatermarkEncoder, imwatermark.WatermarkDecoder
        if self.name == "rivaGan":
            encoder.loadModel()
        return encoder, decoder

    def embed(self, image: Image.Image, payload: bytes) -> Image.Image:
        check_payload(payload, self.payload_bytes, self.name)
        encoder_cls, _ = self._load()
        bgr, alpha = self._bgr(image)
        encoder = encoder_cls()
        encoder.set_watermark("bytes", bytes(payload))
        out = np.clip(encoder.encode(bgr, self.name), 0, 255).astype(np.uint8)
        marked = Image.fromarray(np.ascontiguousarray(out[..., ::-1]), "RGB")
        return marked if alpha is None else Image.merge("RGBA", (*marked.split(), alpha))

    def decode(self, image: Image.Image) -> Decoded | None:
        _, decoder_cls = self._load()
        bgr, _ = self._bgr(image)
        decoder = decoder_cls("bytes", 8 * self.payload_bytes)
        payload = decoder.decode(bgr, self.name)
        return Decoded(bytes(payload), float("nan"), self.name, None)
