"""A real RFC 3161 time-stamping authority on loopback, for the tests.

No TSA can be reached from the test machines, so the tests run their own: an HTTP
server (``http.server`` in a thread, bound to 127.0.0.1 on a free port) that answers
``application/timestamp-query`` with a ``TimeStampResp`` signed by its own TSA
certificate (ECDSA P-256, extended key usage timeStamping, critical) under its own
root. c2pa-python asks it for the signature's time-stamp exactly as it would ask a
public TSA. The DER is written here by hand (a few ASN.1 types: no ASN.1 library is a
dependency of provkit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import threading
from dataclasses import dataclass
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# -- DER ---------------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _len(len(body)) + body


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    return tlv(0x31, b"".join(sorted(parts)))  # DER: a SET OF is sorted


def integer(v: int) -> bytes:
    body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)
    return tlv(0x02, body)


def octets(b: bytes) -> bytes:
    return tlv(0x04, b)


def oid(dotted: str) -> bytes:
    nums = [int(x) for x in dotted.split(".")]
    body = bytearray([40 * nums[0] + nums[1]])
    for n in nums[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def explicit(n: int, body: bytes) -> bytes:
    return tlv(0xA0 + n, body)


def gentime(t: dt.datetime) -> bytes:
    return tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


def parse(data: bytes, at: int = 0) -> tuple[int, bytes, int]:
    """One TLV at ``at``: (tag, body, offset after it)."""
    tag, n = data[at], data[at + 1]
    at += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[at : at + k], "big")
        at += k
    return tag, data[at : at + n], at + n


def children(body: bytes) -> list[tuple[int, bytes, bytes]]:
    """The TLVs in a constructed body: (tag, body, whole encoding)."""
    out, at = [], 0
    while at < len(body):
        tag, inner, end = parse(body, at)
        out.append((tag, inner, body[at:end]))
        at = end
    return out


SHA256 = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
SIGNED_DATA = "1.2.840.113549.1.7.2"
TST_INFO = "1.2.840.113549.1.9.16.1.4"
CONTENT_TYPE = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
SIGNING_TIME = "1.2.840.113549.1.9.5"
SIGNING_CERT_V2 = "1.2.840.113549.1.9.16.2.47"
POLICY = "1.3.6.1.4.1.99999.1"  # a private-arc test policy


def alg(dotted: str) -> bytes:
    return seq(oid(dotted))


# -- the authority -----------------------------------------------------------------------


def _certificate(
    common_name: str, key, issuer: x509.Name | None, issuer_key, extensions
) -> x509.Certificate:
    """A certificate for ``key`` valid for a year (self-signed when ``issuer`` is None)."""
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provkit tests"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    root: x509.Certificate
    serial: int = 1
    requests: int = 0
    #: Added to the clock in every token (a time-stamp from "the future" or "the past").
    offset: dt.timedelta = dt.timedelta(0)

    @classmethod
    def make(cls, name: str = "provkit test TSA") -> Authority:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = _certificate(
            name + " root",
            root_key,
            None,
            root_key,
            [
                (x509.BasicConstraints(ca=True, path_length=None), True),
                (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
                (root_ski, False),
            ],
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(
            name,
            key,
            root.subject,
            root_key,
            [
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (x509.KeyUsage(True, False, False, False, False, False, False, False, False), True),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),
                (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
                # c2pa-rs refuses a TSA certificate without key identifiers
                (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), False),
            ],
        )
        return cls(key, cert, root)

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def respond(self, request: bytes) -> bytes:
        """A granted ``TimeStampResp`` for a DER ``TimeStampReq``."""
        self.requests += 1
        _, body, _ = parse(request)
        fields = children(body)
        imprint = fields[1][2]  # MessageImprint, copied as sent
        nonce = next((whole for tag, _, whole in fields[2:] if tag == 0x02), None)
        now = (dt.datetime.now(dt.UTC) + self.offset).replace(microsecond=0)
        self.serial += 1
        tst = seq(
            integer(1),
            oid(POLICY),
            imprint,
            integer(self.serial),
            gentime(now),
            *([nonce] if nonce else []),
        )
        cert_der = self.cert.public_bytes(serialization.Encoding.DER)
        attrs = [
            seq(oid(CONTENT_TYPE), set_of(oid(TST_INFO))),
            seq(oid(SIGNING_TIME), set_of(tlv(0x17, now.strftime("%y%m%d%H%M%SZ").encode()))),
            seq(oid(MESSAGE_DIGEST), set_of(octets(hashlib.sha256(tst).digest()))),
            seq(
                oid(SIGNING_CERT_V2),
                set_of(seq(seq(seq(octets(hashlib.sha256(cert_der).digest()))))),
            ),
        ]
        signed_attrs = set_of(*attrs)
        signature = self.key.sign(signed_attrs, ec.ECDSA(hashes.SHA256()))
        issuer = self.cert.issuer.public_bytes()
        signer_info = seq(
            integer(1),
            seq(issuer, integer(self.cert.serial_number)),
            alg(SHA256),
            tlv(0xA0, parse(signed_attrs)[1]),  # [0] IMPLICIT
            alg(ECDSA_SHA256),
            octets(signature),
        )
        signed_data = seq(
            integer(3),
            set_of(alg(SHA256)),
            seq(oid(TST_INFO), explicit(0, octets(tst))),
            tlv(0xA0, cert_der),
            set_of(signer_info),
        )
        token = seq(oid(SIGNED_DATA), explicit(0, signed_data))
        return seq(seq(integer(0)), token)


class _Handler(http.server.BaseHTTPRequestHandler):
    authority: Authority

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            reply = self.server.authority.respond(body)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a bad request is a 400, as a real TSA answers
            self.send_response(400)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


class TsaServer:
    """The authority behind ``url`` until :meth:`stop` (a context manager)."""

    def __init__(self, authority: Authority | None = None):
        self.authority = authority or Authority.make()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.authority = self.authority  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tsa"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
