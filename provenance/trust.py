"""Trust anchors for validation: the caller's PEM file plus the workspace's own CA."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from provenance import keys
from provenance.core.errors import ConfigError
from provenance.manifest import read_anchor_file

#: Where a bundled copy of the official C2PA Trust List is looked for.
C2PA_TRUST_LIST = Path(__file__).with_name("data") / "C2PA-TRUST-LIST.pem"


def trust_pem(trust=None, *, trust_local: bool = True) -> bytes:
    """The PEM the SDK gets as anchors: the caller's file or bytes plus the local CA.

    ``trust`` may also be trust sources as ``--trust`` takes them (a list of ``local``,
    ``c2pa`` and PEM paths, or one of those names): see :func:`trust_options`."""
    if isinstance(trust, (list, tuple)) or (isinstance(trust, str) and trust in ("local", "c2pa")):
        opts = trust_options(trust)
        trust, trust_local = opts["trust"], trust_local and opts["trust_local"]
    pem = b""
    if trust:
        pem += trust if isinstance(trust, bytes) else read_anchor_file(
            trust)
    if trust_local:
        local = keys.local_trust_anchors()
        if local:
            pem += (b"\n" if pem else b"") + local
    return pem


def _local_ca_names() -> set[str]:
    """Common names of the workspace's own CAs (current and retired)."""
    names = set()
    pem = keys.local_trust_anchors()
    for block in pem.split(b"-----END CERTIFICATE-----"):
        if b"BEGIN CERTIFICATE" not in block:
            continue
        try:
            cert = x509.load_pem_x509_certificate(block + b"-----END CERTIFICATE-----\n")
        except ValueError:
            continue
        names.update(a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return names


def trust_source_of(c2pa: dict) -> str | None:
    """Which trust source made a report's signer trusted; None when it is not trusted.

    The report's own ``signer["trust_source"]`` when it names one; otherwise "local
    workspace CA" for a signer issued by this workspace's CA, else "your trust anchors".
    A recovered (or mismatched) file counts as trusted when its recovered manifest
    re-validates as trusted."""
    state = c2pa.get("state")
    trusted = state == "trusted" or (
        state in ("recovered", "mismatch")
        and (c2pa.get("recovered_manifest") or {}).get("state") == "trusted")
    if not trusted:
        return None
    signer = c2pa.get("signer") if isinstance(c2pa.get("signer"), dict) else {}
    if signer.get("trust_source"):
        return str(signer["trust_source"])
    if signer.get("issuer") and signer["issuer"] in _local_ca_names():
        return "local workspace CA"
    return "your trust anchors"


def trust_options(trust=None) -> dict:
    """Verify keyword arguments (``trust``: one PEM, ``trust_local``) for trust sources.

    ``trust``: None for the default (the workspace's own CA), or a list of sources:
    ``local`` (the workspace's CA), ``c2pa`` (the bundled C2PA Trust List) or a PEM
    file path. Sources other than ``local`` are read into one PEM."""
    if trust is None:
        return {}
    sources = [trust] if isinstance(trust, (str, Path)) else list(trust)
    pem = b""
    for source in sources:
        if str(source) == "local":
            continue
        if str(source) == "c2pa":
            if not C2PA_TRUST_LIST.is_file():
                raise ConfigError("the C2PA Trust List is not bundled with this installation; "
                                  "pass its PEM file with --trust PATH")
            source = C2PA_TRUST_LIST
        pem += (b"\n" if pem else b"") + read_anchor_file(source)
    return {"trust": pem or None,
            "trust_local": any(str(s) == "local" for s in sources)}


def verify_trust(trust=None) -> dict:
    """``trust`` and ``trust_local`` for verify from what a library caller passed: None
    (the workspace's CA), one PEM path or bytes (that file plus the workspace's CA), or
    trust sources as ``--trust`` takes them (a list, or the single name ``local``/``c2pa``;
    see :func:`trust_options`)."""
    if trust is None:
        return {"trust": None, "trust_local": True}
    if isinstance(trust, bytes) or (isinstance(trust, (str, Path))
                                     and str(trust) not in ("local", "c2pa")):
        return {"trust": trust, "trust_local": True}
    return {"trust": None, "trust_local": True, **trust_options(trust)}
