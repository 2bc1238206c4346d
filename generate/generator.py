"""The Python API: ``Generator(backend, ...).generate(prompt, n=4)`` returns sealed images.

``generate(prompt, ...)`` is the same call as one function (``provkit generate`` is a
thin shell over it) and returns a :class:`~generate.seal.GenerationRun` with the
sealed images and the failures. ``wrap_pipeline(pipe)`` puts an existing diffusers
pipeline object behind the same sealing.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from provkit.generate.backends.base import get_backend
from provkit.generate.backends.diffusers_backend import DiffusersBackend
from provkit.generate.request import GenerationRequest, parse_size, random_seed
from provkit.generate.seal import GenerationRun, SealedImage, SealOptions, seal_all
from provkit.provenance import disclosure as disclosure_lib
from provkit.provenance import keys
from provkit.provenance.core.errors import BadInput, ProvkitError
from provkit.provenance.core.imageio import load_rgb


class GenerationFailed(ProvkitError):
    """Some images of a run failed; ``run`` holds the sealed ones and the failures."""

    exit_code = 1

    def __init__(self, run: GenerationRun):
        self.run = run
        first = run.failed[0]
        more = f" (and {len(run.failed) - 1} more)" if len(run.failed) > 1 else ""
        super().__init__(
            f"{len(run.failed)} of {len(run.failed) + len(run.sealed)} images failed: "
            f"image {first.index} (seed {first.seed}): {first.error}{more}"
        )


class Generator:
    """A backend with its sealing settings; every image it returns is sealed.

    ``backend`` is a registered name (builtin, diffusers, gan, vae, callable), a
    ``module:Factory`` path or a backend object; ``backend_options`` go to the backend
    (``model=``, ``module=``, ``latent_size=``, ``batch_size=`` ...).
    """

    def __init__(
        self,
        backend="builtin",
        *,
        device: str | None = None,
        out_dir: str | os.PathLike | None = None,
        format: str = "png",
        record_prompt: bool = False,
        allow_training: bool = False,
        policy=None,
        author: str | None = None,
        actor: dict | None = None,
        db=None,
        identity=None,
        check_protected: bool = True,
        disclose=None,
        provider: str | None = None,
        system: str | None = None,
        system_version: str | None = None,
        cn_producer: str | None = None,
        visible_label: bool = False,
        **backend_options,
    ):
        if device is not None and isinstance(backend, str):
            backend_options["device"] = device
        self.backend = get_backend(backend, **backend_options)
        info = self.backend.describe()
        # the disclosure profile: these values over [disclosure] in provkit.toml; the
        # system defaults to the backend (SB 942 names the generative system)
        profile = disclosure_lib.profile(
            disclose=disclose,
            provider=provider,
            system=system,
            system_version=system_version,
            cn_producer=cn_producer,
            visible_label=visible_label,
            default_system=info.agent_name,
            default_version=info.version,
            source_type=info.source_type,
        )
        self.options = SealOptions(
            out_dir=Path(out_dir) if out_dir is not None else None,
            format=format,
            record_prompt=record_prompt,
            allow_training=allow_training,
            policy=policy,
            author=author,
            actor=actor,
            db=db,
            identity=identity,
            check_protected=check_protected,
            disclosure=profile,
        )

    def describe(self):
        return self.backend.describe()

    def request(
        self,
        prompt: str,
        n: int = 1,
        *,
        seed: int | None = None,
        negative_prompt: str = "",
        size=None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        init_image=None,
        strength: float = 0.6,
    ) -> tuple[GenerationRequest, Path | None]:
        """The request these arguments describe, and the init image's file (if it had one)."""
        if size is not None:
            width, height = parse_size(size) if isinstance(size, str) else tuple(size)
        default_w, default_h = getattr(self.backend, "default_size", None) or (512, 512)
        init, init_path = None, None
        if init_image is not None:
            if isinstance(init_image, Image.Image):
                init = init_image.convert("RGB")
            else:
                init_path = Path(init_image)
                init = load_rgb(init_path)
            if width is None and height is None:
                width, height = _fit(init.size)
        request = GenerationRequest(
            prompt=prompt,
            negative_prompt=negative_prompt or "",
            seed=random_seed() if seed is None else seed,
            width=width or default_w,
            height=height or default_h,
            count=n,
            steps=steps,
            guidance=guidance,
            init_image=init,
            strength=strength,
        )
        return request, init_path

    def run(
        self, prompt: str, n: int = 1, *, batch_size: int | None = None, on_result=None, **kwargs
    ) -> GenerationRun:
        """Generate and seal ``n`` images; failures are reported in the run, not raised."""
        from dataclasses import replace

        request, init_path = self.request(prompt, n, **kwargs)
        options = replace(self.options, init_path=init_path)
        return seal_all(self.backend, request, options, on_result=on_result, batch_size=batch_size)

    def generate(self, prompt: str, n: int = 1, **kwargs) -> list[SealedImage]:
        """Generate and seal ``n`` images; raises GenerationFailed if any did not come out."""
        run = self.run(prompt, n, **kwargs)
        if run.failed:
            raise GenerationFailed(run)
        return list(run.sealed)


