"""``provkit generate``: a thin shell over :func:`generate.generator.generate`."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from provkit.generate.generator import generate as generate_
from provkit.generate.results import RequestRefused
from provkit.generate.seal import request_stop, stop_requested
from provkit.options import (
    db_option,
    dev_identity_option,
    disclosure_options,
    dumps,
    emit,
    json_option,
    out_option,
    progress,
    training_option,
)
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.transparency import key as log_key
from provkit.provenance.core.transparency import write_receipt

LATENT_BACKENDS = ("gan", "vae")


def backend_options(
    backend: str, *, model, module, latent_size, output_range, dtype, batch_size
) -> dict:
    """The backend's own options from the command line, refusing ones it does not take."""
    opts: dict = {}
    if backend == "builtin":
        if model or module:
            raise BadInput("the builtin backend takes no --model or --module")
    elif model:
        opts["model"] = str(model)
    if module or latent_size or output_range:
        if backend not in LATENT_BACKENDS:
            raise BadInput("--module, --latent-size and --output-range are for --backend gan|vae")
        opts.update(
            {
                k: v
                for k, v in (
                    ("module", module),
                    ("latent_size", latent_size),
                    ("output_range", output_range),
                )
                if v
            }
        )
    if dtype != "auto":
        if backend != "diffusers":
            raise BadInput("--dtype is for --backend diffusers")
        opts["dtype"] = dtype
    if batch_size and backend in ("diffusers", "gan", "vae", "callable"):
        opts["batch_size"] = batch_size
    return opts


@click.command("generate")
@click.argument("prompt")
@click.option(
    "-n",
    "--count",
    "n",
    type=click.IntRange(1, 10_000),
    default=1,
    show_default=True,
    help="How many images.",
)
@click.option(
    "--backend",
    default="builtin",
    show_default=True,
    help="builtin, diffusers, gan, vae, callable, or module:Factory.",
)
@click.option(
    "--model",
    help="diffusers: pipeline folder or cached id; gan/vae: weights file; "
    "callable: module:function.",
)
@click.option("--module", help="gan/vae: the torch module as package.module:Class.")
@click.option("--latent-size", help="gan/vae: latent size, e.g. 128 or 4x8x8.")
@click.option("--output-range", help="gan/vae: the module's output range, -1,1 or 0,1.")
@click.option(
    "--seed",
    type=click.IntRange(0, 2**63 - 1),
    help="First seed (image i uses seed+i); random if not given, always recorded.",
)
@click.option("--size", help="WIDTHxHEIGHT (default: the backend's own).")
@click.option("--steps", type=click.IntRange(1, 1000), help="Denoising steps (diffusers).")
@click.option("--guidance", type=click.FloatRange(0, 100), help="Guidance scale (diffusers).")
@click.option("--negative", default="", help="Negative prompt.")
@click.option(
    "--init-image",
    type=click.Path(path_type=Path),
    help="Image-to-image: start from this image (recorded as the parent).",
)
@click.option(
    "--strength",
    type=click.FloatRange(0, 1),
    default=0.6,
    show_default=True,
    help="Image-to-image: how far to move from the init image.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda", "mps"]),
    default="auto",
    show_default=True,
    help="auto: the GPU for torch backends; the builtin stays on "
    "numpy (CPU) unless cuda or mps is named.",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float16", "bfloat16", "float32"]),
    default="auto",
    show_default=True,
    help="diffusers: weights precision (auto = float16 on cuda).",
)
@click.option("--batch-size", type=click.IntRange(1, 256), help="Images per backend call.")
@click.option(
    "--format", "fmt", type=click.Choice(["png", "jpeg", "webp"]), default="png", show_default=True
)
@click.option(
    "--record-prompt",
    is_flag=True,
    help="Write the prompt into the manifest (default: only its SHA-256).",
)
@training_option(False, "the outputs")
@click.option("--policy", help="Policy pack (name or YAML path) to check requests and outputs.")
@click.option(
    "--receipt",
    is_flag=True,
    help="Also write IMAGE.receipt.json beside each sealed image: its inclusion "
    "proof in the assets log with a signed checkpoint (needs the log key).",
)
@disclosure_options
@out_option("Folder for the sealed images.", file_okay=False, dir_okay=True, dest="out_dir")
@dev_identity_option
@db_option
@json_option
def generate(
    prompt,
    n,
    backend,
    model,
    module,
    latent_size,
    output_range,
    seed,
    size,
    steps,
    guidance,
    negative,
    init_image,
    strength,
    device,
    dtype,
    batch_size,
    fmt,
    record_prompt,
    allow_training,
    no_train_old,
    policy,
    receipt,
    disclose,
    provider,
    system_name,
    system_version,
    cn_producer,
    visible_label,
    out_dir,
    dev_identity,
    db_path,
    as_json,
):
    """Generate images that leave sealed: watermarked, C2PA-signed, recorded.

    Exit status 1 if any image failed (the others are sealed and listed).
    """
    if receipt:
        log_key()  # no log key: say so before any work, not after it
    opts = backend_options(
        backend,
        model=model,
        module=module,
        latent_size=latent_size,
        output_range=output_range,
        dtype=dtype,
        batch_size=batch_size,
    )
    bar = progress("generating", n)
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        run = generate_(
            prompt,
            backend=backend,
            n=n,
            out_dir=out_dir,
            seed=seed,
            size=size,
            steps=steps,
            guidance=guidance,
            negative_prompt=negative,
            init_image=init_image,
            strength=strength,
            device=device,
            format=fmt,
            record_prompt=record_prompt,
            allow_training=allow_training and not no_train_old,
            policy=policy,
            db=db_path,
            dev_identity=dev_identity,
            on_result=lambda _r: bar.update(1),
            disclose=disclose,
            provider=provider,
            system=system_name,
            system_version=system_version,
            cn_producer=cn_producer,
            visible_label=visible_label,
            **opts,
        )
    except RequestRefused as e:
        if as_json:  # the decision on stdout, the one-line error on stderr, exit 1
            click.echo(dumps(e.to_json()))
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        bar.close()
    data = run.to_json()
    if receipt:
        for img in data["images"]:
            img["receipt"] = write_receipt(img["asset_id"], img["path"], db=db_path)
    emit(data, as_json, _human)
    if run.failed:
        raise click.exceptions.Exit(1)


