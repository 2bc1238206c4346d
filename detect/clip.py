"""CLIP image embeddings from local weights, batched and fast.

A model is named by a spec ``ARCH:WEIGHTS``: any architecture open_clip knows
(``ViT-L-14``, ``ViT-B-32``, ...) and a local checkpoint file or a folder holding
one (an open_clip ``local-dir`` with ``open_clip_config.json``, or a Hugging Face
cache folder). ``ARCH:random`` builds a randomly initialised model (deterministic
seed) for tests and benchmarks; ``provkit-tiny-vit:random`` is a very small ViT
registered here. Nothing is ever downloaded.

Speed comes from the input side: JPEGs are decoded at reduced size (libjpeg DCT
scaling via PIL draft mode), resizing uses PIL's reducing gap, decoding runs in
threads ahead of the model, and normalisation is one vectorised op per batch
fed in channels-last layout under ``torch.inference_mode`` (fp16 on CUDA).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.extras import require
from provkit.provenance.core.imageio import open_image, to_rgb
from provkit.provenance.core.offline import force_offline
from provkit.provenance.core.weights import weights_sha256

#: A small ViT for tests: 64 px input, 8 px patches, 2 layers, 64-d embeddings.
TINY_ARCH = "provkit-tiny-vit"
TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 1},
}

_CHECKPOINT_NAMES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "model.pth",
)


def register_tiny_config() -> None:
    """Make ``provkit-tiny-vit`` known to open_clip's model config registry."""
    open_clip = require("clip", "open_clip", what="CLIP")

    if TINY_ARCH in open_clip.list_models():
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{TINY_ARCH}.json"
        path.write_text(json.dumps(TINY_CONFIG))
        open_clip.add_model_config(path)  # read now; the registry keeps the parsed config


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``ARCH:WEIGHTS`` (or ``local-dir:PATH``) into its two parts."""
    if not spec or ":" not in spec:
        raise ConfigError(
            f"CLIP model {spec!r} must be ARCH:/path/to/weights (e.g. ViT-L-14:/models/vitl14.bin) "
            "or ARCH:random"
        )
    arch, weights = spec.split(":", 1)
    if not arch or not weights:
        raise ConfigError(f"CLIP model {spec!r} must be ARCH:/path/to/weights or ARCH:random")
    return arch, weights


def find_checkpoint(folder: Path) -> Path | None:
    """The open_clip checkpoint inside a folder (searched recursively, e.g. an HF cache)."""
    for name in _CHECKPOINT_NAMES:
        hits = sorted(folder.rglob(name))
        if hits:
            return hits[0]
    hits = sorted(folder.rglob("*.safetensors")) + sorted(folder.rglob("*.pt"))
    return hits[0] if hits else None


def pick_device(device: str = "auto") -> str:
    torch = require("clip", "torch", what="CLIP")

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return device


@dataclass
class ClipModel:
    """A loaded open_clip image tower with provkit's fast preprocessing."""

    spec: str
    arch: str
    weights: str  # "random" or the checkpoint path
    model: object = field(repr=False)
    device: str
    image_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    fill_color: int = 0
    _digest: str | None = field(default=None, repr=False)

    @property
    def embed_dim(self) -> int:
        return int(self.model.visual.output_dim)

    @property
    def model_id(self) -> str:
        """Stable identity of architecture + weights, e.g. ``ViT-B-32:sha256:ab12...``."""
        if self.weights == "random":
            return f"{self.arch}:random"
        if self._digest is None:  # cached across processes: a scan's workers hash nothing
            self._digest = weights_sha256(self.weights)
        return f"{self.arch}:sha256:{self._digest[:16]}"

    # -- preprocessing -------------------------------------------------------

    def preprocess(self, image) -> np.ndarray:
        """A path, PIL image or HxWx3 uint8 array -> the model's input as HxWx3 uint8."""
        th, tw = self.image_size
        if isinstance(image, (str, os.PathLike)):
            # libjpeg scales by 1/2..1/8 while decoding; result stays >= the target size.
            want = max(th, tw)
            pil = to_rgb(open_image(image, draft=(want, want)))
        elif isinstance(image, np.ndarray):
            pil = Image.fromarray(np.ascontiguousarray(image[..., :3]).astype(np.uint8, copy=False))
        elif isinstance(image, Image.Image):
            pil = to_rgb(image)
        else:
            raise BadInput(f"cannot embed a {type(image).__name__}")
        resample = Image.BILINEAR if self.interpolation == "bilinear" else Image.BICUBIC
        w, h = pil.size
        if self.resize_mode == "squash":
            return np.asarray(pil.resize((tw, th), resample, reducing_gap=3.0))
        if self.resize_mode == "shortest" and th == tw:
            # exactly torchvision's Resize(int): short side -> size, long side truncated
            if w <= h:
                nw, nh = tw, int(tw * h / w)
            else:
                nw, nh = int(th * w / h), th
        else:
            scale = min(th / h, tw / w) if self.resize_mode == "longest" else max(th / h, tw / w)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        if (nw, nh) != (w, h):
            pil = pil.resize((nw, nh), resample, reducing_gap=3.0)
        arr = np.asarray(pil)
        if self.resize_mode == "longest":
            out = np.full((th, tw, 3), self.fill_color, np.uint8)
            top, left = (th - nh) // 2, (tw - nw) // 2
            out[top : top + nh, left : left + nw] = arr
            return out
        top = round((nh - th) / 2.0)
        left = round((nw - tw) / 2.0)
        return arr[top : top + th, left : left + tw]

    # -- embedding -----------------------------------------------------------

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        """Embed a preprocessed NxHxWx3 uint8 batch -> Nxd float32, L2-normalised."""
        torch = require("clip", "torch", what="CLIP")

        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
            # NHWC -> NCHW view: already channels-last in memory, no copy.
            x = x.permute(0, 3, 1, 2).to(dtype)
            mean = torch.tensor(self.mean, device=self.device, dtype=dtype).view(1, 3, 1, 1) * 255
            std = torch.tensor(self.std, device=self.device, dtype=dtype).view(1, 3, 1, 1) * 255
            x = (x - mean) / std
            feats = self.model.encode_image(x).float()
            feats = torch.nn.functional.normalize(feats, dim=-1)
            return feats.cpu().numpy().astype(np.float32, copy=False)

    def embed_images(
        self, images: Sequence, *, batch_size: int = 32, threads: int | None = None, progress=None
    ) -> np.ndarray:
        """Embed paths, PIL images or arrays -> Nxd float32 L2-normalised rows (input order).

        Raises BadInput naming the first file that cannot be read; use
        :meth:`embed_many` to keep going past bad files.
        """
        embeddings, errors = self.embed_many(
            images, batch_size=batch_size, threads=threads, progress=progress
        )
        if errors:
            raise errors[min(errors)]
        return embeddings

    def embed_many(
        self, images: Sequence, *, batch_size: int = 32, threads: int | None = None, progress=None
    ) -> tuple[np.ndarray, dict[int, Exception]]:
        """Like embed_images but never stops: rows of unreadable inputs are NaN, errors by index."""
        images = list(images)
        out = np.full((len(images), self.embed_dim), np.nan, np.float32)
        errors: dict[int, Exception] = {}
        threads = threads or min(4, os.cpu_count() or 1)

        def prep(item):
            i, image = item
            try:
                return i, self.preprocess(image), None
            except BadInput as e:
                return i, None, e

        with ThreadPoolExecutor(threads) as pool:
            pending: list = []
            for i, arr, err in pool.map(prep, enumerate(images)):
                if err is not None:
                    errors[i] = err
                else:
                    pending.append((i, arr))
                if len(pending) == batch_size:
                    self._flush(pending, out)
                    if progress:
                        progress(len(pending))
                    pending = []
            if pending:
                self._flush(pending, out)
                if progress:
                    progress(len(pending))
        return out, errors

    def _flush(self, pending, out) -> None:
        idx = [i for i, _ in pending]
        out[idx] = self.embed_arrays(np.stack([a for _, a in pending]))

    def to_json(self) -> dict:
        return {
            "spec": self.spec,
            "arch": self.arch,
            "model_id": self.model_id,
            "device": self.device,
            "embed_dim": self.embed_dim,
            "image_size": list(self.image_size),
        }


