"""The gan and vae backends: a torch module mapping a latent to an image, plus weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures_generate import TinyDCGAN, TinyVAEDecoder, save_random_weights
from provkit.generate.backends import get_backend
from provkit.generate.request import GenerationRequest
from provkit.provenance.core.errors import BadInput, ConfigError


@pytest.fixture(scope="module")
def gan_weights(tmp_path_factory):
    return save_random_weights(TinyDCGAN(), tmp_path_factory.mktemp("gan") / "dcgan.pt")


@pytest.fixture(scope="module")
def vae_weights(tmp_path_factory):
    return save_random_weights(TinyVAEDecoder(), tmp_path_factory.mktemp("vae") / "decoder.pt", 1)


def req(seed=0, count=1, **kw):
    return GenerationRequest("ignored by latent models", seed=seed, count=count, **kw)


def test_gan_generator_makes_seeded_images_at_its_own_size(gan_weights):
    gan = get_backend(
        "gan", module="fixtures_generate:TinyDCGAN", model=gan_weights, latent_size=16, device="cpu"
    )
    assert gan.default_size == (32, 32)
    a = list(gan.render(req(seed=5, count=3, width=32, height=32)))
    assert [im.size for im in a] == [(32, 32)] * 3
    again = list(gan.render(req(seed=7, width=32, height=32)))
    assert np.array_equal(np.asarray(a[2]), np.asarray(again[0]))  # seed 5+2 alone
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1]))


def test_gan_output_range_maps_tanh_output_onto_full_pixel_range(gan_weights):
    gan = get_backend(
        "gan",
        module="fixtures_generate:TinyDCGAN",
        model=gan_weights,
        latent_size="16",
        device="cpu",
    )
    px = np.asarray(next(iter(gan.render(req(seed=1, width=32, height=32)))))
    expected = TinyDCGAN()
    expected.load_state_dict(torch.load(gan_weights, weights_only=True))
    z = torch.randn((16,), generator=torch.Generator().manual_seed(1))[None]
    with torch.no_grad():
        out = expected.eval()(z)[0].permute(1, 2, 0).numpy()
    assert np.abs(px.astype(float) - ((out + 1) / 2 * 255)).max() <= 1.0


def test_vae_decoder_samples_its_prior_with_0_1_output(vae_weights):
    vae = get_backend(
        "vae",
        module="fixtures_generate:TinyVAEDecoder",
        model=vae_weights,
        latent_size=8,
        device="cpu",
    )
    info = vae.describe()
    assert info.parameters["output_range"] == [0.0, 1.0]
    assert info.source_type == "trainedAlgorithmicMedia"
    assert len(info.weights_sha256) == 64
    images = list(vae.render(req(seed=2, count=2, width=32, height=32)))
    assert [im.size for im in images] == [(32, 32)] * 2
    assert info.parameters["native_size"] == [32, 32]
    bigger = list(vae.render(req(seed=2, width=128, height=96)))
    assert bigger[0].size == (128, 96)
    assert np.asarray(images[0]).std() > 1


def test_latent_size_is_read_from_the_module_when_it_says(gan_weights, tmp_path, monkeypatch):
    import fixtures_generate

    class Named(TinyDCGAN):
        nz = 16

    monkeypatch.setattr(fixtures_generate, "NamedDCGAN", Named, raising=False)
    gan = get_backend("gan", module="fixtures_generate:NamedDCGAN", model=gan_weights, device="cpu")
    assert gan.latent_shape == (16,)
    with pytest.raises(ConfigError, match="--latent-size"):
        get_backend("gan", module="fixtures_generate:TinyDCGAN", model=gan_weights, device="cpu")


def test_weights_that_do_not_fit_the_module_are_a_config_error(vae_weights):
    with pytest.raises(ConfigError, match="weights do not fit"):
        get_backend(
            "gan",
            module="fixtures_generate:TinyDCGAN",
            model=vae_weights,
            latent_size=16,
            device="cpu",
        )


def test_pickled_module_instead_of_state_dict_is_refused(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(TinyVAEDecoder(), path)
    with pytest.raises(ConfigError, match="state dict"):
        get_backend(
            "vae",
            module="fixtures_generate:TinyVAEDecoder",
            model=path,
            latent_size=8,
            device="cpu",
        )


def test_missing_module_weights_or_bad_options_say_what_is_wrong(gan_weights, tmp_path):
    with pytest.raises(ConfigError, match="--module"):
        get_backend("gan", model=gan_weights)
    with pytest.raises(ConfigError, match="cannot import"):
        get_backend("gan", module="no_such_module:G", model=gan_weights, latent_size=16)
    with pytest.raises(BadInput, match="no such weights file"):
        get_backend(
            "gan", module="fixtures_generate:TinyDCGAN", model=tmp_path / "x.pt", latent_size=16
        )
    with pytest.raises(BadInput, match="output range"):
        get_backend(
            "gan",
            module="fixtures_generate:TinyDCGAN",
            model=gan_weights,
            latent_size=16,
            output_range="1,-1",
        )


def test_latent_models_take_no_init_image(gan_weights, photos):
    from PIL import Image

    gan = get_backend(
        "gan", module="fixtures_generate:TinyDCGAN", model=gan_weights, latent_size=16, device="cpu"
    )
    with pytest.raises(BadInput, match="no init image"):
        list(gan.render(req(init_image=Image.fromarray(photos[0]))))


def test_corrupt_safetensors_weights_are_bad_input_naming_the_file(tmp_path):
    from safetensors.torch import save_file

    good = tmp_path / "dcgan.safetensors"
    save_file(TinyDCGAN().state_dict(), str(good))
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(good.read_bytes()[:200])  # cut short, as by an interrupted copy
    with pytest.raises(BadInput, match="cannot read weights") as e:
        get_backend(
            "gan", module="fixtures_generate:TinyDCGAN", model=corrupt, latent_size=16, device="cpu"
        )
    assert e.value.path == str(corrupt)
    get_backend(
        "gan", module="fixtures_generate:TinyDCGAN", model=good, latent_size=16, device="cpu"
    )  # an intact file of the same kind loads
