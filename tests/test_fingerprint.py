"""Perceptual fingerprints: stable under benign transforms, far apart for distinct photos."""

from __future__ import annotations

import hashlib
import io
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from provkit.provenance.core.errors import BadInput
from provkit.provenance.fingerprint import (
    PDQ_MATCH,
    PHASH_MATCH,
    Fingerprint,
    fingerprint_file,
    fingerprint_image,
    hamming,
)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


@given(
    sha=st.one_of(st.none(), st.binary(min_size=32, max_size=32).map(bytes.hex)),
    phash=st.integers(0, 2**64 - 1),
    dhash=st.integers(0, 2**64 - 1),
    pdq=st.binary(min_size=32, max_size=32),
    quality=st.integers(0, 100),
)
def test_fingerprint_json_round_trips(sha, phash, dhash, pdq, quality):
    fp = Fingerprint(sha, phash, dhash, pdq, quality)
    data = fp.to_json()
    assert set(data) == {"sha256", "phash", "dhash", "pdq", "pdq_quality"}
    assert len(data["phash"]) == 16 and len(data["pdq"]) == 64
    assert Fingerprint.from_json(data) == fp


@given(a=st.integers(0, 2**64 - 1), b=st.integers(0, 2**64 - 1))
def test_hamming_counts_differing_bits(a, b):
    expected = sum(((a >> i) & 1) != ((b >> i) & 1) for i in range(64))
    assert hamming(a, b) == expected
    assert hamming(a.to_bytes(8, "big"), b.to_bytes(8, "big")) == expected


def test_hamming_refuses_hashes_of_different_length():
    with pytest.raises(ValueError):
        hamming(b"\x00" * 32, b"\x00" * 8)
    with pytest.raises(TypeError):
        hamming(1, b"\x01")


def test_fingerprint_has_the_documented_sizes(photos):
    fp = fingerprint_image(Image.fromarray(photos[0]))
    assert 0 <= fp.phash < 2**64 and 0 <= fp.dhash < 2**64
    assert len(fp.pdq) == 32
    assert 50 <= fp.pdq_quality <= 100  # a real photograph is not flat
    assert fp.sha256 is None


def test_jpeg_recompression_and_resize_keep_fingerprints_close(photos):
    for arr in photos:
        img = Image.fromarray(arr)
        ref = fingerprint_image(img)
        small = img.resize((img.width // 2, img.height // 2), Image.Resampling.BILINEAR)
        for copy in (jpeg(img, 50), small):
            d = ref.distance(fingerprint_image(copy))
            assert d["phash"] <= PHASH_MATCH
            assert d["pdq"] <= PDQ_MATCH


def test_distinct_photographs_are_far_apart(photos):
    fps = [fingerprint_image(Image.fromarray(p)) for p in photos]
    for a, b in itertools.combinations(fps, 2):
        d = a.distance(b)
        assert d["phash"] > PHASH_MATCH
        assert d["pdq"] > PDQ_MATCH


def test_fast_draft_decode_stays_close_to_full_decode(tmp_path, photos):
    for i, arr in enumerate(photos):
        img = Image.fromarray(arr)
        big = img.resize((img.width * 3, img.height * 3), Image.Resampling.BICUBIC)
        path = tmp_path / f"big{i}.jpg"
        big.save(path, quality=90)
        d = fingerprint_file(path, fast=True).distance(fingerprint_file(path, fast=False))
        assert d["phash"] <= 4 and d["dhash"] <= 4 and d["pdq"] <= 16, d


def test_fingerprint_file_records_sha256_of_the_bytes(photo_path):
    fp = fingerprint_file(photo_path)
    assert fp.sha256 == hashlib.sha256(photo_path.read_bytes()).hexdigest()


def test_png_with_alpha_and_greyscale_fingerprint_like_rgb(tmp_path, photos):
    rgb = Image.fromarray(photos[1])
    rgba = rgb.convert("RGBA")
    rgba.save(tmp_path / "a.png")
    assert fingerprint_file(tmp_path / "a.png").phash == fingerprint_image(rgb).phash


def test_flat_image_reports_low_pdq_quality():
    fp = fingerprint_image(Image.new("RGB", (300, 200), (120, 120, 120)))
    assert fp.pdq_quality < 50


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\xff\xd8\xff\xe0garbage"])
def test_bad_files_raise_bad_input_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(BadInput) as err:
        fingerprint_file(path)
    assert str(path) in str(err.value)


def test_missing_file_raises_bad_input(tmp_path):
    with pytest.raises(BadInput):
        fingerprint_file(tmp_path / "nope.jpg")


def test_tiny_image_still_fingerprints():
    fp = fingerprint_image(Image.fromarray(np.zeros((3, 5, 3), np.uint8)))
    assert len(fp.pdq) == 32
