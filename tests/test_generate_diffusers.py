"""Diffusers pipelines sealed end to end: by model folder, and wrapped pipeline objects."""

from __future__ import annotations

import pytest
from fixtures_generate import tiny_sd_path
from PIL import Image
from provkit.generate import Generator, wrap_pipeline
from provkit.provenance.verify import verify_file


@pytest.fixture(scope="module")
def sd_generator(tmp_path_factory):
    out = tmp_path_factory.mktemp("sd-out")
    return Generator(
        "diffusers", model=str(tiny_sd_path()), device="cpu", out_dir=out, batch_size=2
    )


def c2pa_of(path):
    return verify_file(path).to_json()["c2pa"]


def test_text_to_image_outputs_are_trained_algorithmic_media_with_model_and_weights(sd_generator):
    images = sd_generator.generate("a lighthouse", n=2, seed=4, size="128x128", steps=2)
    assert [(i.seed, i.width, i.height) for i in images] == [(4, 128, 128), (5, 128, 128)]
    c2pa = c2pa_of(images[1].path)
    assert c2pa["state"] == "trusted"
    assert c2pa["digital_source_type"] == "trainedAlgorithmicMedia"
    (created,) = [a for a in c2pa["actions"] if a["action"] == "c2pa.created"]
    weights = sd_generator.describe().weights_sha256
    assert f"weights=sha256:{weights[:16]}" in created["software_agent"]
    assert "model=tiny-sd" in created["software_agent"]
    params = created["parameters"]
    assert params["weights_sha256"] == weights and params["steps"] == 2 and params["seed"] == 5
    assert params["backend_parameters"]["model_safety_checker"] is None
    assert params["backend_parameters"]["model_watermarker"] is None


def test_image_to_image_adds_the_init_image_as_parent_ingredient(sd_generator, photo_path):
    (img,) = sd_generator.generate(
        "in oils", init_image=photo_path, size="128x128", steps=2, strength=0.5
    )
    c2pa = c2pa_of(img.path)
    assert [(i["title"], i["relationship"]) for i in c2pa["ingredients"]] == [
        ("photo.jpg", "parentOf")
    ]
    assert [a["action"] for a in c2pa["actions"]] == ["c2pa.opened", "c2pa.edited"]
    assert c2pa["digital_source_type"] == "trainedAlgorithmicMedia"


def test_wrap_pipeline_seals_an_existing_pipeline_object(tmp_path, photos):
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(tiny_sd_path(), local_files_only=True)
    gen = wrap_pipeline(pipe, out_dir=tmp_path)
    # an in-memory init image (no file) still becomes a parentOf ingredient
    (img,) = gen.generate(
        "a red kite", size="128x128", steps=2, seed=9, init_image=Image.fromarray(photos[0])
    )
    c2pa = c2pa_of(img.path)
    assert c2pa["state"] == "trusted"
    assert [i["relationship"] for i in c2pa["ingredients"]] == ["parentOf"]
    assert gen.describe().parameters["pipeline"] == "StableDiffusionPipeline"


def test_images_the_models_own_safety_checker_flags_are_not_released(tmp_path):
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    small = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 1,
    }
    config = CLIPConfig(
        text_config=small,
        projection_dim=32,
        vision_config={**small, "image_size": 32, "patch_size": 8},
    )
    checker = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():  # every concept threshold below any similarity: flags everything
        checker.concept_embeds_weights.fill_(-10.0)
    base = StableDiffusionPipeline.from_pretrained(tiny_sd_path(), local_files_only=True)
    pipe = StableDiffusionPipeline(
        **{
            k: v
            for k, v in base.components.items()
            if k not in ("safety_checker", "feature_extractor", "image_encoder")
        },
        safety_checker=checker,
        feature_extractor=CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        requires_safety_checker=True,
    )
    gen = wrap_pipeline(pipe, out_dir=tmp_path / "out")
    assert gen.describe().parameters["model_safety_checker"] == "StableDiffusionSafetyChecker"
    run = gen.run("x", n=2, size="128x128", steps=1)
    assert run.sealed == ()
    assert [(f.stage, "safety checker" in f.error) for f in run.failed] == [("safety", True)] * 2
    assert not any((tmp_path / "out").iterdir())
