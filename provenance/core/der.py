"""The few fields of an X.509 certificate that provkit shows, read straight from its DER.

Why not only ``cryptography``: `provkit verify` names the signer's issuer, the
certificate's subject and the trust source on every run, and importing
``cryptography.x509`` (its name module compiles large regular expressions at import) cost
about as much as the whole C2PA read. This module reads the serial number and the issuer
and subject names (CN, O, OU, C, and their raw DER) with a strict, bounded TLV walk:
definite lengths only, every length inside its parent, the certificate's three top-level
parts ending exactly where it ends. Anything it does not read returns None, and the
callers then ask ``cryptography`` as before. Nothing here checks a signature.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass

#: attribute OIDs (DER contents) -> the short names reports use
_NAMES = {b"\x55\x04\x03": "CN", b"\x55\x04\x0a": "O", b"\x55\x04\x0b": "OU", b"\x55\x04\x06": "C"}
#: string types -> codec (UTF8String, PrintableString, IA5String, T61String, NumericString,
#: VisibleString, BMPString, UniversalString)
_STRINGS = {
    0x0C: "utf-8",
    0x13: "ascii",
    0x16: "ascii",
    0x14: "latin-1",
    0x12: "ascii",
    0x1A: "ascii",
    0x1E: "utf-16-be",
    0x1C: "utf-32-be",
}
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL)


class DerError(ValueError):
    """Not a DER structure this module reads."""


def _tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """``(tag, value start, value end)`` of the element at ``pos`` (inside ``end``)."""
    if pos + 2 > end:
        raise DerError("truncated")
    tag, first = buf[pos], buf[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise DerError("high tag number")
    if first < 0x80:
        length = first
    elif first == 0x80 or first > 0x84:
        raise DerError("indefinite or oversized length")
    else:
        n = first & 0x7F
        if pos + n > end:
            raise DerError("truncated length")
        length = int.from_bytes(buf[pos : pos + n], "big")
        if length < 0x80 or buf[pos] == 0:
            raise DerError("non-minimal length")
        pos += n
    if pos + length > end:
        raise DerError("length past its parent")
    return tag, pos, pos + length


def _expect(buf: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    got, start, stop = _tlv(buf, pos, end)
    if got != tag:
        raise DerError(f"tag {got:#x}, expected {tag:#x}")
    return start, stop


def _name(buf: bytes, start: int, end: int) -> dict:
    """``{"CN", "O", "OU", "C"}`` of a Name (first value of each, as cryptography's
    ``get_attributes_for_oid(...)[0]``)."""
    out: dict[str, str] = {}
    pos = start
    while pos < end:
        rdn_start, rdn_end = _expect(buf, pos, end, 0x31)  # SET OF
        inner = rdn_start
        while inner < rdn_end:
            atv_start, atv_end = _expect(buf, inner, rdn_end, 0x30)
            oid_start, oid_end = _expect(buf, atv_start, atv_end, 0x06)
            tag, value_start, value_end = _tlv(buf, oid_end, atv_end)
            if value_end != atv_end:
                raise DerError("trailing bytes in an attribute")
            key = _NAMES.get(bytes(buf[oid_start:oid_end]))
            if key is not None:
                codec = _STRINGS.get(tag)
                if codec is None:
                    raise DerError("unknown string type")
                value = bytes(buf[value_start:value_end]).decode(codec)
                out.setdefault(key, value)
            inner = atv_end
        pos = rdn_end
    return out


@dataclass(frozen=True)
class CertFields:
    serial: int
    issuer: dict
    subject: dict
    issuer_der: bytes
    subject_der: bytes


@functools.lru_cache(maxsize=1024)
def fields(der: bytes) -> CertFields | None:
    """The certificate's serial number and names, or None when ``der`` is not a
    certificate this walk reads (the caller then asks ``cryptography``)."""
    try:
        start, end = _expect(der, 0, len(der), 0x30)
        if end != len(der):
            raise DerError("trailing bytes")
        tbs_start, tbs_end = _expect(der, start, end, 0x30)
        alg_end = _expect(der, tbs_end, end, 0x30)[1]  # signatureAlgorithm
        _, sig_end = _expect(der, alg_end, end, 0x03)  # signatureValue
        if sig_end != end:
            raise DerError("trailing bytes after the signature")
        tag, pos, stop = _tlv(der, tbs_start, tbs_end)
        if tag == 0xA0:  # [0] EXPLICIT version
            tag, pos, stop = _tlv(der, stop, tbs_end)
        if tag != 0x02 or stop == pos:
            raise DerError("no serial number")
        serial = int.from_bytes(der[pos:stop], "big", signed=True)
        stop = _expect(der, stop, tbs_end, 0x30)[1]  # signature (AlgorithmIdentifier)
        issuer_at = stop
        issuer_start, issuer_end = _expect(der, issuer_at, tbs_end, 0x30)
        validity_end = _expect(der, issuer_end, tbs_end, 0x30)[1]
        subject_start, subject_end = _expect(der, validity_end, tbs_end, 0x30)
        return CertFields(
            serial=serial,
            issuer=_name(der, issuer_start, issuer_end),
            subject=_name(der, subject_start, subject_end),
            issuer_der=bytes(der[issuer_at:issuer_end]),
            subject_der=bytes(der[validity_end:subject_end]),
        )
    except (DerError, IndexError, UnicodeDecodeError):
        return None


def pem_certificates(pem: bytes) -> list[bytes]:
    """The DER of each ``CERTIFICATE`` block in ``pem`` (blocks that do not decode are
    left out)."""
    out = []
    for block in _PEM.findall(pem):
        try:
            out.append(base64.b64decode(re.sub(rb"\s+", b"", block), validate=True))
        except ValueError:
            continue
    return out
