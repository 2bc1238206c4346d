"""Adobe TrustMark, when its package and model files are already on this machine.

provkit never downloads models. The ``trustmark`` package fetches its checkpoints on first
use, so this backend first checks that the files are present (in ``$PROVKIT_TRUSTMARK_MODELS``
or the package's own ``models`` folder) and otherwise says exactly what is missing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from PIL import Image
from provkit.provenance.core.errors import ConfigError

from .base import Decoded, check_payload, to_rgb8

VARIANT = "Q"


def model_dir() -> Path | None:
    env = os.environ.get("PROVKIT_TRUSTMARK_MODELS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("trustmark")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "models"


def availability() -> str | None:
    """None when TrustMark can run here; otherwise the reason it cannot."""
    if importlib.util.find_spec("trustmark") is None:
        return (
            "TrustMark is not available: the 'trustmark' package is not installed "
            "(pip install trustmark, then place its model files locally)"
        )
    folder = model_dir()
    files = (
        sorted(p.name for p in folder.glob(f"*{VARIANT}*")) if folder and folder.is_dir() else []
    )
    if not any("encoder" in f for f in files) or not any("decoder" in f for f in files):
        return (
            f"TrustMark is not available: no variant-{VARIANT} encoder/decoder model files in "
            f"{folder}; provkit never downloads models: copy them there or set "
            "$PROVKIT_TRUSTMARK_MODELS"
        )
    return None


class TrustMarkBackend:
    name = "trustmark"
    payload_bytes = 8  # 64 of the 68 data bits of TrustMark's BCH_4 mode

    def __init__(self):
        reason = availability()
        if reason:
            raise ConfigError(reason)
        from trustmark import TrustMark

        self._tm = TrustMark(
            verbose=False, model_type=VARIANT, encoding_type=TrustMark.Encoding.BCH_4
        )

    def embed(self, image: Image.Image, payload: bytes) -> Image.Image:
        check_payload(payload, self.payload_bytes, self.name)
        bits = "".join(f"{b:08b}" for b in payload)
        return self._tm.encode(Image.fromarray(to_rgb8(image)), bits, MODE="binary")

    def decode(self, image: Image.Image) -> Decoded | None:
        secret, present, _ = self._tm.decode(Image.fromarray(to_rgb8(image)), MODE="binary")
        if not present:
            return None
        payload = int(secret[:64], 2).to_bytes(8, "big")
        return Decoded(payload, float("nan"), self.name, None)
