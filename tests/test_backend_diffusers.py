"""The diffusers backend on a tiny randomly initialised Stable-Diffusion-shaped pipeline."""

from __future__ import annotations

import os

import numpy as np
import pytest
from fixtures_generate import tiny_sd_path
from PIL import Image
from provkit.generate.backends import get_backend
from provkit.generate.request import GenerationRequest
from provkit.provenance.core.errors import BadInput, ConfigError


@pytest.fixture(scope="session")
def tiny_sd():
    return tiny_sd_path()


@pytest.fixture(scope="module")
def backend(tiny_sd):
    return get_backend("diffusers", model=str(tiny_sd), device="cpu", batch_size=2)


def req(**kw):
    base = {"prompt": "a lighthouse", "seed": 3, "width": 64, "height": 64, "steps": 2}
    base.update(kw)
    return GenerationRequest(**base)


def test_text_to_image_makes_one_image_per_seed_at_the_requested_size(backend):
    images = list(backend.render(req(count=2)))
    assert [im.size for im in images] == [(64, 64), (64, 64)]
    assert all(im.mode == "RGB" for im in images)


def test_an_image_is_the_same_alone_or_in_a_batch(backend):
    batch = list(backend.render(req(seed=10, count=2)))
    alone = list(backend.render(req(seed=11)))
    same = np.abs(np.asarray(batch[1], int) - np.asarray(alone[0], int))
    other = np.abs(np.asarray(batch[0], int) - np.asarray(batch[1], int))
    assert same.max() <= 2  # batched float arithmetic may differ in the last bit
    assert other.mean() > 10 * max(same.mean(), 0.1)


def test_image_to_image_starts_from_the_init_image(backend, photos):
    init = Image.fromarray(photos[1]).resize((64, 64))
    out = list(backend.render(req(init_image=init, strength=0.5)))
    assert len(out) == 1 and out[0].size == (64, 64)
    text_only = next(iter(backend.render(req())))
    assert not np.array_equal(np.asarray(out[0]), np.asarray(text_only))


def test_describe_records_pipeline_weights_and_absent_safety_checker(backend, tiny_sd):
    info = backend.describe()
    assert info.name == "diffusers" and info.source_type == "trainedAlgorithmicMedia"
    assert info.model == "tiny-sd"
    assert len(info.weights_sha256) == 64
    assert info.parameters["pipeline"] == "StableDiffusionPipeline"
    assert info.parameters["model_safety_checker"] is None
    assert info.parameters["model_watermarker"] is None
    assert info.parameters["dtype"] == "float32"  # fp16 only on cuda


def test_weights_hash_changes_when_a_weights_file_changes(tiny_sd, tmp_path):
    import shutil

    from provkit.generate.backends.base import weights_sha256

    copy = tmp_path / "copy"
    shutil.copytree(tiny_sd, copy)
    before = weights_sha256(copy)
    assert weights_sha256(copy) == before  # cached, same answer
    target = next(copy.rglob("*.safetensors"))
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    assert weights_sha256(copy) != before


def test_loading_forces_offline_mode(backend):
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_model_missing_from_the_local_cache_is_refused_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ConfigError, match="never downloads"):
        get_backend("diffusers", model="someone/not-a-cached-model", device="cpu")


def test_folder_that_is_not_a_pipeline_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="model_index.json"):
        get_backend("diffusers", model=str(tmp_path), device="cpu")
    with pytest.raises(BadInput, match="no such model folder"):
        get_backend("diffusers", model=str(tmp_path / "missing"), device="cpu")


def test_cuda_asked_for_without_a_gpu_is_a_config_error(tiny_sd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA device"):
        get_backend("diffusers", model=str(tiny_sd), device="cuda")


def test_wrapped_pipeline_object_hashes_its_weights_in_memory(tiny_sd):
    from diffusers import StableDiffusionPipeline
    from provkit.generate.backends.diffusers_backend import DiffusersBackend

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd, local_files_only=True)
    pipe.register_to_config(_name_or_path="in-memory")
    a = DiffusersBackend(pipeline=pipe)
    assert a.folder is None
    digest = a.describe().weights_sha256
    assert len(digest) == 64
    with __import__("torch").no_grad():
        next(pipe.unet.parameters()).add_(1.0)
    assert DiffusersBackend(pipeline=pipe).describe().weights_sha256 != digest
