"""Helpers for the verification tests: identities with chosen subjects, signing as-is,
and reading a file with c2pa-python the way provkit does (same trust), for cross-checks."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

from provkit.provenance import keys
from provkit.provenance.manifest import ManifestSpec, context, manifest_definition, sign_stream
from provkit.provenance.trust import resolve


def make_chain_with(subject: dict, *, ocsp_url: str | None = None, now=None, days: int = 30):
    """A CA and a leaf whose subject has the given attributes (CN, O, C, OU)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

    oids = {
        "CN": NameOID.COMMON_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "C": NameOID.COUNTRY_NAME,
    }
    now = now or dt.datetime.now(dt.UTC)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{subject['CN']} test CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oids[k], v) for k, v in subject.items()]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    if ocsp_url:
        leaf = leaf.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
    return ca, leaf.sign(ca_key, hashes.SHA256()), leaf_key


def identity_with(directory: Path, subject: dict, **kwargs) -> tuple[keys.Identity, Path]:
    """An identity (not checked: it may be expired on purpose) and its CA's PEM path."""
    ca, leaf, leaf_key = make_chain_with(subject, **kwargs)
    directory.mkdir(parents=True, exist_ok=True)
    keys._write_private(directory / "signer.key", keys._key_pem(leaf_key))
    (directory / "ca.pem").write_bytes(keys._pem(ca))
    return (
        keys.Identity(chain_pem=keys._pem(leaf) + keys._pem(ca), key_path=directory / "signer.key"),
        directory / "ca.pem",
    )


def sign_bytes(
    data: bytes,
    mime: str,
    identity,
    *,
    spec: ManifestSpec | None = None,
    ingredients=(),
    definition: dict | None = None,
) -> bytes:
    """``data`` signed as it is (no watermark, no ledger)."""
    definition = definition or manifest_definition(
        spec or ManifestSpec(source_type="digitalCapture")
    )
    out = io.BytesIO()
    sign_stream(definition, identity, mime, io.BytesIO(data), out, ingredients=ingredients)
    return out.getvalue()


def sdk_read(path, mime: str | None = None, *, trust=None) -> dict:
    """c2pa-python's own answer for ``path`` under provkit's trust and network settings:
    ``{"state", "failures" (codes of the active manifest and ingredient deltas), "json",
    "crjson"}`` (state ``absent`` when there is no manifest)."""
    import c2pa
    from provkit.provenance.core.imageio import sniff_media

    mime = mime or sniff_media(path)
    ctx = context(trust_anchors=resolve(trust).pem())
    with open(path, "rb") as f:
        try:
            reader = c2pa.Reader(mime, f, context=ctx)
        except c2pa.C2paError.ManifestNotFound:
            return {"state": "absent", "failures": [], "json": None, "crjson": None}
        try:
            doc = json.loads(reader.json())
            crjson = json.loads(reader.crjson())
            state = reader.get_validation_state().lower()
        finally:
            reader.close()
    results = doc.get("validation_results") or {}
    codes = [s["code"] for s in (results.get("activeManifest") or {}).get("failure", [])]
    for d in results.get("ingredientDeltas") or []:
        codes += [s["code"] for s in (d.get("validationDeltas") or {}).get("failure", [])]
    return {"state": state, "failures": codes, "json": doc, "crjson": crjson}
