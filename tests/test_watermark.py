"""provkit's watermark: round trips, the named attacks, no false finds, odd image modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from provkit.provenance import watermark
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.watermark.provkit_scheme import Codec

from tests.fixtures_watermark import ATTACKS, SINGLE, crop_centre, jpeg, psnr, rendered_image

ID = bytes.fromhex("5eed00c0ffee1234")


@pytest.fixture(scope="module")
def marked_photos(photos):
    """Three real photographs (512x512, 400x600, 427x640) with a mark each."""
    out = []
    for i, p in enumerate([photos[0], photos[2], photos[5]]):
        image = Image.fromarray(p)
        payload = bytes([i]) + ID[1:]
        out.append((image, watermark.embed(image, payload), payload))
    return out


def test_round_trip_recovers_the_asset_id_from_real_photographs(photos):
    for i, p in enumerate(photos):
        image, payload = Image.fromarray(p), bytes([i]) + ID[1:]
        marked = watermark.embed(image, payload)
        assert marked.size == image.size and marked.mode == "RGB"
        assert psnr(image, marked) >= 40.0
        found = watermark.decode(marked)
        assert found is not None and found.payload == payload
        assert found.scheme == "provkit" and found.third_party is None
        assert found.confidence > 0.9


def test_round_trip_on_a_generated_image():
    image = rendered_image()
    marked = watermark.embed(image, ID)
    assert psnr(image, marked) >= 40.0
    assert watermark.decode(jpeg(marked, 75)).payload == ID


@pytest.mark.parametrize("attack", [a for a in ATTACKS if a != "none"])
def test_asset_id_survives_each_named_attack_and_pair(marked_photos, attack):
    for _, marked, payload in marked_photos:
        found = watermark.decode(ATTACKS[attack](marked))
        assert found is not None, f"{attack}: mark not found"
        assert found.payload == payload


def test_asset_id_survives_larger_and_off_centre_crops(marked_photos):
    for _, marked, payload in marked_photos[:2]:
        w, h = marked.size
        for cropped in (crop_centre(marked, 0.65), marked.crop((0, 0, int(w * 0.8), int(h * 0.8)))):
            found = watermark.decode(cropped)
            assert found is not None and found.payload == payload


SMALL_CROPS = [
    (300, 451),
    (320, 400),
    (340, 340),
    (360, 450),
    (380, 300),
    (400, 420),
    (420, 330),
    (450, 310),
]


@pytest.fixture(scope="module")
def small_marked_photos(photos):
    """Centre crops of the photographs with short sides of 300-450 px, marked."""
    out = []
    for i, (w, h) in enumerate(SMALL_CROPS):
        image = crop_to(Image.fromarray(photos[i % len(photos)]), w, h)
        payload = bytes([0x80 + i]) + ID[1:]
        out.append((image, watermark.embed(image, payload), payload))
    return out


def crop_to(image, w, h):
    w, h = min(w, image.width), min(h, image.height)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((left, top, left + w, top + h))


def test_small_photographs_survive_halving_then_jpeg50(small_marked_photos):
    # Halving a 300-450 px photograph and saving it at JPEG quality 50 is the hardest pair:
    # on several hundred random such crops about 97.6% come back (all 8 of these do), so one miss
    # in eight is tolerated; before the small-image handling only 3 of these 8 came back.
    found = [
        watermark.decode(ATTACKS["resize0.5+jpeg50"](marked))
        for _, marked, _ in small_marked_photos
    ]
    hits = sum(f is not None and f.payload == p for f, (_, _, p) in zip(found, small_marked_photos))
    assert hits >= len(SMALL_CROPS) - 1
    assert all(f is None or f.payload == p for f, (_, _, p) in zip(found, small_marked_photos))


@pytest.mark.parametrize("attack", ["crop90+jpeg50", "crop90+resize0.5", "resize0.5+bright+20"])
def test_small_photographs_survive_the_other_hard_pairs(small_marked_photos, attack):
    for image, marked, payload in small_marked_photos:
        assert psnr(image, marked) >= 40.0
        found = watermark.decode(ATTACKS[attack](marked))
        assert found is not None and found.payload == payload, f"{image.size} {attack}"


def test_unmarked_photographs_and_crops_are_not_found(photos):
    for p in photos:
        image = Image.fromarray(p)
        for candidate in (image, crop_centre(image, 0.7), SINGLE["jpeg50"](image)):
            assert watermark.decode(candidate) is None


def noise_image(seed: int, shape=(300, 400, 3)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


def test_readable_confirms_a_fresh_mark_and_rejects_another_payload(marked_photos):
    for image, marked, payload in marked_photos:
        assert watermark.readable(marked, payload)
        assert not watermark.readable(marked, bytes([payload[0] ^ 0x80]) + payload[1:])
        assert not watermark.readable(image, payload)  # the unmarked photograph


def test_readable_flags_noise_that_cannot_carry_the_mark_and_never_passes_an_unreadable_one():
    verdicts = []
    for seed in range(8):
        image = noise_image(seed)
        payload = bytes([seed]) + ID[1:]
        marked = watermark.embed(image, payload)
        found = watermark.decode(marked)
        ok = watermark.readable(marked, payload)
        verdicts.append(ok)
        if ok:  # what the check passes, the full decoder reads
            assert found is not None and found.payload == payload
    assert not verdicts[0]  # the 300 x 400 noise image of seed 0 cannot carry it
    assert not all(verdicts)


def test_readable_refuses_a_wrong_payload_length(marked_photos):
    _, marked, _ = marked_photos[0]
    with pytest.raises(BadInput, match="exactly 8 bytes"):
        watermark.readable(marked, ID[:7])


def test_wrong_payload_length_is_refused(photos):
    image = Image.fromarray(photos[0])
    for bad in (b"", ID[:7], ID + b"\x00"):
        with pytest.raises(BadInput, match="exactly 8 bytes"):
            watermark.embed(image, bad)


def test_tiny_image_is_refused_with_a_clear_error():
    tiny = Image.new("RGB", (200, 100), (90, 120, 150))
    with pytest.raises(BadInput, match=r"too small.*200x100.*128 px"):
        watermark.embed(tiny, ID)
    assert watermark.decode(Image.new("RGB", (80, 60))) is None


def test_alpha_channel_is_kept_untouched(photos):
    rgb = Image.fromarray(photos[1])
    alpha = Image.fromarray(
        np.tile(np.linspace(0, 255, rgb.width, dtype=np.uint8), (rgb.height, 1))
    )
    image = rgb.copy()
    image.putalpha(alpha)
    marked = watermark.embed(image, ID)
    assert marked.mode == "RGBA"
    assert np.array_equal(np.asarray(marked.getchannel("A")), np.asarray(alpha))
    assert watermark.decode(marked).payload == ID


def test_greyscale_stays_greyscale_and_decodes(photos):
    grey = Image.fromarray(photos[4]).convert("L")
    marked = watermark.embed(grey, ID)
    assert marked.mode == "L"
    assert watermark.decode(SINGLE["jpeg50"](marked)).payload == ID


def test_sixteen_bit_png_is_marked_at_sixteen_bits(tmp_path, photos):
    grey16 = (np.asarray(Image.fromarray(photos[4]).convert("L"), np.uint16) * 257).astype(
        np.uint16
    )
    src = tmp_path / "deep.png"
    Image.fromarray(grey16).save(src)
    image = Image.open(src)
    marked = watermark.embed(image, ID)
    assert marked.mode == "I;16"
    out = tmp_path / "deep_marked.png"
    marked.save(out)
    back = np.asarray(Image.open(out), np.float64)
    assert back.max() > 255  # still 16-bit data
    rms = np.sqrt(((back - grey16) ** 2).mean()) / 257
    assert 0.5 < rms < 3.0
    assert watermark.decode(Image.open(out)).payload == ID


def test_palette_image_is_marked_as_rgb(photos):
    pal = Image.fromarray(photos[2]).convert("P", palette=Image.ADAPTIVE, colors=256)
    marked = watermark.embed(pal, ID)
    assert marked.mode == "RGB"
    assert watermark.decode(marked).payload == ID


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(min_size=8, max_size=8),
    flips=st.lists(st.integers(0, 159), max_size=8, unique=True),
)
def test_codec_corrects_up_to_eight_bit_errors(payload, flips):
    codec = Codec()
    bits = codec.encode(payload)
    soft = np.where(bits, 1.0, -1.0)
    soft[flips] *= -0.5
    assert codec.decode(soft)[0] == payload


def test_codec_rejects_random_words():
    codec = Codec()
    rng = np.random.default_rng(7)
    assert all(codec.decode(rng.normal(size=160)) is None for _ in range(60))


def test_unknown_scheme_and_missing_trustmark_are_config_errors():
    with pytest.raises(ConfigError, match="unknown watermark scheme"):
        watermark.embed(Image.new("RGB", (300, 300)), ID, scheme="nope")
    from provkit.provenance.watermark import trustmark

    reason = trustmark.availability()
    if reason is None:
        pytest.skip("TrustMark and its model files are installed here")
    with pytest.raises(ConfigError, match="TrustMark is not available"):
        watermark.get_backend("trustmark")
