"""CLIP embeddings: local weights only, fast preprocessing that matches open_clip's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image
from provkit.detect.clip import TINY_ARCH, load_model, parse_spec
from provkit.provenance.core.errors import BadInput, ConfigError

TINY = f"{TINY_ARCH}:random"


@pytest.fixture(scope="module")
def tiny():
    return load_model(TINY, device="cpu")  # compared with open_clip's CPU path below


def naive_embedding(model, pil):
    """open_clip's own transform and encode_image, one image at a time."""
    import open_clip
    import torch

    pre = open_clip.image_transform(
        model.image_size, is_train=False, mean=model.mean, std=model.std
    )
    with torch.no_grad():
        f = model.model.encode_image(pre(pil.convert("RGB")).unsqueeze(0))
    return torch.nn.functional.normalize(f, dim=-1)[0].numpy()


def test_embeddings_are_unit_rows_in_input_order_for_paths_images_and_arrays(
    tiny, photos, tmp_path
):
    paths = []
    for i, p in enumerate(photos[:3]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(p).save(paths[-1])
    e = tiny.embed_images([paths[0], Image.fromarray(photos[1]), photos[2]], batch_size=2)
    assert e.shape == (3, tiny.embed_dim) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    again = tiny.embed_images(paths)
    np.testing.assert_allclose(again, e, atol=1e-5)  # same pixels however they are passed


def test_fast_preprocessing_matches_open_clip_transform_on_png(tiny, photos, tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(photos[1]).save(path)
    ours = tiny.embed_images([path])[0]
    ref = naive_embedding(tiny, Image.open(path))
    assert float(ours @ ref) > 0.9999


def test_reduced_size_jpeg_decoding_stays_close_to_full_decoding(photos, tmp_path):
    from open_clip import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD, image_transform
    from provkit.detect.clip import ClipModel

    vit = ClipModel(
        spec="ViT-B-32:random",
        arch="ViT-B-32",
        weights="random",
        model=None,
        device="cpu",
        image_size=(224, 224),
        mean=OPENAI_DATASET_MEAN,
        std=OPENAI_DATASET_STD,
    )
    big = np.asarray(Image.fromarray(photos[0]).resize((1800, 1500), Image.BICUBIC))
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, quality=90)
    ours = vit.preprocess(path).astype(np.float64) / 255
    pre = image_transform((224, 224), is_train=False, mean=(0, 0, 0), std=(1, 1, 1))
    ref = pre(Image.open(path).convert("RGB")).permute(1, 2, 0).numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).mean() < 0.005  # under 0.5% of the range on average


def test_weights_load_from_a_local_file_or_folder_and_name_their_checkpoint(tiny, photos, tmp_path):
    import torch

    state = {
        k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
        for k, v in tiny.model.state_dict().items()
    }
    weights = tmp_path / "tiny.pt"
    torch.save(state, weights)
    loaded = load_model(f"{TINY_ARCH}:{weights}")
    assert loaded.model_id.startswith(f"{TINY_ARCH}:sha256:")
    a = loaded.embed_images([photos[0]])
    assert not np.allclose(a, tiny.embed_images([photos[0]]), atol=1e-4)  # weights were used

    folder = tmp_path / "cache" / "snapshots" / "abc"
    folder.mkdir(parents=True)
    shutil.copy(weights, folder / "open_clip_pytorch_model.bin")
    from_folder = load_model(f"{TINY_ARCH}:{tmp_path / 'cache'}")
    np.testing.assert_allclose(from_folder.embed_images([photos[0]]), a, atol=1e-5)
    assert from_folder.model_id == loaded.model_id


@pytest.mark.parametrize(
    "spec, words",
    [
        ("ViT-B-32", "ARCH:"),
        ("no-such-arch:random", "unknown CLIP architecture"),
        (f"{TINY_ARCH}:/nonexistent/weights.bin", "no CLIP checkpoint"),
    ],
)
def test_bad_model_specs_are_config_errors_that_say_why(spec, words):
    with pytest.raises(ConfigError, match=words):
        load_model(spec)


