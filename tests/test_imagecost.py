"""The decode cost check (``provenance/core/imagecost.py``): every bomb is refused before it
is decoded, no file Pillow writes is refused, and a cut file is refused or read, never
a traceback."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from provkit.provenance.core import imagecost, imageio
from provkit.provenance.core.errors import BadInput

from tests.fixtures_bombs import bombs

MODES = ["1", "L", "P", "RGB", "RGBA", "I;16", "LA", "CMYK"]
WRITERS = [
    ("BMP", {}),
    ("PNG", {}),
    ("GIF", {}),
    ("WEBP", {}),
    ("WEBP", {"lossless": True}),
    ("JPEG", {}),
    ("JPEG", {"progressive": True}),
    ("AVIF", {}),
    ("TIFF", {}),
    ("TIFF", {"compression": "tiff_lzw"}),
    ("TIFF", {"compression": "tiff_adobe_deflate"}),
    ("TIFF", {"compression": "packbits"}),
    ("TIFF", {"compression": "group4"}),
    ("TIFF", {"compression": "jpeg"}),
]


def _written(mode: str, fmt: str, options: dict, noise: bool) -> bytes | None:
    rng = np.random.default_rng(7)
    image = (
        Image.fromarray(rng.integers(0, 255, (203, 301, 3), dtype=np.uint8)).convert(mode)
        if noise
        else Image.new(mode, (301, 203))
    )
    buf = io.BytesIO()
    try:
        image.save(buf, fmt, **options)
    except (OSError, ValueError, KeyError):
        return None  # this writer does not take this mode
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb_files():
    return bombs()


def test_every_bomb_is_refused_before_decoding(tmp_path, bomb_files):
    imagecost.set_max_pixels_per_byte(4096)
    try:
        for name, data in bomb_files.items():
            path = tmp_path / name
            path.write_bytes(data)
            started = time.monotonic()
            with pytest.raises(BadInput) as e:
                imageio.open_image(path)
            assert time.monotonic() - started < 1.0, name
            assert name in str(e.value)
    finally:
        imagecost.set_max_pixels_per_byte(None)


def test_without_the_ratio_only_the_flat_canvases_decode(tmp_path, bomb_files):
    """The structural checks alone refuse every truncated or header-only bomb; the flat
    lossless canvases are valid files, refused only by the service's ratio."""
    for name, data in bomb_files.items():
        path = tmp_path / name
        path.write_bytes(data)
        if name in ("webp-flat-lossless", "avif-flat"):
            continue  # valid; decoding 49 MP takes seconds
        with pytest.raises(BadInput):
            imageio.open_image(path)


@pytest.mark.parametrize("noise", [False, True], ids=["flat", "noise"])
def test_no_file_pillow_writes_is_refused(tmp_path, noise):
    imagecost.set_max_pixels_per_byte(4096)
    opened = 0
    try:
        for mode in MODES:
            for fmt, options in WRITERS:
                data = _written(mode, fmt, options, noise)
                if data is None:
                    continue
                path = tmp_path / f"x.{fmt.lower()}"
                path.write_bytes(data)
                imageio.open_image(path)  # raises if refused
                opened += 1
    finally:
        imagecost.set_max_pixels_per_byte(None)
    assert opened >= 60


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(writer=st.sampled_from(WRITERS), cut=st.floats(0.0, 0.999))
def test_a_cut_file_is_refused_or_read_never_a_traceback(tmp_path, writer, cut):
    fmt, options = writer
    data = _written("RGB", fmt, options, noise=True)
    if data is None:
        return
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: max(1, int(len(data) * cut))])
    try:
        imageio.open_image(path)
    except BadInput:
        pass
