"""Any diffusers text-to-image or image-to-image pipeline, loaded only from local files.

``--model`` is a local pipeline folder or a Hugging Face id already in the local
cache; nothing is ever downloaded (offline mode is forced before diffusers loads).
fp16 on CUDA, device selection, batches, and one ``torch.Generator`` per image seed
so image ``i`` is the same whether it was made alone or in a batch. The pipeline's
own watermarker and safety checker, when present, are recorded in the manifest.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from provkit.generate.backends.base import resolve_device, state_dict_sha256
from provkit.generate.request import BackendInfo, GenerationRequest
from provkit.provenance.core.errors import BadInput, ConfigError, Refused
from provkit.provenance.core.extras import require
from provkit.provenance.core.offline import force_offline
from provkit.provenance.core.weights import weights_sha256

DTYPES = ("auto", "float16", "bfloat16", "float32")


def resolve_model(model: str | os.PathLike) -> Path:
    """A local pipeline folder for ``model`` (a folder, or an id in the local HF cache)."""
    force_offline()
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise BadInput("not a diffusers pipeline folder (no model_index.json)", path=path)
        return path
    if path.is_file():
        raise ConfigError(
            "single-file checkpoints are not loaded directly; convert it to a diffusers "
            "folder (save_pretrained) and give that folder",
            path=path,
        )
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise BadInput("no such model folder", path=path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(text, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"model {text!r} is not in the local Hugging Face cache and provkit never "
            f"downloads; fetch it yourself (huggingface-cli download {text}) or give a folder"
        ) from None


class DiffusersBackend:
    """A diffusers pipeline as a provkit backend (see :func:`generate.wrap_pipeline`)."""

    name = "diffusers"

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        pipeline=None,
        device: str | None = "auto",
        dtype: str = "auto",
        batch_size: int = 1,
    ):
        if (model is None) == (pipeline is None):
            raise ConfigError("the diffusers backend needs --model PATH_OR_ID (a local pipeline)")
        if dtype not in DTYPES:
            raise BadInput(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        require("diffusers", "torch", what="the diffusers backend")
        require("diffusers", "diffusers", what="the diffusers backend")
        self.batch_size = max(1, int(batch_size))
        self._weights = None
        self._img2img = None
        if pipeline is not None:
            self.pipe = pipeline
            self.folder = None
            self.model = str(getattr(pipeline, "name_or_path", None) or type(pipeline).__name__)
            name_path = Path(self.model)
            if name_path.is_dir():
                self.folder = name_path
            if device not in (None, "auto") or dtype != "auto":
                self._place(device, dtype)
            self.device = str(getattr(pipeline, "device", "cpu"))
        else:
            self.folder = resolve_model(model)
            self.model = str(model)
            self.pipe = self._load(device, dtype)
        self.pipe.set_progress_bar_config(disable=True)

    # -- loading ------------------------------------------------------------------

    def _dtype(self, device: str, dtype: str):
        torch = require("diffusers", "torch", what="the diffusers backend")

        if dtype == "auto":
            return torch.float16 if device.startswith("cuda") else torch.float32
        return getattr(torch, dtype)

    def _load(self, device, dtype):

        force_offline()
        self.device = resolve_device(device)
        torch_dtype = self._dtype(self.device, dtype)
        diffusers = require("diffusers", "diffusers", what="the diffusers backend")
        from diffusers.utils import logging as dlog

        dlog.disable_progress_bar()
        try:
            from transformers.utils import logging as tlog

            tlog.disable_progress_bar()
        except ImportError:  # pragma: no cover - pipelines without transformers parts
            pass
        kwargs = {"local_files_only": True, _dtype_keyword(): torch_dtype}
        try:
            try:
                pipe = diffusers.AutoPipelineForText2Image.from_pretrained(self.folder, **kwargs)
            except ValueError:  # not a text-to-image family: load whatever the folder holds
                pipe = diffusers.DiffusionPipeline.from_pretrained(self.folder, **kwargs)
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"cannot load the diffusers pipeline ({e})", path=self.folder
            ) from None
        return pipe.to(self.device)

    def _place(self, device, dtype):

        target = resolve_device(device)
        self.pipe = self.pipe.to(target, self._dtype(target, dtype) if dtype != "auto" else None)

    def _image_pipe(self):
        """The same components as an image-to-image pipeline (built once, shares weights)."""
        if _takes(self.pipe, "image"):
            return self.pipe
        if self._img2img is None:
            diffusers = require("diffusers", "diffusers", what="the diffusers backend")

            try:
                self._img2img = diffusers.AutoPipelineForImage2Image.from_pipe(self.pipe)
            except (ValueError, KeyError, TypeError) as e:
                raise ConfigError(
                    f"{type(self.pipe).__name__} has no image-to-image form ({e})"
                ) from None
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    # -- the backend interface ----------------------------------------------------

    def describe(self) -> BackendInfo:
        diffusers = require("diffusers", "diffusers", what="the diffusers backend")

        return BackendInfo(
            name="diffusers",
            version=diffusers.__version__,
            model=self.folder.name
            if self.folder is not None and self.model == str(self.folder)
            else self.model,
            weights_sha256=self.weights_sha256,
            parameters=self.pipeline_facts(),
            source_type="trainedAlgorithmicMedia",
        )

    @property
    def weights_sha256(self) -> str:
        if self._weights is None:
            if self.folder is not None:
                self._weights = weights_sha256(self.folder)
            else:  # an in-memory pipeline: hash the modules it holds
                import hashlib

                outer = hashlib.sha256()
                for name, part in sorted(self.pipe.components.items()):
                    if hasattr(part, "state_dict"):
                        outer.update(f"{name}\0{state_dict_sha256(part)}\n".encode())
                self._weights = outer.hexdigest()
        return self._weights

    def pipeline_facts(self) -> dict:
        """What the manifest says about the pipeline: class, scheduler, precision, its own marks."""
        pipe = self.pipe
        components = getattr(pipe, "components", {}) or {}
        safety = components.get("safety_checker") or getattr(pipe, "safety_checker", None)
        marker = getattr(pipe, "watermark", None) or getattr(pipe, "watermarker", None)
        scheduler = components.get("scheduler")
        return {
            "pipeline": type(pipe).__name__,
            "scheduler": type(scheduler).__name__ if scheduler is not None else None,
            "device": str(getattr(pipe, "device", self.device)),
            "dtype": str(getattr(pipe, "dtype", "")).replace("torch.", ""),
            "model_safety_checker": type(safety).__name__ if safety is not None else None,
            "model_watermarker": type(marker).__name__ if marker is not None else None,
        }

    def render(self, request: GenerationRequest) -> Iterator[Image.Image | Exception]:
        torch = require("diffusers", "torch", what="the diffusers backend")

        init = request.init_image
        pipe = self._image_pipe() if init is not None else self.pipe
        if init is None and _takes(pipe, "image") and _required(pipe, "image"):
            raise BadInput(f"{type(pipe).__name__} is image-to-image: give an init image")
        gen_device = (
            "cpu" if str(self.device).startswith("mps") else str(getattr(pipe, "device", "cpu"))
        )
        generators = [torch.Generator(gen_device).manual_seed(s) for s in request.seeds]
        kwargs = {
            "prompt": [request.prompt] * request.count,
            "generator": generators,
            "output_type": "pil",
        }
        if request.negative_prompt and _takes(pipe, "negative_prompt"):
            kwargs["negative_prompt"] = [request.negative_prompt] * request.count
        if request.steps is not None:
            kwargs["num_inference_steps"] = request.steps
        if request.guidance is not None and _takes(pipe, "guidance_scale"):
            kwargs["guidance_scale"] = request.guidance
        if init is not None:
            kwargs["image"] = init.convert("RGB").resize(
                (request.width, request.height), Image.Resampling.LANCZOS
            )
            if _takes(pipe, "strength"):
                kwargs["strength"] = request.strength
        else:
            if _takes(pipe, "width"):
                kwargs["width"], kwargs["height"] = request.width, request.height
        with torch.inference_mode():
            out = pipe(**kwargs)
        flagged = getattr(out, "nsfw_content_detected", None) or [False] * request.count
        for image, nsfw in zip(out.images, flagged):
            if nsfw:
                yield Refused("the model's own safety checker flagged this image; not released")
            else:
                yield image.convert("RGB") if image.mode != "RGB" else image


def _dtype_keyword() -> str:
    """``dtype`` in recent diffusers, ``torch_dtype`` before it was renamed."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def _takes(pipe, name: str) -> bool:
    return name in inspect.signature(pipe.__call__).parameters


def _required(pipe, name: str) -> bool:
    p = inspect.signature(pipe.__call__).parameters.get(name)
    return p is not None and p.default is inspect.Parameter.empty
