"""provenance.core.der reads a certificate's serial and names exactly as cryptography does,
and returns None (never a wrong answer) for anything else."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provkit.provenance.core import der
from provkit.provenance.keys import make_chain

TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=24,
)
KEY = ec.generate_private_key(ec.SECP256R1())
RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _name(attrs: dict) -> x509.Name:
    oids = {
        "CN": NameOID.COMMON_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "C": NameOID.COUNTRY_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


def _cert(subject: dict, issuer: dict, serial: int, key=KEY) -> bytes:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _theirs(data: bytes):
    cert = x509.load_der_x509_certificate(data)

    def names(n):
        out = {}
        for key, oid in (
            ("CN", NameOID.COMMON_NAME),
            ("O", NameOID.ORGANIZATION_NAME),
            ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME),
            ("C", NameOID.COUNTRY_NAME),
        ):
            attrs = n.get_attributes_for_oid(oid)
            if attrs:
                out[key] = attrs[0].value
        return out

    return cert.serial_number, names(cert.issuer), names(cert.subject)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cn=TEXT,
    org=TEXT,
    unit=st.none() | TEXT,
    issuer_cn=TEXT,
    serial=st.integers(1, 2**159 - 1),
    country=st.sampled_from(["GB", "US", "CN", "DE"]),
)
def test_names_and_serial_agree_with_cryptography(cn, org, unit, issuer_cn, serial, country):
    subject = {"CN": cn, "O": org, **({"OU": unit} if unit else {}), "C": country}
    data = _cert(subject, {"CN": issuer_cn, "O": org}, serial)
    ours = der.fields(data)
    assert ours is not None
    assert (ours.serial, ours.issuer, ours.subject) == _theirs(data)


def test_the_development_chain_and_an_rsa_certificate_read_alike():
    ca, _, leaf, _ = make_chain("Agence Exemple")
    for cert in (ca, leaf):
        data = cert.public_bytes(serialization.Encoding.DER)
        ours = der.fields(data)
        assert (ours.serial, ours.issuer, ours.subject) == _theirs(data)
    data = _cert({"CN": "rsa signer"}, {"CN": "rsa ca"}, 7, key=RSA)
    assert der.fields(data).subject == {"CN": "rsa signer"}


GOOD = _cert({"CN": "signer", "O": "Org"}, {"CN": "ca"}, 12345)  # ECDSA: built once


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_damaged_certificate_reads_as_cryptography_reads_it_or_not_at_all(data):
    good = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(good) - 1))
        good[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(good)))
    blob = bytes(good[:cut])
    ours = der.fields(blob)
    if ours is None:
        return
    try:
        theirs = _theirs(blob)
    except Exception:  # noqa: BLE001  # cryptography refuses what we read: names only
        return  # a courtesy read; the SDK judged the signature (see the module doc)
    assert (ours.serial, ours.issuer, ours.subject) == theirs


def test_not_a_certificate_is_none():
    for blob in (
        b"",
        b"\x30",
        b"\x30\x80\x00\x00",
        b"\x30\x82\xff\xff" + b"\x00" * 8,
        b"hello world",
    ):
        assert der.fields(blob) is None


def test_pem_blocks_decode_to_der():
    ca, _, leaf, _ = make_chain("Org")
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca))
    assert der.pem_certificates(pem) == [
        c.public_bytes(serialization.Encoding.DER) for c in (leaf, ca)
    ]


def test_the_trust_source_is_named_from_the_der_only_when_unambiguous():
    from provkit.provenance import trust

    def pem(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    ca, _, leaf, _ = make_chain("Real Org")
    impostor_ca, _, _, _ = make_chain("Real Org")  # same names, another key
    chain = (
        leaf.public_bytes(serialization.Encoding.DER),
        ca.public_bytes(serialization.Encoding.DER),
    )
    real = trust.TrustSource("real", "file", "real anchors", pem(ca))
    fake = trust.TrustSource("fake", "file", "impostor anchors", pem(impostor_ca))
    other, _, _, _ = make_chain("Someone Else")
    unrelated = trust.TrustSource("other", "file", "unrelated anchors", pem(other))
    # one source holds the anchor: named without a signature check
    assert trust._by_name((unrelated, real), chain) == "real anchors"
    # an impostor of the same name elsewhere: the DER alone cannot tell, the signature can
    assert trust._by_name((fake, real), chain) is None
    trust._issuing_source.cache_clear()
    assert trust._issuing_source((fake, real), chain) == "real anchors"