def test_weights_that_do_not_fit_the_architecture_are_a_config_error(tmp_path):
    import torch

    bad = tmp_path / "bad.pt"
    torch.save({"visual.conv1.weight": torch.zeros(3)}, bad)
    with pytest.raises(ConfigError, match="cannot load weights"):
        load_model(f"{TINY_ARCH}:{bad}")


def test_spec_splits_only_at_the_first_colon():
    assert parse_spec("ViT-L-14:/models/a:b.bin") == ("ViT-L-14", "/models/a:b.bin")


def test_unreadable_files_are_reported_by_index_and_others_still_embedded(tiny, photos, tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(photos[0]).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:300])
    missing = tmp_path / "missing.png"
    emb, errors = tiny.embed_many([good, broken, missing])
    assert set(errors) == {1, 2}
    assert np.isfinite(emb[0]).all() and np.isnan(emb[1]).all()
    with pytest.raises(BadInput, match="broken.jpg"):
        tiny.embed_images([good, broken])


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA device")
def test_cuda_fp16_embeddings_agree_with_cpu(photos):
    cpu = load_model("ViT-B-32:random", device="cpu")
    gpu = load_model("ViT-B-32:random", device="cuda")
    assert gpu.device == "cuda" and next(gpu.model.parameters()).dtype.is_floating_point
    a, b = cpu.embed_images(photos), gpu.embed_images(photos)
    assert b.dtype == np.float32
    centre = a.mean(axis=0)
    x, y = a - centre, b - centre
    cos = np.sum(x * y, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    assert cos.min() > 0.99


def test_an_open_clip_local_dir_brings_its_own_config_and_preprocessing(tiny, photos, tmp_path):
    import json

    import torch
    from provkit.detect.clip import TINY_CONFIG

    folder = tmp_path / "my-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(
        json.dumps(
            {
                "model_cfg": TINY_CONFIG,
                "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
            }
        )
    )
    torch.save(tiny.model.state_dict(), folder / "open_clip_pytorch_model.bin")
    model = load_model(f"local-dir:{folder}", device="cpu")
    assert model.mean == (0.5, 0.5, 0.5) and model.model_id.startswith("my-clip:sha256:")
    assert model.embed_images([photos[0]]).shape == (1, TINY_CONFIG["embed_dim"])


def test_loading_overrides_a_user_setting_that_allows_downloads(monkeypatch):
    from huggingface_hub import constants
    from provkit.provenance.core.offline import is_offline

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as if imported with downloads on
    assert not is_offline()
    load_model(f"{TINY_ARCH}:random")
    assert is_offline() and constants.HF_HUB_OFFLINE is True


def test_architecture_whose_text_tower_needs_a_download_is_a_config_error_naming_the_spec(
    monkeypatch,
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(ConfigError) as e:
        load_model("roberta-ViT-B-32:random")
    assert str(e.value).startswith("roberta-ViT-B-32:random: ")
    assert "without downloading" in str(e.value)


def test_checkpoint_hash_is_cached_across_processes_and_redone_when_the_file_changes(
    tiny, tmp_path
):
    import json
    import os

    import torch
    from provkit.provenance.core.weights import cache_path
    from provkit.provenance.fingerprint import file_sha256

    weights = tmp_path / "tiny-cached.pt"
    torch.save(tiny.model.state_dict(), weights)
    spec = f"{TINY_ARCH}:{weights}"
    digest = file_sha256(weights)
    assert load_model(spec).model_id == f"{TINY_ARCH}:sha256:{digest[:16]}"
    cache = json.loads(cache_path().read_text())
    (key,) = [k for k, v in cache.items() if v == digest]
    cache[key] = "f" * 64  # what another process would find: the stored answer, not a re-hash
    cache_path().write_text(json.dumps(cache))
    fresh = type(tiny)(**{**load_model(spec).__dict__, "_digest": None})
    assert fresh.model_id == f"{TINY_ARCH}:sha256:{'f' * 16}"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # file changed
    again = type(tiny)(**{**load_model(spec).__dict__, "_digest": None})
    assert again.model_id == f"{TINY_ARCH}:sha256:{digest[:16]}"
