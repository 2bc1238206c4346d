"""GAN generators and VAE decoders: a torch module that maps a latent vector to an image.

Give the module as ``module:Class`` (imported, then built with ``init_kwargs``) and its
weights as a state-dict file (``.pt``/``.pth``/``.bin`` read with ``weights_only=True``,
or ``.safetensors``). Each image's latent is drawn from N(0, 1) with its own seed, so
image ``i`` is the same alone or in a batch. Images come out at the module's own size
unless another size is asked for; then they are resampled (Lanczos) to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from provkit.generate.backends.base import resolve_device, tensor_to_images
from provkit.generate.request import BackendInfo, GenerationRequest
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.extras import require
from provkit.provenance.core.plugins import load_object
from provkit.provenance.core.weights import weights_sha256

LATENT_ATTRS = ("latent_dim", "latent_size", "nz", "z_dim", "zdim")


def parse_shape(value) -> tuple[int, ...]:
    """``100``, ``"100"``, ``"100x1x1"`` or ``(100, 1, 1)`` -> a latent shape (without batch)."""
    if isinstance(value, int):
        shape = (value,)
    elif isinstance(value, str):
        try:
            shape = tuple(int(v) for v in value.lower().split("x"))
        except ValueError:
            raise BadInput(f"latent size must look like 128 or 4x8x8, not {value!r}") from None
    else:
        shape = tuple(int(v) for v in value)
    if not shape or any(v < 1 for v in shape):
        raise BadInput(f"latent size must be positive, not {value!r}")
    return shape


def parse_range(value) -> tuple[float, float]:
    """``"-1,1"`` / ``"0,1"`` / a pair -> (low, high) of the module's output."""
    if isinstance(value, str):
        try:
            lo, hi = (float(v) for v in value.split(","))
        except ValueError:
            raise BadInput(f"output range must look like -1,1 or 0,1, not {value!r}") from None
    else:
        lo, hi = (float(v) for v in value)
    if not hi > lo:
        raise BadInput(f"output range must go from low to high, not {value!r}")
    return lo, hi


def load_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise BadInput(f"cannot read weights ({e})", path=path) from None
    import pickle

    torch = require("torch", "torch")

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(
            "weights file holds pickled objects, not a state dict; save module.state_dict()",
            path=path,
        ) from None
    except (OSError, RuntimeError, EOFError) as e:
        raise BadInput(f"cannot read weights ({e})", path=path) from None
    for key in ("state_dict", "model", "generator", "decoder"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ConfigError("weights file does not hold a state dict", path=path)
    return state


class LatentBackend:
    """A latent-to-image torch module (the shared body of the gan and vae backends)."""

    name = "latent"
    default_range = (-1.0, 1.0)

    def __init__(
        self,
        module: str | None = None,
        weights: str | os.PathLike | None = None,
        *,
        model: str | os.PathLike | None = None,
        latent_size=None,
        output_range=None,
        init_kwargs: dict | None = None,
        device: str | None = "auto",
        batch_size: int = 16,
    ):
        torch = require("torch", "torch", what=f"the {self.name} backend")

        weights = weights if weights is not None else model
        if not module:
            raise ConfigError(f"the {self.name} backend needs --module package.module:Class")
        if weights is None:
            raise ConfigError(f"the {self.name} backend needs a weights file (--model PATH)")
        self.weights_path = Path(weights).expanduser()
        if not self.weights_path.is_file():
            raise BadInput("no such weights file", path=self.weights_path)
        cls = load_object(module, what=f"{self.name} module")
        try:
            net = cls(**(init_kwargs or {}))
        except TypeError as e:
            raise ConfigError(f"cannot build {module} ({e})") from None
        if not isinstance(net, torch.nn.Module):
            raise ConfigError(f"{module} is not a torch.nn.Module")
        try:
            net.load_state_dict(load_state_dict(self.weights_path))
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0:2]
            raise ConfigError(
                f"weights do not fit {module}: {' '.join(first)}", path=self.weights_path
            ) from None
        self.module_spec = module
        self.device = resolve_device(device)
        self.net = net.eval().to(self.device)
        if latent_size is None:
            latent_size = next(
                (getattr(net, a) for a in LATENT_ATTRS if isinstance(getattr(net, a, None), int)),
                None,
            )
            if latent_size is None:
                raise ConfigError(f"give the latent size of {module} (--latent-size N)")
        self.latent_shape = parse_shape(latent_size)
        self.output_range = (
            parse_range(output_range) if output_range is not None else self.default_range
        )
        self.batch_size = max(1, int(batch_size))
        self._sha256 = weights_sha256(self.weights_path)
        self.native_size = self._probe_size()

    @property
    def default_size(self) -> tuple[int, int]:
        """The module's own output size (used when the request names none)."""
        return self.native_size

    def _probe_size(self) -> tuple[int, int]:
        torch = require("torch", "torch")

        with torch.inference_mode():
            out = self.net(torch.zeros((1, *self.latent_shape), device=self.device))
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor) or out.ndim not in (3, 4):
            raise ConfigError(f"{self.module_spec} does not return an image tensor (N, C, H, W)")
        return int(out.shape[-1]), int(out.shape[-2])

    def describe(self) -> BackendInfo:
        torch = require("torch", "torch")

        return BackendInfo(
            name=self.name,
            version=torch.__version__,
            model=f"{self.module_spec} ({self.weights_path.name})",
            weights_sha256=self._sha256,
            parameters={
                "device": self.device,
                "latent_shape": list(self.latent_shape),
                "latent_prior": "normal(0, 1)",
                "output_range": list(self.output_range),
                "native_size": list(self.native_size),
            },
            source_type="trainedAlgorithmicMedia",
        )

    def render(self, request: GenerationRequest) -> Iterator[Image.Image]:
        torch = require("torch", "torch")

        if request.init_image is not None:
            raise BadInput(
                f"the {self.name} backend maps latents to images; it takes no init image"
            )
        z = torch.stack(
            [
                torch.randn(self.latent_shape, generator=torch.Generator().manual_seed(s))
                for s in request.seeds
            ]
        ).to(self.device)
        with torch.inference_mode():
            out = self.net(z)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise ConfigError(f"{self.module_spec} returned {type(out).__name__}, not a tensor")
        size = (request.width, request.height)
        for image in tensor_to_images(out, self.output_range):
            # another size was asked for: resample (the manifest keeps the native size)
            yield image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


class GanBackend(LatentBackend):
    """A GAN generator (e.g. DCGAN, StyleGAN's mapping+synthesis wrapped as one module)."""

    name = "gan"
    default_range = (-1.0, 1.0)


class VaeBackend(LatentBackend):
    """A VAE decoder sampling its prior."""

    name = "vae"
    default_range = (0.0, 1.0)