def _fit(size: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """An init image's size rounded down to a multiple of 8 (what latent models need)."""
    w, h = size
    return max(multiple, w - w % multiple), max(multiple, h - h % multiple)


def wrap_pipeline(pipe, **options) -> Generator:
    """``wrap_pipeline(pipe).generate("a prompt", n=2)``: a diffusers pipeline, sealed."""

    batch_size = options.pop("batch_size", 1)
    device = options.pop("device", None)
    dtype = options.pop("dtype", "auto")
    backend = DiffusersBackend(pipeline=pipe, device=device, dtype=dtype, batch_size=batch_size)
    return Generator(backend, **options)


def generate(
    prompt: str,
    *,
    backend="builtin",
    n: int = 1,
    out_dir=None,
    seed: int | None = None,
    size=None,
    steps: int | None = None,
    guidance: float | None = None,
    negative_prompt: str = "",
    init_image=None,
    strength: float = 0.6,
    device: str | None = None,
    format: str = "png",
    record_prompt: bool = False,
    allow_training: bool = False,
    policy=None,
    db=None,
    batch_size: int | None = None,
    on_result=None,
    identity=None,
    dev_identity: bool = False,
    disclose=None,
    provider: str | None = None,
    system: str | None = None,
    system_version: str | None = None,
    cn_producer: str | None = None,
    visible_label: bool = False,
    **backend_options,
) -> GenerationRun:
    """``provkit generate`` as a function: make ``n`` sealed images in ``out_dir``.

    The workspace identity signs them (``identity`` overrides); with none, a ConfigError
    before anything is generated, unless ``dev_identity`` asks for a development one.
    ``disclose`` (``"eu,us-ca,cn"`` or a list), ``provider``, ``system``,
    ``system_version``, ``cn_producer``, ``visible_label``: the disclosure profile
    (docs/compliance.md), over ``[disclosure]`` in provkit.toml."""
    if n < 1:
        raise BadInput(f"-n must be at least 1, not {n}")
    identity = identity or keys.for_signing(dev_identity=dev_identity)
    gen = Generator(
        backend,
        device=device,
        out_dir=out_dir,
        format=format,
        record_prompt=record_prompt,
        allow_training=allow_training,
        policy=policy,
        db=db,
        identity=identity,
        disclose=disclose,
        provider=provider,
        system=system,
        system_version=system_version,
        cn_producer=cn_producer,
        visible_label=visible_label,
        **backend_options,
    )
    return gen.run(
        prompt,
        n,
        seed=seed,
        size=size,
        steps=steps,
        guidance=guidance,
        negative_prompt=negative_prompt,
        init_image=init_image,
        strength=strength,
        batch_size=batch_size,
        on_result=on_result,
    )
