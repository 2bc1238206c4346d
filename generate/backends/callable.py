"""Any Python callable ``f(request) -> images`` as a backend: a studio's own model or an API client.

Give it as a dotted path (``mystudio.models:render``) or as the function itself. It
receives a :class:`~generate.request.GenerationRequest` and returns (or yields) one image
per seed in ``request.seeds``: PIL images, or ``HxWx3`` numpy arrays (uint8, or float in
[0, 1]). What it returns is sealed like every other backend's output.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image
from provkit.generate.request import BackendInfo, GenerationRequest
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.plugins import load_object
from provkit.provenance.core.weights import weights_sha256


def as_image(obj) -> Image.Image:
    """A PIL image or an HxWx3 / HxW numpy array -> RGB PIL image; BadInput otherwise."""
    if isinstance(obj, Image.Image):
        return obj.convert("RGB") if obj.mode != "RGB" else obj
    import numpy as np

    if isinstance(obj, np.ndarray) and obj.ndim in (2, 3):
        arr = obj
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.floating):
                raise BadInput(f"callable returned an array of {arr.dtype}; use uint8 or float")
            arr = (np.clip(np.nan_to_num(arr), 0, 1) * 255 + 0.5).astype(np.uint8)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.shape[2] not in (3, 4):
            raise BadInput(f"callable returned an array shaped {arr.shape}; want HxWx3")
        return Image.fromarray(np.ascontiguousarray(arr[..., :3]), "RGB")
    raise BadInput(f"callable returned {type(obj).__name__}; want a PIL image or numpy array")


class CallableBackend:
    """Wraps ``function(request)``; ``describe()`` reports what you tell it."""

    name = "callable"

    def __init__(
        self,
        function: str | Callable | None = None,
        *,
        model: str | None = None,
        name: str | None = None,
        version: str | None = None,
        weights: str | os.PathLike | None = None,
        source_type: str = "trainedAlgorithmicMedia",
        batch_size: int = 1,
        device: str | None = None,
    ):

        function = function if function is not None else model
        if function is None:
            raise ConfigError(
                "the callable backend needs a function (--model package.module:function)"
            )
        if isinstance(function, str):
            self.target = function
            function = load_object(function, what="generator function")
        else:
            self.target = f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"
        if not callable(function):
            raise ConfigError(f"{self.target} is not callable")
        self.function = function
        self.label = name or self.target
        self.version = version or _module_version(function)
        self.weights = Path(weights).expanduser() if weights is not None else None
        self.source_type = source_type
        self.batch_size = max(1, int(batch_size))
        self._sha256 = None

    def describe(self) -> BackendInfo:
        if self.weights is not None and self._sha256 is None:
            self._sha256 = weights_sha256(self.weights)
        return BackendInfo(
            name=self.label,
            version=self.version,
            model=self.target,
            weights_sha256=self._sha256,
            parameters={"callable": self.target},
            source_type=self.source_type,
        )

    def render(self, request: GenerationRequest) -> Iterator[Image.Image | Exception]:
        out = self.function(request)
        if out is None:
            raise BadInput(f"{self.target} returned nothing")
        items = [out] if isinstance(out, Image.Image) else list(out)
        for i in range(request.count):
            if i >= len(items):
                yield BadInput(
                    f"{self.target} returned {len(items)} images for {request.count} seeds"
                )
                continue
            try:
                yield as_image(items[i])
            except BadInput as e:
                yield e


def _module_version(function) -> str:
    module = getattr(function, "__module__", "") or ""
    root = module.split(".")[0]
    try:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(root)
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover
        pass
    import sys

    mod = sys.modules.get(module)
    return str(getattr(mod, "__version__", "unversioned"))
