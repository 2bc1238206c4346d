"""Real files, made in the test, for each way credentials fail (tests/test_causes.py).

Each maker signs a real photograph with c2pa-python and then does to it what happens to
files in the wild: a signing certificate that expired before its time-stamp, a metadata
writer that moves the manifest, a CAWG identity assertion whose credential cannot be
verified, a malformed action history, a manifest stored at a remote address, a picture
painted over after signing, an altered claim, and a tampered file signed again as an
edit (the tampered file becomes a failed ingredient).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import struct
from pathlib import Path

from PIL import Image
from provkit.provenance import keys
from provkit.provenance.manifest import (
    ManifestSpec,
    manifest_definition,
    new_builder,
    settings,
    sign_stream,
)
from provkit.provenance.trust import trust_add

from tests.fixtures_provenance import paint_over
from tests.fixtures_verify import identity_with, sign_bytes
from tests.tsa import Authority, TsaServer

REMOTE_URL = "https://credentials.example.com/manifests/7f3a.c2pa"


def photo_jpeg(array, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _no_check_after_sign():
    """A Builder context that does not re-validate what it just signed (so a file can be
    made the way a faulty or older writer makes it)."""
    import c2pa

    s = settings()
    s["verify"]["verify_after_sign"] = False
    return c2pa.Context.from_dict(s)


def expired_signer(directory: Path, jpeg: bytes) -> Path:
    """Signed by a camera maker's certificate valid for one day, with a time-stamp (from a
    real RFC 3161 authority on loopback) five days later: the certificate had expired
    when the signature was time-stamped. The authority's root is added to the
    workspace's trust (so its time counts); the camera maker's CA is not (an unlisted
    signer), as with genuine camera files whose certificate has since expired."""
    ident, _ca = identity_with(directory / "camera", {"CN": "old camera", "O": "CamCo"}, days=1)
    authority = Authority.make()
    authority.offset = dt.timedelta(days=5)
    (directory / "tsa-root.pem").write_bytes(authority.root_pem())
    trust_add(directory / "tsa-root.pem", name="test-tsa")
    out = io.BytesIO()
    with TsaServer(authority) as tsa:
        sign_stream(
            manifest_definition(ManifestSpec(source_type="digitalCapture")),
            dataclasses.replace(ident, tsa_url=tsa.url),
            "image/jpeg",
            io.BytesIO(jpeg),
            out,
            ctx=_no_check_after_sign(),
        )
    path = directory / "expired.jpg"
    path.write_bytes(out.getvalue())
    return path


def signed_by_workspace(directory: Path, jpeg: bytes, name: str = "signed.jpg") -> Path:
    path = directory / name
    path.write_bytes(sign_bytes(jpeg, "image/jpeg", keys.load_or_init()))
    return path


def manifest_moved(directory: Path, jpeg: bytes) -> Path:
    """Re-saved by a tool that writes a comment before the manifest: the manifest moves,
    the byte ranges the signature excludes no longer line up; the pixels are untouched."""
    data = signed_by_workspace(directory, jpeg).read_bytes()
    comment = b"re-saved by a photo tool"
    path = directory / "moved.jpg"
    path.write_bytes(
        data[:2] + b"\xff\xfe" + struct.pack(">H", 2 + len(comment)) + comment + data[2:]
    )
    return path


def identity_unverified(directory: Path, jpeg: bytes) -> Path:
    """Signed by the workspace (a trusted signer) with a CAWG X.509 identity assertion
    whose credential chains to no identity trust anchor: its signature validates, the
    identity it names cannot be verified offline."""
    import c2pa

    claim = keys.load_or_init()
    person, _ = identity_with(directory / "person", {"CN": "Jane Reporter", "O": "Daily"})
    s = settings(trust_anchors=keys.local_trust_anchors())
    s["signer"] = {
        "local": {
            "alg": "es256",
            "sign_cert": claim.chain_pem.decode(),
            "private_key": claim.key_path.read_text(),
        }
    }
    s["cawg_x509_signer"] = {
        "local": {
            "alg": "es256",
            "sign_cert": person.chain_pem.decode(),
            "private_key": person.key_path.read_text(),
            "referenced_assertions": ["c2pa.actions.v2"],
        }
    }
    builder = c2pa.Builder(
        json.dumps(manifest_definition(ManifestSpec(source_type="digitalCapture"))),
        c2pa.Context.from_dict(s),
    )
    # The identity assertion is signed only by a signer the settings describe; the Python
    # binding knows of a context signer only when one was handed to it as an object.
    builder._has_context_signer = True
    out = io.BytesIO()
    builder.sign("image/jpeg", io.BytesIO(jpeg), out)
    path = directory / "identity.jpg"
    path.write_bytes(out.getvalue())
    return path


def malformed_assertion(directory: Path, jpeg: bytes) -> Path:
    """An action history whose first action is neither created nor opened
    (``assertion.action.malformed``), signed by the workspace."""
    definition = manifest_definition(ManifestSpec(source_type="digitalCapture"))
    definition["assertions"][0]["data"]["actions"] = [{"action": "c2pa.color_adjustments"}]
    out = io.BytesIO()
    sign_stream(
        definition,
        keys.load_or_init(),
        "image/jpeg",
        io.BytesIO(jpeg),
        out,
        ctx=_no_check_after_sign(),
    )
    path = directory / "malformed.jpg"
    path.write_bytes(out.getvalue())
    return path


def remote_manifest(directory: Path, jpeg: bytes) -> tuple[Path, bytes]:
    """A file whose manifest is stored at :data:`REMOTE_URL` (only the reference is in the
    file); returns the file and the manifest store that would be served there."""
    builder = new_builder(manifest_definition(ManifestSpec(source_type="digitalCapture")))
    builder.set_no_embed()
    builder.set_remote_url(REMOTE_URL)
    signer = keys.load_or_init().c2pa_signer()
    out = io.BytesIO()
    try:
        store = builder.sign(signer, "image/jpeg", io.BytesIO(jpeg), out)
    finally:
        signer.close()
        builder.close()
    path = directory / "remote.jpg"
    path.write_bytes(out.getvalue())
    return path, store


def content_altered(directory: Path, jpeg: bytes) -> Path:
    path = directory / "altered.jpg"
    path.write_bytes(paint_over(signed_by_workspace(directory, jpeg, "orig.jpg").read_bytes()))
    return path


def signature_broken(directory: Path, jpeg: bytes) -> Path:
    """One character of the signed claim changed (its instance id)."""
    data = bytearray(signed_by_workspace(directory, jpeg, "claim.jpg").read_bytes())
    i = data.find(b"xmp.iid:") + 10
    data[i] = ord("0") if data[i] != ord("0") else ord("1")
    path = directory / "broken.jpg"
    path.write_bytes(bytes(data))
    return path
