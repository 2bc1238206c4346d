"""Issuer names from the certificate chains inside a C2PA manifest store.

c2pa-python reports a signer's organisation but not the issuing CA; the chains sit in
the ``c2pa.signature`` JUMBF boxes, so they are found there (the active manifest's
box first) and read with ``cryptography``.
"""

from __future__ import annotations

import functools
import itertools
import re

from provkit.provenance.core.der import fields as der_fields

#: A DER certificate: SEQUENCE (long form, 2 length bytes) whose first item is a SEQUENCE too.
_DER_CERT = re.compile(rb"\x30\x82(..)\x30\x82", re.DOTALL)

_SIGNATURE_LABEL = b"c2pa.signature\x00"

#: Bytes read past a signature box's stated end: room for the JPEG segment headers
#: (APP11 + JUMBF repeat) that a box split across segments carries in between.
_SEGMENT_SLACK = 4096


def _signature_boxes(data, end: int):
    """``(start, stop)`` of each ``c2pa.signature`` JUMBF box in ``data[:end]``, last first.

    The active manifest is the last in a store, so its box is found first, without
    reading through the thumbnails before it. A box is ``LBox "jumb" LBox "jumd"
    UUID(16) toggles label``: the label sits 33 bytes after the box start, and the
    first four bytes give the box length."""
    pos = data.rfind(_SIGNATURE_LABEL, 0, end)
    while pos != -1:
        start = pos - 33
        if (
            start >= 0
            and data[start + 4 : start + 8] == b"jumb"
            and data[start + 12 : start + 16] == b"jumd"
        ):
            length = int.from_bytes(data[start : start + 4], "big")
            yield start, min(end, start + length + _SEGMENT_SLACK)
        pos = data.rfind(_SIGNATURE_LABEL, 0, pos)


@functools.lru_cache(maxsize=256)
def _issuer_of(der: bytes) -> tuple[str, str] | None:
    """``(serial, issuer name)`` of one DER certificate, or None if it is not one."""
    read = der_fields(der)
    if read is not None and (read.issuer.get("CN") or read.issuer.get("O")):
        return str(read.serial), read.issuer.get("CN") or read.issuer["O"]
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    # A damaged certificate fails in many ways (ValueError, InvalidVersion, ASN.1 parse
    # errors raised while the issuer is read lazily): any of them means "not one".
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.issuer.get_attributes_for_oid(
            NameOID.COMMON_NAME
        ) or cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(cert.serial_number), str(
            names[0].value
        ) if names else cert.issuer.rfc4514_string()
    except Exception:  # noqa: BLE001  # names are a courtesy; the SDK judged the signature
        return None


def cert_issuers(data, end: int | None = None, *, serials=None) -> dict:
    """Serial number (decimal string) -> issuer, for the certificates in ``data[:end]``.

    Only the manifests' signature boxes are read (the certificate chains live there),
    the active manifest's first; with ``serials`` (the signers' serial numbers) the
    search stops once all are found. ``data`` may be bytes or a memory map."""
    end = len(data) if end is None else end
    wanted = set(serials) if serials is not None else None
    out = {}
    boxes = _signature_boxes(data, end)
    first = next(boxes, None)
    for start, stop in [(0, end)] if first is None else itertools.chain([first], boxes):
        chunk = data[start:stop]
        for m in _DER_CERT.finditer(chunk):
            length = int.from_bytes(m.group(1), "big") + 4
            found = _issuer_of(chunk[m.start() : m.start() + length])
            if found:
                out[found[0]] = found[1]
        if wanted is not None and wanted <= out.keys():
            break
    return out


def signer_chain(data, end: int | None = None, *, serial: str | None = None) -> list[bytes]:
    """The DER certificates in the signature box that holds the certificate with
    ``serial`` (decimal string; None: the active manifest's box, found first).

    The box holds the signer's chain and, when the signature is time-stamped, the
    time-stamping authority's certificates too."""
    end = len(data) if end is None else end
    for start, stop in _signature_boxes(data, end):
        chunk = data[start:stop]
        ders = []
        for m in _DER_CERT.finditer(chunk):
            der = bytes(chunk[m.start() : m.start() + int.from_bytes(m.group(1), "big") + 4])
            if _issuer_of(der):
                ders.append(der)
        if ders and (serial is None or any(_issuer_of(d)[0] == serial for d in ders)):
            return ders
    return []
