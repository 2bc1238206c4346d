"""The built-in generator: a compositional pattern-producing network (CPPN), in numpy.

A CPPN maps each pixel's coordinates (x, y, distance from the centre, angle
features for rotational symmetry) through a few layers of sin / tanh / gaussian
activations to a colour. Its weights are drawn from the prompt and the seed:

* the prompt alone fixes the *style*: palette, symmetry order, mirror fold, depth,
  activations, zoom; so one prompt gives a family of related pictures;
* prompt + seed fix the *weights*; so each seed is a different member of the family.

No weights to download and no torch: the network is drawn with numpy's PCG64 generator
and evaluated in float32 numpy, a fraction of a second for 512x512 on a CPU, the same
pixels for the same (prompt, seed) whether or not torch is installed. ``device="cuda"``
(or ``mps``) runs the same network on the GPU with torch (the ``[torch]`` extra); float
rounding then differs (sin, exp and the matrix products are computed by other code),
which moves a small fraction of pixel values by one level (docs/generate.md; a test pins
the bound). ``engine="torch"`` forces the torch path on the CPU too (bench/generate.py
--engines compares the two).

With an init image (image-to-image), the image's colours become extra inputs and its light
and shade lead the palette, so the picture follows its composition; ``strength`` says how
far it may depart from it.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image
from provkit.generate.backends.base import resolve_device
from provkit.generate.request import BackendInfo, GenerationRequest
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.extras import require

VERSION = "2.0"  # 2.0: numpy PCG64 draws the network (1.x drew it with torch's generator)
HIDDEN = 24
#: pixels evaluated per chunk (bounds memory at large sizes; small enough to stay in cache)
CHUNK = 1 << 16
ENGINES = ("auto", "numpy", "torch")
ACTIVATIONS = ("sin", "tanh", "gauss")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _rng_seed(*parts: bytes) -> int:
    digest = hashlib.sha256(b"\0".join(parts)).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


@dataclass(frozen=True)
class Cppn:
    """One drawn network: plain float32 arrays, evaluated by numpy or torch alike."""

    weights: tuple[np.ndarray, ...]  # (n_out, n_in) per layer, the colour head last
    biases: tuple[np.ndarray, ...]
    acts: tuple[str, ...]
    palette: np.ndarray  # (4, 3): a, b, c, d of a cosine palette
    zoom: float
    symmetry: float
    mirror: bool
    symmetry_fade: float
    angle_weight: float


def draw(prompt: str, seed: int, hidden: int = HIDDEN, with_image: bool = False) -> Cppn:
    """The network for (prompt, seed): architecture and palette from the prompt, weights
    from prompt and seed."""
    prompt_bytes = prompt.encode("utf-8")
    style = np.random.Generator(np.random.PCG64(_rng_seed(b"style", prompt_bytes)))
    rng = np.random.Generator(
        np.random.PCG64(_rng_seed(b"weights", prompt_bytes, int(seed).to_bytes(8, "big")))
    )

    def u(lo, hi):
        return float(lo + (hi - lo) * style.random())

    depth = int(style.integers(3, 6))
    acts = [ACTIVATIONS[int(style.integers(0, 3))] for _ in range(depth)]
    acts[0] = "sin" if u(0, 1) < 0.6 else "gauss"  # smooth, wavy first layer
    acts[-1] = "tanh"  # bounded features before the colour head
    palette = np.stack(
        [
            0.5 + 0.1 * (style.random(3) - 0.5),  # a: mid tone
            0.35 + 0.2 * style.random(3),  # b: contrast
            0.6 + 0.8 * style.random(3),  # c: frequency
            style.random(3),  # d: phase
        ]
    ).astype(np.float32)
    zoom = u(1.1, 2.8)
    symmetry = float(int(style.integers(1, 7)))
    mirror = u(0, 1) < 0.35
    scale = u(0.9, 1.6)
    symmetry_fade = u(0.3, 1.2)
    angle_weight = 0.0 if u(0, 1) < 0.25 else u(0.4, 1.0)
    dims = [5 + (3 if with_image else 0)] + [hidden] * depth + [3]
    weights, biases = [], []
    for n_in, n_out in itertools.pairwise(dims):
        w = rng.standard_normal((n_out, n_in)) * (scale / math.sqrt(n_in) * 1.6)
        weights.append(w.astype(np.float32))
        biases.append((rng.standard_normal(n_out) * 0.5).astype(np.float32))
    return Cppn(
        tuple(weights),
        tuple(biases),
        tuple(acts),
        palette,
        zoom,
        symmetry,
        mirror,
        symmetry_fade,
        angle_weight,
    )


class BuiltinBackend:
    """The embedded default backend: abstract art from a prompt, no downloads, no torch."""

    name = "builtin"

    def __init__(self, device: str = "auto", hidden: int = HIDDEN, engine: str = "auto"):
        if engine not in ENGINES:
            raise BadInput(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        self.device_request = (device or "auto").lower()
        self.engine_request = engine
        self.hidden = int(hidden)
        self._resolved: tuple[str, str] | None = None

    def _resolve(self) -> tuple[str, str]:
        """(engine, device): numpy on the CPU unless torch or a GPU is asked for.

        ``auto`` stays on numpy even where torch and a GPU are installed: importing torch
        costs more than a CPU picture takes, and numpy gives the same pixels whatever else
        is installed. ``--device cuda`` (or mps) asks for the GPU through torch.
        """
        if self._resolved is None:
            want, engine = self.device_request, self.engine_request
            if want not in ("auto", "cpu", "mps") and not want.startswith("cuda"):
                raise BadInput(f"device must be auto, cpu, cuda or mps, not {want!r}")
            if engine == "numpy" and want not in ("auto", "cpu"):
                raise BadInput(f"the numpy engine runs on the CPU, not on {want!r}")
            if engine == "torch" or want not in ("auto", "cpu"):
                require("torch", "torch", what=f"the built-in generator on device {want}")
                self._resolved = ("torch", resolve_device("cpu" if want == "auto" else want))
            else:
                self._resolved = ("numpy", "cpu")
        return self._resolved

    @property
    def device(self) -> str:
        return self._resolve()[1]

    @property
    def engine(self) -> str:
        return self._resolve()[0]

    def describe(self) -> BackendInfo:
        engine, device = self._resolve()
        parameters = {"device": device, "engine": engine}
        if engine == "torch":
            parameters["torch"] = require("torch", "torch").__version__
        else:
            parameters["numpy"] = np.__version__
        return BackendInfo(
            name="provkit-builtin",
            version=VERSION,
            model=f"cppn-h{self.hidden}",
            weights_sha256=None,  # weights are derived from prompt and seed, not loaded
            parameters=parameters,
            source_type="algorithmicMedia",
        )

    def render(self, request: GenerationRequest) -> Iterator[Image.Image]:
        init = None
        if request.init_image is not None:
            init = request.init_image.convert("RGB").resize(
                (request.width, request.height), Image.Resampling.BICUBIC
            )
        for seed in request.seeds:
            yield self.paint(
                request.prompt, seed, request.width, request.height, init, request.strength
            )

    # -- the picture ---------------------------------------------------------------

    def paint(
        self,
        prompt: str,
        seed: int,
        width: int,
        height: int,
        init: Image.Image | None = None,
        strength: float = 0.6,
    ) -> Image.Image:
        net = draw(prompt, seed, self.hidden, with_image=init is not None)
        guide = None
        if init is not None:  # one row per channel, like the coordinates
            guide = np.asarray(init.convert("RGB"), dtype=np.float32).reshape(-1, 3).T / 255.0
        engine, device = self._resolve()
        if engine == "torch":
            rgb = _paint_torch(net, width, height, guide, strength, device)
        else:
            rgb = _paint_numpy(net, width, height, guide, strength)
        return Image.fromarray(rgb, "RGB")


def _coordinates(net: Cppn, width: int, height: int) -> np.ndarray:
    """Per-pixel inputs, one row each (float32, 5 x N): x, y, radius, the angle features."""
    aspect = width / height
    sx, sy = (aspect, 1.0) if aspect >= 1 else (1.0, 1.0 / aspect)
    ys = np.linspace(-sy, sy, height, dtype=np.float32) * np.float32(net.zoom)
    xs = np.linspace(-sx, sx, width, dtype=np.float32) * np.float32(net.zoom)
    y, x = np.meshgrid(ys, xs, indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    if net.mirror:
        x = np.abs(x)
    r = np.sqrt(x * x + y * y)
    # angle features fade towards the centre, where the angle is undefined
    theta = np.arctan2(y, x) * np.float32(net.symmetry)
    fade = np.tanh(r * np.float32(net.symmetry_fade)) * np.float32(net.angle_weight)
    return np.stack([x, y, r, np.sin(theta) * fade, np.cos(theta) * fade])


def _inputs(
    net: Cppn, width: int, height: int, guide: np.ndarray | None, strength: float
) -> np.ndarray:
    """The network's input rows: coordinates, then (image-to-image) the guide's colours."""
    coords = _coordinates(net, width, height)
    if guide is None:
        return coords
    return np.concatenate([coords, (guide * 2 - 1) * np.float32(1.0 - strength)])


def _colour(net: Cppn, head, guide, strength: float, xp=np):
    """The head's rows (tone, shade, mix) -> RGB rows (3 x N) in 0..1, unclipped.

    ``xp`` is numpy or torch: one formula for both engines.
    """
    if xp is np:
        sig, palette, luma = _sigmoid, net.palette, LUMA
    else:
        sig = xp.sigmoid
        palette = xp.as_tensor(net.palette, device=head.device)
        luma = xp.as_tensor(LUMA, device=head.device)
    tone, shade, mix = head[0:1], head[1:2], head[2:3]
    t = sig(tone)
    light = 0.55 + 0.45 * sig(1.5 * shade)
    if guide is not None:  # image-to-image: the init image's light and shade lead
        lum = (guide * luma[:, None]).sum(0)[None]
        t = (1 - strength) * lum + strength * t
        light = (1 - strength) * (0.25 + 0.75 * lum) + strength * light
    a, b, c, d = (palette[i][:, None] for i in range(4))
    colour = a + b * xp.cos(2 * math.pi * (c * t + d))
    # a second, shifted palette blended in gives two-tone regions
    second = a + b * xp.cos(2 * math.pi * (c * (1 - t) + d + 0.33))
    w = sig(2.0 * mix)
    return (colour * w + second * (1 - w)) * light


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) -> inf gives exactly 0, as it should
        return 1.0 / (1.0 + np.exp(-x))


def _paint_numpy(net: Cppn, width: int, height: int, guide, strength: float) -> np.ndarray:
    inputs = _inputs(net, width, height, guide, strength)
    n = inputs.shape[1]
    strength = np.float32(strength)
    out = np.empty((n, 3), np.uint8)
    width_max = max(w.shape[0] for w in net.weights)
    # two reused buffers: a fresh array per layer costs more (page faults) than the maths
    buffers = [np.empty(width_max * min(n, CHUNK), np.float32) for _ in range(2)]
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        h = inputs[:, start : start + m]
        for i, (w, b) in enumerate(zip(net.weights, net.biases)):
            nxt = buffers[i % 2][: w.shape[0] * m].reshape(w.shape[0], m)
            np.matmul(w, h, out=nxt)
            nxt += b[:, None]
            if i < len(net.acts):
                _act_numpy(net.acts[i], nxt)
            h = nxt
        part = None if guide is None else guide[:, start : start + m]
        rgb = _colour(net, h, part, strength)
        np.clip(rgb, 0, 1, out=rgb)
        rgb *= np.float32(255)
        rgb += np.float32(0.5)
        out[start : start + m] = rgb.T  # truncation, as torch's .to(uint8) does
    return out.reshape(height, width, 3)


def _act_numpy(name: str, h: np.ndarray) -> None:
    if name == "sin":
        np.sin(h, out=h)
    elif name == "tanh":
        np.tanh(h, out=h)
    else:  # gauss: exp(-h^2)
        np.square(h, out=h)
        np.negative(h, out=h)
        np.exp(h, out=h)


def _paint_torch(
    net: Cppn, width: int, height: int, guide, strength: float, device: str
) -> np.ndarray:
    torch = require("torch", "torch", what="the built-in generator's torch engine")

    acts = {"sin": torch.sin, "tanh": torch.tanh, "gauss": lambda t: torch.exp(-t * t)}
    inputs = torch.from_numpy(_inputs(net, width, height, guide, strength)).to(device)
    if guide is not None:
        guide = torch.from_numpy(np.ascontiguousarray(guide)).to(device)
    weights = [torch.from_numpy(w).to(device) for w in net.weights]
    biases = [torch.from_numpy(b)[:, None].to(device) for b in net.biases]
    n = inputs.shape[1]
    out = torch.empty((3, n), dtype=torch.uint8, device=device)
    step = CHUNK * 16  # a GPU wants big launches
    with torch.inference_mode():
        for start in range(0, n, step):
            part = slice(start, start + step)
            h = inputs[:, part]
            for w, b, act in zip(weights[:-1], biases[:-1], net.acts):
                h = acts[act](torch.addmm(b, w, h))
            head = torch.addmm(biases[-1], weights[-1], h)
            rgb = _colour(net, head, None if guide is None else guide[:, part], strength, torch)
            out[:, part] = rgb.clamp(0, 1).mul(255).add(0.5).to(torch.uint8)
    return out.T.reshape(height, width, 3).cpu().numpy()
