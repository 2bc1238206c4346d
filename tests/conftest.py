"""Shared fixtures: every test gets its own workspace; images are made, never downloaded."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

#: fixture modules shared across test files (registered once, so no test file imports a
#: fixture just to make pytest see it)
pytest_plugins = ["tests.fixtures_provenance", "tests.fixtures_serve"]

# Signing in a fresh test workspace (module and session fixtures too) makes a development
# identity, as `--dev-identity` asks; the tests of the refusal without one delete this
# (tests/test_one_house.py).
os.environ["PROVKIT_DEV_IDENTITY"] = "1"


@pytest.fixture(autouse=True)
def workspace(tmp_path_factory, monkeypatch):
    """A private $PROVKIT_HOME for each test, so nothing touches the user's data."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PROVKIT_HOME", str(home))
    monkeypatch.delenv("PROVKIT_DB", raising=False)
    return home


def natural_photos() -> list[np.ndarray]:
    """Real photographs shipped with scikit-image and scikit-learn (RGB uint8)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = [
        data.astronaut(),
        data.chelsea(),
        data.coffee(),
        data.rocket(),
        np.stack([data.camera()] * 3, axis=-1),
    ]
    photos += list(load_sample_images().images)
    return [np.ascontiguousarray(p[..., :3]) for p in photos]


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    return natural_photos()


@pytest.fixture
def photo_path(tmp_path, photos):
    """A real photograph saved as JPEG."""
    path = tmp_path / "photo.jpg"
    Image.fromarray(photos[0]).save(path, quality=92)
    return path
