"""The UnivFD-style probe: trains on CLIP features, separates held-out images, saves and loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from provkit.detect.classifier import Probe, train_probe
from provkit.detect.clip import TINY_ARCH, load_model
from provkit.provenance.core.errors import BadInput, ConfigError

from tests.fixtures_detect import generator_like, real_crops, save_all

TINY = f"{TINY_ARCH}:random"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import natural_photos

    root = tmp_path_factory.mktemp("train")
    real = save_all(real_crops(natural_photos(), 24), root / "real", "jpg")
    fake = save_all(generator_like(24), root / "fake", "png")
    return train_probe(real, fake, TINY), root


def auc(probs, labels) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, probs))


def test_probe_separates_generator_like_images_on_held_out_sources(trained):
    probe, _ = trained
    assert probe.metrics["heldout_auc"] >= 0.9
    assert probe.metrics["heldout_accuracy"] >= 0.75
    assert probe.trained["test_sources"] >= 8 and probe.trained["augment_copies"] == 2


def test_probe_scores_new_images_with_the_file_formats_swapped(trained, photos, tmp_path):
    """Trained on real JPEG vs fake PNG; still right on real PNG vs fake JPEG."""
    probe, _ = trained
    real = save_all(real_crops(photos, 12, seed=7), tmp_path / "r", "png")
    fake = save_all(generator_like(12, seed=9), tmp_path / "f", "jpg")
    p = probe.score_images(real + fake, load_model(TINY))
    assert auc(p, [0] * 12 + [1] * 12) >= 0.85


def test_probe_round_trips_through_json_and_scores_identically(trained, tmp_path):
    probe, root = trained
    path = probe.save(tmp_path / "probe.json")
    data = json.loads(path.read_text())
    assert data["clip"]["model_id"] == f"{TINY_ARCH}:random"
    assert {"mean", "std"} <= set(data["normalisation"]) and data["calibration"][
        "method"
    ] == "platt"
    loaded = Probe.load(path)
    feats = load_model(TINY).embed_images(sorted((root / "fake").iterdir())[:4])
    np.testing.assert_allclose(loaded.probability(feats), probe.probability(feats), rtol=1e-9)


def test_probe_refuses_features_from_another_clip_model(trained):
    probe, _ = trained
    other = Probe(**{**probe.__dict__, "clip_model_id": "ViT-L-14:sha256:0123456789abcdef"})
    with pytest.raises(ConfigError, match="ViT-L-14"):
        other.check_clip(load_model(TINY))


def test_training_with_too_few_readable_images_says_so(tmp_path, photos):
    real = save_all(real_crops(photos, 3), tmp_path / "r", "jpg")
    fake = save_all(generator_like(6), tmp_path / "f", "png")
    broken = tmp_path / "r" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(BadInput, match="at least 4"):
        train_probe(real + [broken], fake, TINY)


@pytest.mark.parametrize(
    "content, words",
    [
        ("not json", "not a readable probe"),
        ('{"format": "something-else"}', "not a provkit probe"),
        ('{"format": "provkit-probe", "version": 1, "weights": [1]}', "malformed probe"),
    ],
)
def test_bad_probe_files_are_config_errors(tmp_path, content, words):
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=words):
        Probe.load(path)


@settings(max_examples=50, deadline=None)
@given(
    a=st.floats(0.01, 20),
    b=st.floats(-5, 5),
    x=st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=2),
)
def test_calibrated_probability_is_a_probability_and_rises_with_the_margin(a, b, x):
    probe = Probe(
        clip_model_id="m",
        clip_spec="m:random",
        mean=(0.0, 0.0),
        std=(1.0, 1.0),
        weights=(1.0, 0.5),
        bias=0.0,
        calib_a=a,
        calib_b=b,
    )
    feats = np.array([x, [x[0] + 1.0, x[1]]])
    p = probe.probability(feats)
    assert ((p >= 0) & (p <= 1)).all()
    assert p[1] >= p[0]


def test_augment_images_keeps_the_original_first_and_adds_resized_or_recompressed_copies(photos):
    from PIL import Image
    from provkit.detect.classifier import augment_images

    original = Image.fromarray(photos[0][:96, :96])
    out = augment_images(original, np.random.default_rng(0), copies=3)
    assert len(out) == 4 and out[0] is original
    assert all(img.mode == "RGB" for img in out)
    assert all(
        not np.array_equal(np.asarray(img), np.asarray(original)) or img.size != original.size
        for img in out[1:]
    )


def test_the_detector_scores_the_degraded_copies_with_the_same_model(photo_path):
    """Stability: the image, a JPEG q75 copy and a 0.75x copy, all through one model."""
    from provkit.detect.classifier import stability_variants
    from provkit.detect.verdict import Detector
    from provkit.provenance.core.imageio import load_rgb

    clip = load_model(TINY)
    dim = clip.embed_images([load_rgb(photo_path)]).shape[1]
    w = np.random.default_rng(0).normal(size=dim)
    probe = Probe(
        clip_model_id=clip.model_id,
        clip_spec=TINY,
        mean=(0.0,) * dim,
        std=(1.0,) * dim,
        weights=tuple(w),
        bias=0.0,
        calib_a=1.0,
        calib_b=0.0,
    )
    detector = Detector(probe=probe, clip=clip, search_index=False)
    (report,) = detector.run([photo_path])
    (item,) = [e for e in report.evidence if e.kind == "classifier"]
    expected = probe.probability(clip.embed_images(stability_variants(load_rgb(photo_path))))
    assert item.data["probability"] == pytest.approx(float(expected[0]))
    assert list(item.data["variants"].values()) == pytest.approx([float(x) for x in expected[1:]])
    sides = {x >= 0.8 for x in expected}
    assert (item.finding == "unsure") or len(sides) == 1
