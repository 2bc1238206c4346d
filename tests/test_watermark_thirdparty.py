"""Third-party marks: the Stable Diffusion XL watermark as diffusers embeds it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from provkit.provenance import watermark
from provkit.provenance.watermark.thirdparty import SDXL_BITS, bgr_to_u, dwtdct_bits

imwatermark = pytest.importorskip("imwatermark")


def sdxl_watermarked(rgb: np.ndarray, *, bgr_order: bool = True) -> Image.Image:
    """What diffusers' StableDiffusionXLWatermarker does to one image (float RGB in 0..255)."""
    encoder = imwatermark.WatermarkEncoder()
    encoder.set_watermark("bits", [int(b) for b in SDXL_BITS])
    pixels = rgb.astype(np.float32)
    if bgr_order:  # current diffusers: RGB -> BGR, encode, back to RGB
        out = encoder.encode(pixels[:, :, ::-1], "dwtDct")[:, :, ::-1]
    else:  # older releases handed RGB straight to the BGR encoder
        out = encoder.encode(pixels, "dwtDct")
    tensor = np.clip(2 * (out / 255 - 0.5), -1.0, 1.0)  # the pipeline's [-1, 1] range
    return Image.fromarray(np.round((tensor / 2 + 0.5) * 255).astype(np.uint8))


@pytest.mark.parametrize("bgr_order", [True, False], ids=["bgr", "rgb"])
def test_sdxl_mark_is_reported_as_stable_diffusion_xl(photos, bgr_order):
    for p in (photos[0], photos[5], photos[6]):
        marks = watermark.third_party_marks(sdxl_watermarked(p, bgr_order=bgr_order))
        assert [m.third_party for m in marks] == ["Stable Diffusion XL watermark"]
        assert marks[0].payload == np.packbits(SDXL_BITS).tobytes()
        assert marks[0].confidence >= 0.9


def test_unmarked_photographs_carry_no_third_party_mark(photos):
    for p in photos:
        assert watermark.third_party_marks(Image.fromarray(p)) == []


def test_sdxl_mark_is_not_mistaken_for_a_provkit_mark(photos):
    assert watermark.decode(sdxl_watermarked(photos[0])) is None


def test_vectorised_reader_matches_invisible_watermark_decoder(photos):
    rng = np.random.default_rng(3)
    decoder = imwatermark.WatermarkDecoder("bits", 48)
    for p in photos[:4]:
        bits = rng.integers(0, 2, 48)
        encoder = imwatermark.WatermarkEncoder()
        encoder.set_watermark("bits", list(bits))
        bgr = np.clip(encoder.encode(np.ascontiguousarray(p[:, :, ::-1]), "dwtDct"), 0, 255)
        bgr = bgr.astype(np.uint8)
        ours = dwtdct_bits(bgr, 48)
        assert np.array_equal(ours, np.asarray(decoder.decode(bgr, "dwtDct"), bool))
        assert (ours == bits.astype(bool)).mean() > 0.75


def test_colour_conversion_gives_opencvs_u_plane_value_for_value(photos):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (301, 257, 3), dtype=np.uint8)
    for bgr in (*[np.ascontiguousarray(p[:, :, ::-1]) for p in photos[:3]], noise):
        assert np.array_equal(bgr_to_u(bgr), cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[..., 1])
        floats = bgr.astype(np.float32) * np.float32(0.997) + np.float32(0.25)
        ours, theirs = bgr_to_u(floats), cv2.cvtColor(floats, cv2.COLOR_BGR2YUV)[..., 1]
        # float32: OpenCV's vectorised path (fused multiply-adds); the few pixels at each
        # row's end that its scalar loop converts may differ in the last bit
        assert np.abs(ours - theirs).max() <= 1e-4
        assert (ours != theirs).mean() < 0.01
        width = bgr.shape[1] // 8 * 8
        assert np.array_equal(ours[:, :width], theirs[:, :width])
