"""Fixtures for signing, verification, ledger and recovery tests: identities and signed files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from provenance import keys
from provenance.issue import issue
from provenance.manifest import ManifestSpec

try:
    import provenance.watermark as _wm

    HAS_WATERMARK = hasattr(_wm, "embed") and hasattr(_wm, "decode")
except ImportError:
    HAS_WATERMARK = False

needs_watermark = pytest.mark.skipif(
    not HAS_WATERMARK, reason="provenance.watermark is not installed in this tree")


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

    from provenance.manifest import context

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


def jpeg_bytes(array, quality=92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(name="signed_jpeg")
def signed_jpeg_fixture(tmp_path, photo_path):
    """A photograph signed by the workspace identity (no watermark: fast, pure C2PA)."""
    out = tmp_path / "signed.jpg"
    issued = issue(photo_path, out, spec=ManifestSpec(source_type="digitalCapture"),
                   watermark=False)
    return out, issued


@pytest.fixture(name="second_identity")
def second_identity_fixture(tmp_path):
    return make_identity(tmp_path / "other-org", "Other Org")
