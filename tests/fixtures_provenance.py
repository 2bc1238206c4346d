"""Fixtures for signing, verification, ledger and recovery tests: identities and signed files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from provkit.provenance import keys
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec

try:
    import provkit.provenance.watermark as _wm

    HAS_WATERMARK = hasattr(_wm, "embed") and hasattr(_wm, "decode")
except ImportError:
    HAS_WATERMARK = False

needs_watermark = pytest.mark.skipif(
    not HAS_WATERMARK, reason="provenance.watermark is not installed in this tree"
)


def make_identity(directory: Path, org: str) -> tuple[keys.Identity, Path]:
    """A separate identity (its own CA) in ``directory``: ``(identity, ca_pem_path)``."""
    ca_cert, _, leaf_cert, leaf_key = keys.make_chain(org)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "chain.pem").write_bytes(keys._pem(leaf_cert) + keys._pem(ca_cert))
    keys._write_private(directory / "signer.key", keys._key_pem(leaf_key))
    (directory / "ca.pem").write_bytes(keys._pem(ca_cert))
    return keys.load(directory), directory / "ca.pem"


def sdk_state(path, *, anchors: bytes = b"") -> str:
    """What c2pa-python's Reader says, with provkit's settings for the same anchors."""
    import c2pa
    from provkit.provenance.manifest import context

    try:
        reader = c2pa.Reader(str(path), context=context(trust_anchors=anchors))
    except c2pa.C2paError.ManifestNotFound:
        return "absent"
    try:
        return reader.get_validation_state().lower()
    finally:
        reader.close()


def reader_json(path) -> dict:
    import c2pa

    reader = c2pa.Reader(str(path))
    try:
        return json.loads(reader.json())
    finally:
        reader.close()


def strip_and_degrade(src: Path, dst: Path, *, quality: int = 70, scale: float = 0.5) -> Path:
    """What a social platform does: decode, drop metadata, resize, re-encode as JPEG."""
    img = Image.open(src).convert("RGB")
    w, h = img.size
    img = img.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.BILINEAR)
    img.save(dst, "JPEG", quality=quality)
    return dst


def flip_pixel_bytes(data: bytes, count: int = 1, *, before_end: int = 2000) -> bytes:
    """``data`` (a JPEG) with ``count`` bits flipped in its entropy-coded pixels, about
    ``before_end`` bytes before the end marker, at places where the picture still decodes
    whole: the pixels changed after signing, the file still an image.

    A blind ``data[-2000] ^= 0x55`` can make a 0xFF (a marker) or break the Huffman
    stream, and where it lands depends on the manifest's size, so on the random keys:
    the file then no longer decodes, and a test meant for changed pixels meets an
    unreadable file on some runs."""
    out = bytearray(data)
    end = out.rfind(b"\xff\xd9")
    flipped, i = 0, end - before_end
    while flipped < count and i > end - before_end - 20_000:
        i -= 1
        if out[i] in (0xFF, 0xFE) or out[i - 1] == 0xFF:
            continue
        trial = bytearray(out)
        trial[i] ^= 0x01
        try:
            with Image.open(io.BytesIO(bytes(trial))) as img:
                img.load()
        except Exception:  # noqa: BLE001, S112 - this place breaks the stream: try the next
            continue
        out, flipped = trial, flipped + 1
        i -= 64
    assert flipped == count, "no place to flip that keeps the JPEG decodable"
    return bytes(out)


def jpeg_bytes(array, quality=92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(name="signed_jpeg")
def signed_jpeg_fixture(tmp_path, photo_path):
    """A photograph signed by the workspace identity (no watermark: fast, pure C2PA)."""
    out = tmp_path / "signed.jpg"
    issued = issue(
        photo_path, out, spec=ManifestSpec(source_type="digitalCapture"), watermark=False
    )
    return out, issued


@pytest.fixture(name="second_identity")
def second_identity_fixture(tmp_path):
    return make_identity(tmp_path / "other-org", "Other Org")


def paint_over(data: bytes, *, box=(0.1, 0.1, 0.7, 0.7), colour=(255, 0, 255)) -> bytes:
    """``data`` (a signed JPEG) with a large patch of its picture painted over and the
    manifest left in place: the picture visibly differs from what was signed (its signed
    thumbnail no longer looks like it), unlike :func:`flip_pixel_bytes`, whose change
    the thumbnail cannot show. The segments up to the manifest (APP11) are kept, the
    repainted picture's own segments follow."""
    from PIL import ImageDraw

    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    ImageDraw.Draw(img).rectangle(
        [int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)], fill=colour
    )
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    i, end = 2, 2
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if data[i + 1] == 0xEB:
            end = i + 2 + length
        i += 2 + length
    return data[:end] + buf.getvalue()[2:]