_CACHE: dict[tuple[str, str], ClipModel] = {}


def check_spec(spec: str) -> tuple[str, Path | None]:
    """Check a spec without building the model: (architecture, checkpoint file or None).

    ConfigError for a malformed spec, an architecture open_clip does not know, or
    weights that are not on disk. ``local-dir`` specs return ``"local-dir"``."""
    force_offline()
    open_clip = require("clip", "open_clip", what="CLIP")

    arch, weights = parse_spec(spec)
    register_tiny_config()
    if arch == "local-dir":
        folder = Path(weights).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise ConfigError(f"no open_clip_config.json in {folder}", path=spec)
        return arch, find_checkpoint(folder)
    if arch not in open_clip.list_models():
        raise ConfigError(
            f"unknown CLIP architecture {arch!r}; open_clip knows e.g. ViT-B-32, ViT-L-14, "
            f"{TINY_ARCH} (see open_clip.list_models())"
        )
    if weights == "random":
        return arch, None
    path = Path(weights).expanduser()
    checkpoint = find_checkpoint(path) if path.is_dir() else path
    if checkpoint is None or not checkpoint.is_file():
        raise ConfigError(f"no CLIP checkpoint found at {path}", path=spec)
    return arch, checkpoint


def load_model(spec: str, device: str = "auto") -> ClipModel:
    """Load ``ARCH:/path/to/weights`` (file or folder), ``local-dir:PATH`` or ``ARCH:random``.

    Never downloads: open_clip is asked for the bare architecture and the state dict
    is loaded from the local file. Models are cached per (spec, device) in-process.
    """
    force_offline()
    key = (spec, device)
    if key in _CACHE:
        return _CACHE[key]
    open_clip = require("clip", "open_clip", what="CLIP")
    torch = require("clip", "torch", what="CLIP")

    arch, checkpoint = check_spec(spec)
    device = pick_device(device)
    if arch == "local-dir":
        folder = Path(parse_spec(spec)[1]).expanduser()
        try:
            model = open_clip.create_model(
                f"local-dir:{folder}", device="cpu", pretrained_image=False, pretrained_text=False
            )
        except Exception as e:  # noqa: BLE001  # open_clip raises bare RuntimeError/ValueError
            raise ConfigError(f"cannot load CLIP model: {e}", path=spec) from None
        arch = folder.name
    else:
        try:
            with torch.random.fork_rng(devices=[]), _quiet_logging():
                torch.manual_seed(0)
                model = open_clip.create_model(
                    arch,
                    pretrained=None,
                    device="cpu",
                    pretrained_image=False,
                    pretrained_text=False,
                )
        except Exception as e:  # noqa: BLE001  # e.g. an HF text tower whose config is not local
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ConfigError(
                f"cannot build this CLIP model without downloading ({type(e).__name__}: {first})",
                path=spec,
            ) from None
        if checkpoint is not None:
            try:
                open_clip.load_checkpoint(model, str(checkpoint))
            except Exception as e:  # noqa: BLE001
                raise ConfigError(
                    f"cannot load weights {checkpoint} into {arch}: {e}", path=spec
                ) from None
    model.eval()
    model = model.to(device, memory_format=torch.channels_last)
    if device.startswith("cuda"):
        model = model.half()
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    clip = ClipModel(
        spec=spec,
        arch=arch,
        weights=str(checkpoint) if checkpoint else "random",
        model=model,
        device=device,
        image_size=size,
        mean=tuple(cfg.get("mean")),
        std=tuple(cfg.get("std")),
        interpolation=cfg.get("interpolation", "bicubic"),
        resize_mode=cfg.get("resize_mode", "shortest"),
        fill_color=cfg.get("fill_color", 0),
    )
    _CACHE[key] = clip
    return clip


class _quiet_logging:
    """open_clip warns on the root logger when it builds an architecture without weights."""

    def __enter__(self):
        self.level = logging.root.manager.disable
        logging.disable(logging.WARNING)

    def __exit__(self, *exc):
        logging.disable(self.level)
