"""The built-in generator: a compositional pattern-producing network (CPPN).

A CPPN maps each pixel's coordinates (x, y, distance from the centre, angle
features for rotational symmetry) through a few layers of sin / tanh / gaussian
activations to a colour. Its weights are drawn from the prompt and the seed:

* the prompt alone fixes the *style*: palette, symmetry order, mirror fold, depth,
  activations, zoom; so one prompt gives a family of related pictures;
* prompt + seed fix the *weights*; so each seed is a different member of the family.

No weights to download, deterministic per (prompt, seed) on a given device, a fraction
of a second for 512x512 on a CPU, and it uses the GPU when there is one. With an init
image (image-to-image), the image's colours become extra inputs and its light and shade
lead the palette, so the picture follows its composition; ``strength`` says how far it
may depart from it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Iterator

from PIL import Image

from generate.request import BackendInfo, GenerationRequest

VERSION = "1.0"
HIDDEN = 24
#: pixels evaluated per chunk (bounds memory at large sizes)
CHUNK = 1 << 18


def _rng_seed(*parts: bytes) -> int:
    digest = hashlib.sha256(b"\0".join(parts)).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


class BuiltinBackend:
    """The embedded default backend: abstract art from a prompt, no downloads."""

    name = "builtin"

    def __init__(self, device: str = "auto", hidden: int = HIDDEN):
        self.device_request = device
        self.hidden = int(hidden)
        self._device = None

    @property
    def device(self) -> str:
        if self._device is None:
            from generate.backends.base import resolve_device

            self._device = resolve_device(self.device_request)
        return self._device

    def describe(self) -> BackendInfo:
        import torch

        return BackendInfo(
            name="provkit-builtin",
            version=VERSION,
            model=f"cppn-h{self.hidden}",
            weights_sha256=None,  # weights are derived from prompt and seed, not loaded
            parameters={"device": self.device, "torch": torch.__version__},
            source_type="algorithmicMedia",
        )

    def render(self, request: GenerationRequest) -> Iterator[Image.Image]:
        init = None
        if request.init_image is not None:
            init = request.init_image.convert("RGB").resize(
                (request.width, request.height), Image.Resampling.BICUBIC
            )
        for seed in request.seeds:
            yield self.paint(request.prompt, seed, request.width, request.height, init,
                             request.strength)

    # -- the picture ---------------------------------------------------------------

    def paint(self, prompt: str, seed: int, width: int, height: int,
              init: Image.Image | None = None, strength: float = 0.6) -> Image.Image:
        import numpy as np
        import torch

        prompt_bytes = prompt.encode("utf-8")
        style = torch.Generator().manual_seed(_rng_seed(b"style", prompt_bytes))
        weights = torch.Generator().manual_seed(
            _rng_seed(b"weights", prompt_bytes, seed.to_bytes(8, "big"))
        )
        net = _cppn_class().draw(style, weights, self.hidden, with_image=init is not None)
        net = net.to(self.device)

        coords = _coordinates(width, height, net, self.device)
        guide = None
        if init is not None:
            guide = torch.from_numpy(np.asarray(init, dtype=np.float32) / 255.0)
            guide = guide.reshape(-1, 3).to(self.device)
            coords = torch.cat([coords, (guide * 2 - 1) * (1.0 - strength)], dim=1)

        out = torch.empty((coords.shape[0], 3), device=self.device)
        with torch.no_grad():
            for start in range(0, coords.shape[0], CHUNK):
                part = slice(start, start + CHUNK)
                out[part] = net(coords[part], None if guide is None else guide[part], strength)
        rgb = out.reshape(height, width, 3).clamp(0, 1).mul(255).add(0.5).to(torch.uint8)
        return Image.fromarray(rgb.cpu().numpy(), "RGB")


def _coordinates(width: int, height: int, net, device: str):
    """Per-pixel inputs: x, y, radius, and the angle at the style's symmetry order."""
    import torch

    aspect = width / height
    sx, sy = (aspect, 1.0) if aspect >= 1 else (1.0, 1.0 / aspect)
    ys = torch.linspace(-sy, sy, height, device=device)
    xs = torch.linspace(-sx, sx, width, device=device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    x, y = x.reshape(-1) * net.zoom, y.reshape(-1) * net.zoom
    if net.mirror:
        x = x.abs()
    r = torch.sqrt(x * x + y * y)
    # angle features fade towards the centre, where the angle is undefined
    theta = torch.atan2(y, x) * net.symmetry
    fade = torch.tanh(r * net.symmetry_fade) * net.angle_weight
    return torch.stack([x, y, r, torch.sin(theta) * fade, torch.cos(theta) * fade], dim=1)


def _make_cppn_class():
    import torch
    from torch import nn

    def gaussian(t):
        return torch.exp(-t * t)

    activations = {"sin": torch.sin, "tanh": torch.tanh, "gauss": gaussian}

    class Cppn(nn.Module):
        def __init__(self, n_in, hidden, acts, palette, zoom, symmetry, mirror):
            super().__init__()
            dims = [n_in] + [hidden] * len(acts)
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
            self.head = nn.Linear(hidden, 3)
            self.acts = [activations[a] for a in acts]
            self.register_buffer("palette", palette)  # (4, 3): a, b, c, d of a cosine palette
            self.zoom, self.symmetry, self.mirror = zoom, symmetry, mirror
            self.symmetry_fade, self.angle_weight = 0.7, 1.0

        def forward(self, inputs, guide=None, strength=1.0):
            h = inputs
            for layer, act in zip(self.layers, self.acts):
                h = act(layer(h))
            tone, shade, mix = self.head(h).unbind(dim=1)
            t = torch.sigmoid(tone).unsqueeze(1)
            light = 0.55 + 0.45 * torch.sigmoid(1.5 * shade).unsqueeze(1)
            if guide is not None:  # image-to-image: the init image's light and shade lead
                lum = (guide * torch.tensor([0.299, 0.587, 0.114], device=guide.device)).sum(
                    dim=1, keepdim=True)
                t = (1 - strength) * lum + strength * t
                light = (1 - strength) * (0.25 + 0.75 * lum) + strength * light
            a, b, c, d = self.palette
            colour = a + b * torch.cos(2 * math.pi * (c * t + d))
            # a second, shifted palette blended in gives two-tone regions
            second = a + b * torch.cos(2 * math.pi * (c * (1 - t) + d + 0.33))
            w = torch.sigmoid(2.0 * mix).unsqueeze(1)
            return (colour * w + second * (1 - w)) * light

        @classmethod
        def draw(cls, style, weights, hidden, with_image=False):
            """Draw a network: architecture and palette from ``style``, weights from ``weights``."""
            def u(lo, hi):
                return lo + (hi - lo) * torch.rand((), generator=style).item()

            depth = int(torch.randint(3, 6, (), generator=style))
            names = list(activations)
            acts = [names[int(torch.randint(0, 3, (), generator=style))] for _ in range(depth)]
            acts[0] = "sin" if u(0, 1) < 0.6 else "gauss"  # smooth, wavy first layer
            acts[-1] = "tanh"  # bounded features before the colour head
            palette = torch.stack([
                0.5 + 0.1 * (torch.rand(3, generator=style) - 0.5),   # a: mid tone
                0.35 + 0.2 * torch.rand(3, generator=style),          # b: contrast
                0.6 + 0.8 * torch.rand(3, generator=style),           # c: frequency
                torch.rand(3, generator=style),                        # d: phase
            ])
            zoom = u(1.1, 2.8)
            symmetry = float(int(torch.randint(1, 7, (), generator=style)))
            mirror = u(0, 1) < 0.35
            scale = u(0.9, 1.6)
            n_in = 5 + (3 if with_image else 0)
            net = cls(n_in, hidden, acts, palette, zoom, symmetry, mirror)
            net.symmetry_fade = u(0.3, 1.2)
            net.angle_weight = 0.0 if u(0, 1) < 0.25 else u(0.4, 1.0)
            with torch.no_grad():
                for layer in list(net.layers) + [net.head]:
                    fan_in = layer.weight.shape[1]
                    layer.weight.copy_(
                        torch.randn(layer.weight.shape, generator=weights) * scale / math.sqrt(fan_in) * 1.6
                    )
                    layer.bias.copy_(torch.randn(layer.bias.shape, generator=weights) * 0.5)
            return net

    return Cppn


@functools.lru_cache(maxsize=1)
def _cppn_class():
    """The torch module class, built on first use so importing this module costs no torch."""
    return _make_cppn_class()