def _stop(signum, frame):
    """SIGTERM or Ctrl-C: finish the images being sealed, start no more, exit 130.

    A second signal stops at once (outputs caught mid-way are quarantined, not released)."""
    if stop_requested():
        raise KeyboardInterrupt
    request_stop()


def _human(data: dict) -> str:
    lines = []
    backend = data["backend"]
    lines.append(f"backend  {backend['software_agent']}")
    for img in data["images"]:
        lines.append(
            f"sealed   {img['path']}  asset {img['asset_id']}  seed {img['seed']}  "
            f"{img['width']}x{img['height']}  manifest {img['manifest_label']}"
        )
        if img.get("receipt"):
            lines.append(f"  receipt: {img['receipt']}")
        for dup in img["duplicates"]:
            lines.append(
                f"  near-duplicate of {dup['item']} in protected set {dup['set']} "
                f"({dup['kind']} distance {dup['distance']})"
            )
        if img["labels"]:
            lines.append(f"  labels: {', '.join(img['labels'])}")
    for f in data["failed"]:
        where = f" -> {f['quarantined_path']}" if f.get("quarantined_path") else ""
        lines.append(
            f"failed   image {f['index']} (seed {f['seed']}) at {f['stage']}: {f['error']}{where}"
        )
    lines.append(f"protected sets: {data['protected_sets']}")
    ok, bad = len(data["images"]), len(data["failed"])
    lines.append(f"{ok} sealed, {bad} failed" if bad else f"{ok} sealed")
    return "\n".join(lines)
