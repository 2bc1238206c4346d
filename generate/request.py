"""The values a generation passes around: what was asked for, and who made it.

:class:`GenerationRequest` is what a backend receives; :class:`BackendInfo` is what
a backend says about itself (it becomes the manifest's softwareAgent and
parameters). Both are small frozen dataclasses with ``to_json()``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image
from provkit.provenance.core.errors import BadInput

#: Largest side a request may ask for; a typo like 51200 fails fast instead of exhausting memory.
MAX_SIDE = 8192
#: Smallest side an image that leaves provkit may have: the watermark needs 128 px
#: (provenance.watermark.MIN_SIDE), and every generated image is watermarked.
MIN_SIDE = 128
SEED_LIMIT = 2**63


def random_seed() -> int:
    """A fresh seed for a request that gave none (recorded, so the image can be remade)."""
    return secrets.randbelow(2**32)


def parse_size(text: str) -> tuple[int, int]:
    """``"512x768"`` or ``"512"`` -> ``(512, 768)`` / ``(512, 512)``; BadInput otherwise."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        if len(parts) == 1:
            w = h = int(parts[0])
        elif len(parts) == 2:
            w, h = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise BadInput(f"size must look like WIDTHxHEIGHT (e.g. 512x512), not {text!r}") from None
    _check_side(w, "width", MIN_SIDE)
    _check_side(h, "height", MIN_SIDE)
    return w, h


def check_sealable(width: int, height: int) -> None:
    """BadInput unless an image of this size can be sealed (watermarked) on the way out."""
    _check_side(width, "width", MIN_SIDE)
    _check_side(height, "height", MIN_SIDE)


def _check_side(v: int, what: str, minimum: int = 8) -> None:
    """``minimum`` is 8 for what a backend may render, :data:`MIN_SIDE` for an output."""
    if not isinstance(v, int) or isinstance(v, bool) or not minimum <= v <= MAX_SIDE:
        hint = (
            " (the watermark every output carries needs at least that)"
            if minimum == MIN_SIDE and isinstance(v, int) and 0 < v < minimum
            else ""
        )
        raise BadInput(
            f"{what} must be a whole number of pixels from {minimum} to {MAX_SIDE}, not {v!r}{hint}"
        )


@dataclass(frozen=True)
class GenerationRequest:
    """One call to a backend: ``count`` images, image ``i`` made with seed ``seed + i``.

    ``init_image`` (a PIL image) turns text-to-image into image-to-image; ``strength``
    says how far the result may move away from it (0 keeps it, 1 ignores it).
    """

    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    width: int = 512
    height: int = 512
    count: int = 1
    steps: int | None = None
    guidance: float | None = None
    init_image: Image.Image | None = field(default=None, compare=False, repr=False)
    strength: float = 0.6

    def __post_init__(self):
        if not isinstance(self.prompt, str):
            raise BadInput("prompt must be text")
        _check_side(self.width, "width")
        _check_side(self.height, "height")
        if not isinstance(self.seed, int) or not 0 <= self.seed < SEED_LIMIT:
            raise BadInput(f"seed must be a whole number from 0 to 2**63-1, not {self.seed!r}")
        if not isinstance(self.count, int) or self.count < 1:
            raise BadInput(f"count must be at least 1, not {self.count!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise BadInput(f"steps must be a positive whole number, not {self.steps!r}")
        if self.guidance is not None and not self.guidance >= 0:
            raise BadInput(f"guidance must be zero or more, not {self.guidance!r}")
        if not 0.0 <= self.strength <= 1.0:
            raise BadInput(f"strength must be between 0 and 1, not {self.strength!r}")

    @property
    def seeds(self) -> list[int]:
        """The seed of each image in this request, in order."""
        return [(self.seed + i) % SEED_LIMIT for i in range(self.count)]

    @property
    def prompt_sha256(self) -> str:
        return hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()

    @property
    def negative_prompt_sha256(self) -> str | None:
        """SHA-256 of the negative prompt; None when there is none."""
        if not self.negative_prompt:
            return None
        return hashlib.sha256(self.negative_prompt.encode("utf-8")).hexdigest()

    def single(self, index: int) -> GenerationRequest:
        """The request for image ``index`` alone (count 1, its own seed)."""
        return replace(self, seed=self.seeds[index], count=1)

    def chunk(self, start: int, size: int) -> GenerationRequest:
        """Images ``start .. start+size-1`` of this request as a request of their own."""
        return replace(self, seed=self.seeds[start], count=min(size, self.count - start))

    def to_json(self, *, record_prompt: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "prompt_sha256": self.prompt_sha256,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "count": self.count,
            "steps": self.steps,
            "guidance": self.guidance,
            "image_to_image": self.init_image is not None,
        }
        if self.init_image is not None:
            data["strength"] = self.strength
        if record_prompt:
            data["prompt"] = self.prompt
            data["negative_prompt"] = self.negative_prompt
        elif self.negative_prompt:
            data["negative_prompt_sha256"] = self.negative_prompt_sha256
        return data


@dataclass(frozen=True)
class BackendInfo:
    """What made an image: recorded as the manifest's softwareAgent and parameters.

    ``parameters`` holds facts about the backend itself (device, dtype, the model's
    own watermarker or safety checker), not about one request.
    """

    name: str
    version: str
    model: str | None = None
    weights_sha256: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    source_type: str = "trainedAlgorithmicMedia"

    def _details(self) -> str:
        bits = []
        if self.model:
            bits.append(f"model={self.model}")
        if self.weights_sha256:
            bits.append(f"weights=sha256:{self.weights_sha256[:16]}")
        return f" ({'; '.join(bits)})" if bits else ""

    @property
    def agent_name(self) -> str:
        """The manifest's softwareAgent name: backend, model and weights hash (version apart)."""
        return self.name + self._details()

    @property
    def software_agent(self) -> str:
        """``provkit-builtin/1.0 (model=cppn-h24)``: backend/version, model, weights hash."""
        return f"{self.name}/{self.version}{self._details()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "model": self.model,
            "weights_sha256": self.weights_sha256,
            "parameters": dict(self.parameters),
            "source_type": self.source_type,
            "software_agent": self.software_agent,
        }
