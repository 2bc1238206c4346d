"""The backend interface, the registry of backends, and helpers they share.

A backend is a small object with two methods:

* ``describe() -> BackendInfo``: name, version, model, weights hash, parameters;
* ``render(request) -> iterable of PIL images``: ``request.count`` images, image ``i``
  made with seed ``request.seeds[i]``.

``render`` is called only by :func:`generate.seal.seal_all`; the public API hands out
sealed images only. Backends are found by name in :data:`BACKENDS` (imported lazily,
so naming one does not import torch) or given as a dotted ``module:Class`` path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from PIL import Image
from provkit.generate.request import BackendInfo, GenerationRequest
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.extras import require
from provkit.provenance.core.plugins import load_object
from provkit.provenance.core.weights import WEIGHT_SUFFIXES, weights_sha256  # noqa: F401  (re-exported: one cached weights hash for all)


@runtime_checkable
class Backend(Protocol):
    name: str

    def describe(self) -> BackendInfo: ...

    def render(self, request: GenerationRequest) -> Iterable[Image.Image]: ...


#: backend name -> "module:factory"; imported only when the backend is asked for.
BACKENDS: dict[str, str] = {
    "builtin": "provkit.generate.backends.builtin:BuiltinBackend",
    "diffusers": "provkit.generate.backends.diffusers_backend:DiffusersBackend",
    "gan": "provkit.generate.backends.latent:GanBackend",
    "vae": "provkit.generate.backends.latent:VaeBackend",
    "callable": "provkit.generate.backends.callable:CallableBackend",
}


def register_backend(name: str, target: str) -> None:
    """Make ``target`` (``"module:Factory"``) available as backend ``name``."""
    if ":" not in target:
        raise ConfigError(f"backend target must look like module:Factory, not {target!r}")
    BACKENDS[name] = target


def get_backend(name: str | Backend = "builtin", /, **options) -> Backend:
    """A ready backend: a registered name, a ``module:Factory`` path, or a backend object."""
    if not isinstance(name, str):
        if options:
            raise ConfigError("options cannot be given with a backend object")
        if not isinstance(name, Backend):
            raise ConfigError(f"{name!r} is not a backend (it needs describe() and render())")
        return name
    target = BACKENDS.get(name) or (name if ":" in name else None)
    if target is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown backend {name!r} (known: {known}, or module:Factory)")
    factory = load_object(target, what=f"backend {name!r}")
    try:
        backend = factory(**options)
    except TypeError as e:
        raise ConfigError(f"backend {name!r}: {e}") from None
    if not isinstance(backend, Backend):
        raise ConfigError(f"{target} did not make a backend (it needs describe() and render())")
    return backend


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` -> cuda, then mps, then cpu; an explicit device must exist (torch's view)."""
    torch = require("torch", "torch", what="choosing a torch device")

    device = (device or "auto").lower()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA device is available")
    if device == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError("--device mps was asked for but Metal (MPS) is not available")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise BadInput(f"device must be auto, cpu, cuda or mps, not {device!r}")
    return device


def state_dict_sha256(module) -> str:
    """SHA-256 of a torch module's parameters and buffers (names, shapes, dtypes, bytes)."""
    torch = require("torch", "torch")

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}\0{tuple(tensor.shape)}\0{t.dtype}\n".encode())
        if t.numel():
            h.update(memoryview(t.view(torch.uint8).numpy()))
    return h.hexdigest()


def tensor_to_images(batch, value_range: tuple[float, float] = (-1.0, 1.0)) -> list[Image.Image]:
    """A ``(N, C, H, W)`` float tensor in ``value_range`` -> N RGB PIL images."""
    import numpy as np

    torch = require("torch", "torch")

    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if batch.ndim != 4 or batch.shape[1] not in (1, 3, 4):
        raise BadInput(f"expected images shaped (N, 1|3|4, H, W), got {tuple(batch.shape)}")
    lo, hi = value_range
    x = (batch.detach().float().to("cpu") - lo) / (hi - lo)
    x = torch.nan_to_num(x, nan=0.0).clamp(0, 1)
    arr = (x.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
    images = []
    for a in arr:
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        images.append(Image.fromarray(np.ascontiguousarray(a[..., :3]), "RGB"))
    return images
