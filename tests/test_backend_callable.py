"""The callable backend: any f(request) -> images, found by dotted path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from provkit.generate.backends import get_backend
from provkit.generate.request import GenerationRequest
from provkit.provenance.core.errors import BadInput, ConfigError


def gradient_model(request):
    """A studio model stand-in: one float array per seed."""
    out = []
    for seed in request.seeds:
        rng = np.random.default_rng(seed)
        base = np.linspace(0, 1, request.width)[None, :, None]
        out.append(np.broadcast_to(base * rng.random(3), (request.height, request.width, 3)))
    return out


def short_model(request):
    return [Image.new("RGB", (request.width, request.height), "teal")]


def test_dotted_path_callable_returns_one_image_per_seed(monkeypatch):
    backend = get_backend("callable", model="test_backend_callable:gradient_model")
    images = list(backend.render(GenerationRequest("p", seed=4, count=2, width=40, height=20)))
    assert [im.size for im in images] == [(40, 20)] * 2
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
    info = backend.describe()
    assert info.model == "test_backend_callable:gradient_model"
    assert info.source_type == "trainedAlgorithmicMedia"


def test_callable_returning_too_few_images_fails_only_the_missing_ones():
    backend = get_backend("callable", function=short_model)
    out = list(backend.render(GenerationRequest("p", count=3, width=16, height=16)))
    assert isinstance(out[0], Image.Image)
    assert all(isinstance(e, BadInput) and "returned 1 images for 3" in str(e) for e in out[1:])


def test_callable_returning_something_that_is_not_an_image_is_reported():
    backend = get_backend("callable", function=lambda r: ["not an image"])
    (out,) = list(backend.render(GenerationRequest("p", width=16, height=16)))
    assert isinstance(out, BadInput) and "want a PIL image" in str(out)


def test_unknown_backend_or_function_path_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown backend"):
        get_backend("midjourney")
    with pytest.raises(ConfigError, match="has no"):
        get_backend("callable", model="test_backend_callable:nope")


def test_a_backend_factory_can_be_given_as_module_path():
    backend = get_backend(
        "provkit.generate.backends.callable:CallableBackend",
        function=short_model,
        name="studio-model",
        version="2.1",
    )
    assert (
        backend.describe().software_agent
        == "studio-model/2.1 (model=test_backend_callable:short_model)"
    )
